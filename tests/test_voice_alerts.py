"""Voice alerts: producers who chose calls are called with the price instead of (or besides) an
SMS, once per alert, within the call ceilings; the call says the price, "1" again, "2" the other
markets (the menus, at that crop's markets)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from gateway.aggregators.fake_at_voice import FakeVoiceCall
from gateway.data import models
from gateway.outbound import broadcast, budgets, calls
from tests.conftest import NOW
from tests.test_admin import app, browser, clock, staff  # noqa: F401 (fixtures)
from tests.test_voice import Heard
from tests.test_voice_calls import Caller, final, rows, step

pytestmark = pytest.mark.db

MORNING = NOW.replace(hour=9)
SERVICE = "+22320221234"


def ids(db):
    with db.unit_of_work() as session:
        crops = {c.code: c.id for c in session.exec(select(models.Crop)).all()}
        markets = {m.code: m.id for m in session.exec(select(models.Market)).all()}
    return crops, markets


def producer(db, phone, channel, *, crop="tomato", market="sikasso", language="fr"):
    crops, markets = ids(db)
    with db.unit_of_work() as session:
        p = models.Producer(phone=phone, language=language, alert_channel=channel)
        session.add(p)
        session.flush()
        session.add(models.Subscription(producer_id=p.id, crop_id=crops[crop], market_id=markets[market]))


def alert(db, settings, crop="tomato", market="sikasso", now=MORNING):
    crops, markets = ids(db)
    with db.unit_of_work() as session:
        b = broadcast.publish_alerts(session, pairs=[(crops[crop], markets[market])], now=now)
        session.flush()
        b = session.get(models.Broadcast, b.id)
        broadcast.expand(session, b, now=now, catalog=__import__("messages").default_catalog(), settings=settings)
        return b.id


def sms_to(db, phone):
    with db.unit_of_work() as session:
        return session.exec(select(models.SmsMessage).where(models.SmsMessage.phone == phone)).all()


@pytest.mark.parametrize("channel, sms, call", [("sms", True, False), ("voice", False, True), ("both", True, True)])
def test_each_producer_gets_the_alert_the_way_they_chose(db, settings, channel, sms, call):
    producer(db, "+22370100001", channel)
    alert(db, settings)
    assert bool(sms_to(db, "+22370100001")) is sms
    assert bool([r for r in rows(db) if r.purpose == "alert"]) is call


def test_one_call_per_alert_even_if_expanded_twice(db, settings):
    producer(db, "+22370100001", "voice")
    broadcast_id = alert(db, settings)
    with db.unit_of_work() as session:
        b = session.get(models.Broadcast, broadcast_id)
        assert calls.queue_alert(session, broadcast_id=b.id, phone="+22370100001", language="fr",
                                 pairs=b.audience["pairs"], now=MORNING, settings=settings) is False
    assert len(rows(db)) == 1


@pytest.mark.parametrize("per_day, queued", [(2, {"+22370100002"}), (1, {"+22370100002"})])
def test_alerts_queued_in_bulk_once_each_within_each_phones_cap(db, settings, per_day, queued):
    """Two a day allowed: the two phones this alert already calls are refused by the unique
    index, and their day's count goes back; one a day: their count refuses them first."""
    settings = settings.model_copy(update={"voice_alerts_per_phone_per_day": per_day})
    producer(db, "+22370100001", "voice")
    broadcast_id = alert(db, settings)
    with db.unit_of_work() as session:
        assert calls.queue_alert(session, broadcast_id=broadcast_id, phone="+22370100009", language="fr",
                                 pairs=[], now=MORNING, settings=settings)
    wanted = [("+22370100001", "fr", []), ("+22370100009", "bm", []), ("+22370100002", "bm", [[1, 1]])]
    with db.unit_of_work() as session:
        assert calls.queue_alerts(session, broadcast_id=broadcast_id, alerts=wanted, now=MORNING,
                                  settings=settings) == queued
    day = budgets.day_period(MORNING, settings.tz)
    with db.unit_of_work() as session:
        assert [budgets.spent(session, f"val:{p}", day) for p in ("+22370100001", "+22370100009", "+22370100002")] \
            == [1, 1, 1]
    assert sorted(r.phone for r in rows(db)) == ["+22370100001", "+22370100002", "+22370100009"]


def test_when_the_days_voice_alerts_are_spent_the_sms_goes_instead(db, settings):
    settings = settings.model_copy(update={"voice_alerts_per_phone_per_day": 1})
    producer(db, "+22370100001", "voice")
    alert(db, settings)
    alert(db, settings, crop="tomato", market="sikasso", now=MORNING + dt.timedelta(hours=1))
    assert len(rows(db)) == 1 and len(sms_to(db, "+22370100001")) == 1


# Budgets of the day for calls (3 minutes and 180 F reserved a call) → how many of three
# producers who chose calls are called (the others get the SMS).
BUDGETS = [
    pytest.param({}, 0, 3, id="room-for-all"),
    pytest.param({"voice_minutes_per_day": 6}, 0, 2, id="minutes-for-two"),
    pytest.param({"voice_francs_per_day": 400}, 0, 2, id="francs-for-two"),
    pytest.param({"voice_francs_per_day": 0}, 0, 0, id="no-francs"),
    pytest.param({"voice_minutes_per_day": 9}, 1, 2, id="a-waiting-call-back-counts"),
]


@pytest.mark.parametrize("budget, waiting, called", BUDGETS)
def test_voice_alerts_the_days_budgets_cannot_pay_for_go_by_sms(db, settings, budget, waiting, called):
    settings = settings.model_copy(update={"voice_call_minutes_estimate": 3, "voice_price_per_minute": 60.0, **budget})
    phones = [f"+2237010000{n}" for n in range(3)]
    for phone in phones:
        producer(db, phone, "voice")
    for n in range(waiting):
        with db.unit_of_work() as session:
            calls.queue_callback(session, phone=f"+2237020000{n}", now=MORNING, settings=settings)
    alert(db, settings)
    assert len([r for r in rows(db) if r.purpose == "alert"]) == called
    assert sum(bool(sms_to(db, phone)) for phone in phones) == 3 - called


def test_an_answered_alert_settles_its_francs(db, settings):
    settings = settings.model_copy(update={"voice_call_minutes_estimate": 3, "voice_price_per_minute": 60.0})
    producer(db, "+22370100001", "voice")
    alert(db, settings)
    step(db, settings, Caller(), MORNING)
    with db.unit_of_work() as session:
        assert calls.francs_left(session, MORNING, settings) == settings.voice_francs_per_day - 180
    final(db, settings, rows(db)[0], answered=True, duration=75, now=MORNING)  # XOF 75 (the helper's amount)
    with db.unit_of_work() as session:
        assert calls.francs_left(session, MORNING, settings) == settings.voice_francs_per_day - 75
        assert calls.minutes_left(session, MORNING, settings) == settings.voice_minutes_per_day - 2


def test_an_unanswered_voice_alert_is_tried_twice_more(db, settings):
    producer(db, "+22370100001", "voice")
    alert(db, settings)
    caller, now = Caller(), MORNING
    for attempt in range(3):
        assert step(db, settings, caller, now).placed == 1
        final(db, settings, rows(db)[0], answered=False, duration=0, now=now)
        now += dt.timedelta(seconds=settings.voice_retry_after_s + 1)
    assert step(db, settings, caller, now).placed == 0
    assert rows(db)[0].status == "not_answered" and len(caller.called) == 3


@pytest.fixture
def voice_client(settings):
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    gateway_app = create_app(settings, clock=lambda: MORNING)
    with TestClient(gateway_app) as client:
        client.heard = gateway_app.state.prompt_audio = Heard()
        yield client


def test_an_answered_alert_says_the_price_then_1_again_2_other_markets(voice_client, db, settings):
    producer(db, "+22370100001", "voice")
    alert(db, settings)
    step(db, settings, Caller(), MORNING)
    placed = rows(db)[0]
    call = FakeVoiceCall(voice_client, "http://testserver/webhooks/at/voice", placed.phone, SERVICE,
                         direction="outbound", session_id=placed.session_id, client_request_id=placed.client_request_id)
    call.start()
    heard = voice_client.heard.prompts[-1]
    assert "Sugu" in heard and "Tomate" in heard and "Sikasso" in heard and "francs" in heard
    assert call.played and call.played[-1].kind == "wav"
    call.press("1")
    assert "Tomate" in voice_client.heard.prompts[-1]
    call.press("2")
    assert "choisir un marché" in voice_client.heard.prompts[-1]  # the menus, at tomato's markets
    call.press("1")  # all markets
    assert "Tomate" in voice_client.heard.prompts[-1]
    call.hang_up(75)
    row = rows(db)[0]
    assert row.status == "answered" and row.duration_s == 75


@pytest.mark.parametrize("keys, channel, shown", [
    (["4", "5", "2"], "voice", "5. Recevoir par: appel"),
    (["4", "5", "3"], "both", "5. Recevoir par: SMS et appel"),
    (["4", "5", "1"], "sms", "5. Recevoir par: SMS"),
])
def test_a_farmer_chooses_calls_on_ussd(client, db, keys, channel, shown):
    from tests.test_ussd_webhook import Caller, known_caller
    from tests.test_ussd_webhook import producer as stored

    known_caller(db, "fr")
    reply = Caller(client).dial(*keys)
    assert "Choix enregistre." in reply and shown in reply
    assert stored(db).alert_channel == channel


@pytest.mark.parametrize("channel, status", [("voice", 303), ("both", 303), ("sms", 303), ("fax", 400), ("", 400)])
def test_console_sets_the_alert_channel_audited(browser, db, channel, status):  # noqa: F811
    producer(db, "+22370100001", "sms" if channel != "sms" else "voice")
    with db.unit_of_work() as session:
        pid = session.exec(select(models.Producer.id)).one()
    b = browser("editor")
    page = b.get(f"/admin/producers/{pid}")
    assert 'name="alert_channel"' in page.text
    assert b.post(f"/admin/producers/{pid}/alert-channel", {"alert_channel": channel}).status_code == status
    with db.unit_of_work() as session:
        stored = session.get(models.Producer, pid).alert_channel
        audited = session.exec(select(models.AuditLog).where(models.AuditLog.action == "alert_channel")).first()
    assert (stored == channel) is (status == 303) and bool(audited) is (status == 303)


# -- choosing by SMS keyword -----------------------------------------------------------------------


@pytest.mark.parametrize("texts, channel, last", [
    (["APPEL"], "voice", "Vos alertes de prix viendront par appel."),
    (["APPEL", "SMS"], "sms", "Vos alertes de prix viendront par SMS."),
    (["LES DEUX"], "both", "Vos alertes de prix viendront par SMS et par appel."),
    (["LANGUE BM", "wele"], "voice", "I ka sòngò kunnafoniw bèna na wele la."),
])
def test_a_farmer_chooses_calls_by_sms_and_is_always_told(sms_settings, db, fake_at, texts, channel, last):
    """The daily reply limit spent by questions never hides the confirmation of a choice."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from tests.test_sms_webhook import FARMER, sms
    from tests.test_sms_webhook import producer as stored

    settings = sms_settings.model_copy(update={"sms_replies_per_day": 2})
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        for text in ["aide", "aide", "aide", *texts]:  # the third question is over the cap
            assert sms(client, text).status_code == 200
    sent = [text for _, text, _ in fake_at.sent_messages()]
    assert len(sent) == 2 + len(texts) and sent[-1].startswith(last), sent
    assert stored(db, FARMER).alert_channel == channel


# -- the bar: a campaign of voice alerts within the cap, nobody called twice, workers killed --------


class Killed(BaseException):
    """A simulated SIGKILL: nothing catches it and no cleanup of ours runs."""


class Platform:
    """A fake voice platform: records every dial, rings, and answers some time later through
    the final callback (calls.settle), as Africa's Talking would."""

    name = "fake"

    def __init__(self, db, settings):
        self.db, self.settings = db, settings
        self.dialled: list[str] = []
        self.ringing: dict[str, tuple[str, str]] = {}  # request id → (phone, session id)
        self.most_ringing = 0

    def call(self, to, *, client_request_id):
        from gateway.aggregators.calling import CallResult

        self.dialled.append(to)
        self.ringing[client_request_id] = (to, f"ATVId_{client_request_id}")
        self.most_ringing = max(self.most_ringing, len(self.ringing))
        return CallResult(to, f"ATVId_{client_request_id}", "Queued", client_request_id)

    def answer(self, share: float, now):
        from decimal import Decimal

        from gateway.aggregators.calling import OUTBOUND, VoiceCallback

        for request_id in list(self.ringing)[: max(1, int(len(self.ringing) * share))]:
            phone, session_id = self.ringing.pop(request_id)
            call = VoiceCallback(
                session_id=session_id, direction=OUTBOUND, phone=phone, service_number=SERVICE, is_active=False,
                digits=None, recording_url=None, duration_s=40, currency="XOF", amount=Decimal(40),
                call_state="Completed", hangup_cause="NORMAL_CLEARING", client_request_id=request_id, answered=True,
            )
            with self.db.unit_of_work() as session:
                calls.settle(session, call=call, now=now, settings=self.settings)

    def close(self):
        pass


def many_producers(db, n: int, channel: str = "voice") -> list[str]:
    """`n` producers who chose `channel`, subscribed to tomato at Sikasso, inserted in bulk."""
    from sqlalchemy import insert

    crops, markets = ids(db)
    phones = [f"+2237{k:07d}" for k in range(n)]
    stamp = MORNING.astimezone(dt.timezone.utc)
    with db.unit_of_work() as session:
        session.execute(insert(models.Producer.__table__), [
            {"phone": p, "language": "bm" if k % 3 else "fr", "alert_channel": channel, "role": "producer",
             "opted_out": False, "name": "", "village": "", "region": "", "cluster": "", "created_at": stamp,
             "updated_at": stamp} for k, p in enumerate(phones)])
        found = session.exec(select(models.Producer.id).where(models.Producer.phone.in_(phones))).all()
        session.execute(insert(models.Subscription.__table__), [
            {"producer_id": i, "crop_id": crops["tomato"], "market_id": markets["sikasso"], "created_at": stamp}
            for i in found])
    return phones


def live(db) -> int:
    from sqlalchemy import func

    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(models.VoiceCall)
                            .where(models.VoiceCall.status.in_(calls.LIVE))).one()


# Where a worker dies (outbox.checkpoint in calls.step), and the time it happens at.
KILLS = {3: "calls_claimed", 7: "before_dial", 11: "dialed", 15: "dialed"}


def test_bar_voice_alert_campaign_within_the_cap_nobody_called_twice_with_workers_killed(db, settings, monkeypatch):
    """Issue 16's bar at 1,000 alerts (bench/voice_alerts.py runs 10,000 in worker processes):
    worker steps place the calls of one alert while the platform answers; workers die after a
    claim, after marking a call dialing (it never rang: given up, then tried again) and after the
    dial (its final callback settles it). Everyone is called exactly once, and never more calls
    at once than the cap. Racing workers: tests/test_voice_calls.py and tests/test_budgets.py."""
    from gateway.outbound import outbox

    n, cap = 1000, 20
    settings = settings.model_copy(update={
        "voice_concurrent_calls": cap, "voice_minutes_per_day": 10**6, "voice_francs_per_day": 10**8,
        "voice_call_minutes_estimate": 1,
    })
    phones = many_producers(db, n)
    alert(db, settings)
    assert sum(1 for r in rows(db) if r.purpose == "alert" and r.status == "queued") == n
    platform, now, turn, most_live = Platform(db, settings), MORNING, 0, 0

    def checkpoint(point):
        if KILLS.get(turn) == point:
            raise Killed(point)

    monkeypatch.setattr(outbox, "checkpoint", checkpoint)
    while turn < 5 * n:
        turn += 1
        try:
            calls.step(db, lambda: platform, clock=lambda at=now: at, settings=settings)
        except Killed:
            now += calls.LEASE + dt.timedelta(seconds=1)  # the dead worker's lease runs out
        most_live = max(most_live, live(db))
        platform.answer(0.5, now)
        if not platform.ringing and not live(db):
            if all(r.status == "answered" for r in rows(db)):
                break
            now += calls.CALL_GIVE_UP + dt.timedelta(seconds=1)  # a call marked dialing never rang
        now += dt.timedelta(seconds=5)
    assert sorted(platform.dialled) == sorted(phones)  # everyone once: no duplicate, nobody missed
    assert most_live <= cap and platform.most_ringing <= cap
    assert {r.status for r in rows(db)} == {"answered"}


def test_a_worker_counting_calls_while_another_claims_never_passes_the_cap(db, settings):
    """The race the claim's lock closes: worker B counts the calls in progress while A claims,
    then picks its own calls after A committed. Each worker's statements are paused at the right
    points (its engine's events) so that, without the lock, B would place a second cap's worth."""
    import threading

    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    from gateway.core.db import Database

    cap = 5
    settings = settings.model_copy(update={"voice_concurrent_calls": cap, "voice_minutes_per_day": 10**6,
                                           "voice_francs_per_day": 10**8})
    many_producers(db, 20)
    alert(db, settings)
    platform = Platform(db, settings)
    a, b = Database.from_settings(settings), Database.from_settings(settings)
    a_choosing, b_counted, a_committed = threading.Event(), threading.Event(), threading.Event()

    def a_statement(conn, cursor, statement, *args):
        if "ORDER BY voice_call.due_at" in statement:
            a_choosing.set()  # A has counted and is about to choose its calls: B starts
            b_counted.wait(2)  # B counts now (or it waits for A's lock, and this times out)

    def b_statement(conn, cursor, statement, *args):
        if "count(" in statement and "voice_call" in statement:
            b_counted.set()
        if "ORDER BY voice_call.due_at" in statement:
            a_committed.wait(10)

    event.listen(a.engine, "before_cursor_execute", a_statement)
    event.listen(b.engine, "before_cursor_execute", b_statement)
    event.listen(a.engine, "commit", lambda conn: a_committed.set() if platform.dialled else None)

    def worker(database):
        if database is b:
            a_choosing.wait(10)
        try:
            calls.step(database, lambda: platform, clock=lambda: MORNING, settings=settings)
        except OperationalError as exc:  # SQLite: B waited past its busy timeout for A's lock
            if "locked" not in str(exc):
                raise

    threads = [threading.Thread(target=worker, args=(d,)) for d in (a, b)]
    threads[0].start()
    threads[1].start()
    for t in threads:
        t.join(30)
    a.dispose()
    b.dispose()
    assert live(db) == len(platform.dialled) == cap and len(set(platform.dialled)) == cap
