"""SMS keyword parsing, forgiving of case, accents, typos, word order and language.

`parse("songo tamati sikaso", crops, markets)` → price query for tomato at Sikasso. Crop and
market names are matched in French and Bambara and by their aliases (staff-managed spellings),
whole or with a typo (difflib's ratio), over phrases of up to three words ("pomme de terre").
Unit and kind words come from the `unit` and `price_kind` tables when given (names and aliases),
else from the built-in lists below.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Sequence

from menus.types import Crop, Language, Market, Term
from messages import to_ussd

# Keyword → (intent, the language it is written in, when it says so).
KEYWORDS: dict[str, tuple[str, str | None]] = {
    **{w: ("price", "fr") for w in ("prix", "tarif", "cours")},
    **{w: ("price", None) for w in ("price",)},
    **{w: ("price", "bm") for w in ("songo", "songow")},
    **{w: ("subscribe", "fr") for w in ("alerte", "alertes", "abonner", "abonnement", "abonne", "inscrire", "abo")},
    **{w: ("subscribe", None) for w in ("alert", "subscribe", "sub")},
    **{w: ("subscribe", "bm") for w in ("seben", "sebenni")},
    **{w: ("stop", "fr") for w in ("arret", "arreter", "arrete", "desabonner", "desabonnement", "fin")},
    **{w: ("stop", None) for w in ("stop", "stopp", "unsubscribe")},
    **{w: ("stop", "bm") for w in ("dabila",)},
    **{w: ("start", "fr") for w in ("reprendre", "reprise", "demarrer", "recommencer")},
    **{w: ("start", None) for w in ("start", "restart")},
    **{w: ("start", "bm") for w in ("damine", "segin")},
    **{w: ("language", "fr") for w in ("langue",)},
    **{w: ("language", None) for w in ("language", "lang")},
    **{w: ("language", "bm") for w in ("kan",)},
    **{w: ("help", "fr") for w in ("aide", "info", "infos", "menu")},
    **{w: ("help", None) for w in ("help",)},
    **{w: ("help", "bm") for w in ("deme", "demen")},
    **{w: ("report", None) for w in ("p", "rapport", "report", "releve")},
    **{w: ("trend", "fr") for w in ("tendance", "tendances", "prevision", "previsions", "evolution")},
    **{w: ("trend", None) for w in ("trend", "trends", "forecast")},
    **{w: ("trend", "bm") for w in ("taabolo", "nyefo")},
    # How alerts come (issue 16): a word for calls or for SMS. "wele" (to call) awaits a native
    # speaker's review, as the glossary's "?" words do.
    **{w: ("channel", "fr") for w in ("appel", "appels", "appeler", "appelez", "voix")},
    **{w: ("channel", None) for w in ("call", "voice", "sms")},
    **{w: ("channel", "bm") for w in ("wele", "welew")},
}
# The channel each of those words asks for.
CHANNEL_WORDS = {w: "sms" if w == "sms" else "voice" for w, (intent, _) in KEYWORDS.items() if intent == "channel"}
# "Both" words: beside a channel word ("SMS ET APPEL"), or a message of nothing else ("LES DEUX",
# "TOUS", "u fila bɛɛ"); alone among other words they are only words ("prix tous marchés").
# Bambara ones await a native speaker's review.
BOTH_WORDS = {"deux": "fr", "tous": "fr", "both": None, "fila": "bm", "bee": "bm"}
CHANNEL_FILLERS = {"les", "et", "par", "ni", "u", "a", "and"}
LANGUAGE_WORDS = {
    "fr": "fr", "francais": "fr", "french": "fr", "tubabukan": "fr", "faransi": "fr",
    "bm": "bm", "bambara": "bm", "bamanankan": "bm", "bamana": "bm", "bamanan": "bm",
}
UNIT_WORDS = {
    "kg": "kg", "kilo": "kg", "kilos": "kg",
    "sac": "sack50", "sacs": "sack50", "sack": "sack50", "boro": "sack50",
    "sac100": "sack100",
    "panier": "basket", "paniers": "basket", "panye": "basket",
    "caisse": "crate", "caisses": "crate", "kesu": "crate",
    "tas": "pile",
}
KIND_WORDS = {"gros": "wholesale", "detail": "retail", "wholesale": "wholesale", "retail": "retail"}
# Intents in the order they win when a message holds several keywords ("STOP ALERTE TOMATE").
PRECEDENCE = ("report", "stop", "start", "language", "subscribe", "trend", "price", "channel", "help")

_TOKEN = re.compile(r"[a-z0-9]+")
FUZZY_CUTOFF = 0.8


@dataclass(frozen=True)
class Parsed:
    intent: str  # price | trend | subscribe | stop | start | language | channel | help | report | unknown
    keyword_language: str | None = None
    crop_id: int | None = None
    market_id: int | None = None
    language: str | None = None
    number: int | None = None
    unit: str | None = None
    kind: str | None = None
    channel: str | None = None  # sms | voice | both: how alerts should come (the channel intent)


def normalize(text: str) -> list[str]:
    return _TOKEN.findall(to_ussd(text).lower())


def _close(token: str, vocabulary: Sequence[str]) -> str | None:
    if token in vocabulary:
        return token
    if len(token) < 4:  # short words: a typo is as likely another word
        return None
    match = difflib.get_close_matches(token, vocabulary, n=1, cutoff=FUZZY_CUTOFF)
    return match[0] if match else None


def _names(crops: Sequence[Crop], markets: Sequence[Market]) -> tuple[dict[str, int], dict[str, int]]:
    crop_names: dict[str, int] = {}
    for crop in crops:
        for name in (crop.name_fr, crop.name_bm, *crop.aliases):
            phrase = " ".join(normalize(name))
            if phrase:
                crop_names.setdefault(phrase, crop.id)
                crop_names.setdefault(phrase + "s", crop.id)  # French plural
                crop_names.setdefault(phrase + "w", crop.id)  # Bambara plural
    market_names: dict[str, int] = {}
    # Official names first: an alias never takes another market's name.
    for names in ([m.name for m in markets], [(m.name_bm, *m.aliases) for m in markets]):
        for market, name in zip(markets, names):
            for one in (name,) if isinstance(name, str) else name:
                phrase = " ".join(normalize(one))
                if phrase:
                    market_names.setdefault(phrase, market.id)
    return crop_names, market_names


def _term_words(terms: Sequence[Term]) -> dict[tuple[str, ...], str]:
    """Each term's code, names and aliases as token tuples. A phrase opening with a number
    ("50 kg") is left out: it would take the price of "P tomate sikasso 50 kg"."""
    words: dict[tuple[str, ...], str] = {}
    for term in terms:
        for name in (term.code, term.name_fr, term.name_bm, *term.aliases):
            tokens = tuple(normalize(name))
            if tokens and not tokens[0].isdigit() and len(tokens) <= 3:
                words.setdefault(tokens, term.code)
    return words


def _find_term(tokens: list[str], used: set[int], words: dict[tuple[str, ...], str]) -> str | None:
    """The longest unit or kind phrase among unused tokens; its tokens become used."""
    for size in (3, 2, 1):
        for start in range(len(tokens) - size + 1):
            span = set(range(start, start + size))
            code = words.get(tuple(tokens[start : start + size]))
            if code is not None and not span & used:
                used |= span
                return code
    return None


def _find(tokens: list[str], used: set[int], names: dict[str, int]) -> int | None:
    """The first name found among unused tokens: whole phrases of 3, 2, then 1 word."""
    vocabulary = list(names)
    for size in (3, 2, 1):
        for start in range(len(tokens) - size + 1):
            span = set(range(start, start + size))
            if span & used:
                continue
            phrase = " ".join(tokens[start : start + size])
            if any(t.isdigit() for t in tokens[start : start + size]):
                continue
            hit = _close(phrase, vocabulary)
            if hit is not None:
                used |= span
                return names[hit]
    return None


def _language_words(languages: Sequence[Language]) -> dict[str, str]:
    """Configured languages by code and one-word names ("ff", "fulfulde", "peul"), besides the
    built-in words."""
    words: dict[str, str] = {}
    for lang in languages:
        for name in (lang.code, lang.name, lang.name_fr):
            tokens = normalize(name)
            if len(tokens) == 1 and tokens[0] not in LANGUAGE_WORDS:
                words.setdefault(tokens[0], lang.code)
    return words


def parse(
    text: str,
    crops: Sequence[Crop],
    markets: Sequence[Market],
    units: Sequence[Term] | None = None,
    kinds: Sequence[Term] | None = None,
    languages: Sequence[Language] = (),
) -> Parsed:
    tokens = normalize(text)
    if not tokens:
        return Parsed("help")
    used: set[int] = set()
    found: dict[str, tuple[int, str | None]] = {}
    channels: set[str] = set()
    keywords = list(KEYWORDS)
    for index, token in enumerate(tokens):
        if token == "p" and index > 0:
            continue  # "p" is only the report keyword when it opens the message
        hit = _close(token, keywords)
        if hit is not None:
            intent, lang = KEYWORDS[hit]
            found.setdefault(intent, (index, lang))
            if intent == "channel":
                channels.add(CHANNEL_WORDS[hit])
    both = [t for t in tokens if t in BOTH_WORDS]
    if both and (channels or all(t in BOTH_WORDS or t in CHANNEL_FILLERS for t in tokens)):
        found.setdefault("channel", (tokens.index(both[0]), BOTH_WORDS[both[0]]))
        channels = {"sms", "voice"}
    # A keyword token is not also a crop or market name.
    used |= {index for index, _ in found.values()}

    language = next((LANGUAGE_WORDS[t] for t in tokens if t in LANGUAGE_WORDS), None)
    # Staff-added languages count only after LANGUE: their codes are often words ("son", "ses").
    added = _language_words(languages) if "language" in found else {}
    if language is None:
        language = next((added[t] for t in tokens if t in added), None)
    if units is None and kinds is None:
        numbers = [int(t) for t in tokens if t.isdigit() and len(t) <= 9]
        unit = next((UNIT_WORDS[t] for t in tokens if t in UNIT_WORDS), None)
        kind = next((KIND_WORDS[t] for t in tokens if t in KIND_WORDS), None)
        if unit or kind:
            used |= {i for i, t in enumerate(tokens) if t in UNIT_WORDS or t in KIND_WORDS}
    else:
        # The tables' words; a number inside a unit phrase ("sac 100 kg") is not the price.
        before = set(used)
        unit = _find_term(tokens, used, _term_words(units or ()))
        kind = _find_term(tokens, used, _term_words(kinds or ()))
        numbers = [int(t) for i, t in enumerate(tokens) if t.isdigit() and len(t) <= 9 and i not in used - before]
    used |= {i for i, t in enumerate(tokens) if t in LANGUAGE_WORDS or t in added}

    crop_names, market_names = _names(crops, markets)
    crop_id = _find(tokens, used, crop_names)
    market_id = _find(tokens, used, market_names)

    intent = next((i for i in PRECEDENCE if i in found), None)
    if intent == "report" and not numbers:
        intent = "price" if crop_id else None
    if intent == "subscribe" and crop_id is None and "channel" in found:
        intent = "channel"  # "ALERTE PAR APPEL": how alerts come, not which
    if intent is None:
        intent = "price" if crop_id else ("language" if language else "unknown")
    keyword_language = found[intent][1] if intent in found else None
    return Parsed(
        intent=intent,
        keyword_language=keyword_language,
        crop_id=crop_id,
        market_id=market_id,
        language=language,
        number=numbers[0] if numbers else None,
        unit=unit,
        kind=kind,
        channel=("both" if len(channels) > 1 else next(iter(channels))) if intent == "channel" else None,
    )
