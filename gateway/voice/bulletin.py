"""The weekly radio bulletin as an MP3 (menus/bulletin.py says what; this makes the audio from
the same clips as the voice menus: recordings where staff made them, a fallback language's
recording for a word or name not yet recorded, else synthetic), in every enabled voice language.

A voice-only language (no written catalog) says the French words by its own recordings, clip by
clip, as its calls do. Its tip is staff-written French: it is said only once its words have the
language's own recordings (the studio lists them); until then the bulletin leaves it out rather
than have a synthetic French voice read it on the radio, and the console says so."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

from sqlmodel import Session, select

from gateway.data import models
from gateway.voice import prompts
from gateway.voice.prompts import PromptAudio
from menus import languages as langs
from menus.bulletin import all_tips, bulletin, tip_words
from menus.voice import Clip, DataNames, VoiceRenderer
from messages import Catalog, to_ussd
from messages.voice import audio

# Where a clip's audio comes from, for the console's count: the bulletin language's own recording,
# another language's (counted by that language's code), or the speech engine.
OWN, SYNTHETIC = "own", "synthetic"
# What became of the week's tip: said; left out (a voice-only language without its own
# recording of the tip's words); or there is no tip at all.
TIP_SAID, TIP_LEFT_OUT, NO_TIP = "said", "left_out", "none"


@dataclass(frozen=True)
class BulletinAudio:
    mp3: bytes
    seconds: float
    prices: int  # price lines said
    week_of: dt.date
    words: str  # what it says, for the console and the radio station's presenter


@dataclass(frozen=True)
class Script:
    """What a bulletin says, before any audio is made: its clips, and its words sentence by
    sentence (one line per phrase: the intro, each crop, each market's price, the tip, the end)."""

    clips: tuple[Clip, ...]
    lines: tuple[str, ...]
    prices: int
    week_of: dt.date
    language: str = ""
    words_in: str = ""  # the language its words are written in: its own, or French (voice-only)
    tip: str = NO_TIP
    to_record: tuple[Clip, ...] = ()  # a tip left out: its words still without their own recording
    # Distinct clips by where their audio comes from (OWN, SYNTHETIC, or a language code when
    # borrowed); empty when made without a database session.
    sources: tuple[tuple[str, int], ...] = ()

    @property
    def borrowed(self) -> tuple[tuple[str, int], ...]:
        return tuple((lang, n) for lang, n in self.sources if lang not in (OWN, SYNTHETIC))

    def count(self, source: str) -> int:
        return dict(self.sources).get(source, 0)


def regions(session: Session) -> list[str]:
    """Active regions' French names, as markets name them."""
    r = models.Region
    return list(session.exec(select(r.name_fr).where(r.active == True).order_by(r.name_fr)).all())  # noqa: E712


def regions_by_code(session: Session) -> dict[str, str]:
    """Active regions, code -> French name, in the order of regions()."""
    r = models.Region
    rows = session.exec(select(r.code, r.name_fr).where(r.active == True).order_by(r.name_fr)).all()  # noqa: E712
    return dict(rows)


def languages(data) -> tuple[str, ...]:
    """The languages a bulletin is made in: every enabled voice language, in the menus' order."""
    return tuple(lang.code for lang in langs.configured(data) if lang.enabled and lang.voice)


def fallbacks(data) -> prompts.Fallbacks:
    return prompts.fallback_chains(langs.configured(data))


def _source(clip: str, language: str, playing: dict) -> str:
    row, borrowed = playing.get(clip, (None, None))
    if row is None or row.source == prompts.SYNTHETIC:
        return SYNTHETIC
    # A number clip of a language without number rules is its fallback's own clip: borrowed too.
    origin = (borrowed or clip).split(".", 1)[0]
    return OWN if origin == language else origin


def _own_recording(clip: str, playing: dict) -> bool:
    row, borrowed = playing.get(clip, (None, None))
    return row is not None and borrowed is None and row.source != prompts.SYNTHETIC


def script(*, region: str, language: str, today: dt.date, catalog: Catalog, data,
           session: Session | None = None) -> Script:
    """What the bulletin says in `language`, clip by clip. With a session: where each clip's audio
    comes from, and (voice-only language) whether its tip has the recordings it needs; without
    one, a voice-only language's tip is left out (nothing says it was recorded)."""
    said = bulletin(region, language, today, data)
    renderer = VoiceRenderer(catalog, DataNames(data, today))
    spoken = [renderer.speak(part, language) for part in said.parts]
    ids = sorted({c.id for clips in spoken for c in clips})
    playing = prompts.resolve(session, ids, fallbacks(data)) if session is not None and ids else {}
    tip, to_record = (NO_TIP if said.tip is None else TIP_SAID), ()
    if said.tip is not None and said.tip_at is not None and not catalog.has_language(language):
        words = [c for part in tip_words(said.tip, language) for c in renderer.speak(part, language)]
        to_record = tuple(c for c in words if not _own_recording(c.id, playing))
        if to_record:
            tip, spoken[said.tip_at] = TIP_LEFT_OUT, []
    clips = tuple(c for part in spoken for c in part)
    sources = Counter(_source(c, language, playing) for c in {c.id for c in clips}) if session is not None else {}
    return Script(clips, tuple(" ".join(c.text for c in part) for part in spoken if part), said.prices,
                  said.week_of, language, language if catalog.has_language(language) else langs.FRENCH, tip,
                  to_record, tuple(sorted(sources.items())))


def tip_clips(*, language: str, catalog: Catalog, data) -> list[Clip]:
    """The clips of every tip's words in `language`, as a bulletin says them (the studio lists them
    for a voice-only language: its bulletin says a tip only once they are recorded)."""
    renderer = VoiceRenderer(catalog, DataNames(data))
    return [c for tip in all_tips(data) for part in tip_words(tip, language) for c in renderer.speak(part, language)]


class NoSuchBulletin(LookupError):
    """No bulletin for this region or language: `what` is "region" or "language"."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def make(session: Session, *, region: str, language: str, today: dt.date, catalog: Catalog, data,
         prompt_audio: PromptAudio | None = None) -> BulletinAudio:
    """The bulletin as an MP3; NoSuchBulletin for a region that is not active or a language that
    is not an enabled voice language (nothing made)."""
    if region not in regions(session):
        raise NoSuchBulletin("region")
    if language not in languages(data):
        raise NoSuchBulletin("language")
    said = script(region=region, language=language, today=today, catalog=catalog, data=data, session=session)
    digest = (prompt_audio or PromptAudio()).playlist(session, said.clips, fallbacks(data))
    wav = prompts.audio_bytes(session, digest)
    return BulletinAudio(audio.to_mp3(wav), audio.duration_s(wav), said.prices, said.week_of,
                         " ".join(c.text for c in said.clips))


def download_name(region: str, language: str, week_of: dt.date) -> str:
    """The MP3's file name: sugu-sikasso-bm-2026-11-23.mp3."""
    slug = re.sub(r"[^a-z0-9]+", "-", to_ussd(region).lower()).strip("-")
    return f"sugu-{slug}-{language}-{week_of:%Y-%m-%d}.mp3"
