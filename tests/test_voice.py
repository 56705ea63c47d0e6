"""The voice channel end to end: the fake Africa's Talking Voice places the call and presses keys,
the gateway answers with the menus spoken, and every prompt it plays is fetched and checked to be
real audio. Every USSD journey has a voice twin here, driven by the same table."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

import pytest
from pydantic import SecretStr
from sqlmodel import col, select

from gateway.aggregators.fake_at_voice import FakeVoiceCall
from gateway.data import models
from gateway.voice.prompts import PromptAudio
from menus import types as m
from menus.screen import Text
from menus.voice import DataNames, VoiceRenderer, inventory
from messages import default_catalog
from messages.voice import audio
from tests.conftest import NOW
from tests.test_ussd_webhook import JOURNEYS, known_caller

pytestmark = pytest.mark.db

PHONE = "+22370123456"
SERVICE = "+22320221234"
_ids = itertools.count(1)


class Heard(PromptAudio):
    """The prompts' audio as usual, and the words (and clip ids) of each prompt kept for the
    assertions."""

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[str] = []
        self.clip_ids: list[list[str]] = []

    def playlist(self, session, clips, fallbacks=None):
        self.prompts.append(" ".join(c.text for c in clips))
        self.clip_ids.append([c.id for c in clips])
        return super().playlist(session, clips, fallbacks)


@pytest.fixture
def voice_settings(settings):
    return settings.model_copy(update={"voice_inbound": "answer"})


@pytest.fixture
def voice(voice_settings):
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    app = create_app(voice_settings, clock=lambda: NOW)
    heard = Heard()
    with TestClient(app) as client:
        app.state.prompt_audio = heard
        client.heard = heard
        yield client


def dial(client, phone=PHONE, **kw) -> FakeVoiceCall:
    call = FakeVoiceCall(client, "http://testserver/webhooks/at/voice", phone, SERVICE,
                         session_id=f"ATVId_{next(_ids)}", **kw)
    call.start()
    return call


def press_like_ussd(call: FakeVoiceCall, value: str) -> None:
    """One USSD input as a voice caller keys it: a quantity typed and ended by #; an option past the
    fifth behind 9 ("more"), as many times as needed. USSD's "next page" (98) has no voice twin:
    a prompt says the whole screen."""
    if value == "98":
        return
    if call.waiting_for.finish_on_key == "#":
        call.press(value + "#")
        return
    number = int(value)
    for _ in range((number - 1) // 5):
        call.press("9")
    call.press(str((number - 1) % 5 + 1))


# The words a voice twin must hear at the end of its journey: names and facts of the same data.
SPOKEN = {
    "first-dial": ["Français", "Bamanankan"],
    "first-dial-bambara": ["Sugu sɔngɔw"],
    "first-dial-prices": ["Tomate"],
    "markets": ["Tous les marchés", "Bamako"],
    "price": ["Tomate", "Sikasso", "panier", "novembre"],
    "stale-market": ["Tomate", "Diré", "octobre"],
    "all-markets": ["Oignon", "Bamako"],
    "bm-price": ["Jababa", "Sikasso"],
    "trend": ["Oignon", "Sikasso"],
    "trend-forecast": ["Oignon", "Sikasso"],
    "bm-trend": ["Jababa", "Sikasso"],
    "best-markets": ["Oignon", "meilleurs prix"],
    "services": ["Services", "Microfinance"],
    "service-entry": ["SMS"],
    "demands": ["Madougou Agro-Business", "Chou"],
    "tips": ["Tomate"],
    "bm-tips": ["Tamati"],
    "no-alerts": ["Aucun abonnement"],
    "invalid": [],
    "offer-ends-session": ["500"],
}


@pytest.mark.parametrize("language, inputs, fragments", JOURNEYS)
def test_every_ussd_journey_has_a_voice_twin(voice, db, request, language, inputs, fragments):
    journey = next(j for j in sorted(SPOKEN, key=len, reverse=True) if request.node.callspec.id.endswith(j))
    if language:
        known_caller(db, language)
    call = dial(voice)
    for value in inputs:
        if call.state == "ended":
            break
        press_like_ussd(call, value)
    heard = voice.heard.prompts[-1]
    for words in SPOKEN[journey]:
        if words.isdigit():
            continue  # a number is said in words
        assert words in heard, f"{words!r} not heard in:\n{heard}"
    assert call.played and all(p.kind == "wav" for p in call.played)
    with db.unit_of_work() as session:
        row = session.exec(select(models.VoiceSession)).one()
    if journey not in ("invalid",):
        assert row.inputs == [i for i in inputs if i != "98"], row.inputs


def test_the_same_journey_reaches_the_same_data_as_ussd(voice, db):
    """An offer made by voice is the same offer as by USSD: the menus are one."""
    known_caller(db, "fr")
    call = dial(voice)
    for key in ["2", "1", "1", "1200#", "1"]:
        call.press(key)
    assert call.state == "ended"
    with db.unit_of_work() as session:
        offer = session.exec(select(models.Offer)).one()
    assert offer.quantity_kg == 1200 and offer.channel == "voice"


def test_star_repeats_zero_goes_back_hash_goes_home(voice, db):
    known_caller(db, "fr")
    call = dial(voice)
    first = voice.heard.prompts[-1]
    call.press("*")
    assert voice.heard.prompts[-1] in first  # the same prompt again (the help said once)
    call.press("1")  # prices
    prices = voice.heard.prompts[-1]
    call.press("1")  # tomato
    call.press("0")  # back
    assert voice.heard.prompts[-1] == prices
    call.press("1")
    call.press("#")  # main menu
    assert voice.heard.prompts[-1] in first


def test_more_than_five_options_are_read_five_at_a_time(voice, db):
    known_caller(db, "fr")
    call = dial(voice)
    call.press("1")  # prices: the crops
    first = voice.heard.prompts[-1]
    assert "appuyez sur 5" not in first and "appuyez sur cinq" in first
    assert "appuyez sur six" not in first and "neuf" in first  # "for more, press 9"
    call.press("9")
    second = voice.heard.prompts[-1]
    assert second != first and "appuyez sur un" in second


def test_a_silent_caller_hears_the_prompt_again_twice_then_goodbye(voice, db):
    known_caller(db, "fr")
    call = dial(voice)
    call.silence()
    assert "rien entendu" in voice.heard.prompts[-1]
    call.silence()
    assert call.state != "ended"
    call.silence()
    assert "Au revoir" in voice.heard.prompts[-1]
    assert call.state == "ended"


def test_the_first_prompt_says_the_keys_and_asks_the_language_in_both(voice, db):
    dial(voice)
    heard = voice.heard.prompts[-1]
    assert "étoile" in heard and "dièse" in heard  # the help prompt
    assert "Français" in heard and "Bamanankan" in heard


def test_prices_are_spoken_in_words(voice, db):
    known_caller(db, "fr")
    call = dial(voice)
    for key in ["1", "1", "9", "9", "2"]:  # prices, tomato, the 12th market: Sikasso
        call.press(key)
    heard = voice.heard.prompts[-1]
    assert "francs" in heard and "F/" not in heard


def test_audio_is_served_by_hash_with_long_cache_headers(voice, db):
    dial(voice)
    with db.unit_of_work() as session:
        blob = session.exec(select(models.AudioBlob).order_by(models.AudioBlob.created_at.desc())).first()
    response = voice.get(f"/voice/audio/{blob.hash}.wav")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    assert "immutable" in response.headers["cache-control"]
    assert audio.duration_s(response.content) > 0.2
    assert voice.get("/voice/audio/" + "0" * 64 + ".wav").status_code == 404
    assert voice.get("/voice/audio/../../etc/passwd").status_code == 404
    assert voice.get(f"/voice/audio/{blob.hash}.mp3").status_code == 404


def test_synthetic_prompts_are_made_once_and_flagged(voice, db):
    known_caller(db, "fr")
    dial(voice)
    dial(voice)
    with db.unit_of_work() as session:
        rows = session.exec(select(models.AudioPrompt)).all()
    assert rows and all(r.source == "synthetic" and r.revision == 1 for r in rows)
    assert len({r.clip for r in rows}) == len(rows)


def test_voice_callback_needs_the_webhook_secret(settings):
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    guarded = settings.model_copy(update={"dev_mode": False, "webhook_secret": SecretStr("s3cret"), "voice_inbound": "answer"})
    with TestClient(create_app(guarded, clock=lambda: NOW)) as client:
        form = {"isActive": "1", "sessionId": "x", "direction": "Inbound", "callerNumber": PHONE,
                "destinationNumber": SERVICE}
        assert client.post("/webhooks/at/voice", data=form).status_code == 403
        assert client.post("/webhooks/at/voice?token=s3cret", data=form).status_code == 200


@pytest.mark.parametrize("form", [
    {},
    {"isActive": "1", "direction": "Inbound", "callerNumber": PHONE},  # no session id
    {"isActive": "1", "sessionId": "x", "direction": "Inbound", "callerNumber": "not a phone"},
    {"isActive": "1", "sessionId": "x", "direction": "Inbound", "callerNumber": PHONE, "dtmfDigits": "12ab"},
])
def test_malformed_callbacks_get_400_and_change_nothing(voice, db, form):
    assert voice.post("/webhooks/at/voice", data=form).status_code == 400
    with db.unit_of_work() as session:
        assert session.exec(select(models.VoiceSession)).first() is None


# -- free for the farmer: the missed call is rejected and called back -------------------------


@pytest.fixture
def callback_client(settings):
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    with TestClient(create_app(settings.model_copy(update={"voice_inbound": "callback"}), clock=lambda: NOW)) as c:
        yield c


def test_a_call_is_rejected_and_a_call_back_queued_once(callback_client, db):
    first = dial(callback_client)
    assert first.state == "ended" and not first.played  # rejected: never answered, costs nothing
    dial(callback_client)  # calls again before the call back: still one call waiting
    with db.unit_of_work() as session:
        rows = session.exec(select(models.VoiceCall)).all()
    assert len(rows) == 1 and rows[0].phone == PHONE and rows[0].status == "queued"
    assert rows[0].due_at.replace(tzinfo=dt.timezone.utc) > NOW.astimezone(dt.timezone.utc)


def test_bambara_borrows_the_french_recording_of_words_and_names_never_of_numbers(voice, db):
    from gateway.voice import prompts

    with db.unit_of_work() as session:
        recorded = audio.normalise(_tone(), max_seconds=10)
        prompts.save_prompt(session, clip="fr.crop.1", language="fr", data=recorded, source="recorded",
                            text="Tomate", staff_id=None)
        prompts.save_prompt(session, clip="fr.num.70", language="fr", data=recorded, source="recorded",
                            text="soixante-dix", staff_id=None)
        found = prompts.resolve(session, ["bm.crop.1", "bm.num.70"])
    assert found["bm.crop.1"][1] == "fr.crop.1"
    assert "bm.num.70" not in found  # synthesized in Bambara, never the French number


def _tone(seconds: float = 0.5, rate: int = 8000) -> bytes:
    import io
    import math
    import struct
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
                                 for n in range(int(seconds * rate))))
    return out.getvalue()


# -- buyers' names: recorded like crop and market names ----------------------------------------


class Demands:
    """The part of a data view DataNames reads for buyers: demands open until `until`."""

    def __init__(self, *names: str, until: dt.date = NOW.date()) -> None:
        self.names, self.until = names, until

    def open_demands(self, today: dt.date) -> list[m.Demand]:
        return [m.Demand(id=i, buyer_name=name, crop_id=1, quantity_kg=100, price=250, unit="kg", place="Sikasso",
                         valid_until=self.until) for i, name in enumerate(self.names) if self.until >= today]


def _digest(words: str) -> str:
    return hashlib.sha256(words.encode()).hexdigest()[:20]


@pytest.mark.parametrize("words, clip", [
    pytest.param("Lawal Int.", "fr.buyer.lawal-int", id="a-buyer-by-its-folded-name"),
    pytest.param("Coopérative de Ségou", "fr.buyer.cooperative-de-segou", id="accents-folded"),
    pytest.param("Lawal\nInt.", "fr.buyer.lawal-int", id="on-one-line"),
    pytest.param("???", f"fr.buyer.{_digest('???')}", id="nothing-to-fold-named-by-hash"),
    pytest.param("Sikasso", f"fr.say.{_digest('Sikasso')}", id="other-words-are-not-a-buyer"),
    pytest.param("", None, id="nothing-said"),
])
def test_a_buyers_name_is_its_own_clip(words, clip):
    renderer = VoiceRenderer(default_catalog(), DataNames(Demands("Lawal Int.", "Coopérative de Ségou", "???"),
                                                          NOW.date()))
    said = renderer.speak(Text(words), "fr")
    assert [c.id for c in said] == ([clip] if clip else [])


@pytest.mark.parametrize("today, listed", [
    pytest.param(NOW.date(), ["fr.buyer.b-agro", "fr.buyer.lawal-int"], id="open-today-sorted-by-name"),
    pytest.param(NOW.date() + dt.timedelta(days=30), [], id="none-open-that-day"),
    pytest.param(None, ["fr.buyer.b-agro", "fr.buyer.lawal-int"], id="without-a-day-every-open-demand"),
])
def test_the_inventory_lists_buyers_of_open_demands(today, listed):
    class Data(Demands):
        def crops(self):
            return []

        def markets(self):
            return []

    data = Data("Lawal Int.", "B Agro", "Lawal Int.", until=NOW.date() + dt.timedelta(days=7))
    found = [c.id for c in inventory(default_catalog(), "fr", data, today=today) if ".buyer." in c.id]
    assert found == listed


@pytest.mark.parametrize("language, inputs", [
    pytest.param("fr", ["2"], id="the-demands-list"),
    pytest.param("fr", ["2", "1"], id="a-demand"),
    pytest.param("bm", ["2", "1"], id="bambara-borrows-the-french-recording"),
])
def test_the_call_plays_the_buyers_recorded_name(voice, db, language, inputs):
    from gateway.voice import prompts

    names = {"lawal-int": "Lawal Int.", "madougou-agro-business": "Madougou Agro-Business"}
    with db.unit_of_work() as session:
        for slug, name in names.items():
            prompts.save_prompt(session, clip=f"fr.buyer.{slug}", language="fr",
                                data=audio.normalise(_tone(0.6), max_seconds=10), source="recorded", text=name,
                                staff_id=None)
    known_caller(db, language)
    call = dial(voice)
    for value in inputs:
        press_like_ussd(call, value)
    said = [c for c in voice.heard.clip_ids[-1] if ".buyer." in c]
    assert said and all(c.split(".", 2)[2] in names and c.startswith(f"{language}.buyer.") for c in said)
    with db.unit_of_work() as session:
        made = session.exec(select(models.AudioPrompt.clip).where(models.AudioPrompt.source == "synthetic",
                                                                  col(models.AudioPrompt.clip).contains(".buyer."))).all()
    assert made == []  # the recordings played: no synthetic voice was made for a buyer
