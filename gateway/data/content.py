"""The message catalog as farmers get it: the files, with staff overrides from the database
layered on top. Read through the content cache, so an edit shows within its time to live in
every process (and at once in the process that saved it, which clears its cache)."""

from __future__ import annotations

from sqlmodel import Session, select

from gateway.data import models
from gateway.data.dataview import ContentCache
from messages import Catalog, default_catalog


def overrides(session: Session) -> dict[tuple[str, str], str]:
    rows = session.exec(select(models.MessageOverride.language, models.MessageOverride.key, models.MessageOverride.text))
    return {(language, key): text for language, key, text in rows}


def current_catalog(session: Session, cache: ContentCache) -> Catalog:
    base = default_catalog()
    found = cache.get(("overrides",), lambda: overrides(session))
    # Rebuilt only when the overrides changed: a catalog keeps the texts it has looked up.
    return cache.derived(("catalog",), (base, found), lambda: base.with_overrides(found))
