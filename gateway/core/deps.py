"""Named dependencies for the routes: everything comes from the app built by create_app().

They are `async def` although they do no I/O: FastAPI runs a plain `def` dependency in the
thread pool, a thread hop per dependency per request (measured: a third of a USSD hop's cost)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Callable

from fastapi import Depends, Path, Request

from gateway.core.db import Database
from gateway.core.settings import Settings
from messages import Catalog

Clock = Callable[[], dt.datetime]


async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


async def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]


# A row id in a URL: beyond 32 bits PostgreSQL refuses the query (a 500 without this: found by
# schemathesis), so such ids are answered 422 before any query.
DbId = Annotated[int, Path(ge=0, le=2_147_483_647)]
