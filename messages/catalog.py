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

LANGUAGES = ("fr", "bm")  # shipped, complete, edited side by side in the console's Messages
DEFAULT_LANGUAGE = "fr"


class CatalogError(KeyError):
    """A key that no catalog defines: a programming error, caught by the catalog tests."""


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def template_problem(template: str) -> str | None:
    """Why a staff text cannot be used as a template, or None. Only plain `{name}` placeholders:
    a format spec (`{ussd:x>50000000}` builds a 50 MB string and froze every request), a
    conversion (`{a!r}`), attribute or index access (`{a.b}`, `{a[0]}`) are refused."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return "Unbalanced { or }: write {{ and }} for a literal brace."
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion:
            return (f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}: write placeholders "
                    "as {name} only, without a format (:) or conversion (!).")
        if not name.isidentifier():
            return f"{{{name}}}: a placeholder is a plain name such as {{crop}}, without dots, brackets or numbers."
    return None


# Limits every text is checked against when staff save it (with typical values in its
# placeholders): the shipped catalogs meet them (tests/test_messages.py).
SMS_SEGMENTS = 1  # every SMS the service sends is one segment: budgets and replies count on it
SMS_KEY_PREFIXES = ("sms.", "alert.", "correction.", "linkage.", "services.sms")


def is_sms_key(key: str) -> bool:
    return key.startswith(SMS_KEY_PREFIXES)


def limit_problem(key: str, language: str, sample: str, *, ussd_max_chars: int, fold: bool = True) -> str | None:
    """Whether a text, rendered with typical values, is too long for its channel: more than
    SMS_SEGMENTS for an SMS, more than a screen for USSD text."""
    from messages.sms import measure, render_sms
    from messages.ussd import to_ussd

    if is_sms_key(key):
        segments = measure(render_sms(sample, language, fold=fold)).segments
        if segments > SMS_SEGMENTS:
            return f"Too long for one SMS: {segments} segments once sent (at most {SMS_SEGMENTS})."
        return None
    chars = len(to_ussd(sample))
    if chars > ussd_max_chars:
        return f"Too long for a USSD screen: {chars} characters (at most {ussd_max_chars})."
    return None


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


def written_languages() -> tuple[str, ...]:
    """Every language with a catalog file: the shipped ones, then any added beside them
    (messages/catalog/<code>.toml; a key it lacks is said in French)."""
    folder = resources.files("messages").joinpath("catalog")
    added = sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".toml") and f.name[:-5] not in LANGUAGES)
    return (*LANGUAGES, *added)


class Catalog:
    def __init__(
        self,
        base: Mapping[str, Mapping[str, str]],
        overrides: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self._base = base
        # An override saved before templates were checked (or written by SQL) that is not a plain
        # template is ignored: the file's text is used.
        self._overrides = {k: v for k, v in (overrides or {}).items() if template_problem(v) is None}
        # Texts without values (titles, menu labels, navigation), by (language, key): every USSD hop
        # shows some, and a catalog never changes (overrides make a new one). Bounded by the keys.
        self._plain: dict[tuple[str, str], str] = {}

    def with_overrides(self, overrides: Mapping[tuple[str, str], str]) -> "Catalog":
        return Catalog(self._base, overrides)

    def keys(self, language: str = DEFAULT_LANGUAGE) -> set[str]:
        """The keys of a language's texts; a language without a catalog (voice-only) says the
        French ones, by its own recordings."""
        return set(self._base.get(language) or self._base[DEFAULT_LANGUAGE])

    def languages(self) -> tuple[str, ...]:
        """The languages with a written catalog."""
        return tuple(self._base)

    def has_language(self, language: str) -> bool:
        """Whether `language` has a written catalog (USSD and SMS can be in it)."""
        return language in self._base

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
        return self.fill(language, key, params)

    def fill(self, language: str, key: str, params: Mapping[str, object]) -> str:
        """text() with the values in a mapping (callers that build them as one save a copy)."""
        if not params:
            plain = self._plain.get((language, key))
            if plain is not None:
                return plain
        template = self.template(language, key)
        try:
            text = template.format_map(params)
        except (KeyError, IndexError, ValueError):
            # Only an override can be malformed (the files are tested): fall back to the file.
            fallback = self._base.get(language, {}).get(key) or self._base[DEFAULT_LANGUAGE][key]
            text = fallback.format_map(params)
        if not params:
            self._plain[(language, key)] = text
        return text


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return Catalog({lang: load_file_catalog(lang) for lang in written_languages()})
