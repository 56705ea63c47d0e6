"""The weekly radio bulletin as an MP3 (menus/bulletin.py says what; this makes the audio from
the same clips as the voice menus: recordings where staff made them, else synthetic)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, select

from gateway.data import models
from gateway.voice import prompts
from gateway.voice.prompts import PromptAudio
from menus.bulletin import bulletin
from menus.voice import DataNames, VoiceRenderer
from messages import Catalog
from messages.voice import audio


@dataclass(frozen=True)
class BulletinAudio:
    mp3: bytes
    seconds: float
    prices: int  # price lines said
    week_of: dt.date
    words: str  # what it says, for the console and the radio station's presenter


def regions(session: Session) -> list[str]:
    """Active regions' French names, as markets name them."""
    r = models.Region
    return list(session.exec(select(r.name_fr).where(r.active == True).order_by(r.name_fr)).all())  # noqa: E712


def make(session: Session, *, region: str, language: str, today: dt.date, catalog: Catalog, data,
         prompt_audio: PromptAudio | None = None) -> BulletinAudio:
    said = bulletin(region, language, today, data)
    renderer = VoiceRenderer(catalog, DataNames(data))
    clips = [clip for part in said.parts for clip in renderer.speak(part, language)]
    digest = (prompt_audio or PromptAudio()).playlist(session, clips)
    wav = prompts.audio_bytes(session, digest)
    return BulletinAudio(audio.to_mp3(wav), audio.duration_s(wav), said.prices, said.week_of,
                         " ".join(c.text for c in clips))
