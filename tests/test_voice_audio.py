"""The audio layer of the voice channel (issue 16 items 4-6): uploads normalised to the telephone
format, container sniffing, clips joined into one file per playlist, and synthetic prompts made
offline by eSpeak NG from its wheel.

Every input is made here: WAVs with the `wave` module, MP3/OGG/WebM/M4A encoded with PyAV.
"""

from __future__ import annotations

import array
import hashlib
import io
import math
import os
import random
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import av
import pytest

from messages.voice import audio, synth
from messages.voice.audio import AudioError
from messages.voice.numbers import clip_text, say_money

ROOT = Path(__file__).resolve().parents[1]


# --- making inputs -----------------------------------------------------------------------------


def tone(seconds: float, *, rate: int = 44_100, freq: float = 440.0, dbfs: float = -12.0,
         channels: int = 1, dc: int = 0) -> array.array:
    """A sine of peak `dbfs`, interleaved over `channels` (the same on each)."""
    amp = 32767 * 10 ** (dbfs / 20)
    one = [int(amp * math.sin(2 * math.pi * freq * i / rate)) + dc for i in range(int(seconds * rate))]
    return array.array("h", [s for s in one for _ in range(channels)])


def silence(seconds: float, *, rate: int = 44_100, channels: int = 1, dc: int = 0) -> array.array:
    return array.array("h", [dc]) * (channels * int(seconds * rate))


def wav(samples: array.array, *, rate: int = 44_100, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def encoded(container: str, codec: str, samples: array.array, *, rate: int, channels: int = 1) -> bytes:
    """`samples` (interleaved s16) encoded by PyAV, as a browser or phone would send them."""
    layout = "mono" if channels == 1 else "stereo"
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as box:
        stream = box.add_stream(codec, rate=rate, layout=layout)
        raw = samples.tobytes()
        step = 1024 * 2 * channels
        for offset in range(0, len(raw), step):
            chunk = raw[offset:offset + step]
            frame = av.AudioFrame(format="s16", layout=layout, samples=len(chunk) // (2 * channels))
            frame.planes[0].update(chunk + bytes(frame.planes[0].buffer_size - len(chunk)))
            frame.sample_rate = rate
            frame.pts = offset // (2 * channels)
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    return out.getvalue()


def read(data: bytes) -> tuple[wave._wave_params, array.array]:
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.getparams(), array.array("h", w.readframes(w.getnframes()))


def dbfs(value: float) -> float:
    return 20 * math.log10(max(value, 1e-9) / 32767)


def peak_dbfs(samples: array.array) -> float:
    return dbfs(max(max(samples), -min(samples)))


def active_dbfs(samples: array.array) -> float:
    """The level normalise aims at: RMS over the 10 ms windows within 35 dB of the loudest."""
    n = audio.SAMPLE_RATE // 100
    windows = [samples[i:i + n] for i in range(0, len(samples), n)]
    levels = [math.sqrt(sum(s * s for s in w) / len(w)) for w in windows]
    keep = [w for w, level in zip(windows, levels, strict=True) if level >= max(levels) * 10 ** (-35 / 20)]
    return dbfs(math.sqrt(sum(s * s for w in keep for s in w) / sum(len(w) for w in keep)))


# One second of stereo 44.1 kHz tone, with half a second of silence either side.
PADDED = silence(0.5, channels=2) + tone(1.0, channels=2) + silence(0.5, channels=2)
STEREO_48K = silence(0.5, rate=48_000, channels=2) + tone(1.0, rate=48_000, channels=2) + silence(
    0.5, rate=48_000, channels=2)


# --- normalise ---------------------------------------------------------------------------------

# (name, make the upload): each is 0.5 s silence, 1 s of tone, 0.5 s silence, in another form.
UPLOADS = [
    ("wav stereo 44.1 kHz", lambda: wav(PADDED, channels=2)),
    ("wav mono 8 kHz", lambda: wav(silence(0.5, rate=8000) + tone(1.0, rate=8000) + silence(0.5, rate=8000),
                                   rate=8000)),
    ("wav mono 16 kHz quiet", lambda: wav(silence(0.5, rate=16_000) + tone(1.0, rate=16_000, dbfs=-40)
                                          + silence(0.5, rate=16_000), rate=16_000)),
    ("wav with a DC offset", lambda: wav(silence(0.5, dc=3000) + tone(1.0, dc=3000) + silence(0.5, dc=3000))),
    ("mp3 stereo 44.1 kHz", lambda: encoded("mp3", "libmp3lame", PADDED, rate=44_100, channels=2)),
    ("ogg/opus stereo 48 kHz", lambda: encoded("ogg", "libopus", STEREO_48K, rate=48_000, channels=2)),
    ("webm/opus stereo 48 kHz", lambda: encoded("webm", "libopus", STEREO_48K, rate=48_000, channels=2)),
    ("m4a/aac stereo 44.1 kHz", lambda: encoded("ipod", "aac", PADDED, rate=44_100, channels=2)),
]


@pytest.mark.parametrize("name, make", UPLOADS, ids=[u[0] for u in UPLOADS])
def test_normalise_makes_telephone_audio(name, make):
    out = audio.normalise(make(), max_seconds=60)
    params, samples = read(out)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    assert audio.sniff(out) == "wav"
    # Silence trimmed: one second of tone, plus the kept padding (and codec ramps) at each end.
    seconds = params.nframes / 8000
    assert 1.0 <= seconds <= 1.0 + 2 * audio.TRIM_PAD_MS / 1000 + 0.05, seconds
    # Loudness: a steady tone reaches the active-level target, well under the peak ceiling.
    assert active_dbfs(samples) == pytest.approx(audio.TARGET_ACTIVE_DBFS, abs=0.5)
    assert peak_dbfs(samples) <= audio.PEAK_CEILING_DBFS + 0.01
    assert abs(sum(samples) / len(samples)) < 20  # no DC left


def test_a_peaky_recording_is_limited_by_its_peak():
    # Quiet speech-like tone with loud clicks: the level target would clip, so the peak rules.
    samples = tone(1.0, rate=8000, dbfs=-40)
    for at in range(400, 8000, 1600):
        samples[at] = 30000
    _, out = read(audio.normalise(wav(samples, rate=8000), max_seconds=10))
    assert peak_dbfs(out) == pytest.approx(audio.PEAK_CEILING_DBFS, abs=0.1)
    assert active_dbfs(out) < audio.TARGET_ACTIVE_DBFS


def test_normalise_keeps_long_silence_out_of_the_length():
    # 50 s of sound with 20 s of silence either side is 90 s raw, 50 s once trimmed: accepted.
    period = tone(0.0025, rate=8000, freq=400.0)  # 20 samples, one period: repeat it cheaply
    sound = period * (50 * 8000 // len(period))
    upload = wav(silence(20, rate=8000) + sound + silence(20, rate=8000), rate=8000)
    out = audio.normalise(upload, max_seconds=60)
    assert audio.duration_s(out) == pytest.approx(50.0, abs=0.2)


# (name, upload, max_seconds, reason)
REFUSED = [
    ("empty file", b"", 60, "empty"),
    ("garbage", random.Random(16).randbytes(4096), 60, "unreadable"),
    ("text", b"<html><body>not audio</body></html>", 60, "unreadable"),
    ("a WAV header over garbage", b"RIFF\x24\x10\x00\x00WAVEfmt " + random.Random(5).randbytes(2048), 60,
     "unreadable"),
    ("an MP3 header over garbage", b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 4096, 60, "unreadable"),
    ("a WAV with no samples", wav(array.array("h")), 60, "empty"),
    ("pure silence", wav(silence(3.0)), 60, "silent"),
    ("a hiss below -55 dBFS", wav(tone(3.0, freq=3000.0, dbfs=-62)), 60, "silent"),
    ("ten minutes when 60 s are allowed",
     wav(tone(0.0025, rate=8000, freq=400.0) * (600 * 8000 // 20), rate=8000), 60, "too_long"),
    ("61 s of sound when 60 s are allowed",
     wav(tone(0.0025, rate=8000, freq=400.0) * (61 * 8000 // 20), rate=8000), 60, "too_long"),
]


@pytest.mark.parametrize("name, upload, max_seconds, reason", REFUSED, ids=[r[0] for r in REFUSED])
def test_normalise_refuses_with_a_reason(name, upload, max_seconds, reason):
    with pytest.raises(AudioError) as caught:
        audio.normalise(upload, max_seconds=max_seconds)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)  # a web route may treat it as bad input


def test_a_long_upload_is_refused_without_decoding_it_all():
    half_an_hour = wav(tone(0.0025, rate=8000, freq=400.0) * (1800 * 8000 // 20), rate=8000)
    started = time.perf_counter()
    with pytest.raises(AudioError, match="too_long"):
        audio.normalise(half_an_hour, max_seconds=60)
    assert time.perf_counter() - started < 3  # decoding stops at max_seconds + the allowance


# --- sniff -------------------------------------------------------------------------------------

SNIFF = [
    ("wav", b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
    ("mp3 with ID3", b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
    ("mp3 frame, MPEG-1 128 kb/s", b"\xff\xfb\x90\x64" + bytes(60), "mp3"),
    ("mp3 frame, MPEG-2.5 8 kHz", b"\xff\xe3\x28\xc4" + bytes(60), "mp3"),
    ("ogg", b"OggS\x00\x02" + bytes(20), "ogg"),
    ("webm", (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
              b"\x42\x82\x84webm"), "webm"),
    ("matroska", b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "mkv"),
    ("m4a", b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00", "m4a"),
    ("mp4 from Safari", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "m4a"),
    ("AAC ADTS is not MP3", b"\xff\xf1\x50\x80" + bytes(60), None),
    ("MPEG layer II is not MP3", b"\xff\xfd\x90\x64" + bytes(60), None),
    ("sync with a bad bitrate", b"\xff\xfb\xf0\x64" + bytes(60), None),
    ("flac", b"fLaC\x00\x00\x00\x22", None),
    ("pdf", b"%PDF-1.7\n", None),
    ("html", b"<!DOCTYPE html><html>", None),
    ("empty", b"", None),
    ("short", b"RI", None),
]


@pytest.mark.parametrize("name, head, kind", SNIFF, ids=[s[0] for s in SNIFF])
def test_sniff(name, head, kind):
    assert audio.sniff(head) == kind


@pytest.mark.parametrize("kind, make", [
    ("wav", lambda: wav(tone(0.2))),
    ("mp3", lambda: encoded("mp3", "libmp3lame", tone(0.2), rate=44_100)),
    ("ogg", lambda: encoded("ogg", "libopus", tone(0.2, rate=48_000), rate=48_000)),
    ("webm", lambda: encoded("webm", "libopus", tone(0.2, rate=48_000), rate=48_000)),
    ("m4a", lambda: encoded("ipod", "aac", tone(0.2), rate=44_100)),
])
def test_sniff_knows_what_encoders_make(kind, make):
    assert audio.sniff(make()) == kind


DECLARED = [
    ("webm", "audio/webm;codecs=opus", True),
    ("webm", "video/webm", True),
    ("webm", "audio/ogg", False),
    ("ogg", "audio/ogg; codecs=opus", True),
    ("wav", "audio/wav", True),
    ("wav", "AUDIO/X-WAV", True),
    ("wav", "audio/mpeg", False),
    ("mp3", "audio/mpeg", True),
    ("m4a", "audio/mp4", True),
    ("garbage", "audio/wav", False),
]
SAMPLES = {
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm",
    "ogg": b"OggS\x00\x02",
    "wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "mp3": b"ID3\x04\x00",
    "m4a": b"\x00\x00\x00\x1cftypM4A ",
    "garbage": b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09",
}


@pytest.mark.parametrize("kind, content_type, ok", DECLARED)
def test_declared_type_matches(kind, content_type, ok):
    assert audio.declared_type_matches(SAMPLES[kind], content_type) is ok


# --- join, duration, hash ----------------------------------------------------------------------


def telephone_clip(seconds: float, value: int) -> bytes:
    """A clip already in the telephone format, every sample `value` (to find it in the join)."""
    return wav(array.array("h", [value]) * int(seconds * 8000), rate=8000)


@pytest.mark.parametrize("gap_ms", [120, 0, 250])
def test_join_sums_durations_and_gaps(gap_ms):
    clips = [telephone_clip(0.5, 1000), telephone_clip(0.75, 2000), telephone_clip(1.0, 3000)]
    joined = audio.join(clips, gap_ms=gap_ms)
    assert audio.duration_s(joined) == pytest.approx(2.25 + 2 * gap_ms / 1000, abs=1e-9)
    params, samples = read(joined)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    gap = 8 * gap_ms
    expected = ([1000] * 4000 + [0] * gap + [2000] * 6000 + [0] * gap + [3000] * 8000)
    assert samples.tolist() == expected


def test_join_of_normalised_uploads():
    clips = [audio.normalise(wav(tone(s)), max_seconds=10) for s in (0.3, 0.6, 1.2)]
    total = sum(audio.duration_s(c) for c in clips)
    assert audio.duration_s(audio.join(clips)) == pytest.approx(total + 2 * 0.12, abs=1e-9)


@pytest.mark.parametrize("clip", [
    wav(tone(0.5)),  # 44.1 kHz: not normalised
    wav(tone(0.5, rate=8000, channels=2), rate=8000, channels=2),
    encoded("mp3", "libmp3lame", tone(0.5), rate=44_100),
    b"not audio",
], ids=["44.1 kHz wav", "stereo 8 kHz wav", "mp3", "garbage"])
def test_join_refuses_what_is_not_telephone_format(clip):
    with pytest.raises(AudioError) as caught:
        audio.join([telephone_clip(0.2, 1), clip])
    assert caught.value.reason == "format"


def test_join_needs_clips():
    with pytest.raises(ValueError):
        audio.join([])


@pytest.mark.parametrize("make, seconds", [
    (lambda: wav(tone(1.5)), 1.5),
    (lambda: telephone_clip(0.25, 5), 0.25),
    (lambda: encoded("mp3", "libmp3lame", tone(1.0), rate=44_100), 1.0),
    (lambda: encoded("ogg", "libopus", tone(1.0, rate=48_000), rate=48_000), 1.0),
])
def test_duration(make, seconds):
    assert audio.duration_s(make()) == pytest.approx(seconds, abs=0.06)


def test_duration_of_garbage():
    with pytest.raises(AudioError, match="unreadable"):
        audio.duration_s(b"\x00" * 100)


def test_content_hash():
    clip = telephone_clip(0.1, 7)
    assert audio.content_hash(b"") == hashlib.sha256(b"").hexdigest()
    assert audio.content_hash(clip) == audio.content_hash(bytes(clip))
    assert audio.content_hash(clip) != audio.content_hash(telephone_clip(0.1, 8))
    assert len(audio.content_hash(clip)) == 64 and int(audio.content_hash(clip), 16) >= 0


def test_to_mp3_of_a_playlist():
    joined = audio.join([audio.normalise(wav(tone(0.8)), max_seconds=10)] * 3)
    mp3 = audio.to_mp3(joined)
    assert audio.sniff(mp3) == "mp3"
    assert len(mp3) < len(joined) / 3
    assert audio.duration_s(mp3) == pytest.approx(audio.duration_s(joined), abs=0.06)
    assert audio.normalise(mp3, max_seconds=10)  # it decodes back


# --- synthesis ---------------------------------------------------------------------------------


def test_synthesize_french():
    data = synth.synthesize("quatre-vingts", "fr")
    params, samples = read(data)
    assert (params.nchannels, params.sampwidth) == (1, 2)
    assert 0.3 <= params.nframes / params.framerate <= 2.0  # two words, said slowly
    assert peak_dbfs(samples) > -20  # not silent
    out = audio.normalise(data, max_seconds=10)
    assert 0.3 <= audio.duration_s(out) <= 2.0


@pytest.mark.parametrize("text", ["kɛmɛ fila ni bi duuru", "bi wolonwula", "ɲɔgɔn", "Ɔkutɔburu", "kɛ́mɛ"])
def test_synthesize_bambara_with_the_stand_in_voice(text):
    data = synth.synthesize(text, "bm")
    params, samples = read(data)
    seconds = params.nframes / params.framerate
    assert peak_dbfs(samples) > -20
    # About 0.15-0.4 s a syllable: a voice that spells out letters it does not know is far longer.
    syllables = sum(text.lower().count(v) for v in "aeiouɛɔ") - sum(text.count(v * 2) for v in "aeiou")
    assert seconds < 0.45 * syllables + 0.4, (text, seconds)


@pytest.mark.parametrize("word", ["duuru", "fu", "mugan", "kɛmɛ", "seegin", "wɔɔrɔ", "ɲɔgɔn", "nowanburu"])
def test_bambara_is_read_letter_for_letter(word):
    said = synth.phonemes(word, "bm")
    assert "(" not in said  # no switch to another language ("seegin" went English in French)
    assert "y" not in said  # "u" is /u/, not French /y/
    assert "ə" not in said  # final vowels are said, not dropped


def test_the_number_clips_of_a_price_synthesize():
    for lang in ("fr", "bm"):
        for clip in say_money(1250, lang):
            assert audio.normalise(synth.synthesize(clip_text(clip), lang), max_seconds=10)


@pytest.mark.parametrize("text, lang", [("bonjour", "en"), ("bonjour", "xx"), ("", "fr"), ("   ", "bm")])
def test_synthesize_refuses(text, lang):
    with pytest.raises(ValueError):
        synth.synthesize(text, lang)


def test_synthesis_is_thread_safe():
    # eSpeak's API is one global state: without the lock, two threads' samples would land in one
    # clip (about twice as long) or be cut short. Each text's length varies by a few ms between
    # calls (see synth's docstring), so lengths are compared, not bytes.
    texts = [("deux cent cinquante", "fr"), ("kɛmɛ fila", "bm"), ("soixante et onze", "fr"),
             ("waa kelen", "bm")]
    alone = {t: audio.duration_s(synth.synthesize(*t)) for t in texts}
    results: list[tuple[tuple[str, str], float]] = []

    def speak(t: tuple[str, str]) -> None:
        for _ in range(5):
            results.append((t, audio.duration_s(synth.synthesize(*t))))

    threads = [threading.Thread(target=speak, args=(t,)) for t in texts * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 40
    assert all(seconds == pytest.approx(alone[t], rel=0.05) for t, seconds in results)


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_nothing_happens_at_import():
    out = run_python(
        "import sys\n"
        "from messages.voice import synth\n"
        "print('espeakng_loader' in sys.modules, synth._engine is None)\n"
        "print(synth.available(), synth._engine is not None)\n"
    )
    assert out.split() == ["False", "True", "True", "True"]


def test_synthesis_needs_no_network():
    # A fresh process where any network use from Python raises, and where the engine starts
    # after the guard is on: the whole path (loader, library, data, normalise) runs offline.
    out = run_python(
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('network used')\n"
        "socket.socket.connect = socket.socket.connect_ex = refuse\n"
        "socket.create_connection = socket.getaddrinfo = socket.gethostbyname = refuse\n"
        "from messages.voice import audio, synth\n"
        "wav = synth.synthesize('quatre-vingts', 'fr')\n"
        "print(round(audio.duration_s(audio.normalise(wav, max_seconds=10)), 1))\n"
    )
    assert 0.3 <= float(out) <= 2.0


def test_the_engine_library_has_no_network_calls():
    # The C library cannot reach the network behind Python's back: its dynamic symbols import no
    # socket function (fopen is there, to show the check reads the right table).
    import espeakng_loader

    binary = Path(espeakng_loader.get_library_path()).read_bytes()
    if binary[:4] != b"\x7fELF":
        pytest.skip("the symbol check reads ELF libraries (Linux)")
    assert b"\0fopen\0" in binary
    for name in (b"socket", b"connect", b"getaddrinfo", b"gethostbyname", b"curl_easy_init"):
        assert b"\0" + name + b"\0" not in binary
    data = Path(espeakng_loader.get_data_path())
    assert (data / "phondata").is_file() and (data / "fr_dict").is_file() and (data / "sw_dict").is_file()
