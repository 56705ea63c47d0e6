"""Console pages: the recording studio (issue 16 items 4 and 6). Every clip the voice menus can
play, per language (every enabled voice language: console → Languages), with what it plays
now — a staff recording (reviewed, or waiting for another editor's review), the recording of a
fallback language borrowed for a word or name (French for Bambara; for a staff-added language,
its fallback's, named per clip), a synthetic stand-in, or nothing yet —, the next one still to record, recorded in the browser or uploaded as
a file, each clip's revisions, and the review of a new recording (listen, approve or reject).

The clips come from `menus.voice.inventory` (the menus' texts, names from the data, numbers),
and, for a voice-only language, the tips' words (its radio bulletin says a tip only once they
are recorded: gateway.voice.bulletin), never from a form: staff record the words the menus say,
and cannot make up a clip."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from gateway.admin.core import (
    UTC,
    Editor,
    Form,
    back_to,
    current_staff,
    db_of,
    flash,
    language_of,
    now_of,
    path_for,
    render,
    settings_of,
    tr,
)
from gateway.core.deps import DbId
from gateway.data import auth, models
from gateway.data.content import current_catalog
from gateway.data.dataview import CachedDataView, SqlDataView
from gateway.voice import bulletin, prompts
from menus.types import Language
from menus.voice import Clip, inventory
from messages import staff as staff_text
from messages.voice import audio

router = APIRouter(prefix="/admin", include_in_schema=False)

# What a clip plays now, best first: its own recording (recorded in the browser or uploaded),
# approved by another editor or still to review (it plays meanwhile, as an edited text does:
# gateway.voice.prompts); a fallback language's recording, for a word or name not yet recorded
# (gateway.voice.prompts.resolve: French for Bambara); its own synthetic stand-in ("synthetic — record me");
# nothing yet (made by the speech engine when a call first needs it).
REVIEWED, TO_REVIEW, BORROWED, SYNTHETIC, MISSING = "reviewed", "to_review", "borrowed", "synthetic", "missing"
STATUSES = (REVIEWED, TO_REVIEW, BORROWED, SYNTHETIC, MISSING)
RECORDED = (REVIEWED, TO_REVIEW)  # the clip has its own recording
# The list's filter: one status, everything still to record (all but RECORDED), or all.
TODO, ALL = "todo", "all"
SHOW = (ALL, TODO, *STATUSES)

# What a clip is, from the second part of its id ("bm.crop.3"), in English, translated when
# shown (French in messages/catalog/staff/fr/studio.toml; tests/test_studio.py checks each).
KIND_LABELS = {
    "text": "menu text",
    "crop": "crop name",
    "market": "market name",
    "region": "region name",
    "unit": "unit",
    "kind": "price kind",
    "buyer": "buyer name",
    "num": "number",
    "month": "month",
    "scale": "hundred, thousand, million",
    "word": "word said with numbers",
    "say": "words written by staff",
    "language": "language name",
}

MAX_SECONDS = prompts.MAX_CLIP_SECONDS
# The form's other fields and the multipart headers travel with the file: the file itself must
# leave them room under the console's body limit, or the limit answers before this page can say why.
FORM_ALLOWANCE_BYTES = 16_384
CLIPS_PER_PAGE = 60
ACCEPT = ",".join(["audio/*", ".wav", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".webm"])


def max_audio_bytes(request: Request) -> int:
    return max(1024, settings_of(request).max_upload_bytes - FORM_ALLOWANCE_BYTES)


# -- what there is to record, and what plays ---------------------------------------------------------


@dataclass(frozen=True)
class ClipState:
    clip: Clip
    status: str
    plays: models.AudioPrompt | None  # what a call plays now (None: nothing yet)
    borrowed_from: str | None  # the fallback's clip that stands in ("fr.crop.3"), when status is BORROWED
    own: models.AudioPrompt | None  # the clip's own newest revision, of any source

    @property
    def id(self) -> str:
        return self.clip.id

    @property
    def language(self) -> str:
        return self.clip.id.split(".", 1)[0]

    @property
    def borrowed_language(self) -> str:
        """The language whose recording stands in ("fr", "bm"), or "" when none does."""
        return self.borrowed_from.split(".", 1)[0] if self.borrowed_from else ""

    @property
    def kind(self) -> str:
        return kind_of(self.clip.id)

    @property
    def key(self) -> str:
        """The catalog key of a menu text's clip ("fr.text.prices.detail.2" -> "prices.detail")."""
        return self.clip.id.split(".", 2)[2].rsplit(".", 1)[0] if self.kind == "text" else ""

    @property
    def recorded(self) -> bool:
        return self.status in RECORDED

    @property
    def words_changed(self) -> bool:
        """A staff recording of other words: the catalog's text was edited since."""
        own = self.own
        return own is not None and own.source != prompts.SYNTHETIC and own.text.strip() != self.clip.text.strip()


def kind_of(clip_id: str) -> str:
    parts = clip_id.split(".")
    return parts[1] if len(parts) > 1 else ""


def configured_languages(request: Request, session: Session) -> tuple[Language, ...]:
    return tuple(CachedDataView(session, request.app.state.content_cache).languages())


def voice_languages(request: Request, session: Session) -> tuple[str, ...]:
    """Every language calls are offered in (enabled, voice), in the menus' order."""
    return tuple(lang.code for lang in configured_languages(request, session) if lang.enabled and lang.voice)


def language_names(request: Request, session: Session) -> dict[str, str]:
    """Staff's names of the configured languages, for word("language", code) in templates."""
    return {lang.code: lang.name_fr or lang.name for lang in configured_languages(request, session)}


def fallbacks(request: Request, session: Session) -> dict[str, tuple[str, ...]]:
    return prompts.fallback_chains(configured_languages(request, session))


def active_regions(session: Session) -> list[str]:
    r = models.Region
    return list(session.exec(select(r.name_fr).where(r.active).order_by(r.sort_order, r.name_fr)).all())


def clips_of(request: Request, session: Session, lang: str) -> list[Clip]:
    """Every clip the voice menus can play in `lang`, in the studio's order (a voice-only
    language's: then its tips' words, for its radio bulletin). Kept for the content cache's time
    to live: building it reads the catalog, names and number rules (~50 ms)."""
    def load() -> list[Clip]:
        catalog = current_catalog(session, request.app.state.content_cache)
        data = SqlDataView(session)
        clips = inventory(catalog, lang, data, active_regions(session), today=now_of(request).date())
        if not catalog.has_language(lang):
            known = {c.id for c in clips}
            for clip in bulletin.tip_clips(language=lang, catalog=catalog, data=data):
                if clip.id not in known:
                    known.add(clip.id)
                    clips.append(clip)
        return clips

    return request.app.state.content_cache.get(("voice-inventory", lang), load)


def states(session: Session, clips: list[Clip], fallbacks: prompts.Fallbacks | None = None) -> list[ClipState]:
    ids = [c.id for c in clips]
    playing = prompts.resolve(session, ids, fallbacks)
    own = prompts.latest(session, ids)
    out = []
    for clip in clips:
        row, borrowed = playing.get(clip.id, (None, None))
        if row is None:
            status = MISSING
        elif borrowed:
            status = BORROWED
        elif row.source == prompts.SYNTHETIC:
            status = SYNTHETIC
        else:
            status = REVIEWED if row.review == prompts.APPROVED else TO_REVIEW
        out.append(ClipState(clip, status, row, borrowed, own.get(clip.id)))
    return out


def summary(found: list[ClipState]) -> dict[str, Any]:
    """How many clips are recorded and reviewed, recorded and waiting for review, borrowed,
    synthetic only, missing, of how many; and each share in percent (for the bars)."""
    by_status = Counter(s.status for s in found)
    numbers = {status: by_status.get(status, 0) for status in STATUSES}
    total = len(found) or 1
    return {**numbers, "total": len(found), "percent": {s: round(100 * numbers[s] / total, 1) for s in STATUSES}}


def every_state(request: Request, session: Session) -> dict[str, list[ClipState]]:
    chains = fallbacks(request, session)
    return {lang: states(session, clips_of(request, session, lang), chains)
            for lang in voice_languages(request, session)}


def coverage(request: Request, session: Session) -> dict[str, dict[str, Any]]:
    """Per language, the summary of its clips (the dashboard's panel, the studio's bars)."""
    return {lang: summary(found) for lang, found in every_state(request, session).items()}


def clip_or_404(request: Request, session: Session, clip_id: str) -> Clip:
    lang = clip_id.split(".", 1)[0]
    offered = voice_languages(request, session)
    found = next((c for c in clips_of(request, session, lang) if c.id == clip_id), None) if lang in offered else None
    if found is None:
        raise HTTPException(404, "No such voice prompt.")
    return found


def revision_or_404(request: Request, session: Session, clip_id: str, revision_id: int) -> models.AudioPrompt:
    """A revision of a clip the menus can play (another clip's revision is not found here)."""
    clip_or_404(request, session, clip_id)
    row = session.get(models.AudioPrompt, revision_id)
    if row is None or row.clip != clip_id:
        raise HTTPException(404, "No such revision.")
    return row


def _language(request: Request, offered: tuple[str, ...]) -> str:
    lang = request.query_params.get("lang", "")
    return lang if lang in offered else offered[0]


def _kind_labels(request: Request) -> dict[str, str]:
    return {kind: tr(request, label) for kind, label in KIND_LABELS.items()}


# -- the studio: coverage and the next clip to record -------------------------------------------------


def _next_to_record(found: list[ClipState], after: str) -> ClipState | None:
    """The first clip still to record after `after` (in inventory order, from the start again
    when none is left after it), or None when every clip has its own recording."""
    todo = [(i, s) for i, s in enumerate(found) if not s.recorded]
    if not todo:
        return None
    position = next((i for i, s in enumerate(found) if s.id == after), -1)
    return next((s for i, s in todo if i > position), todo[0][1])


def _studio_page(request: Request, lang: str, clip_id: str = "", after: str = "", errors: dict | None = None,
                 status_code: int = 200):
    with db_of(request).unit_of_work() as session:
        every = every_state(request, session)
        names = language_names(request, session)
    found = every[lang]
    current = next((s for s in found if s.id == clip_id), None) or _next_to_record(found, after)
    cover = {language: summary(those) for language, those in every.items()}
    return render(request, "studio.html", {
        "cover": cover, "current": current, "languages": tuple(every), "language_names": names,
        "kinds": _kind_labels(request), "errors": errors or {}, "statuses": STATUSES,
        "max_seconds": int(MAX_SECONDS), "max_bytes": max_audio_bytes(request), "accept": ACCEPT,
        "voice_lang": lang,
    }, status_code=status_code)


@router.get("/studio", name="admin_studio")
def studio_page(request: Request, staff: Editor):
    q = request.query_params
    with db_of(request).unit_of_work() as session:
        lang = _language(request, voice_languages(request, session))
    return _studio_page(request, lang, q.get("clip", "")[:160], q.get("after", "")[:160])


# -- every clip of a language: search, filter, pages ----------------------------------------------------


def _matches(s: ClipState, show: str, kind: str, needle: str) -> bool:
    if show == TODO and s.recorded or show in STATUSES and s.status != show:
        return False
    if kind and s.kind != kind:
        return False
    return not needle or needle in s.clip.text.casefold() or needle in s.id.casefold()


@router.get("/studio/clips", name="admin_studio_clips")
def clips_page(request: Request, staff: Editor):
    params = request.query_params
    show = params.get("show", ALL)
    show = show if show in SHOW else ALL
    kind = params.get("kind", "")
    kind = kind if kind in KIND_LABELS else ""
    q = params.get("q", "").strip()[:100]
    with db_of(request).unit_of_work() as session:
        offered = voice_languages(request, session)
        lang = _language(request, offered)
        found = states(session, clips_of(request, session, lang), fallbacks(request, session))
        names = language_names(request, session)
    rows = [s for s in found if _matches(s, show, kind, q.casefold())]
    pages = max(1, -(-len(rows) // CLIPS_PER_PAGE))
    raw_page = params.get("page", "1")
    page = min(int(raw_page), pages) if raw_page.isdigit() and len(raw_page) <= 4 and int(raw_page) > 0 else 1
    query = {"lang": lang, "q": q, "kind": kind, "show": show}
    link = lambda n: path_for(request, "admin_studio_clips") + "?" + urlencode({**query, "page": n})  # noqa: E731
    return render(request, "studio_clips.html", {
        "voice_lang": lang, "languages": offered, "language_names": names,
        "rows": rows[(page - 1) * CLIPS_PER_PAGE: page * CLIPS_PER_PAGE],
        "found": len(rows), "total": len(found), "show": show, "shows": SHOW, "kind": kind,
        "kinds": _kind_labels(request), "present_kinds": sorted({s.kind for s in found}, key=list(KIND_LABELS).index),
        "q": q, "filtered": bool(q or kind or show != ALL), "page": page, "pages": pages,
        "previous": link(page - 1) if page > 1 else "", "next": link(page + 1) if page < pages else "",
    })


# -- one clip: what it plays, its revisions ------------------------------------------------------------


# A revision's review as the clip page shows it: a synthetic one has none; a pending one is "to
# review" while it is what the clip plays, "replaced" once a newer revision plays instead.
REPLACED = "replaced"


def _review_of(row: models.AudioPrompt, playing_id: int | None) -> str:
    if row.review == prompts.PENDING and row.id != playing_id:
        return REPLACED
    return row.review


def _revisions(session: Session, clip_id: str, playing_id: int | None) -> list[dict[str, Any]]:
    p, staff, blob = models.AudioPrompt, models.StaffUser, models.AudioBlob
    rows = session.exec(
        select(p, staff.email, blob.duration_ms)
        .join(staff, col(staff.id) == col(p.staff_id), isouter=True)
        .join(blob, col(blob.hash) == col(p.audio_hash), isouter=True)
        .where(p.clip == clip_id).order_by(col(p.revision).desc()).limit(50)
    ).all()
    return [{"row": row, "email": email, "seconds": (ms or 0) / 1000, "review": _review_of(row, playing_id)}
            for row, email, ms in rows]


def _clip_page(request: Request, clip_id: str, errors: dict | None = None, status_code: int = 200):
    staff = current_staff(request)
    with db_of(request).unit_of_work() as session:
        clip = clip_or_404(request, session, clip_id)
        chains = fallbacks(request, session)
        state = states(session, [clip], chains)[0]
        playing = state.own.id if state.own is not None else None
        revisions = _revisions(session, clip_id, playing)
        twin = None
        for twin_id in prompts.twins(clip_id, chains):  # the nearest fallback that has the clip
            twin_lang = twin_id.split(".", 1)[0]
            twin_clip = next((c for c in clips_of(request, session, twin_lang) if c.id == twin_id), None)
            if twin_clip is not None:
                twin = states(session, [twin_clip], chains)[0]
                break
        names = language_names(request, session)
    # The revision that waits for review, who made it, and whether this staff member may review it.
    pending = next((r for r in revisions if r["review"] == prompts.PENDING), None)
    return render(request, "studio_clip.html", {
        "s": state, "revisions": revisions, "twin": twin, "kinds": _kind_labels(request), "errors": errors or {},
        "max_seconds": int(MAX_SECONDS), "max_bytes": max_audio_bytes(request), "accept": ACCEPT,
        "voice_lang": state.language, "language_names": names, "pending": pending,
        "may_review": pending is not None and staff is not None and pending["row"].staff_id != staff.id,
    }, status_code=status_code)


@router.get("/studio/clips/{clip}", name="admin_studio_clip")
def clip_page(request: Request, clip: str, staff: Editor):
    return _clip_page(request, clip)


# -- saving a recording ----------------------------------------------------------------------------------

# Why an upload was refused, by reason (AudioError's reasons, and the checks made before
# decoding): English, translated where it is shown. Every reason has its French (test_studio.py).
REFUSALS = {
    "missing": "Choose a file to upload, or record one.",
    "empty": "The file is empty: nothing was recorded.",
    "too_big": "The file is too large ({size} MB; at most {max} MB): record a shorter prompt, or save it as mp3.",
    "type": "The file says it is {declared} but its content is {found}: upload a wav, mp3, ogg, m4a or webm file as it is.",
    "unreadable": "This is not audio that can be read: upload a wav, mp3, ogg, m4a or webm file.",
    "too_long": "Longer than {max} seconds once the silence around it is cut: record a shorter prompt.",
    "silent": "Nothing can be heard in this recording: check the microphone and record again.",
}


class Refused(Exception):
    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


def _megabytes(request: Request, n: int) -> str:
    return staff_text.number(round(n / 1_000_000, 1), language_of(request))


async def _audio_of(request: Request) -> bytes:
    """The upload's bytes, once its size and its declared and sniffed types agree (Refused)."""
    upload = (await request.form()).get("audio")
    if not isinstance(upload, UploadFile):
        raise Refused("missing")
    limit = max_audio_bytes(request)
    data = await upload.read(limit + 1)
    if not data:
        raise Refused("empty")
    if len(data) > limit:
        raise Refused("too_big", size=_megabytes(request, max(len(data), upload.size or 0)),
                      max=_megabytes(request, limit))
    found = audio.sniff(data)
    if found is None:
        raise Refused("unreadable")
    declared = (upload.content_type or "").split(";", 1)[0].strip().lower()
    if not audio.declared_type_matches(data, upload.content_type or ""):
        raise Refused("type", declared=declared or "?", found=found)
    return data


@router.post("/studio/clips/{clip}", name="admin_studio_save")
async def studio_save(request: Request, clip: str, staff: Editor, form: Form):
    """A recording (posted by the studio's script) or an uploaded file (the plain form) becomes
    the clip's new revision: checked, normalised once (in the thread pool: ~0.3 s of CPU for a
    minute), stored, audited. A refused file stores nothing and says why beside the field."""
    if any("\x00" in value for value in form.values()):
        # The console's NUL guard leaves this route's multipart body to it (the audio is binary).
        raise HTTPException(400, "The request contains a NUL character.")
    wants_json = "application/json" in request.headers.get("accept", "")
    back = form.get("back", "studio")
    source = prompts.RECORDED if form.get("source") == prompts.RECORDED else prompts.UPLOADED
    db = db_of(request)

    def words() -> Clip:
        with db.unit_of_work() as session:
            return clip_or_404(request, session, clip)

    said = await run_in_threadpool(words)
    lang = clip.split(".", 1)[0]
    try:
        raw = await _audio_of(request)
        try:
            data = await run_in_threadpool(lambda: audio.normalise(raw, max_seconds=MAX_SECONDS))
        except audio.AudioError as error:
            reason = error.reason if error.reason in REFUSALS else "unreadable"
            raise Refused(reason, max=int(MAX_SECONDS)) from error
    except Refused as refused:
        message = tr(request, REFUSALS[refused.reason], **refused.params)
        errors = {"audio": message, "reason": refused.reason}
        if wants_json:
            return JSONResponse({"error": message, "reason": refused.reason}, status_code=400)
        if back == "clip":
            return _clip_page(request, clip, errors, status_code=400)
        return _studio_page(request, lang, clip_id=clip, errors=errors, status_code=400)

    now = now_of(request).astimezone(UTC)

    def store() -> int:
        with db.unit_of_work() as session:
            row = prompts.save_prompt(session, clip=clip, language=lang, data=data, source=source, text=said.text,
                                      staff_id=staff.id)
            row.created_at = now  # the console's clock, as every other record staff make
            session.add(row)
            auth.audit(session, staff, action="create", entity="voice_prompt", entity_id=clip,
                       after={"revision": row.revision, "source": source, "audio_hash": row.audio_hash,
                              "seconds": round(audio.duration_s(data), 2), "text": said.text}, now=now)
            return row.revision

    revision = await run_in_threadpool(store)
    flash(request, "Saved: revision {revision} of this prompt now plays on calls. Another editor must listen to it and approve it.",
          revision=revision)
    if back == "clip":
        target = path_for(request, "admin_studio_clip", clip=clip)
    else:
        target = path_for(request, "admin_studio") + "?" + urlencode({"lang": lang, "after": clip})
    if wants_json:
        return JSONResponse({"next": target, "revision": revision})
    return RedirectResponse(target, status_code=303)


@router.post("/studio/clips/{clip}/restore/{revision_id}", name="admin_studio_restore")
async def studio_restore(request: Request, clip: str, revision_id: DbId, staff: Editor, form: Form):
    """An older revision plays again, as a new revision (the history keeps every step)."""
    now = now_of(request).astimezone(UTC)
    db = db_of(request)

    def restore() -> int:
        with db.unit_of_work() as session:
            old = revision_or_404(request, session, clip, revision_id)
            if old.review == prompts.REJECTED:
                raise HTTPException(409, "A rejected recording cannot play again: record a new one.")
            data = prompts.audio_bytes(session, old.audio_hash)
            if data is None:
                raise HTTPException(404, "No such revision.")
            before = prompts.latest(session, [clip]).get(clip)
            row = prompts.save_prompt(session, clip=clip, language=old.language, data=data, source=old.source,
                                      text=old.text, staff_id=staff.id)
            row.created_at = now
            if old.review == prompts.APPROVED:
                # The same audio, already approved: its review stands (who and when it was given).
                row.review, row.reviewed_by, row.reviewed_at = old.review, old.reviewed_by, old.reviewed_at
            session.add(row)
            auth.audit(session, staff, action="edit", entity="voice_prompt", entity_id=clip,
                       before={"revision": before.revision, "audio_hash": before.audio_hash} if before else None,
                       after={"revision": row.revision, "restored": old.revision, "audio_hash": row.audio_hash,
                              "review": row.review}, now=now)
            return old.revision

    restored = await run_in_threadpool(restore)
    flash(request, "Revision {revision} plays again.", revision=restored)
    return back_to(request, "admin_studio_clip", clip=clip)



# -- reviewing a recording -------------------------------------------------------------------------------

# Why a review was refused (gateway.voice.prompts.ReviewRefused), in English, translated when shown.
REVIEW_REFUSALS = {
    "own": (403, "Another editor must review your recording."),
    "not_recording": (409, "Only a staff recording is reviewed, not a synthetic voice."),
    "decided": (409, "This recording was already reviewed."),
    "not_current": (409, "A newer revision plays instead of this one: review that one."),
}
VERDICTS = {"approve": prompts.APPROVED, "reject": prompts.REJECTED}
MAX_NOTE_CHARS = 200


@router.post("/studio/clips/{clip}/review/{revision_id}", name="admin_studio_review")
async def studio_review(request: Request, clip: str, revision_id: DbId, staff: Editor, form: Form):
    """Another editor approves the recording a clip plays (it keeps playing, reviewed) or
    rejects it (calls go back at once to what played before it); audited."""
    verdict = VERDICTS.get(form.get("verdict", ""))
    if verdict is None:
        raise HTTPException(400, "Approve or reject.")
    note = form.get("note", "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise HTTPException(400, "The reason is longer than 200 characters.")
    now = now_of(request).astimezone(UTC)
    db = db_of(request)

    def decide() -> int:
        with db.unit_of_work() as session:
            row = revision_or_404(request, session, clip, revision_id)
            try:
                prompts.review(session, row, verdict=verdict, staff_id=staff.id, staff_email=staff.email, note=note,
                               now=now)
            except prompts.ReviewRefused as refused:
                status, detail = REVIEW_REFUSALS[refused.reason]
                raise HTTPException(status, detail) from None
            auth.audit(session, staff, action="approve" if verdict == prompts.APPROVED else "reject", entity="voice_prompt", entity_id=clip,
                       before={"revision": row.revision, "review": prompts.PENDING},
                       after={"revision": row.revision, "review": verdict, "note": row.review_note,
                              "audio_hash": row.audio_hash}, now=now)
            return row.revision

    revision = await run_in_threadpool(decide)
    if verdict == prompts.APPROVED:
        flash(request, "Revision {revision} approved.", revision=revision)
    else:
        flash(request, "Revision {revision} rejected: calls no longer play it.", revision=revision)
    return back_to(request, "admin_studio_clip", clip=clip)
