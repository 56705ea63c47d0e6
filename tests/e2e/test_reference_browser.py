"""The console's Reference data pages in headless Chromium, at phone (390x844) and laptop
(1280x800) sizes: the list, a new market refused with the error beside its field and then fixed,
an edit, a retirement. Screenshots go to a temporary folder (printed with -s)."""

from __future__ import annotations

import pytest

from tests.e2e.browser import EDITOR, PHONE, expect, fits_the_width, go_to, signed_in

pytestmark = [pytest.mark.db, pytest.mark.browser]

LAPTOP = {"width": 1280, "height": 800}




@pytest.mark.parametrize("viewport", [pytest.param(PHONE, id="phone"), pytest.param(LAPTOP, id="laptop")])
def test_reference_pages_list_create_fix_edit_retire(new_page, staff, shots, backend, viewport):  # noqa: F811 (fixtures)
    page = new_page(viewport)
    size = f"{backend.name}-{viewport['width']}"
    signed_in(page, EDITOR)
    go_to(page, "Reference data")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reference data")
    expect(page.locator("td", has_text="Tombouctou").first).to_be_visible()
    assert fits_the_width(page)
    page.screenshot(path=str(shots / f"markets-{size}.png"), full_page=True)

    # A new market with a code in capitals and a latitude off the globe: refused, typed values kept.
    page.get_by_role("link", name="New market").click()
    page.get_by_label("Code").fill("Niono")
    page.get_by_label("Name (French)").fill("Niono")
    page.get_by_label("Name (Bambara)").fill("Nionon")
    page.get_by_label("Region").select_option("sikasso")
    page.get_by_label("Other spellings").fill("Niyono")
    page.get_by_label("Latitude").fill("95")
    page.get_by_label("Longitude").fill("-5.99")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#code-error")).to_contain_text("lowercase")
    expect(page.locator("#latitude-error")).to_contain_text("90")
    expect(page.get_by_label("Name (Bambara)")).to_have_value("Nionon")
    expect(page.get_by_label("Region")).to_have_value("sikasso")
    assert fits_the_width(page)
    page.screenshot(path=str(shots / f"market-error-{size}.png"), full_page=True)

    page.get_by_label("Code").fill("niono")
    page.get_by_label("Latitude").fill("14.25")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Saved: market niono")
    row = page.locator("tr[data-code=niono]")
    expect(row).to_contain_text("Nionon")

    # Edit: the Bambara name.
    row.get_by_role("link", name="edit").click()
    expect(page.get_by_label("Code")).to_be_disabled()
    page.get_by_label("Name (Bambara)").fill("Nyono")
    page.get_by_role("button", name="Save").click()
    expect(row).to_contain_text("Nyono")

    # Retire, then it says so and offers reactivation.
    row.get_by_role("button", name="retire").click()
    # Issue 15: what it affects is said first, then it is done.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Retire the market")
    page.get_by_role("button", name="Retire", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Retired: market niono")
    expect(row).to_contain_text("retired")
    expect(row.get_by_role("button", name="reactivate")).to_be_visible()
    assert fits_the_width(page)
    page.screenshot(path=str(shots / f"market-retired-{size}.png"), full_page=True)
