"""Console page: the languages farmers are served in (issue 16 item 10; editors). Add one
(Fulfulde, Songhoy: voice-only until someone writes its catalog), enable or disable it, say
whether it is written or offered by voice, its order and fallback, and see its recording coverage
with a link to the studio. The rules live in gateway.data.languages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from gateway.admin.core import Editor, Form, back_to, clear_content_cache, db_of, flash, now_of, render, tr
from gateway.admin.studio import clips_of, fallbacks, states, summary
from gateway.data import languages
from gateway.data.content import current_catalog
from messages.voice import numbers

router = APIRouter(prefix="/admin/languages", include_in_schema=False)

NEW = {"name": "", "name_fr": "", "written": "", "voice": "on", "enabled": "on", "sort_order": "10", "fallback": "fr"}


def _values(row) -> dict[str, str]:
    return {"name": row.name, "name_fr": row.name_fr, "sort_order": str(row.sort_order), "fallback": row.fallback,
            **{flag: "on" if getattr(row, flag) else "" for flag in languages.FLAGS}}


def _fallback_options(found, code: str = "") -> list[tuple[str, str]]:
    return [(r.code, f"{r.name_fr or r.name} ({r.code})") for r in found if r.code != code]


def _errors(request: Request, exc: languages.Invalid) -> dict[str, str]:
    return {field: tr(request, reason, **exc.params) for field, reason in exc.errors.items()}


def _list(request: Request, typed: dict | None = None, errors: dict | None = None, status_code: int = 200):
    """Every language with what it offers and its recordings; the form that adds one."""
    with db_of(request).unit_of_work() as session:
        found = languages.rows(session)
        chains = fallbacks(request, session)
        catalog = current_catalog(session, request.app.state.content_cache)
        cover: dict[str, Any] = {}
        for row in found:
            if row.enabled and row.voice:  # the studio records what calls are offered in
                cover[row.code] = summary(states(session, clips_of(request, session, row.code), chains))
    return render(request, "languages.html", {
        "rows": found, "cover": cover, "v": typed or NEW, "errors": errors or {},
        "catalogs": {row.code: catalog.has_language(row.code) for row in found},
        "rules": {row.code: numbers.has_rules(row.code) for row in found},
        "language_names": {row.code: row.name_fr or row.name for row in found},
        "fallback_options": _fallback_options(found),
    }, status_code=status_code)


@router.get("", name="admin_languages")
def languages_page(request: Request, staff: Editor):
    return _list(request)


def _save(request: Request, staff, code: str, form: dict, *, new: bool) -> str:
    typed = {name: form.get(name, "") for name in ("name", "name_fr", "sort_order", "fallback", *languages.FLAGS)}
    with db_of(request).unit_of_work() as session:
        catalog = current_catalog(session, request.app.state.content_cache)
        try:
            row = languages.save(session, code=code, typed=typed, new=new, catalog=catalog, staff=staff,
                                 now=now_of(request))
        except KeyError:
            raise HTTPException(404, "No such language.") from None
        return row.code


@router.post("", name="admin_languages_add")
async def languages_add(request: Request, staff: Editor, form: Form):
    code = form.get("code", "")
    try:
        code = _save(request, staff, code, form, new=True)
    except languages.Invalid as exc:
        typed = {name: form.get(name, "") for name in ("code", *NEW)}
        return _list(request, typed, _errors(request, exc), status_code=400)
    clear_content_cache(request)
    flash(request, "Added: {code}. Its language menus offer it on the next call or screen.", code=code)
    return back_to(request, "admin_languages")


def _form(request: Request, code: str, typed: dict | None = None, errors: dict | None = None,
          status_code: int = 200):
    with db_of(request).unit_of_work() as session:
        found = languages.rows(session)
    row = next((r for r in found if r.code == code), None)
    if row is None:
        raise HTTPException(404, "No such language.")
    return render(request, "language_form.html", {
        "row": row, "v": typed or _values(row), "errors": errors or {}, "rows": found,
        "language_names": {r.code: r.name_fr or r.name for r in found},
        "fallback_options": _fallback_options(found, code),
    }, status_code=status_code)


@router.get("/{code}", name="admin_language")
def language_page(request: Request, code: str, staff: Editor):
    return _form(request, code[:8])


@router.post("/{code}", name="admin_language_save")
async def language_save(request: Request, code: str, staff: Editor, form: Form):
    code = code[:8]
    try:
        _save(request, staff, code, form, new=False)
    except languages.Invalid as exc:
        typed = {name: form.get(name, "") for name in NEW}
        return _form(request, code, typed, _errors(request, exc), status_code=400)
    clear_content_cache(request)
    flash(request, "Saved: {code}. Farmers see it on their next screen or call.", code=code)
    return back_to(request, "admin_languages")
