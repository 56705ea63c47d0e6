"""Voice audio benchmark: joining a new playlist, and synthesizing every number clip.

    .venv/bin/python bench/voice_join.py [--joins 200] [--gap-ms 120]

1. Setup (not timed): the clips of a French price sentence ("Tomate, à Sikasso : mille deux cent
   cinquante francs le kilo, en hausse de 12 pour cent") are synthesized once with
   eSpeak NG and normalised to the telephone format, with the number clips of every price below.
2. Timed: --joins new playlists, each the sentence with another price (so other number clips:
   8-12 clips of 0.2-0.9 s), joined with `audio.join` and named with `audio.content_hash`
   — what the voice channel does the first time a playlist is asked for. p50/p99/max; the bar of
   issue 16 is < 100 ms per new playlist. For comparison, the same playlists encoded to MP3.
3. Timed: every number clip of each language (`numbers.all_clips(lang)` read with `clip_text`),
   synthesized, then synthesized and normalised (what seeding the demo's synthetic clips costs).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from messages.voice import audio, synth  # noqa: E402
from messages.voice.numbers import all_clips, clip_text, say_money, say_percent  # noqa: E402

BAR_MS = 100.0
# The sentence's prompts; "{price}" and "{percent}" stand for number clips.
SENTENCE = [
    "Tomate", "à Sikasso", "{price}", "le kilo", "en hausse de", "{percent}",
]


def playlist(price: int) -> list[str]:
    """Clip keys of the sentence for one price: prompt texts and number clip ids."""
    keys: list[str] = []
    for part in SENTENCE:
        if part == "{price}":
            keys += say_money(price, "fr")
        elif part == "{percent}":
            keys += say_percent(12, "fr")
        else:
            keys.append(part)
    return keys


def clip_audio(key: str) -> bytes:
    text = clip_text(key) if key.startswith("fr.") else key
    return audio.normalise(synth.synthesize(text, "fr"), max_seconds=30)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_joins(joins: int, gap_ms: int) -> bool:
    rng = random.Random(16)
    # Distinct prices in steps of 5 F as traders quote them, 25 F to 25,000 F (a kilo to a sack).
    prices = [units * 5 for units in rng.sample(range(5, 5_000), joins)]
    started = time.perf_counter()
    clips: dict[str, bytes] = {}
    for price in prices:
        for key in playlist(price):
            if key not in clips:
                clips[key] = clip_audio(key)
    setup_s = time.perf_counter() - started
    lengths = [audio.duration_s(c) for c in clips.values()]
    sizes = [len(playlist(p)) for p in prices]
    print(f"setup: {len(clips)} distinct clips synthesized and normalised in {setup_s:.2f} s; "
          f"clip length {min(lengths):.2f}-{max(lengths):.2f} s (median {statistics.median(lengths):.2f} s)")
    print(f"playlists: {joins}, {min(sizes)}-{max(sizes)} clips each, gap {gap_ms} ms")

    join_ms: list[float] = []
    total_ms: list[float] = []
    seconds: list[float] = []
    names: set[str] = set()
    for price in prices:
        parts = [clips[key] for key in playlist(price)]
        t0 = time.perf_counter()
        joined = audio.join(parts, gap_ms=gap_ms)
        t1 = time.perf_counter()
        names.add(audio.content_hash(joined))
        t2 = time.perf_counter()
        join_ms.append((t1 - t0) * 1000)
        total_ms.append((t2 - t0) * 1000)
        seconds.append(audio.duration_s(joined))
    print(f"playlist audio: {min(seconds):.1f}-{max(seconds):.1f} s, "
          f"{len(joined) / 1024:.0f} KiB for the last one; {len(names)} distinct files")
    print(f"join:          p50 {percentile(join_ms, 50):6.2f} ms  p99 {percentile(join_ms, 99):6.2f} ms  "
          f"max {max(join_ms):6.2f} ms")
    print(f"join + sha256: p50 {percentile(total_ms, 50):6.2f} ms  p99 {percentile(total_ms, 99):6.2f} ms  "
          f"max {max(total_ms):6.2f} ms")

    mp3_ms = []
    for price in prices[:20]:
        joined = audio.join([clips[key] for key in playlist(price)], gap_ms=gap_ms)
        t0 = time.perf_counter()
        audio.to_mp3(joined)
        mp3_ms.append((time.perf_counter() - t0) * 1000)
    print(f"(for comparison, MP3 encoding of a joined playlist: p50 {percentile(mp3_ms, 50):.1f} ms "
          f"over {len(mp3_ms)})")
    ok = percentile(total_ms, 99) < BAR_MS
    print(f"{'PASS' if ok else 'FAIL'}: a new playlist joined in < {BAR_MS:.0f} ms (p99 of join + hash)")
    return ok


def bench_number_clips() -> None:
    for lang in ("fr", "bm"):
        texts = [clip_text(clip) for clip in all_clips(lang)]
        t0 = time.perf_counter()
        made = [synth.synthesize(text, lang) for text in texts]
        t1 = time.perf_counter()
        for text in texts:
            audio.normalise(synth.synthesize(text, lang), max_seconds=30)
        t2 = time.perf_counter()
        spoken = sum(audio.duration_s(wav) for wav in made)
        print(f"{lang}: {len(texts)} number clips ({spoken:.0f} s of speech): "
              f"synthesized in {t1 - t0:.2f} s, synthesized and normalised in {t2 - t1:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--joins", type=int, default=200)
    parser.add_argument("--gap-ms", type=int, default=120)
    args = parser.parse_args()
    if not synth.available():
        print("eSpeak NG is not available (pip install espeakng-loader): nothing to measure")
        return 1
    ok = bench_joins(args.joins, args.gap_ms)
    bench_number_clips()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
