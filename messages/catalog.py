"""Message catalogs: one TOML file per language, keyed, with `{placeholders}`.

Staff overrides (from the database, see the console) are layered on top of the files. A broken
override (an unknown placeholder, say) never breaks a screen: the file's text is used instead.
"""

from __future__ import annotations

import string
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Mapping

LANGUAGES = ("fr", "bm")
DEFAULT_LANGUAGE = "fr"


class CatalogError(KeyError):
    """A key that no catalog defines: a programming error, caught by the catalog tests."""


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _flatten(table: Mapping[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{full}."))
        elif isinstance(value, str):
            flat[full] = value
        else:
            raise ValueError(f"catalog entry {full!r} is not text")
    return flat


def load_file_catalog(language: str) -> dict[str, str]:
    raw = resources.files("messages").joinpath("catalog", f"{language}.toml").read_text("utf-8")
    return _flatten(tomllib.loads(raw))


class Catalog:
    def __init__(
        self,
        base: Mapping[str, Mapping[str, str]],
        overrides: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self._base = base
        self._overrides = dict(overrides or {})

    def with_overrides(self, overrides: Mapping[tuple[str, str], str]) -> "Catalog":
        return Catalog(self._base, overrides)

    def keys(self, language: str = DEFAULT_LANGUAGE) -> set[str]:
        return set(self._base[language])

    def has(self, key: str) -> bool:
        return key in self._base[DEFAULT_LANGUAGE]

    def file_text(self, language: str, key: str) -> str | None:
        return self._base.get(language, {}).get(key)

    def template(self, language: str, key: str) -> str:
        for lang in (language, DEFAULT_LANGUAGE):
            override = self._overrides.get((lang, key))
            if override:
                return override
            text = self._base.get(lang, {}).get(key)
            if text is not None:
                return text
        raise CatalogError(key)

    def text(self, language: str, key: str, **params: object) -> str:
        template = self.template(language, key)
        try:
            return template.format_map(params)
        except (KeyError, IndexError, ValueError):
            # Only an override can be malformed (the files are tested): fall back to the file.
            fallback = self._base.get(language, {}).get(key) or self._base[DEFAULT_LANGUAGE][key]
            return fallback.format_map(params)


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return Catalog({lang: load_file_catalog(lang) for lang in LANGUAGES})
