"""The broadcaster: alerts combined per producer, audiences, cost controls as tables with an
injected clock, and exactly-once delivery under faults, restarts and concurrent workers."""

from __future__ import annotations

import collections
import datetime as dt
import threading

import pytest
from sqlalchemy import func
from sqlmodel import select

from gateway.outbound import broadcast
from gateway.data import models
from gateway.aggregators.africastalking import AfricasTalkingSender
from gateway.core.db import Database
from messages import default_catalog
from messages.sms import measure
from tests.conftest import NOW
from tests.configured_languages import FULFULDE, SONGHOY, add_languages

pytestmark = pytest.mark.db

CATALOG = default_catalog()
MORNING = NOW.replace(hour=9)


@pytest.fixture
def sender(fake_at):
    s = AfricasTalkingSender(username="sugu", api_key="test-key", base_url=fake_at.url, timeout_s=1.0)
    yield s
    s.close()


@pytest.fixture
def bsettings(settings):
    return settings.model_copy(update={"max_sms_per_producer_per_day": 5})


def ids(db):
    with db.unit_of_work() as session:
        crops = {c.code: c.id for c in session.exec(select(models.Crop))}
        markets = {m.code: m.id for m in session.exec(select(models.Market))}
    return crops, markets


def add_producer(db, phone, *, language="fr", subs=(), opted_out=False, threshold=0, **fields):
    crops, markets = ids(db)
    with db.unit_of_work() as session:
        p = models.Producer(phone=phone, language=language, opted_out=opted_out, **fields)
        session.add(p)
        session.flush()
        for crop, market in subs:
            session.add(models.Subscription(producer_id=p.id, crop_id=crops[crop], market_id=markets[market], threshold_percent=threshold))
    return phone


def publish(db, *pairs, now=MORNING):
    crops, markets = ids(db)
    with db.unit_of_work() as session:
        b = broadcast.publish_alerts(session, pairs=[(crops[c], markets[m]) for c, m in pairs], now=now)
        return b.id


def run_until_idle(db, sender, settings, clock, *, steps=50, advance=dt.timedelta(0)):
    now = clock
    for _ in range(steps):
        result = broadcast.worker_step(db, sender, clock=lambda: now, catalog=CATALOG, settings=settings)
        with db.unit_of_work() as session:
            left = session.exec(
                select(func.count()).select_from(models.SmsMessage).where(models.SmsMessage.status.in_(("queued", "sending")))
            ).one()
            pending = session.exec(select(func.count()).select_from(models.Broadcast).where(models.Broadcast.status == "pending")).one()
        if not left and not pending:
            return now
        now = now + advance
    return now


def rows(db, **where):
    with db.unit_of_work() as session:
        q = select(models.SmsMessage).order_by(models.SmsMessage.id)
        for name, value in where.items():
            q = q.where(getattr(models.SmsMessage, name) == value)
        return session.exec(q).all()


def sent_by_phone(fake_at):
    counts = collections.Counter(number for number, _, _ in fake_at.sent_messages())
    return counts


# -- alerts ---------------------------------------------------------------------------------------


def test_one_alert_per_producer_combining_their_changed_prices(db, sender, fake_at, bsettings):
    add_producer(db, "+22370000001", subs=[("tomato", "sikasso"), ("onion", "sikasso"), ("potato", "mopti")])
    add_producer(db, "+22370000002", language="bm", subs=[("onion", "sikasso")])
    add_producer(db, "+22370000003", subs=[("onion", "sikasso")], opted_out=True)
    add_producer(db, "+22370000004", subs=[("cabbage", "bamako")])  # not published
    publish(db, ("tomato", "sikasso"), ("onion", "sikasso"))
    run_until_idle(db, sender, bsettings, MORNING)
    texts = {number: text for number, text, _ in fake_at.sent_messages()}
    assert set(texts) == {"+22370000001", "+22370000002"}
    assert texts["+22370000001"].startswith("Sugu prix: Tomate Sikasso 28/11: ")
    assert "; Oignon Sikasso 28/11: " in texts["+22370000001"] and "Pomme" not in texts["+22370000001"]
    assert texts["+22370000002"].startswith("Sugu sòngò: Jababa Sikasso 28/11: ")
    assert all(measure(t).segments == 1 and measure(t).encoding == "GSM-7" for t in texts.values())
    (b,) = _broadcasts(db)
    assert (b.status, b.recipients, b.skipped) == ("done", 2, 0)


def test_alert_names_markets_and_units_as_staff_named_them(db, sender, fake_at, bsettings):
    """Finding: alerts used the French market name and the catalog's unit names, so a Bambara
    market name or a unit renamed in the console never reached the alert farmers get."""
    with db.unit_of_work() as session:
        market = session.exec(select(models.Market).where(models.Market.code == "sikasso")).one()
        market.name_bm = "Sikaso-dugu"
        unit = session.exec(select(models.Unit).where(models.Unit.code == "basket")).one()
        unit.name_fr, unit.name_bm = "corbeille", "panye-ba"
    add_producer(db, "+22370000001", subs=[("tomato", "sikasso")])
    add_producer(db, "+22370000002", language="bm", subs=[("tomato", "sikasso")])
    publish(db, ("tomato", "sikasso"))
    run_until_idle(db, sender, bsettings, MORNING)
    texts = {number: text for number, text, _ in fake_at.sent_messages()}
    assert "Tomate Sikasso 28/11: " in texts["+22370000001"] and "F/corbeille" in texts["+22370000001"]
    assert "Sikaso-dugu 28/11: " in texts["+22370000002"] and "F/panye-ba" in texts["+22370000002"]


def test_alert_too_long_for_one_sms_is_split_in_parts(db, sender, fake_at, bsettings):
    subs = [(c, "sikasso") for c in ("tomato", "onion", "shallot", "cabbage", "potato", "okra", "chili")]
    add_producer(db, "+22370000001", subs=subs)
    publish(db, *subs)
    run_until_idle(db, sender, bsettings, MORNING)
    texts = [text for _, text, _ in fake_at.sent_messages()]
    assert len(texts) >= 2 and all(measure(t).segments == 1 for t in texts)
    assert sum(t.count("Sikasso") for t in texts) == 7


@pytest.mark.parametrize(
    "threshold, alerted",
    [pytest.param(0, True, id="always"), pytest.param(1, True, id="moved-enough"), pytest.param(90, False, id="moved-too-little")],
)
def test_subscriber_threshold(db, sender, fake_at, bsettings, threshold, alerted):
    add_producer(db, "+22370000001", subs=[("tomato", "sikasso")], threshold=threshold)
    publish(db, ("tomato", "sikasso"))
    run_until_idle(db, sender, bsettings, MORNING)
    assert bool(fake_at.sent_messages()) is alerted


def test_published_enumerator_report_triggers_alerts(sms_client, db, fake_at):
    add_producer(db, "+22376555444", role="enumerator")
    add_producer(db, "+22370000001", subs=[("tomato", "sikasso")])
    sms_client.post("/webhooks/at/sms", data={"id": "r1", "from": "+22376555444", "text": "P TOMATE SIKASSO 14000"})
    sms_client.post("/webhooks/at/sms", data={"id": "r2", "from": "+22376555444", "text": "P TOMATE SIKASSO 99000"})
    (b,) = _broadcasts(db)  # the held outlier publishes nothing
    assert b.kind == "alert" and b.status == "pending"


def _broadcasts(db):
    with db.unit_of_work() as session:
        return session.exec(select(models.Broadcast).order_by(models.Broadcast.id)).all()


# -- staff broadcasts: audience and preview --------------------------------------------------------


@pytest.fixture
def population(db):
    add_producer(db, "+22370000001", region="Sikasso", cluster="Kignan", subs=[("tomato", "sikasso")])
    add_producer(db, "+22370000002", language="bm", region="Sikasso", cluster="Zanzoni", subs=[("onion", "koutiala")])
    add_producer(db, "+22370000003", language="bm", region="Mopti", cluster="Bandiagara-Nord", subs=[("shallot", "bandiagara")])
    add_producer(db, "+22370000004", language=None, region="Tombouctou")
    add_producer(db, "+22370000005", region="Sikasso", opted_out=True, subs=[("tomato", "sikasso")])
    return db


@pytest.mark.parametrize(
    "audience, expected",
    [
        pytest.param({}, {"01", "02", "03", "04"}, id="everyone-not-opted-out"),
        pytest.param({"regions": ["Sikasso"]}, {"01", "02"}, id="region"),
        pytest.param({"clusters": ["Kignan", "Bandiagara-Nord"]}, {"01", "03"}, id="clusters"),
        pytest.param({"languages": ["bm"]}, {"02", "03"}, id="bambara"),
        pytest.param({"languages": ["fr"]}, {"01", "04"}, id="french-includes-undecided"),
        pytest.param({"crops": ["tomato"]}, {"01"}, id="crop-subscription"),
        pytest.param({"markets": ["koutiala", "bandiagara"]}, {"02", "03"}, id="market-subscription"),
        pytest.param({"regions": ["Sikasso"], "languages": ["bm"]}, {"02"}, id="all-filters-must-match"),
        pytest.param({"regions": ["Kayes"]}, set(), id="nobody"),
    ],
)
def test_audience(population, audience, expected):
    crops, markets = ids(population)
    audience = dict(audience)
    audience["crops"] = [crops[c] for c in audience.get("crops", [])]
    audience["markets"] = [markets[m] for m in audience.get("markets", [])]
    with population.unit_of_work() as session:
        found = session.exec(broadcast.audience_query(broadcast.Audience.from_dict(audience))).all()
    assert {phone[-2:] for _, phone, _ in found} == expected


def test_preview_per_language_with_cost(population, settings):
    with population.unit_of_work() as session:
        previews = broadcast.preview(
            session,
            text_fr="Réunion du groupement jeudi à 9h. Apportez vos caisses « propres ».",
            text_bm="Jɛkulu ka ɲɔgɔn sɔrɔ ye alamisa ye, sɔgɔma 9h.",
            audience=broadcast.Audience(),
            settings=settings,
        )
    fr, bm = previews
    assert (fr.language, fr.recipients, fr.encoding, fr.segments) == ("fr", 2, "GSM-7", 1)
    assert '" propres "' in fr.text
    assert (bm.language, bm.recipients, bm.encoding, bm.segments) == ("bm", 2, "GSM-7", 1)
    assert bm.text.startswith("Jèkulu ka nyògòn")
    assert fr.estimated_cost == 20.0


# Languages staff added (console → Languages): a voice-only one, a disabled one, and Bambara
# switched off. SMS are not written in them: their farmers read the French text, and are counted
# with it, whatever the filter.
@pytest.mark.parametrize("bm_enabled, languages, french, bambara, texts", [
    pytest.param(True, [], (4, {"fr": 2, "ff": 1, "ses": 1}), (2, {"bm": 2}),
                 {"01": "Bonjour", "02": "I ni ce", "03": "I ni ce", "04": "Bonjour", "06": "Bonjour", "07": "Bonjour"},
                 id="everyone"),
    pytest.param(True, ["ff"], (1, {"ff": 1}), (0, {}), {"06": "Bonjour"}, id="filter-voice-only"),
    pytest.param(True, ["ses"], (1, {"ses": 1}), (0, {}), {"07": "Bonjour"}, id="filter-disabled"),
    pytest.param(True, ["fr"], (2, {"fr": 2}), (0, {}), {"01": "Bonjour", "04": "Bonjour"}, id="filter-french"),
    pytest.param(False, ["bm"], (2, {"bm": 2}), (0, {}), {"02": "Bonjour", "03": "Bonjour"}, id="bambara-switched-off"),
])
def test_a_language_sms_are_not_written_in_reads_the_french_text(population, sender, fake_at, bsettings,
                                                                bm_enabled, languages, french, bambara, texts):
    add_languages(population, FULFULDE, SONGHOY)
    add_producer(population, "+22370000006", language="ff")
    add_producer(population, "+22370000007", language="ses")
    with population.unit_of_work() as session:
        session.get(models.Language, "bm").enabled = bm_enabled
        audience = broadcast.Audience(languages=languages)
        fr, bm = broadcast.preview(session, text_fr="Bonjour", text_bm="I ni ce", audience=audience, settings=bsettings)
        broadcast.create_broadcast(session, text_fr="Bonjour", text_bm="I ni ce", audience=audience, now=MORNING)
    assert ((fr.recipients, fr.speakers), (bm.recipients, bm.speakers)) == (french, bambara)
    assert fr.estimated_cost == french[0] * 10.0
    run_until_idle(population, sender, bsettings, MORNING)
    assert {phone[-2:]: text for phone, text, _ in fake_at.sent_messages()} == texts


def test_scheduled_broadcast_waits_for_its_time(population, sender, fake_at, bsettings):
    with population.unit_of_work() as session:
        broadcast.create_broadcast(
            session, text_fr="Bonjour", text_bm="I ni ce", audience=broadcast.Audience(regions=["Sikasso"]),
            now=MORNING, scheduled_at=MORNING + dt.timedelta(hours=2),
        )
    broadcast.worker_step(population, sender, clock=lambda: MORNING, catalog=CATALOG, settings=bsettings)
    assert fake_at.sent_messages() == []
    run_until_idle(population, sender, bsettings, MORNING + dt.timedelta(hours=2))
    assert sorted(text for _, text, _ in fake_at.sent_messages()) == ["Bonjour", "I ni ce"]


def test_progress_counts_and_cost(population, sender, fake_at, bsettings):
    with population.unit_of_work() as session:
        b = broadcast.create_broadcast(session, text_fr="Bonjour", text_bm="I ni ce", audience=broadcast.Audience(), now=MORNING)
    fake_at.configure(statuses={"+22370000003": 403})
    run_until_idle(population, sender, bsettings, MORNING)
    with population.unit_of_work() as session:
        progress = broadcast.stats(session, b.id)
    assert progress["counts"] == {"sent": 3, "failed": 1}
    assert (progress["total"], progress["finished"], progress["cost"]) == (4, 4, 30.0)


# -- cost controls ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hour, minute, sends",
    [
        pytest.param(19, 59, True, id="19:59"),
        pytest.param(20, 0, False, id="20:00-quiet"),
        pytest.param(23, 30, False, id="night"),
        pytest.param(6, 59, False, id="06:59-quiet"),
        pytest.param(7, 0, True, id="07:00"),
        pytest.param(12, 0, True, id="noon"),
    ],
)
def test_quiet_hours(population, sender, fake_at, bsettings, hour, minute, sends):
    clock = NOW.replace(hour=hour, minute=minute)
    publish(population, ("tomato", "sikasso"), now=clock)
    result = broadcast.worker_step(population, sender, clock=lambda: clock, catalog=CATALOG, settings=bsettings)
    assert result.quiet is not sends
    assert bool(fake_at.sent_messages()) is sends
    if not sends:
        assert [r.status for r in rows(population)] == ["queued"]  # waits for the morning


def test_replies_are_not_held_by_quiet_hours(db, sender, fake_at, bsettings):
    from gateway.outbound.outbox import queue_sms

    night = NOW.replace(hour=23)
    with db.unit_of_work() as session:
        queue_sms(session, phone="+22370000001", text="Réponse", language="fr", kind="reply", now=night)
    broadcast.worker_step(db, sender, clock=lambda: night, catalog=CATALOG, settings=bsettings)
    assert len(fake_at.sent_messages()) == 1


def test_the_same_alert_twice_in_a_day_is_sent_once(population, sender, fake_at, bsettings):
    """A price published again unchanged (a re-import, a second batch) alerts nobody twice."""
    publish(population, ("tomato", "sikasso"))
    run_until_idle(population, sender, bsettings, MORNING)
    second = publish(population, ("tomato", "sikasso"), ("onion", "koutiala"))
    run_until_idle(population, sender, bsettings, MORNING + dt.timedelta(hours=2))
    assert sent_by_phone(fake_at) == {"+22370000001": 1, "+22370000002": 1}
    repeat = rows(population, broadcast_id=second, phone="+22370000001")
    assert [(r.status, r.failure_reason) for r in repeat] == [("skipped", "already_sent")]
    # The next day it is news again.
    third = publish(population, ("tomato", "sikasso"), now=MORNING + dt.timedelta(days=1))
    run_until_idle(population, sender, bsettings, MORNING + dt.timedelta(days=1))
    assert [r.status for r in rows(population, broadcast_id=third)] == ["sent"]


def test_a_slow_sender_is_handed_fewer_rows_per_step(db, sender, fake_at, bsettings):
    """One request per number (Orange): a step claims at most the sender's max_claim rows."""

    class OneByOne:
        name, max_claim = "slow", 3

        def send(self, text, recipients):
            return sender.send(text, recipients)

    for n in range(10, 18):
        add_producer(db, f"+223700000{n}", region="Sikasso", subs=[("tomato", "sikasso")])
    population = db
    publish(population, ("tomato", "sikasso"))
    result = broadcast.worker_step(population, OneByOne(), clock=lambda: MORNING, catalog=CATALOG, settings=bsettings)
    expanded = len(rows(population))  # the step expanded the broadcast, then claimed
    assert expanded > 3 and result.claimed == 3
    assert len(rows(population, status="queued")) == expanded - 3


@pytest.mark.parametrize(
    "hour, budget, sends",
    [
        pytest.param(23, 100, False, id="night-held"),
        pytest.param(10, 100, True, id="day-sent"),
        pytest.param(10, 0, True, id="outside-the-bulk-budget"),
    ],
)
def test_notices_wait_for_the_day_but_not_for_the_bulk_budget(db, sender, fake_at, bsettings, hour, budget, sends):
    from gateway.outbound.outbox import queue_sms

    when = NOW.replace(hour=hour)
    settings = bsettings.model_copy(update={"daily_sms_budget": budget})
    with db.unit_of_work() as session:
        queue_sms(session, phone="+22370000001", text="Votre offre est acceptée", language="fr", kind="notice", now=when)
    broadcast.worker_step(db, sender, clock=lambda: when, catalog=CATALOG, settings=settings)
    assert len(fake_at.sent_messages()) == (1 if sends else 0)


@pytest.mark.parametrize(
    "budget, segments_budget, sent_today",
    [
        pytest.param(3, 100, 3, id="message-budget"),
        pytest.param(100, 2, 2, id="segment-budget"),
        pytest.param(0, 100, 0, id="no-budget"),
    ],
)
def test_daily_budget_pauses_until_tomorrow(db, sender, fake_at, bsettings, budget, segments_budget, sent_today):
    for n in range(5):
        add_producer(db, f"+2237000010{n}", subs=[("tomato", "sikasso")])
    publish(db, ("tomato", "sikasso"))
    settings = bsettings.model_copy(update={"daily_sms_budget": budget, "daily_segment_budget": segments_budget})
    run_until_idle(db, sender, settings, MORNING, steps=5)
    assert len(fake_at.sent_messages()) == sent_today
    result = broadcast.worker_step(db, sender, clock=lambda: MORNING, catalog=CATALOG, settings=settings)
    assert result.budget_exhausted
    run_until_idle(db, sender, settings, MORNING + dt.timedelta(days=1), steps=5)
    assert len(fake_at.sent_messages()) == min(5, sent_today + min(budget, segments_budget))


def test_cap_per_producer_per_day(db, sender, fake_at, settings):
    capped = settings.model_copy(update={"max_sms_per_producer_per_day": 1})
    add_producer(db, "+22370000001", subs=[("tomato", "sikasso"), ("onion", "mopti")])
    publish(db, ("tomato", "sikasso"))
    run_until_idle(db, sender, capped, MORNING)
    publish(db, ("onion", "mopti"), now=MORNING + dt.timedelta(hours=1))
    run_until_idle(db, sender, capped, MORNING + dt.timedelta(hours=1))
    assert len(fake_at.sent_messages()) == 1
    assert [(r.status, r.failure_reason) for r in rows(db)] == [("sent", ""), ("skipped", "daily_cap")]
    publish(db, ("onion", "mopti"), now=MORNING + dt.timedelta(days=1))
    run_until_idle(db, sender, capped, MORNING + dt.timedelta(days=1))
    assert len(fake_at.sent_messages()) == 2  # a new day


def test_opted_out_after_expansion_receives_nothing(db, sender, fake_at, bsettings):
    add_producer(db, "+22370000001", subs=[("tomato", "sikasso")])
    add_producer(db, "+22370000002", subs=[("tomato", "sikasso")])
    publish(db, ("tomato", "sikasso"))
    broadcast.expand_due(db, now=MORNING, catalog=CATALOG, settings=bsettings)
    with db.unit_of_work() as session:
        p = session.exec(select(models.Producer).where(models.Producer.phone == "+22370000002")).one()
        p.opted_out = True
        session.add(p)
    run_until_idle(db, sender, bsettings, MORNING)
    assert [n for n, _, _ in fake_at.sent_messages()] == ["+22370000001"]
    assert [(r.phone, r.status, r.failure_reason) for r in rows(db)][1] == ("+22370000002", "skipped", "opted_out")


# -- exactly once ------------------------------------------------------------------------------------


def many_producers(db, n, *, prefix="+223701", mixed=True):
    crops, markets = ids(db)
    with db.unit_of_work() as session:
        producers = [
            models.Producer(phone=f"{prefix}{i:05d}", language="bm" if mixed and i % 3 == 0 else "fr") for i in range(n)
        ]
        session.add_all(producers)
        session.flush()
        session.add_all(
            models.Subscription(producer_id=p.id, crop_id=crops["tomato"], market_id=markets["sikasso"]) for p in producers
        )
    return [f"{prefix}{i:05d}" for i in range(n)]


def assert_each_once_or_reason(db, fake_at, phones):
    counts = sent_by_phone(fake_at)
    assert max(counts.values(), default=0) <= 1, "a recipient got two copies"
    by_phone = {r.phone: r for r in rows(db)}
    assert set(by_phone) == set(phones)
    for phone in phones:
        row = by_phone[phone]
        if row.status == "sent":
            assert counts[phone] == 1 and row.provider_message_id
        else:
            assert row.status in ("failed", "unconfirmed") and (row.failure_reason or row.error_kind), row


def test_exactly_once_with_failures_throttling_and_timeouts(db, sender, fake_at, bsettings):
    phones = many_producers(db, 300)
    publish(db, ("tomato", "sikasso"))
    fake_at.configure(fail_rate=0.3, seed=7, fail_next=[429, 503, 500], statuses={phones[5]: 403, phones[6]: 500})
    settings = bsettings.model_copy(update={"worker_batch_size": 40})
    # Also one request that times out after reaching the aggregator.
    fake_at.configure(hang_next=0)
    state = {"hung": False}

    def clock_advance(now):
        return now

    now = MORNING
    for step in range(200):
        if step == 3 and not state["hung"]:
            fake_at.configure(hang_next=1, hang_s=3)
            state["hung"] = True
        broadcast.worker_step(db, sender, clock=lambda: now, catalog=CATALOG, settings=settings)
        if not rows(db, status="queued") and not rows(db, status="sending"):
            break
        now += dt.timedelta(minutes=20)  # past every backoff
    assert_each_once_or_reason(db, fake_at, phones)
    statuses = collections.Counter(r.status for r in rows(db))
    assert statuses["unconfirmed"] >= 1 and statuses["failed"] >= 1 and statuses["sent"] > 250


class DiesAfterSending:
    """A worker killed right after its request reached the aggregator, before recording it."""

    name = "africastalking"

    def __init__(self, real, after: int):
        self.real, self.after, self.calls = real, after, 0

    def send(self, text, recipients):
        self.calls += 1
        result = self.real.send(text, recipients)
        if self.calls > self.after:
            raise SystemExit("killed")
        return result


def test_worker_killed_mid_run_and_restarted_never_sends_twice(db, sender, fake_at, bsettings):
    phones = many_producers(db, 120, mixed=False)  # one text: one request per batch
    publish(db, ("tomato", "sikasso"))
    settings = bsettings.model_copy(update={"worker_batch_size": 30})
    dying = DiesAfterSending(sender, after=1)
    broadcast.worker_step(db, dying, clock=lambda: MORNING, catalog=CATALOG, settings=settings)
    with pytest.raises(SystemExit):
        broadcast.worker_step(db, dying, clock=lambda: MORNING, catalog=CATALOG, settings=settings)
    assert len(rows(db, status="sending")) == 30  # the killed batch: sent but not recorded
    # Restarted later: sends the rest; the killed batch is unconfirmed, not sent again.
    run_until_idle(db, sender, settings, MORNING + dt.timedelta(minutes=10))
    assert_each_once_or_reason(db, fake_at, phones)
    assert len(rows(db, status="unconfirmed")) == 30 and len(rows(db, status="sent")) == 90
    assert len(fake_at.sent_messages()) == 120


def test_two_workers_share_the_work_without_duplicates(settings, db, fake_at, bsettings):
    phones = many_producers(db, 1500)
    publish(db, ("tomato", "sikasso"))
    settings = bsettings.model_copy(update={"worker_batch_size": 100})
    errors = []

    def worker():
        own_db = Database.from_settings(settings)
        own_sender = AfricasTalkingSender(username="sugu", api_key="test-key", base_url=fake_at.url)
        try:
            for _ in range(60):
                result = broadcast.worker_step(own_db, own_sender, clock=lambda: MORNING, catalog=CATALOG, settings=settings)
                if not result.claimed and not rows(own_db, status="queued"):
                    break
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own_sender.close()
            own_db.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert_each_once_or_reason(db, fake_at, phones)
    assert len(fake_at.sent_messages()) == 1500
    # Bulk: one request per distinct text and batch, not one per recipient.
    assert len(fake_at.requests()) <= 1500 / 50


def test_throttling_slows_the_worker(db, sender, fake_at, bsettings):
    many_producers(db, 10)
    publish(db, ("tomato", "sikasso"))
    fake_at.configure(fail_next=[429, 429])
    result = broadcast.worker_step(db, sender, clock=lambda: MORNING, catalog=CATALOG, settings=bsettings)
    assert result.pause_s >= 1.0
    assert {r.status for r in rows(db)} == {"queued"}
    assert all(r.next_attempt_at is not None for r in rows(db))


def test_same_phone_and_text_twice_go_in_separate_requests(db, sender, fake_at, bsettings):
    """Two broadcasts can give one phone the same text; one request per phone keeps each row's
    own message id (the soak found them sharing one)."""
    add_producer(db, "+22370000001", subs=[("tomato", "sikasso")])
    for _ in range(2):  # staff repeat a message (alerts are never repeated: see above)
        with db.unit_of_work() as session:
            broadcast.create_broadcast(session, text_fr="Réunion jeudi", text_bm="", audience=broadcast.Audience(), now=MORNING)
    broadcast.expand_due(db, now=MORNING, catalog=CATALOG, settings=bsettings)
    run_until_idle(db, sender, bsettings, MORNING)
    sent = rows(db)
    assert len(sent) == 2 and sent[0].text == sent[1].text
    assert len({r.provider_message_id for r in sent}) == 2
    assert len(fake_at.requests()) == 2


@pytest.mark.parametrize("n, duplicates, expected", [(5, 0, [5]), (1200, 0, [1000, 200]), (3, 2, [3, 2])])
def test_request_batches(n, duplicates, expected):
    from gateway.outbound.outbox import request_batches

    group = [models.SmsMessage(id=i, phone=f"+2237000{i:04d}", text="x", kind="alert", encoding="GSM-7", segments=1) for i in range(n)]
    group += [models.SmsMessage(id=n + i, phone=group[i].phone, text="x", kind="alert", encoding="GSM-7", segments=1) for i in range(duplicates)]
    batches = request_batches(group)
    assert [len(b) for b in batches] == expected
    assert all(len({r.phone for r in b}) == len(b) for b in batches)


# -- budgets across workers (issue 14) -----------------------------------------------------------


def test_finding_5_daily_budget_is_shared_by_five_workers(settings, db, fake_at, bsettings):
    """With 50 left of today's budget, five workers started at once send 50 between them, not
    50 each: the budget is reserved in the database under a lock, at claim."""
    from gateway.outbound import budgets

    phones = many_producers(db, 400)
    publish(db, ("tomato", "sikasso"))
    broadcast.expand_due(db, now=MORNING, catalog=CATALOG, settings=bsettings)
    settings = bsettings.model_copy(update={"daily_sms_budget": 60, "worker_batch_size": 100})
    with db.unit_of_work() as session:  # ten already spent today
        budgets.reserve(session, broadcast.BUDGET_MESSAGES, budgets.day_period(MORNING, settings.tz), 10, 60, now=MORNING)
    start, errors = threading.Barrier(5), []

    def worker(n):
        own_db = Database.from_settings(settings)
        own_sender = AfricasTalkingSender(username="sugu", api_key="test-key", base_url=fake_at.url)
        try:
            start.wait()
            for _ in range(10):
                if not broadcast.worker_step(own_db, own_sender, clock=lambda: MORNING, catalog=CATALOG, settings=settings).claimed:
                    break
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own_sender.close()
            own_db.dispose()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(fake_at.sent_messages()) == 50
    assert len(rows(db, status="sent")) == 50 and len(rows(db, status="queued")) == len(phones) - 50
    with db.unit_of_work() as session:
        assert budgets.spent(session, broadcast.BUDGET_MESSAGES, budgets.day_period(MORNING, settings.tz)) == 60


def test_unsent_rows_give_their_budget_back(db, sender, fake_at, bsettings):
    """Throttled, or failed before the request left: back to the queue, and to the budget."""
    from gateway.outbound import budgets

    many_producers(db, 10, mixed=False)
    publish(db, ("tomato", "sikasso"))
    fake_at.configure(fail_next=[429])
    broadcast.worker_step(db, sender, clock=lambda: MORNING, catalog=CATALOG, settings=bsettings)
    with db.unit_of_work() as session:
        assert budgets.spent(session, broadcast.BUDGET_MESSAGES, budgets.day_period(MORNING, bsettings.tz)) == 0
    run_until_idle(db, sender, bsettings, MORNING + dt.timedelta(minutes=5))
    with db.unit_of_work() as session:
        assert budgets.spent(session, broadcast.BUDGET_MESSAGES, budgets.day_period(MORNING, bsettings.tz)) == 10


def test_finding_9_approval_threshold_rechecked_when_the_audience_grew(db, sender, fake_at, bsettings):
    """Created for one recipient (under the threshold), the audience then grown by an import:
    the worker does not send it unapproved; it waits, saying why, until another staff member
    approves it."""
    settings = bsettings.model_copy(update={"broadcast_approval_threshold": 5})
    add_producer(db, "+22370009999", region="Kayes")
    with db.unit_of_work() as session:
        created = broadcast.create_broadcast(session, text_fr="Réunion", text_bm="", now=MORNING, created_by="editor@sugu.ml",
                                             audience=broadcast.Audience(regions=["Kayes"]))
        broadcast_id = created.id
    with db.unit_of_work() as session:  # what a producers' CSV import adds
        session.add_all(models.Producer(phone=f"+2237001{i:04d}", region="Kayes") for i in range(20))
    run_until_idle(db, sender, settings, MORNING)
    with db.unit_of_work() as session:
        held = session.get(models.Broadcast, broadcast_id)
    assert (held.status, held.recipients) == ("awaiting_approval", 21)
    assert "21 recipients" in held.hold_reason and "threshold of 5" in held.hold_reason
    assert fake_at.sent_messages() == [] and rows(db, broadcast_id=broadcast_id) == []
    with db.unit_of_work() as session:
        held = session.get(models.Broadcast, broadcast_id)
        held.status, held.approved_by = "pending", "admin@sugu.ml"  # what the console's approval does
        session.add(held)
    run_until_idle(db, sender, settings, MORNING)
    assert len(fake_at.sent_messages()) == 21
