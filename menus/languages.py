"""Which languages the menus speak, from what staff configured (issue 16 item 10). Pure.

A language is offered on a text channel (USSD, SMS) when it is enabled, written, and its catalog
exists; by voice when it is enabled and marked for voice. A caller whose language is not offered
on the channel they use is served in French, with a one-line notice saying why: a voice-only
language (Fulfulde, say) is available by calling; a disabled one is no longer available.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from menus.screen import LanguageRef, Phrase, Text, phrase
from menus.types import Language
from messages import Catalog
from messages.formatting import phone_local
from messages.voice import numbers

FRENCH = "fr"  # what everything falls back to: the catalogs' default, the official language

DEFAULT_LANGUAGES = (
    Language("fr", "Français", "français", fallback=""),
    Language("bm", "Bamanankan", "bambara"),
)


def configured(data: object) -> tuple[Language, ...]:
    """The data view's languages (DataView.languages, optional), else French and Bambara."""
    read = getattr(data, "languages", None)
    return tuple(read()) if read is not None else DEFAULT_LANGUAGES


def offered(languages: Sequence[Language], catalog: Catalog, *, spoken: bool) -> tuple[Language, ...]:
    """What a language menu offers: by voice, every enabled voice language; on a text channel,
    every enabled language with a catalog."""
    return tuple(
        lang for lang in languages
        if lang.enabled and (lang.voice if spoken else lang.written and catalog.has_language(lang.code))
    )  # fmt: skip


@dataclass(frozen=True)
class Served:
    """The language a caller is served in on one channel, and why it is not theirs (or None)."""

    language: str
    notice: Phrase | None = None


def serve(code: str | None, languages: Sequence[Language], catalog: Catalog, *, spoken: bool,
          voice_number: str = "") -> Served:
    """The language for a caller whose profile says `code`: theirs when this channel offers it;
    else French, with the notice "Fulfulde: call 20 62 00 00" (a voice-only language on a text
    channel) or "Fulfulde: not available" (disabled, or not offered on this channel)."""
    if code is None or code == FRENCH:
        return Served(FRENCH)
    if any(lang.code == code for lang in offered(languages, catalog, spoken=spoken)):
        return Served(code)
    found = next((lang for lang in languages if lang.code == code), None)
    name = LanguageRef(code, found.name if found is not None else code)
    if found is not None and found.enabled and found.voice and not spoken:
        if voice_number:
            return Served(FRENCH, phrase("lang.voice_only", name=name, number=Text(phone_local(voice_number))))
        return Served(FRENCH, phrase("lang.voice_only_call", name=name))
    return Served(FRENCH, phrase("lang.unavailable", name=name))


def fallbacks(code: str, languages: Sequence[Language]) -> tuple[str, ...]:
    """The languages whose recordings may stand in for `code`'s words and names, nearest first:
    its fallback, that one's fallback... ending with French ("ff" -> ("fr",); "fr" -> ())."""
    by_code = {lang.code: lang for lang in languages}
    chain: list[str] = []
    current = code
    while current != FRENCH:
        lang = by_code.get(current)
        nxt = lang.fallback if lang is not None and lang.fallback else FRENCH
        if nxt == code or nxt in chain:  # a loop staff could not make (the console refuses it)
            nxt = FRENCH
        chain.append(nxt)
        current = nxt
    return tuple(chain)


def number_language(code: str, languages: Sequence[Language]) -> str:
    """Whose rules say `code`'s numbers: its own rules file (messages/voice/rules/<code>.toml)
    when a native speaker has written one, else the nearest fallback's."""
    for candidate in (code, *fallbacks(code, languages)):
        if numbers.has_rules(candidate):
            return candidate
    return FRENCH



def notice_text(catalog: Catalog, notice: Phrase, lang: str) -> str:
    """A notice as plain text, for a caller with no screen to word it on (the command line)."""
    values = {name: value.name if isinstance(value, LanguageRef) else getattr(value, "text", "")
              for name, value in notice.values}
    return catalog.text(lang, notice.key, **values)
