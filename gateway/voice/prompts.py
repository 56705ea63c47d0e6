"""The audio a prompt plays: each clip's newest recording (or, until someone records it, a
synthetic one made here once and stored, flagged for the studio), joined into one file per
distinct playlist, stored and served by its hash.

Recordings are reviewed as texts are: a new one plays at once while it waits for another
editor's approval (a person's voice, even unreviewed, beats the synthetic one, and staff texts
also reach farmers before review); a rejected one never plays again, and the clip goes back to
what it played before (an older recording, the French one it borrows, or the synthetic voice).

A playlist's name is the hash of its clips' audio hashes: the same prompt with the same
recordings is joined once, on any process, and a new recording of any clip makes a new name (so
a cached file never goes stale). In-process, the clips -> playlist answer is kept for a minute,
so that a busy prompt (the main menu) costs one dictionary lookup; a new recording is heard
within that minute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Callable, Mapping, Sequence

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from gateway.data import models
from gateway.data.producers import insert_ignore
from menus import languages as langs
from menus.types import Language
from menus.voice import Clip
from messages.voice import audio

log = logging.getLogger("gateway.voice")

GAP_MS = 120  # between two clips of a prompt
MAX_CLIP_SECONDS = 60.0
SYNTHETIC, RECORDED, UPLOADED = "synthetic", "recorded", "uploaded"
# A staff recording's review (AudioPrompt.review); a synthetic prompt has none ("").
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"

Synthesize = Callable[[str, str], bytes]
# Per language, the languages whose recordings stand in for its words and names, nearest first
# (menus.languages.fallbacks); a language it does not name borrows French.
Fallbacks = Mapping[str, Sequence[str]]


class NoAudio(RuntimeError):
    """A clip has no recording and no synthetic stand-in can be made (no speech engine)."""


def _default_synthesize(text: str, lang: str) -> bytes:
    from messages.voice import synth  # loads eSpeak NG on first use only

    return synth.synthesize(text, lang)


def store_blob(session: Session, data: bytes) -> str:
    """Keep `data` under its content hash (once, whoever races); the hash."""
    digest = audio.content_hash(data)
    insert_ignore(session, models.AudioBlob, {
        "hash": digest, "mime": audio.PLAY_CONTENT_TYPE, "size": len(data),
        "duration_ms": round(audio.duration_s(data) * 1000), "data": data,
    }, ["hash"])
    return digest


def latest(session: Session, clips: Sequence[str]) -> dict[str, models.AudioPrompt]:
    """The newest revision of each clip that has one, rejected ones left out (they never play)."""
    if not clips:
        return {}
    p = models.AudioPrompt
    newest = (
        select(p.clip, func.max(p.revision).label("revision"))
        .where(col(p.clip).in_(sorted(set(clips))), p.review != REJECTED)
        .group_by(p.clip)
        .subquery()
    )
    rows = session.exec(
        select(p).join(newest, (p.clip == newest.c.clip) & (p.revision == newest.c.revision))
    ).all()
    return {row.clip: row for row in rows}


# Clips another language's recording may stand in for while a language's own is missing (French
# for Bambara; a staff-added language's fallback): words and names. Never numbers (Bambara counts
# money in 5-franc units, so "fr.num.70" is not "bm.num.70"; a language without number rules
# says its fallback's number clips themselves), nor a language's own name ("ff.language").
BORROWABLE = frozenset({"text", "crop", "market", "region", "unit", "kind", "buyer"})


def fallback_chains(languages: Sequence[Language]) -> dict[str, tuple[str, ...]]:
    """Fallbacks for every configured language (for resolve and PromptAudio.playlist)."""
    return {lang.code: langs.fallbacks(lang.code, languages) for lang in languages}


def _chain(language: str, fallbacks: Fallbacks | None) -> Sequence[str]:
    found = fallbacks.get(language) if fallbacks is not None else None
    return found if found is not None else (("fr",) if language != "fr" else ())


def twin(clip: str, language: str = "fr") -> str | None:
    """The same clip in `language` ("bm.crop.3" -> "fr.crop.3"), when one may stand in."""
    lang, _, rest = clip.partition(".")
    kind = rest.partition(".")[0]
    return f"{language}.{rest}" if lang != language and kind in BORROWABLE else None


def twins(clip: str, fallbacks: Fallbacks | None = None) -> list[str]:
    """The clips that may stand in for `clip`, nearest language first."""
    chain = _chain(clip.partition(".")[0], fallbacks)
    return [t for language in chain if (t := twin(clip, language)) is not None]


def resolve(session: Session, clips: Sequence[str], fallbacks: Fallbacks | None = None
            ) -> dict[str, tuple[models.AudioPrompt, str | None]]:
    """What each clip plays: its own newest recording; else, for words and names, the recording
    of the same clip in its language's fallbacks, nearest first (French for Bambara; said as
    borrowed: the second item names it); else its own synthetic stand-in. A clip with none of
    these is left out (to be synthesized)."""
    wanted = set(clips)
    stand_ins = {c: twins(c, fallbacks) for c in wanted}
    found = latest(session, [*wanted, *(t for ts in stand_ins.values() for t in ts)])
    out: dict[str, tuple[models.AudioPrompt, str | None]] = {}
    for clip in wanted:
        own = found.get(clip)
        borrowed = next((row for t in stand_ins[clip] if (row := found.get(t)) is not None and row.source != SYNTHETIC),
                        None)
        if own is not None and own.source != SYNTHETIC:
            out[clip] = (own, None)
        elif borrowed is not None:
            out[clip] = (borrowed, borrowed.clip)
        elif own is not None:
            out[clip] = (own, None)
    return out


def _next_revision(session: Session, clip: str) -> int:
    p = models.AudioPrompt
    return (session.exec(select(func.max(p.revision)).where(p.clip == clip)).one() or 0) + 1


def save_prompt(session: Session, *, clip: str, language: str, data: bytes, source: str, text: str,
                staff_id: int | None) -> models.AudioPrompt:
    """A new revision of `clip` (audio already in the telephone format); a staff recording
    waits for review."""
    digest = store_blob(session, data)
    row = models.AudioPrompt(clip=clip, language=language, revision=_next_revision(session, clip),
                             audio_hash=digest, source=source, text=text, staff_id=staff_id,
                             review="" if source == SYNTHETIC else PENDING)
    session.add(row)
    session.flush()
    return row


class ReviewRefused(ValueError):
    """Why a revision cannot be reviewed by this staff member now: `reason` is one of
    "not_recording", "not_current", "decided", "own"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def review(session: Session, row: models.AudioPrompt, *, verdict: str, staff_id: int, staff_email: str,
           note: str = "", now: dt.datetime) -> None:
    """Approve or reject a staff recording: only the revision the clip plays now (the newest not
    rejected), only while it waits, and never by whoever made it (ReviewRefused, nothing
    changed). A rejected revision stops playing at once."""
    if verdict not in (APPROVED, REJECTED):
        raise ValueError(f"verdict: {verdict!r}")
    if row.source == SYNTHETIC:
        raise ReviewRefused("not_recording")
    if row.review != PENDING:
        raise ReviewRefused("decided")
    current = latest(session, [row.clip]).get(row.clip)
    if current is None or current.id != row.id:
        raise ReviewRefused("not_current")
    if row.staff_id is not None and row.staff_id == staff_id:
        raise ReviewRefused("own")
    # Only while it still waits: of two reviewers at once, one decides and the other is told so.
    p = models.AudioPrompt
    decided = session.exec(
        update(p).where(col(p.id) == row.id, col(p.review) == PENDING)
        .values(review=verdict, reviewed_by=staff_email, reviewed_at=now, review_note=note.strip()[:200])
        .returning(p.id)
    ).first()
    if decided is None:
        raise ReviewRefused("decided")
    session.refresh(row)


class PromptAudio:
    """Playlists for prompts. One per process; thread-safe."""

    def __init__(self, synthesize: Synthesize | None = None, *, cache_s: float = 60.0, cache_size: int = 4096) -> None:
        self.synthesize = synthesize or _default_synthesize
        self.cache_s = cache_s
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, ...], tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def playlist(self, session: Session, clips: Sequence[Clip], fallbacks: Fallbacks | None = None) -> str:
        """The hash of the audio that says `clips`, in order (joined and stored when new);
        `fallbacks`: see resolve."""
        key = tuple(c.id for c in clips)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self.cache_s:
                self._cache.move_to_end(key)
                return hit[1]
        digest = self._build(session, clips, fallbacks)
        with self._lock:
            self._cache[key] = (now, digest)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return digest

    def _build(self, session: Session, clips: Sequence[Clip], fallbacks: Fallbacks | None) -> str:
        found = {clip: row for clip, (row, _) in resolve(session, [c.id for c in clips], fallbacks).items()}
        for clip in clips:
            if clip.id not in found:
                found[clip.id] = self._synthetic(session, clip, fallbacks)
        hashes = [found[c.id].audio_hash for c in clips]
        name = hashlib.sha256(("playlist:" + ",".join(hashes)).encode()).hexdigest()
        if session.get(models.AudioBlob, name) is not None:
            return name
        blobs = {b.hash: b.data for b in session.exec(
            select(models.AudioBlob).where(col(models.AudioBlob.hash).in_(sorted(set(hashes))))
        ).all()}
        joined = audio.join([blobs[h] for h in hashes], gap_ms=GAP_MS)
        insert_ignore(session, models.AudioBlob, {
            "hash": name, "mime": audio.PLAY_CONTENT_TYPE, "size": len(joined),
            "duration_ms": round(audio.duration_s(joined) * 1000), "data": joined,
        }, ["hash"])
        return name

    def _synthetic(self, session: Session, clip: Clip, fallbacks: Fallbacks | None = None) -> models.AudioPrompt:
        language = clip.id.split(".", 1)[0]
        try:
            raw = self.synthesize(clip.text, _voice_for(language, fallbacks))
            data = audio.normalise(raw, max_seconds=MAX_CLIP_SECONDS)
        except Exception as exc:  # no engine, or nothing it could say: the prompt cannot be made
            raise NoAudio(f"no audio for clip {clip.id}: {exc}") from exc
        digest = store_blob(session, data)
        # The next revision (1, unless a recording was rejected): two processes making it at
        # once keep one.
        insert_ignore(session, models.AudioPrompt, {
            "clip": clip.id, "language": language, "revision": _next_revision(session, clip.id),
            "audio_hash": digest, "source": SYNTHETIC, "text": clip.text,
        }, ["clip", "revision"])
        return latest(session, [clip.id])[clip.id]


def _voice_for(language: str, fallbacks: Fallbacks | None) -> str:
    """The speech engine's voice for a stand-in: the language's own, else its nearest fallback's
    (a staff-added language's clips carry its fallback's words until someone records them)."""
    from messages.voice import synth

    return next((lang for lang in (language, *_chain(language, fallbacks)) if lang in synth.VOICES), language)


def audio_bytes(session: Session, digest: str) -> bytes | None:
    blob = session.get(models.AudioBlob, digest)
    return None if blob is None else blob.data
