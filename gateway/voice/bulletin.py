"""The weekly radio bulletin as an MP3 (menus/bulletin.py says what; this makes the audio from
the same clips as the voice menus: recordings where staff made them, else synthetic)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlmodel import Session, select

from gateway.data import models
from gateway.voice import prompts
from gateway.voice.prompts import PromptAudio
from menus.bulletin import bulletin
from menus.voice import Clip, DataNames, VoiceRenderer
from messages import Catalog, to_ussd
from messages.voice import audio


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


def regions(session: Session) -> list[str]:
    """Active regions' French names, as markets name them."""
    r = models.Region
    return list(session.exec(select(r.name_fr).where(r.active == True).order_by(r.name_fr)).all())  # noqa: E712


def regions_by_code(session: Session) -> dict[str, str]:
    """Active regions, code -> French name, in the order of regions()."""
    r = models.Region
    rows = session.exec(select(r.code, r.name_fr).where(r.active == True).order_by(r.name_fr)).all()  # noqa: E712
    return dict(rows)


def script(*, region: str, language: str, today: dt.date, catalog: Catalog, data) -> Script:
    said = bulletin(region, language, today, data)
    renderer = VoiceRenderer(catalog, DataNames(data, today))
    spoken = [renderer.speak(part, language) for part in said.parts]
    return Script(tuple(c for clips in spoken for c in clips),
                  tuple(" ".join(c.text for c in clips) for clips in spoken if clips), said.prices, said.week_of)


def make(session: Session, *, region: str, language: str, today: dt.date, catalog: Catalog, data,
         prompt_audio: PromptAudio | None = None) -> BulletinAudio:
    said = script(region=region, language=language, today=today, catalog=catalog, data=data)
    digest = (prompt_audio or PromptAudio()).playlist(session, said.clips)
    wav = prompts.audio_bytes(session, digest)
    return BulletinAudio(audio.to_mp3(wav), audio.duration_s(wav), said.prices, said.week_of,
                         " ".join(c.text for c in said.clips))


def download_name(region: str, language: str, week_of: dt.date) -> str:
    """The MP3's file name: sugu-sikasso-bm-2026-11-23.mp3."""
    slug = re.sub(r"[^a-z0-9]+", "-", to_ussd(region).lower()).strip("-")
    return f"sugu-{slug}-{language}-{week_of:%Y-%m-%d}.mp3"
