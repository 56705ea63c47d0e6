"""The console's price import in a real headless Chromium: from the prices page, upload a WFP/HDX
file, read the dry-run report (refused rows, unknown names, what would be created), check again
with "create what is missing", confirm, and read what was done. Same harness as
test_console_browser.py (Debian's chromium, the real app under uvicorn, each backend)."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

from gateway.data import models
from tests.e2e.browser import expect, signed_in

pytestmark = [pytest.mark.db, pytest.mark.browser]

HDX = "\n".join([
    "date,admin1,admin2,market,market_id,latitude,longitude,category,commodity,commodity_id,unit,priceflag,"
    "pricetype,currency,price,usdprice",
    "#date,#adm1+name,#adm2+name,#loc+market+name,#loc+market+code,#geo+lat,#geo+lon,#item+type,#item+name,"
    "#item+code,#item+unit,#item+prices+flag,#item+price+type,#currency+code,#value,#value+usd",
    "2020-04-15,Borgou,Parakou,Parakou,1,9.35,2.6,vegetables and fruits,Onions,1,KG,actual,Retail,XOF,853.75,1.4",
    "2020-05-15,Borgou,Parakou,Parakou,1,9.35,2.6,vegetables and fruits,Onions,1,KG,actual,Retail,XOF,862.5,1.4",
    "2020-06-15,Borgou,Parakou,Parakou,1,9.35,2.6,vegetables and fruits,Onions,1,KG,actual,Retail,XOF,0,0",
    "2020-06-15,Sikasso,Sikasso,Sikasso,2,11.3,-5.7,vegetables and fruits,Onions,1,KG,actual,Retail,GHS,9,0.7",
]) + "\n"


def count(db, *where) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(models.PriceObservation).where(*where)).one()


def test_upload_check_and_confirm_a_price_file(page, staff, db, tmp_path):  # noqa: F811
    path = tmp_path / "wfp-borgou.csv"
    path.write_text(HDX, "utf-8")
    before = count(db)
    signed_in(page)
    page.goto("/admin/prices")
    page.get_by_role("link", name="Import prices from a CSV file").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import prices")

    # First check: an unknown market and a foreign currency hold the file back.
    page.get_by_label("Price file").set_input_files(str(path))
    page.get_by_role("button", name="Check the file").click()
    report = page.locator("#import-report")
    expect(report).to_contain_text("4 rows read: 0 ok, 3 refused, 1 with a price of 0 skipped")
    expect(page.locator("#unknown-names")).to_contain_text("Parakou")
    expect(page.locator("#unknown-names")).to_contain_text("2")  # rows held back
    expect(page.locator("#refused-rows")).to_contain_text('currency "GHS" refused')
    expect(page.locator("#cannot-import")).to_be_visible()

    # Again, creating what is missing and converting cedis: all rows pass, nothing written yet.
    page.get_by_label("Price file").set_input_files(str(path))
    page.get_by_label("create what is missing").check()
    page.get_by_label("Exchange rates").fill("GHS=98.5")
    page.get_by_role("button", name="Check the file").click()
    expect(report).to_contain_text("3 ok")
    expect(page.locator("#import-outcome")).to_have_text("3 prices would be imported, 0 already present")
    expect(page.locator("#import-created")).to_contain_text("Would create: 1 region, 1 market")
    expect(page.locator("#import-created")).to_contain_text("Parakou (Borgou)")
    assert count(db) == before

    page.get_by_role("button", name="Import 3 prices").click()
    expect(page.locator("#import-outcome")).to_have_text("3 prices imported, 0 already present")
    expect(page.locator("#import-created")).to_contain_text("Created: 1 region, 1 market")
    assert count(db) == before + 3
    assert count(db, models.PriceObservation.price.in_([854, 863, 887])) == 3  # 853.75, 862.5, 9 GHS × 98.5
