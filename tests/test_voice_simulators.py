"""The voice phone of the console's simulators and `gateway simulate --voice` (issue 16 item 9):
the real voice service and its real joined audio, on a throw-away copy of the caller; the three
phones of the page keep each other's state; the terminal call goes through the real webhook."""

from __future__ import annotations

import functools
import html
import re
import subprocess
import sys

import pytest
from sqlmodel import func, select

from gateway.aggregators.fake_at_voice import audio_kind
from gateway.data import models
from gateway.voice.prompts import PromptAudio
from tests.test_admin import ROLES, Browser, app, browser, clock, staff  # noqa: F401 (fixtures)

pytestmark = pytest.mark.db

KNOWN = "+22370000042"  # a French-speaking producer (added by the `caller` fixture)
NEW = "+22370000043"  # nobody: the call starts with the language question
VOICE_FIELDS = ("voice_phone", "voice_session", "voice_inputs", "voice_page", "voice_silences", "voice_ended",
                "voice_entry")
USSD_FIELDS = ("ussd_phone", "path", "dialled", "language")
SMS_FIELDS = ("sms_phone", "sms_text")
GOODBYE = "Merci d'avoir appelé Sugu. Au revoir."


@pytest.fixture
def caller(db):
    with db.unit_of_work() as session:
        session.add(models.Producer(phone=KNOWN, language="fr"))


# -- reading the page ----------------------------------------------------------------------------------


def form_fields(page: str, action: str) -> dict[str, str]:
    """Every named field a form posts (hidden or not; buttons left out), as a browser would."""
    form = re.search(rf'<form[^>]*action="{re.escape(action)}(#[^"]*)?".*?</form>', page, re.S)
    assert form, f"no form posting to {action}"
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", form.group(0)):
        name, value = re.search(r'name="([^"]*)"', tag), re.search(r'value="([^"]*)"', tag)
        if name and name.group(1) != "csrf_token":
            fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, options in re.findall(r'<select[^>]*name="([^"]*)"[^>]*>(.*?)</select>', form.group(0), re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options) or re.search(r'<option value="([^"]*)"', options)
        fields[name] = html.unescape(chosen.group(1)) if chosen else ""
    return fields


def words(page: str) -> str:
    found = re.search(r'id="voice-words">(.*?)</p>', page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""


def audio_src(page: str) -> str:
    found = re.search(r'<audio id="voice-audio"[^>]*src="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else ""


def takes(page: str) -> list[str]:
    return re.findall(r'<button name="key" value="([^"]+)" class="takes"', page)


class Phones:
    """The simulators page as staff use it: each button posts its form with every field it holds."""

    def __init__(self, b: Browser) -> None:
        self.b = b
        self.page = b.get("/admin/simulators").text
        self.status = 200

    def _post(self, action: str, **extra: str) -> str:
        response = self.b.post(action, {**form_fields(self.page, action), **extra})
        self.page, self.status = response.text, response.status_code
        return self.page

    def voice(self, **extra: str) -> str:
        return self._post("/admin/simulators/voice", **extra)

    def ussd(self, **extra: str) -> str:
        return self._post("/admin/simulators/ussd", **extra)

    def sms(self, **extra: str) -> str:
        return self._post("/admin/simulators/sms", **extra)

    def call(self, phone: str = KNOWN) -> str:
        return self.voice(voice_phone=phone, call="1")

    def act(self, step: str) -> str:
        """One thing done on the voice phone: a key, "silence", "hangup", or "qty:<digits>"."""
        if step == "silence":
            return self.voice(silence="1")
        if step == "hangup":
            return self.voice(hangup="1")
        if step.startswith("qty:"):
            return self.voice(quantity=step[4:], send="1")
        return self.voice(key=step)

    def carried(self, action: str, names) -> dict[str, str]:
        fields = form_fields(self.page, action)
        return {name: fields.get(name, "") for name in names}


@functools.lru_cache(maxsize=None)
def _speech(text: str, language: str) -> bytes:
    from messages.voice import synth

    return synth.synthesize(text, language)


@pytest.fixture
def phones(app, browser, caller):
    # The real prompt audio (eSpeak's clips, normalised, joined, stored, served), each clip's
    # speech made once per run rather than once per test database.
    app.state.prompt_audio = PromptAudio(synthesize=_speech)
    return lambda role="editor": Phones(browser(role))


# -- a call, key by key -----------------------------------------------------------------------------------

# (journey, caller, steps after Call, words heard last, words not heard, keys the keypad shows as taken)
CALLS = [
    ("call-main-menu", KNOWN, [], ["Bienvenue sur Sugu", "Prix du marché", "Pour la suite, appuyez sur neuf"],
     ["Choisir la langue"], ["1", "2", "3", "4", "5", "9", "*", "0", "#"]),
    ("new-caller-language", NEW, [], ["Choisir la langue", "Français", "Bamanankan", "kelen"], [],
     ["1", "2", "*", "0", "#"]),
    ("new-caller-bambara", NEW, ["2"], ["I bisimila Sugu la!", "Sugu sɔngɔw"], ["Prix du marché"], None),
    ("key-1-prices", KNOWN, ["1"], ["Prix: choisir un produit", "Tomate", "Oignon"], ["Bienvenue"], None),
    ("key-9-more", KNOWN, ["1", "9"], ["Gombo", "Carotte"], ["Tomate", "appuyez sur neuf"],
     ["1", "2", "3", "4", "5", "*", "0", "#"]),
    ("star-repeats", KNOWN, ["1", "9", "*"], ["Prix: choisir un produit", "Gombo"], ["Tomate"], None),
    ("zero-back-a-page", KNOWN, ["1", "9", "0"], ["Tomate"], ["Gombo"], None),
    ("hash-main-menu", KNOWN, ["1", "1", "#"], ["Prix du marché", "Demandes des acheteurs"], ["Sikasso"], None),
    ("price", KNOWN, ["1", "1", "2"], ["Tomate", "meilleurs prix", "francs"], [], None),
    ("invalid-key", KNOWN, ["8"], ["Choix invalide", "Prix du marché"], [], None),
    ("quantity-asked", KNOWN, ["2", "1", "1"], ["kilos"], [], ["*", "0"]),
    ("quantity-offered", KNOWN, ["2", "1", "1", "qty:500"], ["cinq cents"], [], None),
    ("silence-once", KNOWN, ["silence"], ["Nous n'avons rien entendu", "Prix du marché"], [GOODBYE], None),
    ("silence-three-times", KNOWN, ["silence", "silence", "silence"], [GOODBYE], ["Prix du marché"], []),
]


@pytest.mark.parametrize("journey, phone, steps, heard, not_heard, taken", CALLS, ids=[c[0] for c in CALLS])
def test_a_call_hears_the_real_voice_menus(phones, journey, phone, steps, heard, not_heard, taken):
    p = phones()
    page = p.call(phone)
    for step in steps:
        page = p.act(step)
    assert p.status == 200, page[:500]
    said = words(page)
    for fragment in heard:
        assert fragment in said, f"{fragment!r} not heard in:\n{said}"
    for fragment in not_heard:
        assert fragment not in said, f"{fragment!r} heard in:\n{said}"
    if taken is not None:
        assert takes(page) == taken
    assert re.search(r"<audio id=\"voice-audio\" controls autoplay", page), "each answer plays its audio"


def test_the_quantity_prompt_takes_digits_ended_by_hash(phones):
    p = phones()
    p.call()
    for key in ("2", "1", "1"):
        page = p.act(key)
    assert 'id="voice-quantity"' in page and "une quantité, puis #" not in page  # English console in tests
    assert "a quantity, then #" in page
    assert p.carried("/admin/simulators/voice", ["voice_entry"]) == {"voice_entry": "1"}
    page = p.act("qty:500#")  # the # typed or not: the same quantity
    assert "cinq cents" in words(page) and 'id="voice-quantity"' not in page


@pytest.mark.parametrize("typed", ["5OO", "12345678", "-5", ""])
def test_a_bad_quantity_is_said_beside_the_field(phones, typed):
    p = phones()
    p.call()
    for key in ("2", "1", "1"):
        before = p.act(key)
    page = p.act(f"qty:{typed}")
    assert p.status == 400
    assert 'id="voice-quantity-error"' in page and 'aria-invalid="true"' in page
    assert words(page) == words(before)  # the call waits at the same prompt
    assert p.carried("/admin/simulators/voice", ["voice_inputs"]) == {"voice_inputs": "2,1,1"}


def test_silence_three_times_ends_the_call_with_a_goodbye(phones):
    p = phones()
    p.call()
    p.act("silence")
    p.act("silence")
    page = p.act("silence")
    assert words(page) == GOODBYE
    assert 'id="voice-ended"' in page
    assert re.search(r'<button name="key" value="1"[^>]* disabled', page), "the keypad is off once the call ended"
    assert '<button name="call" value="1" class="dial">' in page  # call again


def test_hang_up_ends_the_call(phones):
    p = phones()
    p.call()
    page = p.act("hangup")
    assert words(page) == "" and "You hung up" in page
    assert p.carried("/admin/simulators/voice", ["voice_session", "voice_inputs"]) == {"voice_session": "",
                                                                                        "voice_inputs": ""}


def test_a_key_without_a_call_does_nothing(phones):
    p = phones()
    page = p.act("1")
    assert p.status == 200 and words(page) == "" and "Call to start." in page


# -- the audio -------------------------------------------------------------------------------------------


def test_the_answer_plays_the_real_joined_audio(phones):
    p = phones()
    first = audio_src(p.call())
    assert re.fullmatch(r"/voice/audio/[0-9a-f]{64}\.wav", first)
    response = p.b.get(first)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert audio_kind(response.content) == "wav" and len(response.content) > 8000
    second = audio_src(p.act("1"))
    assert second != first and p.b.get(second).status_code == 200  # each prompt its own audio


def test_the_same_prompt_plays_the_same_audio(phones):
    p = phones()
    p.call()
    once = audio_src(p.act("1"))
    p.act("1")
    assert audio_src(p.act("0")) == once  # back at the crops: the same playlist, joined once


# -- nothing is changed, nothing is placed, nothing is paid ----------------------------------------------


WRITTEN_BY_CALLS = (models.VoiceSession, models.VoiceCall, models.Offer, models.SmsMessage, models.Producer,
                    models.Subscription, models.ServiceRequest)


def counts(db) -> dict[str, int]:
    with db.unit_of_work() as session:
        return {model.__name__: session.exec(select(func.count()).select_from(model)).one()
                for model in WRITTEN_BY_CALLS}


# Keys that make a real call change something (what it would change, in the console's words).
CHANGING = [
    ("language-chosen", NEW, ["1"], "change the language"),
    ("offer", NEW, ["1", "2", "1", "1", "qty:500", "1"], "record an offer"),
    ("service-sms", KNOWN, ["9", "2", "1", "1", "1", "1"], "send a service SMS"),
]


@pytest.mark.parametrize("journey, phone, steps, effect", CHANGING, ids=[c[0] for c in CHANGING])
def test_key_presses_change_nothing_and_place_no_call(phones, db, journey, phone, steps, effect):
    before = counts(db)
    p = phones()
    p.call(phone)
    for step in steps:
        page = p.act(step)
    assert effect in page, words(page)  # said, not done
    assert counts(db) == before


def test_the_call_uses_a_simulator_session_id(phones):
    p = phones()
    p.call()
    session_id = p.carried("/admin/simulators/voice", ["voice_session"])["voice_session"]
    assert re.fullmatch(r"sim-[0-9a-f]{12}", session_id)  # left out of farmers' figures


# -- three phones, one page ------------------------------------------------------------------------------


def test_a_voice_key_keeps_the_ussd_session_and_the_sms_reply(phones):
    p = phones()
    p.ussd(ussd_phone="+22370000044", language="fr", restart="1")
    p.ussd(input="1", sent="1")
    p.sms(sms_phone="+22370000045", sms_text="PRIX TOMATE")
    ussd_screen = re.search(r'id="ussd-screen"[^>]*>(.*?)</div>', p.page, re.S).group(1)
    sms_reply = re.search(r'id="sms-reply"><p><b>(.*?)</b>', p.page, re.S).group(1)
    kept = {**p.carried("/admin/simulators/ussd", USSD_FIELDS), **p.carried("/admin/simulators/sms", SMS_FIELDS)}
    assert "Prix: choisir un produit" in html.unescape(ussd_screen)
    p.call()
    page = p.act("1")
    assert "Prix: choisir un produit" in words(page)
    assert re.search(r'id="ussd-screen"[^>]*>(.*?)</div>', page, re.S).group(1) == ussd_screen
    assert re.search(r'id="sms-reply"><p><b>(.*?)</b>', page, re.S).group(1) == sms_reply
    assert {**p.carried("/admin/simulators/voice", USSD_FIELDS + SMS_FIELDS)} == kept


@pytest.mark.parametrize("other", ["ussd", "sms"])
def test_the_other_phones_keep_the_call(phones, other):
    p = phones()
    p.call()
    page = p.act("1")
    heard, call = words(page), p.carried("/admin/simulators/voice", VOICE_FIELDS)
    if other == "ussd":
        page = p.ussd(ussd_phone="+22370000044", restart="1")
    else:
        page = p.sms(sms_phone="+22370000045", sms_text="AIDE")
    assert words(page) == heard  # the prompt the call is at, said again
    assert re.search(r'<audio id="voice-audio" controls preload', page), "shown, not replayed by another phone's key"
    assert p.carried(f"/admin/simulators/{other}", VOICE_FIELDS) == call
    page = p.act("1")  # and the call goes on where it was
    assert "Tomate" in words(page) and "choisir un marché" in words(page)


def test_a_tampered_call_state_is_cut_to_what_is_valid(phones):
    p = phones()
    p.call()
    page = p.voice(voice_inputs="1,x<script>,3", voice_page="999", voice_silences="7", key="*")
    assert p.status == 200 and "<script>" not in page
    assert "Prix: choisir un produit" in words(page)  # inputs kept up to the foreign item
    fields = p.carried("/admin/simulators/voice", ("voice_inputs", "voice_silences"))
    assert fields == {"voice_inputs": "1", "voice_silences": "0"}


@pytest.mark.parametrize("session_id", ["ATVId_123", "sim-", "sim-0123456789ab'"])
def test_only_simulator_session_ids_are_carried(phones, session_id):
    p = phones()
    page = p.voice(voice_session=session_id, key="1")
    assert words(page) == "" and p.carried("/admin/simulators/voice", ["voice_session"])["voice_session"] == ""


def test_a_bad_caller_number_is_said_beside_the_field(phones):
    p = phones()
    page = p.call("12")
    assert p.status == 400
    assert 'id="voice-phone-error"' in page and 'value="12"' in page and words(page) == ""


# -- who may use it ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [None, *ROLES])
def test_every_staff_role_may_call_anonymous_may_not(browser, caller, role):
    b = browser(role)
    if role is None:
        response = b.post("/admin/simulators/voice", {"voice_phone": KNOWN, "call": "1"}, csrf=False)
        assert response.status_code in (303, 403)
        return
    response = b.post("/admin/simulators/voice", {"voice_phone": KNOWN, "call": "1"})
    assert response.status_code == 200 and "Prix du marché" in words(response.text)


def test_a_post_without_the_csrf_token_is_refused(browser, caller):
    response = browser("reporter").post("/admin/simulators/voice", {"voice_phone": KNOWN, "call": "1"}, csrf=False)
    assert response.status_code == 403
    assert words(response.text) == ""


# -- the terminal call ----------------------------------------------------------------------------------------


@pytest.fixture
def terminal(db_url, monkeypatch):
    """`gateway simulate --voice` in a subprocess on a migrated demo database, as staff run it."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "60")

    def run(*args: str, input: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gateway.cli", "simulate", "--voice", *args], input=input,
                              capture_output=True, text=True, timeout=180)

    return run


def heard_lines(out: str) -> list[str]:
    """Each prompt printed, its wrapped lines joined again."""
    prompts, current = [], None
    for line in out.splitlines():
        line = line.removeprefix("> ")
        if line.startswith("(( "):
            current = [line[3:]]
            prompts.append(current)
        elif current is not None and line.startswith("   ") and not line.strip().startswith("["):
            current.append(line.strip())
        else:
            current = None
    return [" ".join(p) for p in prompts]


# (args, keys typed, words of the last prompt, lines the output holds)
TERMINAL_CALLS = [
    ([], "1\n1\nq\n", ["Prix: choisir un produit", "Tomate", "Pour la suite, appuyez sur neuf."],
     ["You hung up. Goodbye.", "keys: 1 · 2 · 3 · 4 · 5 · 9 more · * repeat · 0 back · # main menu"]),
    (["--language", "bm"], "1\nq\n", ["Sɔngɔ: sɛnɛfɛn sugandi", "Tamati"], ["> 2  (--language bm)"]),
    (["--phone", "+22370000031", "--language", "fr"], "\n\n\n", [GOODBYE], ["The call has ended. Goodbye."]),
    ([], "x\n2\n", ["I bisimila Sugu la!"], ["A phone keypad has 0-9, * and # only.", "You hung up. Goodbye."]),
]


@pytest.mark.parametrize("args, typed, heard, lines", TERMINAL_CALLS, ids=["prices", "bambara", "silence", "typo"])
def test_simulate_voice_prints_each_prompts_words_and_takes_keys(terminal, args, typed, heard, lines):
    done = terminal(*args, input=typed)
    assert done.returncode == 0, done.stderr
    prompts = heard_lines(done.stdout)
    for fragment in heard:
        assert fragment in prompts[-1], f"{fragment!r} not in the last prompt:\n{prompts[-1]}"
    for line in lines:
        assert line in done.stdout, done.stdout
    assert all(len(line) <= 60 for line in done.stdout.splitlines() if line.startswith(("((", "   ")))
    assert "[wav, " in done.stdout  # every prompt's audio was fetched and is real audio
    assert "voice prompt" not in done.stdout + done.stderr  # the words, not a log line per callback


@pytest.mark.parametrize("args, said", [
    (["--voice", "--phone", "12"], "phone"),
])  # --language: any configured language, on USSD too; an unknown one is refused (tests/test_cli.py)
def test_simulate_voice_rejects_bad_options(empty_db_url, monkeypatch, args, said):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", empty_db_url)
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "simulate", *args], input="q\n",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and said in done.stdout + done.stderr
