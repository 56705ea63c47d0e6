"""Correcting a wrong price in the console, in headless Chromium: from the price's history to the
correction form, then the correction SMS's preview (count, cost, both languages) and its single
sending. Screenshots at phone (390x844) and laptop (1280x800) width go to a temporary folder."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update
from sqlmodel import select

from gateway.outbound import broadcast
from gateway.data import models
from messages import default_catalog
from tests.conftest import NOW
from tests.e2e.browser import PHONE, expect, signed_in

pytestmark = [pytest.mark.db, pytest.mark.browser]

LAPTOP = {"width": 1280, "height": 800}
TOMATO, SIKASSO = 1, 1


@pytest.fixture
def typo_alerted(db, settings):
    """1,300 F published for a 13,000 F basket, and its alert sent to a French and a Bambara reader."""
    with db.unit_of_work() as session:
        for phone, language in (("+22370000201", "fr"), ("+22370000202", "bm")):
            p = models.Producer(phone=phone, language=language)
            session.add(p)
            session.flush()
            session.add(models.Subscription(producer_id=p.id, crop_id=TOMATO, market_id=SIKASSO))
        typo = models.PriceObservation(crop_id=TOMATO, market_id=SIKASSO, observed_on=NOW.date(), price=1300, unit="basket",
                                       source="console:typo@sugu.test", created_at=NOW)
        session.add(typo)
        session.flush()
        typo_id = typo.id
        broadcast.publish_alerts(session, pairs=[(TOMATO, SIKASSO)], now=NOW)
    broadcast.expand_due(db, now=NOW, catalog=default_catalog(), settings=settings)
    with db.unit_of_work() as session:
        session.exec(update(models.SmsMessage).values(status="sent"))
    return typo_id


def test_correct_a_price_then_send_the_correction_sms_once(new_page, staff, db, typo_alerted, tmp_path):
    page = new_page(LAPTOP)
    signed_in(page)
    page.goto(f"/admin/prices/history?crop={TOMATO}&market={SIKASSO}")
    page.locator("tr", has_text="1,300 F/basket").get_by_role("link", name="correct or withdraw").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("1,300 F/basket")

    form = page.locator("#correct-form")
    form.get_by_label("Right price (FCFA)").fill("13000")
    form.get_by_role("button", name="Correct").click()  # no reason: refused, nothing changed
    expect(page.locator("#reason-error")).to_contain_text("A reason is required")  # beside the field
    expect(page.locator("#status")).to_have_text("published")
    form = page.locator("#correct-form")
    form.get_by_label("Right price (FCFA)").fill("13000")
    form.get_by_label("Why (required)").fill("typo: one zero missing")
    form.get_by_role("button", name="Correct").click()

    expect(page).to_have_url(re.compile(rf"/admin/prices/{typo_alerted}/correction-sms$"))
    expect(page.locator(".flash")).to_contain_text(f"Price #{typo_alerted} corrected")
    expect(page.locator("#sms-count")).to_contain_text("2 producers received this value")
    expect(page.locator("#sms-cost")).to_have_text("20 XOF")
    expect(page.locator(".card", has_text="French ·")).to_contain_text("et non 1")
    expect(page.locator(".card", has_text="Bambara ·")).to_contain_text("latilenni")
    laptop_shot = tmp_path / "correction-sms-1280.png"
    page.screenshot(path=str(laptop_shot), full_page=True)
    phone = new_page(PHONE, storage_state=page.context.storage_state())
    phone.goto(f"/admin/prices/{typo_alerted}/correction-sms")
    expect(phone.locator("#sms-count")).to_be_visible()
    phone_shot = tmp_path / "correction-sms-390.png"
    phone.screenshot(path=str(phone_shot), full_page=True)
    assert laptop_shot.stat().st_size > 10_000 and phone_shot.stat().st_size > 10_000
    # The phone's page is no wider than the phone: nothing to scroll sideways.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_role("button", name="Send the correction to 2 producers").click()
    expect(page.locator(".flash").first).to_contain_text("Correction SMS queued")
    expect(page.locator("#already")).to_contain_text("It is sent once")
    expect(page.get_by_role("button", name=re.compile("Send the correction"))).to_have_count(0)
    # A second tab still showing the button: pressing it sends nothing more.
    phone.get_by_role("button", name="Send the correction to 2 producers").click()
    expect(phone.locator(".flash.error")).to_contain_text("already queued")
    with db.unit_of_work() as session:
        sent = session.exec(select(models.Broadcast).where(models.Broadcast.kind == "correction")).all()
        old = session.get(models.PriceObservation, typo_alerted)
    assert len(sent) == 1 and old.status == "corrected"

    page.goto(f"/admin/prices/history?crop={TOMATO}&market={SIKASSO}")
    expect(page.locator("tr", has_text="replaces").first).to_contain_text("13,000 F/basket")
    expect(page.locator("s", has_text="1,300 F/basket")).to_be_visible()
