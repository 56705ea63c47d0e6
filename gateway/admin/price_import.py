"""Console: import a price file (simple layout or WFP/HDX's), as `gateway import-prices` does.

Two steps: the upload is checked as a dry run (rows ok, refused rows with their reasons, unknown
names once each, what would be created), then confirmed with the same options. Between the two the
file waits on the server's disk under a random token kept in the staff member's session, so a
large file is not sent back and forth through the page (and cannot be swapped on the way).
"""

from __future__ import annotations

import re
import secrets
import tempfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request

from gateway.actions import imports
from gateway.admin.core import Editor, Form, db_of, now_of, render, tr
from gateway.data import auth

router = APIRouter(prefix="/admin", include_in_schema=False)

SHOWN_ERRORS = 300  # refused rows listed on the page; the count says how many more
_TOKEN = re.compile(r"[0-9a-f]{32}")
OPTION_FIELDS = ("create_missing", "skip_errors", "no_alerts")


def _store() -> Path:
    # The machine's temporary folder: shared by the processes of one install, cleaned by the OS.
    folder = Path(tempfile.gettempdir()) / "sugu-price-imports"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _paths(token: str) -> tuple[Path, Path]:
    return _store() / f"{token}.csv", _store() / f"{token}.mapping.csv"


def _options(values: dict) -> imports.PriceOptions:
    """Raises ValueError (bad rate) or FileFormatError (bad mapping)."""
    rates = [r for r in re.split(r"[\s,;]+", values.get("rates", "")) if r]
    mapping = values.get("mapping_text") or ""
    return imports.PriceOptions(
        create_missing=values.get("create_missing") == "on",
        rates=imports.parse_rates(rates),
        region=(values.get("region") or "").strip(),
        mapping=imports.parse_mapping(mapping) if mapping.strip() else {},
    )


def _decode(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _check(request: Request, text: str, options: imports.PriceOptions, *, name: str):
    """The dry run: what reading the file found, and what importing it would do."""
    settings = request.app.state.settings
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        found = imports.read_price_file_from(session, text, today=now.date(), options=options)
        report = imports.import_prices(
            session, found.rows, now=now, source=f"import:{name}", stale_days=settings.price_stale_days,
            found=found, dry_run=True,
        )
        session.rollback()  # a dry run writes nothing
    return found, report


@router.get("/prices/import", name="admin_price_import")
def import_page(request: Request, staff: Editor):
    return render(request, "price_import.html", {"values": {}})


@router.post("/prices/import", name="admin_price_import_check")
async def import_check(request: Request, staff: Editor):
    form = await request.form()
    if not auth.csrf_ok(request.session, form.get("csrf_token")):
        raise HTTPException(403, "The form expired; reload it.")
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    upload, mapping_upload = form.get("file"), form.get("mapping")
    problem = None
    text = mapping_text = None
    if upload is None or not hasattr(upload, "read") or not getattr(upload, "filename", ""):
        problem = tr(request, "Choose a CSV file.")
    else:
        text = _decode(await upload.read())
        if text is None:
            problem = tr(request, 'The file is not UTF-8: save it as "CSV UTF-8".')
    if problem is None and mapping_upload is not None and getattr(mapping_upload, "filename", ""):
        mapping_text = _decode(await mapping_upload.read())
        if mapping_text is None:
            problem = tr(request, 'The mapping file is not UTF-8: save it as "CSV UTF-8".')
    name = Path(getattr(upload, "filename", "") or "prices.csv").name[:60]
    if problem is None:
        try:
            found, report = _check(request, text, _options({**values, "mapping_text": mapping_text}), name=name)
        except (ValueError, imports.FileFormatError) as exc:
            # The reading rules' own words (shared with the command line), under a translated lead.
            problem = tr(request, "The file cannot be read: {why}", why=str(exc))
    if problem is not None:
        return render(request, "price_import.html", {"values": values, "problem": problem}, status_code=400)
    token = secrets.token_hex(16)
    data, mapping = _paths(token)
    data.write_text(text, "utf-8")
    if mapping_text:
        mapping.write_text(mapping_text, "utf-8")
    request.session["price_import"] = token
    return render(request, "price_import.html", {
        "values": values, "found": found, "report": report, "token": token, "name": name,
        "shown_errors": found.line_errors[:SHOWN_ERRORS], "dry_run": True,
    })


@router.post("/prices/import/confirm", name="admin_price_import_confirm")
async def import_confirm(request: Request, staff: Editor, form: Form):
    token = form.get("token", "")
    if not _TOKEN.fullmatch(token) or request.session.get("price_import") != token:
        raise HTTPException(400, "This import was already done or has expired: upload the file again.")
    data, mapping = _paths(token)
    if not data.exists():
        raise HTTPException(400, "This import was already done or has expired: upload the file again.")
    text = data.read_text("utf-8")
    mapping_text = mapping.read_text("utf-8") if mapping.exists() else ""
    name = Path(form.get("name") or "prices.csv").name[:60]
    settings = request.app.state.settings
    now = now_of(request)
    try:
        options = _options({**form, "mapping_text": mapping_text})
    except (ValueError, imports.FileFormatError) as exc:
        raise HTTPException(400, tr(request, "The file cannot be read: {why}", why=str(exc))) from None
    with db_of(request).unit_of_work() as session:
        found = imports.read_price_file_from(session, text, today=now.date(), options=options)
        if found.bad_lines and form.get("skip_errors") != "on":
            raise HTTPException(400, tr(request, "{n} rows have errors: nothing imported.", n=found.bad_lines))
        report = imports.import_prices(
            session, found.rows, now=now, source=f"import:{name}", alerts=form.get("no_alerts") != "on",
            stale_days=settings.price_stale_days, found=found,
        )
        auth.audit(session, staff, action="import", entity="prices", entity_id=name[:64], now=now, after={
            "imported": report.imported, "already_present": report.already_present,
            "skipped_lines": found.bad_lines, "zero_prices": found.zero, "created": report.created,
            "alert_broadcast": report.broadcast_id,
            "options": {k: form.get(k, "") for k in (*OPTION_FIELDS, "rates", "region")},
        })
    request.app.state.content_cache.clear()
    request.session.pop("price_import", None)
    data.unlink(missing_ok=True)
    mapping.unlink(missing_ok=True)
    return render(request, "price_import.html", {"values": form, "found": found, "report": report, "name": name,
                                                 "shown_errors": found.line_errors[:SHOWN_ERRORS], "dry_run": False})
