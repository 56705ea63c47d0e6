"""Your account, in headless Chromium at phone (390x844) and laptop (1280x800) sizes: the editor
signed in on two browsers sees both sessions, a wrong current password is refused with the
typed-in form kept, the right one changes the password and signs the other browser out; then the
new password signs in. Screenshots go to a temporary folder (printed with -s)."""

from __future__ import annotations

import pytest

from tests.e2e.browser import EDITOR, PASSWORD, PHONE, expect, fits_the_width, sign_in, signed_in

pytestmark = [pytest.mark.db, pytest.mark.browser]

LAPTOP = {"width": 1280, "height": 800}
NEW_PASSWORD = "a longer new passphrase"




@pytest.mark.parametrize("viewport", [pytest.param(PHONE, id="phone"), pytest.param(LAPTOP, id="laptop")])
def test_change_password_signs_the_other_browser_out(new_page, staff, shots, backend, viewport):  # noqa: F811 (fixtures)
    other = new_page(LAPTOP)
    signed_in(other, EDITOR)
    page = new_page(viewport)
    size = f"{backend.name}-{viewport['width']}"
    signed_in(page, EDITOR)
    page.locator("header .who").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    expect(page.locator("#sessions tr")).to_have_count(3)  # the header row and two sessions
    expect(page.locator("#sessions")).to_contain_text("this session")
    assert fits_the_width(page)
    page.screenshot(path=str(shots / f"account-{size}.png"), full_page=True)

    page.get_by_label("Current password").fill("not my password at all")
    page.get_by_label("New password (", exact=False).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".flash.error")).to_be_visible()
    page.screenshot(path=str(shots / f"account-error-{size}.png"), full_page=True)

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password (", exact=False).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".flash")).to_contain_text("Password changed")
    expect(page.locator("#sessions tr")).to_have_count(2)  # only this one is left

    other.goto("/admin/prices")
    expect(other.get_by_label("Password")).to_be_visible()  # back at the sign-in page
    sign_in(other, EDITOR, NEW_PASSWORD)
    expect(other.locator("header .who")).to_have_text(f"{EDITOR} (editor)")
