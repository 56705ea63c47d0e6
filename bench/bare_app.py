"""A bare FastAPI app with the gateway's USSD route shape, for bench/ussd_load.py.

It parses the form like the gateway does (`await request.form()`) and answers a constant screen
of about the same size, so the comparison isolates what the gateway adds on top of FastAPI and
uvicorn: the menu replay, the database work and the thread pool hop.

Served by ussd_load.py as: python -m uvicorn bare_app:app_factory --factory --app-dir bench ...
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

REPLY = (
    "CON Sugu - prix et conseils\n"
    "1. Prix du marche\n"
    "2. Demandes des acheteurs\n"
    "3. Conseils\n"
    "4. Alertes SMS\n"
    "5. Mon profil\n"
    "6. Langue"
)


def app_factory() -> FastAPI:
    app = FastAPI(title="bare USSD endpoint (benchmark baseline)")

    @app.post("/webhooks/at/ussd", response_class=PlainTextResponse)
    async def ussd_hop(request: Request) -> PlainTextResponse:
        form = await request.form()
        if not form.get("sessionId"):
            return PlainTextResponse("missing field: sessionId", status_code=400)
        return PlainTextResponse(REPLY)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    return app
