"""Console page: the weekly radio bulletins (issue 16 item 8), for community radio stations. Every
region in every enabled voice language: what the bulletin says this week (a voice-only language's
in French, labelled so), where its clips' audio comes from (the language's own recordings,
borrowed, synthetic), whether its tip is said, a player, and the MP3 to download (the same
bulletin as `GET /api/v1/bulletins/<region>.mp3` and `gateway voice bulletin`)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from gateway.admin.core import PriceStaff, db_of, now_of, render
from gateway.admin.studio import language_names
from gateway.data.content import current_catalog
from gateway.data.dataview import CachedDataView
from gateway.voice import bulletin

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("/bulletins", name="admin_bulletins")
def bulletins_page(request: Request, staff: PriceStaff):
    """Only the words: the audio of each is made when it is played or downloaded."""
    state = request.app.state
    today = now_of(request).date()
    rows = []
    with db_of(request).unit_of_work() as session:
        catalog = current_catalog(session, state.content_cache)
        data = CachedDataView(session, state.content_cache)
        languages = bulletin.languages(data)
        for code, region in bulletin.regions_by_code(session).items():
            said = [(lang, bulletin.script(region=region, language=lang, today=today, catalog=catalog, data=data,
                                           session=session))
                    for lang in languages]
            rows.append({"code": code, "region": region, "bulletins": said})
        names = language_names(request, session)
    week_of = rows[0]["bulletins"][0][1].week_of if rows else None
    return render(request, "bulletins.html", {"rows": rows, "week_of": week_of, "language_names": names})


@router.get("/bulletins/{code}.mp3", name="admin_bulletin_mp3")
async def bulletin_mp3(request: Request, code: str, staff: PriceStaff):
    language = request.query_params.get("language", "fr")
    state = request.app.state
    today = now_of(request).date()

    def make() -> tuple[bytes, str]:
        # Joining the clips and encoding the MP3 is CPU work (a second or so): off the event loop.
        with db_of(request).unit_of_work() as session:
            region = bulletin.regions_by_code(session).get(code, "")
            try:
                made = bulletin.make(session, region=region, language=language, today=today,
                                     catalog=current_catalog(session, state.content_cache),
                                     data=CachedDataView(session, state.content_cache), prompt_audio=state.prompt_audio)
            except bulletin.NoSuchBulletin:
                raise HTTPException(404, "No such bulletin.") from None
        return made.mp3, bulletin.download_name(region, language, made.week_of)

    mp3, name = await run_in_threadpool(make)
    # Attachment: the link downloads it; the page's player plays it all the same.
    return Response(mp3, media_type="audio/mpeg", headers={"Content-Disposition": f'attachment; filename="{name}"'})
