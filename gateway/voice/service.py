"""Voice service: one callback = one key press (or silence) applied to the call's menus.

The menus are USSD's (menus.run), replayed from the call's start profile over the inputs stored
with the call; the prompt is the same screen spoken (menus.voice): five options at a time, keys
mapped back to the menus' option numbers. Runs inside the caller's unit of work; never commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Sequence

from sqlmodel import Session, select

import menus
from gateway.actions.effects import apply_effects
from gateway.aggregators.calling import VoiceCallback
from gateway.core.phones import mask
from gateway.data import models
from gateway.data.dataview import SqlDataView
from gateway.data.producers import insert_ignore, producer_by_phone, profile_from_snapshot, snapshot
from gateway.outbound.replies import ReplyRules
from menus import languages as langs
from menus import types as m
from menus.screen import QUANTITY, CropRef, LanguageRef, Layout, MarketRef, Money, Page, Percent, UnitRef, phrase
from menus.voice import (
    BACK_KEY,
    HOME_KEY,
    MORE_KEY,
    PER_PROMPT,
    REPEAT_KEY,
    Clip,
    DataNames,
    Prompt,
    VoiceRenderer,
)
from messages import Catalog

log = logging.getLogger("gateway.voice")

# Prompts in a row without a key press before the call ends: the prompt is said three times.
MAX_SILENCES = 3
HOME_INPUT, BACK_INPUT = "00", "0"  # what the menus take for "main menu" and "back"
# The first screen asks the language: said in every language offered by voice.
LANGUAGE_SCREENS = frozenset({"lang_first"})


@dataclass(frozen=True)
class Turn:
    """What the call hears next."""

    clips: tuple[Clip, ...]
    language: str
    prompt: Prompt
    end: bool


def _screen(inputs: Sequence[str], profile: m.Profile, data: m.DataView, catalog: Catalog, now: dt.datetime,
            config: menus.EngineConfig) -> m.Screen:
    # The menus as a call has them: languages offered by voice (menus.languages).
    config = config if config.spoken else replace(config, spoken=True)
    return menus.run(list(inputs), profile=profile, data=data, catalog=catalog, now=now, config=config)


def _prompt(screen: m.Screen, renderer: VoiceRenderer, offset: int, *, greeting: bool, notice: str | None = None
            ) -> tuple[tuple[Clip, ...], Prompt]:
    page = screen.structure or Page(Layout(None, nav=False), end=screen.end)
    if notice is not None:
        page = replace(page, notice=phrase(notice))
    if screen.screen_id in LANGUAGE_SCREENS:  # the languages it offers, each saying it in turn
        languages = tuple(c.label.code for c in page.layout.choices() if isinstance(c.label, LanguageRef))
    else:
        languages = (screen.language,)
    clips: list[Clip] = []
    prompt = None
    for index, lang in enumerate(languages):
        prompt = renderer.prompt(page, lang, offset, greeting=greeting and index == 0)
        clips += prompt.clips
    assert prompt is not None
    return tuple(clips), prompt


def answer(
    session: Session,
    *,
    call: VoiceCallback,
    now: dt.datetime,
    catalog: Catalog,
    config: menus.EngineConfig,
    data: m.DataView | None = None,
    rules: ReplyRules | None = None,
    fold: bool = True,
) -> Turn:
    """The call's next prompt after `call` (its first, a key press, or silence)."""
    row = session.exec(
        select(models.VoiceSession).where(models.VoiceSession.session_id == call.session_id)
    ).first()
    stamp = now.astimezone(dt.timezone.utc)
    if row is not None and row.phone != call.phone:
        # A session id is not a secret: never speak another caller's profile.
        log.warning("voice callback on another caller's session", extra={"session": call.session_id,
                                                                         "phone": mask(call.phone)})
        return _goodbye(catalog, VoiceRenderer(catalog, DataNames(data or SqlDataView(session))), "fr")
    first = row is None
    if first:
        insert_ignore(session, models.VoiceSession, {
            "session_id": call.session_id, "phone": call.phone, "direction": call.direction,
            "start_profile": snapshot(session, producer_by_phone(session, call.phone)),
            "inputs": [], "keys": {}, "started_at": stamp, "updated_at": stamp,
        }, ["session_id"])
        row = session.exec(
            select(models.VoiceSession).where(models.VoiceSession.session_id == call.session_id)
        ).one()
    data = data or SqlDataView(session)
    renderer = VoiceRenderer(catalog, DataNames(data, now.date()))
    profile = profile_from_snapshot(call.phone, row.start_profile or {})
    inputs = list(row.inputs or [])
    offset = row.voice_page * PER_PROMPT
    notice: str | None = None
    key = (call.digits or "").strip()
    if first:
        pass
    elif not key:
        row.silences += 1
        if row.silences >= MAX_SILENCES:
            row.updated_at = stamp
            session.add(row)
            return _goodbye(catalog, renderer, row.language or "fr")
        notice = "voice.silence"
    else:
        row.silences = 0
        # What the keys of the prompt the caller heard do, kept with the call: one replay a key.
        heard = row.keys or _keys(_prompt(_screen(inputs, profile, data, catalog, now, config), renderer, offset,
                                          greeting=False)[1])
        choices = dict(heard.get("choices", []))
        if key == REPEAT_KEY:
            pass
        elif key == HOME_KEY:
            inputs.append(HOME_INPUT)
            offset = 0
        elif key == MORE_KEY and heard.get("more"):
            offset += PER_PROMPT
        elif key == BACK_KEY and offset:
            offset -= PER_PROMPT
        elif key == BACK_KEY:
            inputs.append(BACK_INPUT)
            offset = 0
        elif heard.get("entry") == QUANTITY:
            inputs.append(key.rstrip(HOME_KEY))
            offset = 0
        elif not heard.get("entry") and key in choices:
            inputs.append(str(choices[key]))
            offset = 0
        else:
            notice = "error.invalid_choice"
    screen = _screen(inputs, profile, data, catalog, now, config)
    clips, prompt = _prompt(screen, renderer, offset, greeting=first, notice=notice)
    if inputs != row.inputs and screen.effects:  # a new input's effects, once (never on a repeat)
        apply_effects(session, phone=call.phone, effects=screen.effects, session_ref=call.session_id,
                      channel="voice", now=stamp, today=now.date(), catalog=catalog, fold=fold, rules=rules)
    row.inputs = inputs
    row.voice_page = offset // PER_PROMPT
    row.keys = _keys(prompt)
    row.language = screen.language
    row.last_screen = screen.screen_id[:32]
    if screen.section:
        row.section = screen.section[:32]
    row.updated_at = stamp
    session.add(row)
    return Turn(clips, screen.language, prompt, prompt.end or screen.end)


def _keys(prompt: Prompt) -> dict:
    return {"choices": [list(c) for c in prompt.choices], "more": prompt.more, "entry": prompt.entry}


def _goodbye(catalog: Catalog, renderer: VoiceRenderer, language: str) -> Turn:
    clips = tuple(renderer.speak(phrase("voice.goodbye"), language))
    return Turn(clips, language, Prompt(clips, end=True), True)


def record_end(session: Session, *, call: VoiceCallback, now: dt.datetime) -> None:
    """The final callback: how long the call lasted and what it cost."""
    row = session.exec(
        select(models.VoiceSession).where(models.VoiceSession.session_id == call.session_id)
    ).first()
    if row is None or row.phone != call.phone:
        return  # rejected calls and foreign ids leave no row
    row.ended_at = now.astimezone(dt.timezone.utc)
    row.duration_s = call.duration_s
    row.amount = None if call.amount is None else str(call.amount)[:32]
    row.currency = (call.currency or None) and call.currency[:8]
    row.hangup_cause = (call.hangup_cause or None) and call.hangup_cause[:64]
    row.updated_at = row.ended_at
    session.add(row)


# -- voice alerts ----------------------------------------------------------------------------------

ALERT_SCREEN = "alert"
AGAIN_KEY, OTHER_MARKETS_KEY = "1", "2"


def _alert_clips(renderer: VoiceRenderer, data: m.DataView, pairs: list, language: str, *, first: bool,
                 notice: str | None) -> tuple[Clip, ...]:
    clips = list(renderer.speak(phrase(notice), language)) if notice else []
    if first:
        clips += renderer.speak(phrase("voice.alert.intro"), language)
    quotes = {}
    for crop_id, market_id in pairs:
        for quote in data.latest_prices(crop_id):
            if quote.market_id == market_id:
                quotes[(crop_id, market_id)] = quote
    for crop_id, market_id in pairs:
        quote = quotes.get((crop_id, market_id))
        if quote is None:
            continue  # withdrawn since: nothing to say rather than a wrong price
        change = quote.change_percent
        clips += renderer.speak(phrase(
            "voice.alert.line", crop=CropRef(crop_id), market=MarketRef(market_id, quote.market_name),
            price=Money(quote.price), unit=UnitRef(quote.unit),
            change=Percent(change) if change is not None else phrase("voice.alert.first_price"),
        ), language)
    clips += renderer.speak(phrase("voice.alert.keys"), language)
    return tuple(clips)


def _crop_markets_inputs(crop_id: int, profile: m.Profile, data: m.DataView, catalog: Catalog, now: dt.datetime,
                         config: menus.EngineConfig, language: str) -> list[str]:
    """The menu inputs that lead to a crop's markets (prices, then that crop), found on the
    screens themselves so that they follow the menus' order."""
    inputs: list[str] = []
    if not profile.language:  # a caller never asked: the first screen's choice of the alert's language
        first = _screen(inputs, profile, data, catalog, now, config).structure
        inputs.append(str(next((c.number for c in first.layout.choices()
                                if isinstance(c.label, LanguageRef) and c.label.code == language), 1)))
    main = _screen(inputs, profile, data, catalog, now, config).structure
    prices = next((c.number for c in main.layout.choices() if getattr(c.label, "key", "") == "main.prices"), 1)
    inputs.append(str(prices))
    crops = _screen(inputs, profile, data, catalog, now, config).structure
    for choice in crops.layout.choices() if crops else ():
        if choice.label == CropRef(crop_id):
            return [*inputs, str(choice.number)]
    return inputs  # retired since: the list of crops


def answer_alert(
    session: Session,
    *,
    call: VoiceCallback,
    voice_call: models.VoiceCall,
    now: dt.datetime,
    catalog: Catalog,
    config: menus.EngineConfig,
    data: m.DataView | None = None,
    rules: ReplyRules | None = None,
    fold: bool = True,
) -> Turn:
    """A voice alert answered: the prices it carries, "press 1 to hear it again, 2 for other
    markets" (which goes on into the menus, at the first crop's markets)."""
    row = session.exec(select(models.VoiceSession).where(models.VoiceSession.session_id == call.session_id)).first()
    stamp = now.astimezone(dt.timezone.utc)
    data = data or SqlDataView(session)
    # Said in the alert's language while calls are offered in it; else in French (menus.languages).
    language = langs.serve(voice_call.language, langs.configured(data), catalog, spoken=True).language
    renderer = VoiceRenderer(catalog, DataNames(data, now.date()))
    if row is not None and row.last_screen != ALERT_SCREEN:
        return answer(session, call=call, now=now, catalog=catalog, config=config, data=data, rules=rules, fold=fold)
    first = row is None
    if first:
        insert_ignore(session, models.VoiceSession, {
            "session_id": call.session_id, "phone": call.phone, "direction": call.direction,
            "start_profile": snapshot(session, producer_by_phone(session, call.phone)), "inputs": [], "keys": {},
            "language": language, "last_screen": ALERT_SCREEN, "started_at": stamp, "updated_at": stamp,
        }, ["session_id"])
        row = session.exec(select(models.VoiceSession).where(models.VoiceSession.session_id == call.session_id)).one()
    key = (call.digits or "").strip()
    notice = None
    if not first and not key:
        row.silences += 1
        if row.silences >= MAX_SILENCES:
            session.add(row)
            return _goodbye(catalog, renderer, language)
        notice = "voice.silence"
    elif key == OTHER_MARKETS_KEY and voice_call.pairs:
        profile = profile_from_snapshot(call.phone, row.start_profile or {})
        inputs = _crop_markets_inputs(voice_call.pairs[0][0], profile, data, catalog, now, config, language)
        screen = _screen(inputs, profile, data, catalog, now, config)
        clips, prompt = _prompt(screen, renderer, 0, greeting=False)
        row.inputs, row.keys, row.voice_page, row.silences = inputs, _keys(prompt), 0, 0
        row.language, row.last_screen, row.updated_at = screen.language, screen.screen_id[:32], stamp
        session.add(row)
        return Turn(clips, screen.language, prompt, prompt.end or screen.end)
    elif key and key not in (AGAIN_KEY, REPEAT_KEY):
        notice = "error.invalid_choice"
    if key:
        row.silences = 0
    clips = _alert_clips(renderer, data, voice_call.pairs, language, first=first, notice=notice)
    prompt = Prompt(clips, choices=((AGAIN_KEY, 0), (OTHER_MARKETS_KEY, 0)))
    row.updated_at = stamp
    session.add(row)
    return Turn(clips, language, prompt, False)
