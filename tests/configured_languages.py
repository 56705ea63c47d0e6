"""Languages staff add in the console (console → Languages), as rows, for the tests of the
features that accept any configured language: Fulfulde voice-only, Songhoy written but disabled."""

from __future__ import annotations

from gateway.data import models
from tests.conftest import NOW

FULFULDE = dict(code="ff", name="Fulfulde", name_fr="peul", written=False, voice=True, enabled=True, sort_order=3)
SONGHOY = dict(code="ses", name="Koyraboro senni", name_fr="songhaï", written=False, voice=True, enabled=False,
               sort_order=4)


def add_languages(db, *rows: dict) -> None:
    with db.unit_of_work() as session:
        for row in rows:
            session.add(models.Language(**{"fallback": "fr", "created_at": NOW, "updated_at": NOW, **row}))
