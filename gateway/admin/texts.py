"""Console pages: every farmer-facing text, edited with a live phone preview, with revisions."""

from __future__ import annotations

import datetime as dt
import string
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlmodel import col, select

import menus
from gateway.admin.core import (
    UTC,
    Editor,
    Form,
    back_to,
    clear_content_cache,
    db_of,
    flash,
    language_of,
    now_of,
    paged,
    render,
    settings_of,
    tr,
)
from gateway.core.configs import engine_config
from gateway.core.deps import DbId
from gateway.data import auth, languages, models
from gateway.data.content import overrides
from gateway.data.dataview import SqlDataView
from messages import default_catalog, placeholders, to_ussd
from messages import staff as staff_text
from messages.catalog import (
    DEFAULT_LANGUAGE,
    SMS_SEGMENTS,
    is_sms_key,
    limit_problem,
    load_file_catalog,
    template_problem,
)
from messages.sms import measure, render_sms

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- messages --------------------------------------------------------------------------------------

# Where in the menus each key shows, so that the preview is the real screen.
SCREEN_PATHS = [
    ("lang.choose", None, ""), ("lang.", "fr", "6"), ("main.", "fr", ""), ("nav.", "fr", "1"),
    ("error.invalid_choice", "fr", "9"), ("error.no_more", "fr", "98"), ("error.quantity", "fr", "2*1*1*x"),
    ("error.text", "fr", "5*1*x"), ("prices.choose_crop", "fr", "1"), ("prices.all_markets", "fr", "1*1"),
    ("prices.choose_market", "fr", "1*1"), ("prices.all_title", "fr", "1*1*1"), ("prices.line", "fr", "1*1*1"),
    ("prices.", "fr", "1*1*2"), ("unit.", "fr", "1*1*2"), ("kind.", "fr", "1*1*2"), ("demands.supply", "fr", "2*1"),
    ("demands.detail", "fr", "2*1"), ("demands.", "fr", "2"), ("offer.ask_quantity", "fr", "2*1*1"),
    ("offer.thanks", "fr", "2*1*1*500*1"), ("offer.cancelled", "fr", "2*1*1*500*2"), ("offer.", "fr", "2*1*1*500"),
    ("common.", "fr", "2*1*1*500"), ("tips.", "fr", "3"), ("alerts.stop_confirm", "fr", "4*4"),
    ("alerts.subscribed", "fr", "4*2*1*1"), ("alerts.choose_market", "fr", "4*2*1"), ("alerts.choose_crop", "fr", "4*2"),
    ("alerts.", "fr", "4"), ("profile.ask", "fr", "5*1"), ("profile.saved", "fr", "5*1*Awa"), ("profile.", "fr", "5"),
    ("session.", "fr", "*".join(["1", "0"] * 25)),
]
SAMPLES = {
    "crop": "Tomate", "market": "Sikasso", "price": "14 000", "unit": "kg", "kind": "gros", "date": "28/11",
    "change": " +8%", "previous": "13 000", "previous_date": "21/11", "age": "", "days": "12", "weeks": "3",
    "buyer": "Lawal Int.", "quantity": "500", "place": "Sikasso", "until": "31/12/2026", "items": "Tomate Sikasso 28/11: 14 000F/kg (+8%)",
    "count": "2", "ussd": "*123#", "reason": "bien plus haut que d'habitude (13 500F)", "median": "13 500",
    "name": "Fulfulde", "number": "20 62 00 00",
}


def _screen_path(key: str) -> tuple[str | None, str] | None:
    for prefix, lang, path in SCREEN_PATHS:
        if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
            return lang, path
    return None


def preview(request: Request, key: str, language: str, text: str) -> dict[str, Any]:
    """The message as a phone shows it: the real USSD screen it appears in (real engine, real
    data) and, for SMS texts, the encoding and segments."""
    settings = settings_of(request)
    result: dict[str, Any] = {"ussd_limit": settings.ussd_max_chars}
    sample = _sample(text) if template_problem(text) is None else text
    sms_text = render_sms(sample, language, fold=settings.sms_fold)
    encoding = measure(sms_text)
    result.update(sms=sms_text, encoding=encoding.encoding, segments=encoding.segments, units=encoding.units)
    where = _screen_path(key)
    if where is not None and not key.startswith(("sms.", "alert.")):
        with db_of(request).unit_of_work() as session:
            catalog = default_catalog().with_overrides({**overrides(session), (language, key): text})
            first_lang, path = where
            profile = menus.Profile(phone="+22300000000", language=None if first_lang is None else language)
            screen = menus.run(
                path.split("*") if path else [],
                profile=profile,
                data=SqlDataView(session),
                catalog=catalog,
                now=now_of(request),
                config=engine_config(settings),
            )
        result.update(ussd=screen.text, ussd_chars=len(screen.text))  # as the handset shows it: no CON/END
    else:
        ussd = to_ussd(sample)
        result.update(ussd=ussd, ussd_chars=len(ussd))
    return result


def written(session) -> dict[str, str]:
    """code -> own name of every language farmers' texts are written in (console → Languages:
    marked written, with its catalog file), enabled or not; French first, then the menus' order."""
    found = languages.written(languages.rows(session), default_catalog())
    return {lang.code: lang.name for lang in sorted(found, key=lambda lang: lang.code != DEFAULT_LANGUAGE)}


def _message_rows(session, codes) -> list[dict]:
    files = {lang: load_file_catalog(lang) for lang in codes}
    rows = {(o.language, o.key): o for o in session.exec(select(models.MessageOverride))}
    out = []
    for key in sorted(files["fr"]):
        item = {"key": key, "section": key.split(".", 1)[0]}
        for lang in codes:
            override = rows.get((lang, key))
            item[lang] = override.text if override else files[lang].get(key, "")
            item[f"{lang}_reviewed"] = bool(override and override.reviewed)
            item[f"{lang}_edited"] = override is not None
            item[f"{lang}_missing"] = not item[lang].strip()
        item["edited"] = any(item[f"{lang}_edited"] for lang in codes)
        out.append(item)
    return out


# What the "Show" filter of the messages list keeps (Bambara is the language staff review).
SHOW = {
    "all": lambda r: True,
    "unreviewed": lambda r: not r.get("bm_reviewed"),
    "reviewed": lambda r: bool(r.get("bm_reviewed")),
    "missing": lambda r: r.get("bm_missing", True),
    "edited": lambda r: r["edited"],
}


MESSAGES_PER_PAGE = 60


@router.get("/messages", name="admin_messages")
def messages_page(request: Request, staff: Editor):
    show = request.query_params.get("show", "all")
    show = show if show in SHOW else "all"
    q = request.query_params.get("q", "").strip()[:100]
    section = request.query_params.get("section", "")
    with db_of(request).unit_of_work() as session:
        codes = written(session)
        every = _message_rows(session, codes)
    sections = sorted({r["section"] for r in every})
    section = section if section in sections else ""
    needle = q.casefold()
    rows = [
        r for r in every
        if SHOW[show](r) and (not section or r["section"] == section)
        and (not needle or any(needle in r[name].casefold() for name in ("key", *codes)))
    ]
    # Pages of MESSAGES_PER_PAGE: the whole catalog in one page weighed 94 kB on a phone.
    one_page = paged(request, rows, MESSAGES_PER_PAGE, "admin_messages", {"q": q, "section": section, "show": show})
    return render(request, "messages.html", {**one_page, "found": len(rows), "total": len(every), "show": show,
                                             "languages": list(codes.items()),
                                             "q": q, "section": section, "sections": sections,
                                             "filtered": bool(q or section or show != "all")})


def _message_form(request: Request, key: str, texts: dict, reviewed: dict, errors: dict, codes: dict[str, str],
                  status_code: int = 200):
    """The editor of one message in every written language (`codes`): `texts` and `reviewed` as
    saved, or as typed when a save was refused (then `errors` says why, per language, beside each text)."""
    files = {lang: load_file_catalog(lang) for lang in codes}
    with db_of(request).unit_of_work() as session:
        revisions = session.exec(
            select(models.MessageRevision).where(models.MessageRevision.key == key).order_by(col(models.MessageRevision.id).desc()).limit(30)
        ).all()
    settings = settings_of(request)
    previews = {}
    for lang in codes:
        problem = check_message(key, texts[lang], lang, ussd_max_chars=settings.ussd_max_chars, fold=settings.sms_fold)
        # A refused text is previewed as typed (cut to the longest allowed), an empty one as the file's.
        shown = texts[lang][:MAX_MESSAGE_CHARS] if texts[lang].strip() else files[lang].get(key, "")
        previews[lang] = {**preview(request, key, lang, shown),
                          "problem": say(request, problem)}
    return render(
        request,
        "message.html",
        {"key": key, "texts": texts, "files": {l: files[l].get(key, "") for l in codes}, "reviewed": reviewed,
         "languages": list(codes.items()),
         "previews": previews, "revisions": revisions, "placeholders": sorted(placeholders(files["fr"][key])),
         "errors": errors},
        status_code=status_code,
    )


@router.get("/messages/{key}", name="admin_message")
def message_page(request: Request, key: str, staff: Editor):
    if key not in load_file_catalog("fr"):
        raise HTTPException(404, "No such message.")
    with db_of(request).unit_of_work() as session:
        codes = written(session)
        files = {lang: load_file_catalog(lang) for lang in codes}
        current = {r.language: r for r in session.exec(select(models.MessageOverride).where(models.MessageOverride.key == key))}
        texts = {lang: (current[lang].text if lang in current else files[lang].get(key, "")) for lang in codes}
        reviewed = {lang: bool(lang in current and current[lang].reviewed) for lang in codes}
    return _message_form(request, key, texts, reviewed, {}, codes)


@router.post("/messages/{key}/preview", name="admin_message_preview")
async def message_preview(request: Request, key: str, staff: Editor, form: Form):
    language = form.get("language", "fr")
    with db_of(request).unit_of_work() as session:
        if language not in written(session):
            raise HTTPException(400, "Unknown language.")
    if key not in load_file_catalog("fr"):
        raise HTTPException(404, "No such message.")
    text = form.get("text", "")
    # Checked before anything renders it: a format spec in a placeholder can cost seconds of CPU
    # and memory (finding 8); a text over its limits is shown, with the problem.
    settings = settings_of(request)
    problem = check_message(key, text, language, ussd_max_chars=settings.ussd_max_chars, fold=settings.sms_fold)
    if problem and (template_problem(text) or len(text) > MAX_MESSAGE_CHARS or not text.strip()):
        return JSONResponse({"error": say(request, problem)}, status_code=400)
    return JSONResponse({**preview(request, key, language, text), "problem": say(request, problem) or None})


def _save_message(session, staff, key: str, language: str, text: str, reviewed: bool, now: dt.datetime) -> None:
    row = session.exec(
        select(models.MessageOverride).where(models.MessageOverride.language == language, models.MessageOverride.key == key)
    ).first()
    before = {"text": row.text, "reviewed": row.reviewed} if row else {"text": load_file_catalog(language).get(key, "")}
    if row is None:
        row = models.MessageOverride(language=language, key=key, text=text)
    row.text, row.reviewed, row.updated_by, row.updated_at = text, reviewed, staff.email, now
    session.add(row)
    session.add(models.MessageRevision(language=language, key=key, text=text, reviewed=reviewed, staff_email=staff.email, at=now))
    auth.audit(session, staff, action="edit", entity="message", entity_id=f"{language}:{key}", before=before,
               after={"text": text, "reviewed": reviewed}, now=now)


MAX_MESSAGE_CHARS = 1000


def _sample(text: str) -> str:
    """The text with typical values in its placeholders (only for texts template_problem passed)."""
    return text.format_map(defaultdict(str, SAMPLES))


Problem = tuple  # (English text with {placeholders}, its values as keywords): say(request, problem)


def _problem(text: str, **params) -> tuple[str, dict]:
    return text, params


def say(request: Request, problem: Problem | None) -> str:
    """A problem in the console's language ("" for none)."""
    return tr(request, problem[0], **problem[1]) if problem else ""


def _template_problem(text: str) -> Problem | None:
    """messages.catalog.template_problem, as a console text that can be translated."""
    if template_problem(text) is None:
        return None
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return _problem("Unbalanced {open} or {close}: write {open2} and {close2} for a literal brace.",
                        open="{", close="}", open2="{{", close2="}}")
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        written = "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
        if spec or conversion:
            return _problem("{written}: write placeholders as {example} only, without a format (:) or conversion (!).",
                            written=written, example="{name}")
        if not name.isidentifier():
            return _problem("{written}: a placeholder is a plain name such as {example}, without dots, brackets or numbers.",
                            written=written, example="{crop}")
    return _problem("This text cannot be used: {detail}", detail=template_problem(text))


def _limit_problem(key: str, language: str, sample: str, *, ussd_max_chars: int, fold: bool) -> Problem | None:
    """messages.catalog.limit_problem, as a console text that can be translated."""
    if limit_problem(key, language, sample, ussd_max_chars=ussd_max_chars, fold=fold) is None:
        return None
    if is_sms_key(key):
        segments = measure(render_sms(sample, language, fold=fold)).segments
        return _problem("Too long for one SMS: {n} segments once sent (at most {max}).", n=segments, max=SMS_SEGMENTS)
    return _problem("Too long for a USSD screen: {n} characters (at most {max}).", n=len(to_ussd(sample)), max=ussd_max_chars)


def check_message(key: str, text: str, language: str = "fr", *, ussd_max_chars: int = 160, fold: bool = True) -> Problem | None:
    """Why staff's text for a key cannot be saved or previewed, or None: only the key's own plain
    placeholders, and within the limits of its channel (one SMS, one USSD screen). The reason is
    (English text, values), translated where it is shown: say(request, problem)."""
    expected = placeholders(load_file_catalog("fr")[key])
    if not text.strip():
        return _problem("The text cannot be empty.")
    if len(text) > MAX_MESSAGE_CHARS:
        return _problem("The text is longer than {max} characters.", max=str(MAX_MESSAGE_CHARS))
    problem = _template_problem(text)
    if problem:
        return problem
    unknown = placeholders(text) - expected
    if unknown:
        return _problem("Unknown placeholder(s): {unknown}. Allowed: {allowed}.",
                        unknown=", ".join("{" + n + "}" for n in sorted(unknown)),
                        allowed=", ".join("{" + n + "}" for n in sorted(expected)) or "-")
    return _limit_problem(key, language, _sample(text), ussd_max_chars=ussd_max_chars, fold=fold)


@router.post("/messages/{key}", name="admin_message_save")
async def message_save(request: Request, key: str, staff: Editor, form: Form):
    if key not in load_file_catalog("fr"):
        raise HTTPException(404, "No such message.")
    now = now_of(request).astimezone(UTC)
    settings = settings_of(request)
    errors = {}
    changes = []
    with db_of(request).unit_of_work() as session:
        codes = written(session)
        typed = {lang: form.get(f"text_{lang}", "").strip() for lang in codes}
        reviewed = {lang: form.get(f"reviewed_{lang}") == "on" for lang in codes}
        current = {r.language: r for r in session.exec(select(models.MessageOverride).where(models.MessageOverride.key == key))}
        for lang in codes:
            text = typed[lang]
            problem = check_message(key, text, lang, ussd_max_chars=settings.ussd_max_chars, fold=settings.sms_fold)
            if problem:
                errors[f"text_{lang}"] = say(request, problem)
                continue
            old = current.get(lang)
            file_text = load_file_catalog(lang).get(key, "")
            if (old and (old.text, old.reviewed) == (text, reviewed[lang])) or (not old and text == file_text and not reviewed[lang]):
                continue
            changes.append((lang, text, reviewed[lang]))
        if not errors:
            for lang, text, is_reviewed in changes:
                _save_message(session, staff, key, lang, text, is_reviewed, now)
    if errors:
        # Nothing saved, in either language: the editor comes back with what was typed.
        return _message_form(request, key, typed, reviewed, errors, codes, status_code=400)
    clear_content_cache(request)
    if changes:
        flash(request, "Saved: the next USSD hop and SMS use it.")
    else:
        flash(request, "Nothing changed.")
    return back_to(request, "admin_message", key=key)


@router.post("/messages/{key}/revert/{revision_id}", name="admin_message_revert")
async def message_revert(request: Request, key: str, revision_id: DbId, staff: Editor, form: Form):
    now = now_of(request).astimezone(UTC)
    with db_of(request).unit_of_work() as session:
        rev = session.get(models.MessageRevision, revision_id)
        if rev is None or rev.key != key:
            raise HTTPException(404, "No such revision.")
        settings = settings_of(request)
        problem = check_message(key, rev.text, rev.language, ussd_max_chars=settings.ussd_max_chars, fold=settings.sms_fold)
        if problem:  # an old version may predate today's checks
            flash(request, "This version cannot be restored: {problem}", "error", problem=say(request, problem))
            return back_to(request, "admin_message", key=key)
        _save_message(session, staff, key, rev.language, rev.text, rev.reviewed, now)
    clear_content_cache(request)
    lang = language_of(request)
    flash(request, "Reverted the {language} text to the version of {when}.",
          language=staff_text.word(lang, "language", rev.language),
          when=staff_text.date_time(rev.at, lang, tz=ZoneInfo(settings_of(request).timezone)))
    return back_to(request, "admin_message", key=key)
