"""Audio for the voice channel: the telephone format, uploads normalised into it, and clips joined
into the one file that one `Play` plays (issue 16 items 4 and 5).

Bytes in, bytes out, all in memory (no temporary files). Decoding and encoding go through PyAV,
which carries FFmpeg's libraries in its wheel: no binary is run.

The telephone format: WAV, 16-bit PCM, mono, 8000 Hz, served as audio/wav at a URL that ends in
".wav". Why WAV and not MP3:

- It is what the phone network carries (8 kHz narrow band), so the platform plays it as it is:
  voice platforms name it as their recommended format (Exotel: "for best quality and lowest
  transcoding latency, use 8000 Hz Mono WAV"; API19/Teleapi and CallFire: WAV 8000 Hz 16-bit mono).
  Africa's Talking's pages do not list formats for `Play url`; public Africa's Talking callbacks
  play both .wav and .mp3 URLs, and InSTEDD's Surveda found that Africa's Talking plays a URL only
  when it ends in a valid extension (instedd/surveda issue 1426): hence ".wav" in the URL.
- Joining is byte concatenation: exact gaps, well under a millisecond, no lossy re-encoding per
  playlist and none of MP3's encoder delay and padding between clips.
- The cost is size: 16 kB per second (a 6 s price sentence is 96 kB) against 2-4 kB for MP3. Each
  distinct playlist is fetched once and cached by its content hash, so this stays small. Should an
  account need MP3 after all, `to_mp3` makes one from the same WAV (also for the radio bulletin).

Loudness (applied by `normalise`): the active speech level — the RMS of the 10 ms windows that
hold speech, a simplified ITU-T P.56 — is brought to -20 dBFS, unless that would push the peak
above -1 dBFS, in which case the peak sets the gain. Every prompt and clip then sounds equally loud
when joined.
"""

from __future__ import annotations

import array
import hashlib
import io
import math
import operator
import wave
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import av

# PyAV is imported by the functions that use it, on first use: FFmpeg's libraries cost a process
# ~24 MB resident, and the server's hot path (joining clips, `wave` only) never needs them.

__all__ = [
    "AudioError", "CHANNELS", "PLAY_CONTENT_TYPE", "PLAY_EXTENSION", "SAMPLE_RATE", "SAMPLE_WIDTH",
    "UPLOAD_TYPES", "content_hash", "declared_type_matches", "duration_s", "join", "normalise",
    "sniff", "to_mp3",
]

# --- the telephone format ----------------------------------------------------------------------

SAMPLE_RATE = 8000  # Hz: narrow-band telephony
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes: 16-bit signed PCM
PLAY_CONTENT_TYPE = "audio/wav"
PLAY_EXTENSION = ".wav"

# --- what normalise aims at --------------------------------------------------------------------

TARGET_ACTIVE_DBFS = -20.0  # active speech level after normalisation
PEAK_CEILING_DBFS = -1.0  # never above, whatever the level
SILENT_BELOW_DBFS = -55.0  # a file whose loudest 10 ms window is quieter holds nothing to hear
TRIM_BELOW_LOUDEST_DB = -35.0  # windows this far below the loudest are silence, for trimming
WINDOW_MS = 10
TRIM_PAD_MS = 60  # kept before the first and after the last speech window: soft consonants
FADE_MS = 5  # in and out, so that a cut edge does not click when clips are joined
# Raw audio decoded beyond max_seconds before giving up: room for silence that trimming removes,
# while a 10-hour file is refused after max_seconds + this, not decoded whole.
TRIM_ALLOWANCE_S = 30.0

_FULL_SCALE = 32767

# --- what uploads may be -----------------------------------------------------------------------

# Container kinds that sniff() recognises, with the MIME types a browser or client declares for
# them (parameters such as ";codecs=opus" are ignored). MediaRecorder sends webm/opus (Chrome,
# Firefox), ogg/opus (Firefox) or mp4/aac (Safari).
UPLOAD_TYPES: dict[str, tuple[str, ...]] = {
    "wav": ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"),
    "mp3": ("audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg-3"),
    "ogg": ("audio/ogg", "audio/opus", "application/ogg"),
    "webm": ("audio/webm", "video/webm"),
    "mkv": ("audio/x-matroska", "video/x-matroska"),
    "m4a": ("audio/mp4", "audio/x-m4a", "audio/m4a", "audio/aac", "video/mp4"),
}
# The FFmpeg demuxer for each: given explicitly so that FFmpeg never probes its way into a
# playlist format (HLS, concat) that would open other files or URLs named inside an upload.
_DEMUXERS = {"wav": "wav", "mp3": "mp3", "ogg": "ogg", "webm": "matroska", "mkv": "matroska", "m4a": "mp4"}
# A WAV header says all there is to know: probing its stream too (FFmpeg's default) costs ~10 ms
# per clip, most of the time of normalising a short one.
_DEMUXER_OPTIONS = {"wav": {"probesize": "32", "analyzeduration": "0"}}


class AudioError(ValueError):
    """Audio that cannot be used. `reason` is short and stable, for code and for messages to staff:
    "empty", "unreadable", "too_long", "silent", or "format" (join was given a clip that is not in
    the telephone format)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --- sniffing ----------------------------------------------------------------------------------


def sniff(data: bytes) -> str | None:
    """The container kind by magic bytes — "wav", "mp3", "ogg", "webm", "mkv" or "m4a" — or None.
    Only the first bytes are read: it checks a declared type, it does not prove the file decodes."""
    head = bytes(data[:64])
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska, whose DocType names WebM
        return "webm" if b"webm" in head else "mkv"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head[:3] == b"ID3" or _mp3_frame_header(head):
        return "mp3"
    return None


def _mp3_frame_header(head: bytes) -> bool:
    """An MPEG audio layer III frame header: 11 sync bits, a known version, layer III, a valid
    bitrate and sample rate (an AAC ADTS header has layer 00 and is not taken for MP3)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    rate = (head[2] >> 2) & 0b11
    return version != 0b01 and layer == 0b01 and bitrate not in (0b0000, 0b1111) and rate != 0b11


def declared_type_matches(data: bytes, content_type: str) -> bool:
    """Whether an upload's declared MIME type fits what its bytes are (and is a kind we take)."""
    declared = content_type.split(";", 1)[0].strip().lower()
    kind = sniff(data)
    return kind is not None and declared in UPLOAD_TYPES[kind]


# --- normalising -------------------------------------------------------------------------------


def normalise(data: bytes, *, max_seconds: float) -> bytes:
    """An upload (wav, mp3, ogg, webm, mkv or m4a, any codec FFmpeg decodes in them) in the
    telephone format: mono, SAMPLE_RATE, 16-bit WAV, leading and trailing silence trimmed, loudness
    brought to the target of the module docstring.

    Raises AudioError: "empty" (no bytes, or no audio in them), "unreadable" (not a container we
    take, or FFmpeg cannot decode it), "too_long" (more than max_seconds once trimmed; decoding
    stops at max_seconds + TRIM_ALLOWANCE_S), "silent" (nothing louder than SILENT_BELOW_DBFS)."""
    if not data:
        raise AudioError("empty", "the file is empty")
    kind = sniff(data)
    if kind is None:
        raise AudioError("unreadable", "not a wav, mp3, ogg, webm or m4a file")
    limit = int((max_seconds + TRIM_ALLOWANCE_S) * SAMPLE_RATE)
    samples = _decode_mono(data, kind, limit, max_seconds)
    if not samples:
        raise AudioError("empty", "the file holds no audio")

    # A DC offset (cheap microphones) is not sound: every level below is measured around the mean.
    mean = sum(samples) / len(samples)
    window = SAMPLE_RATE * WINDOW_MS // 1000
    windows = [samples[i:i + window] for i in range(0, len(samples), window)]
    energies = [_energy(w, mean) for w in windows]
    levels = [math.sqrt(e / len(w)) for e, w in zip(energies, windows, strict=True)]
    loudest = max(levels)
    if loudest < _amplitude(SILENT_BELOW_DBFS):
        raise AudioError("silent", f"nothing louder than {SILENT_BELOW_DBFS:.0f} dBFS")

    threshold = max(_amplitude(SILENT_BELOW_DBFS), loudest * 10 ** (TRIM_BELOW_LOUDEST_DB / 20))
    speech = [i for i, level in enumerate(levels) if level >= threshold]
    pad = SAMPLE_RATE * TRIM_PAD_MS // 1000
    start = max(0, speech[0] * window - pad)
    end = min(len(samples), (speech[-1] + 1) * window + pad)
    seconds = (end - start) / SAMPLE_RATE
    if seconds > max_seconds:
        raise AudioError("too_long", f"{seconds:.1f} s of sound, more than {max_seconds:g} s")
    trimmed = samples[start:end]

    active = math.sqrt(sum(energies[i] for i in speech) / sum(len(windows[i]) for i in speech))
    peak = max(max(trimmed) - mean, mean - min(trimmed), 1.0)
    gain = min(_amplitude(TARGET_ACTIVE_DBFS) / active, _amplitude(PEAK_CEILING_DBFS) / peak)
    # One pass: offset removed and gain applied; the peak bound keeps every sample in range.
    out = array.array("h", [int((s - mean) * gain) for s in trimmed])
    fade = min(SAMPLE_RATE * FADE_MS // 1000, len(out) // 2)
    for i in range(fade):
        ramp = i / fade
        out[i] = int(out[i] * ramp)
        out[-1 - i] = int(out[-1 - i] * ramp)
    return _wav(out)


def _open(data: bytes, kind: str) -> av.container.InputContainer:
    import av
    return av.open(io.BytesIO(data), mode="r", format=_DEMUXERS[kind], options=_DEMUXER_OPTIONS.get(kind, {}))


def _decode_mono(data: bytes, kind: str, limit: int, max_seconds: float) -> array.array:
    """The first audio stream, downmixed to mono and resampled to SAMPLE_RATE, as 16-bit samples.
    FFmpeg's resampler low-passes before decimating, so 44.1 kHz music does not alias into 8 kHz."""
    import av
    pcm = bytearray()
    try:
        with _open(data, kind) as container:
            if not container.streams.audio:
                raise AudioError("unreadable", "no audio track in the file")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for piece in resampler.resample(frame):
                    pcm += bytes(piece.planes[0])[: piece.samples * SAMPLE_WIDTH]
                if len(pcm) > limit * SAMPLE_WIDTH:
                    raise AudioError("too_long", f"longer than {max_seconds:g} s")
            for piece in resampler.resample(None):
                pcm += bytes(piece.planes[0])[: piece.samples * SAMPLE_WIDTH]
    except AudioError:
        raise
    except (av.FFmpegError, ValueError, EOFError, OSError) as error:
        raise AudioError("unreadable", f"cannot decode the {kind} file ({error})") from error
    # FFmpeg's s16 is native-endian, WAV little-endian: the same on every host this runs on
    # (x86-64, arm64), so samples go between the two without swapping.
    return array.array("h", bytes(pcm))


def _energy(samples: array.array, mean: float) -> float:
    """Sum of squares around the mean: sum(s²) - 2·mean·sum(s) + n·mean², in C-speed built-ins."""
    total = sum(samples)
    return max(0.0, sum(map(operator.mul, samples, samples)) - 2 * mean * total + len(samples) * mean * mean)


def _amplitude(dbfs: float) -> float:
    return _FULL_SCALE * 10 ** (dbfs / 20)


# --- the telephone WAV -------------------------------------------------------------------------


def _wav(samples: array.array | bytes, rate: int = SAMPLE_RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(CHANNELS)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(rate)
        wav.writeframes(samples)
    return out.getvalue()


def _telephone_pcm(clip: bytes) -> bytes:
    """The PCM of a clip that is in the telephone format, or AudioError("format")."""
    try:
        with wave.open(io.BytesIO(clip), "rb") as wav:
            params = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
            if params != (CHANNELS, SAMPLE_WIDTH, SAMPLE_RATE):
                raise AudioError("format", f"a clip is {params[0]} ch, {params[1] * 8}-bit, {params[2]} Hz; "
                                           "normalise it first")
            return wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as error:
        raise AudioError("format", f"a clip is not a PCM WAV ({error}); normalise it first") from error


def join(clips: Sequence[bytes], *, gap_ms: int = 120) -> bytes:
    """One WAV of the clips in order, with gap_ms of silence between two clips (none at the ends):
    the file that one `Play` plays. Clips must be in the telephone format (what `normalise` makes);
    a clip that is not raises AudioError("format"), so that a wrong file is never joined as noise."""
    if not clips:
        raise ValueError("no clips to join")
    if gap_ms < 0:
        raise ValueError("gap_ms must be 0 or more")
    gap = bytes(SAMPLE_RATE * gap_ms // 1000 * SAMPLE_WIDTH)
    return _wav(gap.join(_telephone_pcm(clip) for clip in clips))


def duration_s(data: bytes) -> float:
    """The duration in seconds: read from the header of a PCM WAV, else by decoding (any kind
    sniff() knows). Raises AudioError("unreadable") for anything else."""
    import av
    kind = sniff(data)
    if kind == "wav":
        try:
            with wave.open(io.BytesIO(data), "rb") as wav:
                return wav.getnframes() / wav.getframerate()
        except (wave.Error, EOFError):
            pass  # a WAV of another codec (mu-law, ADPCM): decode it below
    if kind is None:
        raise AudioError("unreadable", "not a wav, mp3, ogg, webm or m4a file")
    samples = 0
    rate = 0
    try:
        with _open(data, kind) as container:
            if not container.streams.audio:
                raise AudioError("unreadable", "no audio track in the file")
            for frame in container.decode(container.streams.audio[0]):
                samples += frame.samples
                rate = frame.sample_rate
    except AudioError:
        raise
    except (av.FFmpegError, ValueError, EOFError, OSError) as error:
        raise AudioError("unreadable", f"cannot decode the {kind} file ({error})") from error
    return samples / rate if rate else 0.0


def content_hash(data: bytes) -> str:
    """sha256 of the bytes, in hex: the name under which a clip or playlist is stored and served
    (unguessable, and the same content always gets the same URL, so it caches forever)."""
    return hashlib.sha256(data).hexdigest()


def to_mp3(wav_data: bytes, *, bitrate: int = 32_000) -> bytes:
    """An MP3 of a telephone-format WAV (mono, same rate): for the radio bulletin, and for an
    account that would want MP3 in `Play`."""
    import av
    pcm = _telephone_pcm(wav_data)
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = bitrate
        step = 1152 * SAMPLE_WIDTH  # one MP3 frame of samples per AudioFrame; the encoder re-chunks
        for offset in range(0, len(pcm), step):
            chunk = pcm[offset:offset + step]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // SAMPLE_WIDTH)
            frame.planes[0].update(chunk + bytes(frame.planes[0].buffer_size - len(chunk)))
            frame.sample_rate = SAMPLE_RATE
            frame.pts = offset // SAMPLE_WIDTH
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()
