"""Synthetic prompts: text spoken by eSpeak NG, so that the voice channel works before anyone has
recorded anything (issue 16 item 6). Every clip made here is a stand-in, to be flagged
"synthetic — record me" by whoever stores it.

The engine and its data come from the `espeakng-loader` wheel, which bundles libespeak-ng and its
espeak-ng-data folder: nothing is downloaded, no system binary is run, no network is used. The
library is called through ctypes, loaded and initialised on the first `synthesize` (nothing happens
at import time), and every call holds one lock, because eSpeak's API is a single global state.

Voices:

- "fr": eSpeak's French voice.
- "bm": eSpeak has no Bambara. The Bambara spelling is read by the **Swahili** voice, after a small
  respelling of the letters Swahili does not write (ɛ→e, ɔ→o, ɲ→ny, ŋ→ng) and with tone marks
  dropped. Swahili was chosen over French (the obvious guess) by comparing the phonemes each voice
  makes of the Bambara number and month words (`espeak_TextToPhonemes`): Swahili reads Bambara's
  Latin spelling nearly letter for letter — pure vowels, "u" as /u/, long vowels kept, a
  tapped r — ("duuru" /duˈuru/, "kɛmɛ" /ˈkeme/, "mugan" /ˈmuɡan/, "seegin" /seˈeɡin/), while the
  French voice turns "u" into /y/ ("duuru" /dyyʁy/, "fu" /fy/), drops final vowels ("kɛmɛ" /kəm/)
  and switches "seegin" to English (/siːdʒɪn/). What Swahili gets wrong: Bambara's tones (no
  eSpeak voice has them), its nasal vowels ("tan" is /tã/, Swahili says /tan/) and a stress on the
  next-to-last syllable that Bambara does not have. A native speaker will hear an accent; the words
  stay recognisable, which is what a stand-in needs.

Output: a WAV, mono, 16-bit, at eSpeak's own rate (22,050 Hz), so that the console can play a
clear version; `messages.voice.audio.normalise` turns it into the telephone format like any upload.
The same text does not give the same bytes twice (eSpeak's noise and timing vary by a few
milliseconds from one call to the next, even with its random seed fixed): make a clip once and
store it, rather than keying anything on the hash of a fresh synthesis.
"""

from __future__ import annotations

import ctypes
import io
import threading
import unicodedata
import wave
from dataclasses import dataclass

__all__ = ["SynthError", "VOICES", "available", "phonemes", "spoken_text", "synthesize"]


class SynthError(RuntimeError):
    """The engine is missing or failed; `available()` tells beforehand whether it can run."""


@dataclass(frozen=True)
class _Voice:
    espeak_name: str  # an eSpeak NG voice: a language code of espeak-ng-data/lang
    respell: dict[str, str]  # letters the voice does not read, and what to write instead


# Bambara letters that Swahili does not write, in the Swahili spelling of the same sound.
_BAMBARA_FOR_SWAHILI = {
    "ɛ": "e", "Ɛ": "E",
    "ɔ": "o", "Ɔ": "O",
    "ɲ": "ny", "Ɲ": "Ny",
    "ŋ": "ng", "Ŋ": "Ng",
}

# A language staff add in the console has no voice here: its stand-ins are said by its fallback
# language's voice (gateway.voice.prompts), until someone records them.
VOICES: dict[str, _Voice] = {
    "fr": _Voice("fr", {}),
    "bm": _Voice("sw", _BAMBARA_FOR_SWAHILI),  # a stand-in: see the module docstring
}

# Words per minute: slower than eSpeak's 175, since callers hear it through a phone line, often
# outdoors, and numbers must not be missed.
_RATE_WPM = 150

# From speak_lib.h (espeak-ng's public header).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PHONEMES_IPA = 0x02
_EE_OK = 0

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock = threading.Lock()
_engine: _Engine | None = None
_failure: str | None = None  # why the engine could not start, once tried


class _Engine:
    """The loaded library, initialised once; used only under `_lock`."""

    def __init__(self) -> None:
        import espeakng_loader  # the wheel that carries the library and its data

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p

        # The data folder is the wheel's own, given explicitly: never a system or downloaded copy.
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if rate <= 0:
            raise SynthError(f"espeak_Initialize failed ({rate})")
        self.lib = lib
        self.sample_rate = rate
        self._chunks: list[bytes] = []
        # Kept on the instance: ctypes would free a callback that nothing references.
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self._voice = ""

    def _collect(self, wav: ctypes.Array, samples: int, _events: int) -> int:
        if wav and samples > 0:
            self._chunks.append(ctypes.string_at(wav, samples * 2))
        return 0  # go on

    def use(self, voice: str) -> None:
        if voice != self._voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise SynthError(f"eSpeak NG has no voice {voice!r}")
            # Setting a voice resets the rate to the voice's own.
            self.lib.espeak_SetParameter(_PARAM_RATE, _RATE_WPM, 0)
            self._voice = voice

    def pcm(self, text: str) -> bytes:
        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        result = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if result != _EE_OK:
            raise SynthError(f"espeak_Synth failed ({result})")
        return b"".join(self._chunks)

    def phonemes(self, text: str) -> str:
        pointer = ctypes.c_char_p(text.encode("utf-8"))
        parts = []
        while pointer.value:  # one clause per call; the pointer moves on
            said = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA)
            parts.append((said or b"").decode())
        return " ".join(parts)


def _started() -> _Engine:
    """The engine, started on first use; call with `_lock` held."""
    global _engine, _failure
    if _engine is None:
        if _failure is not None:
            raise SynthError(_failure)
        try:
            _engine = _Engine()
        except (ImportError, OSError, AttributeError, RuntimeError) as error:
            _failure = f"eSpeak NG is not available: {error}"
            raise SynthError(_failure) from error
    return _engine


def available() -> bool:
    """Whether synthesis works here (the wheel is installed and its library loads)."""
    with _lock:
        try:
            _started()
        except SynthError:
            return False
    return True


def _voice(lang: str) -> _Voice:
    try:
        return VOICES[lang]
    except KeyError:
        raise ValueError(f"no synthetic voice for language {lang!r} (have: {', '.join(VOICES)})") from None


def spoken_text(text: str, lang: str) -> str:
    """The text as the stand-in voice is given it: Bambara respelled for Swahili, tone marks off."""
    voice = _voice(lang)
    if not voice.respell:
        return text
    # Tone marks (combining accents) mean nothing to the stand-in voice and make it spell letters.
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return "".join(voice.respell.get(c, c) for c in unicodedata.normalize("NFC", bare))


def synthesize(text: str, lang: str) -> bytes:
    """`text` spoken in `lang` ("fr" or "bm", see the module docstring): a WAV, mono, 16-bit PCM at
    eSpeak's rate. Raises SynthError when the engine is missing, ValueError for an unknown
    language or a text with nothing to say."""
    voice = _voice(lang)
    if not text.strip():
        raise ValueError("nothing to say")
    said = spoken_text(text, lang)
    with _lock:
        engine = _started()
        engine.use(voice.espeak_name)
        pcm = engine.pcm(said)
        rate = engine.sample_rate
    if not pcm:
        raise SynthError(f"eSpeak NG made no sound of {text!r}")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


def phonemes(text: str, lang: str) -> str:
    """The phonemes (IPA) the voice of `lang` makes of `text`: how the stand-in was chosen, and a
    way for a reviewer to check a word without listening."""
    voice = _voice(lang)
    said = spoken_text(text, lang)
    with _lock:
        engine = _started()
        engine.use(voice.espeak_name)
        return engine.phonemes(said)
