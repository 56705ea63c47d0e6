"""Memory probe for the soak test (bench/soak.py --memory-probe), loaded into the gateway's
process through PYTHONPATH: every few seconds, one JSON line with what the resident size is
made of, so that growth can be told apart (Python objects, glibc's free-but-kept heap, SQLite's
page caches, mapped files). Not part of the service; it runs only when SUGU_MEMPROBE names a file.

With PYTHONTRACEMALLOC=<frames> also set, it saves the Python allocation sites that grew most
between two snapshots, taken when the files <SUGU_MEMPROBE>.base and then <SUGU_MEMPROBE>.diff
appear (the soak creates them at the end of minute 1 and at the end of the traffic).
"""

import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time

_PATH = os.environ.get("SUGU_MEMPROBE")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]


def _load():
    libc = sqlite = None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError, TypeError):
        libc = None
    try:
        sqlite = ctypes.CDLL("libsqlite3.so.0")  # the library _sqlite3 is linked to: same instance
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
        sqlite.sqlite3_memory_highwater.restype = ctypes.c_int64
        sqlite.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):
        sqlite = None
    return libc, sqlite


def _status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


_PYMALLOC_KEYS = {
    "# arenas allocated current": "py_arenas",
    "# bytes in allocated blocks": "py_used",
    "# bytes in available blocks": "py_free_blocks",
    "# bytes in empty pools": "py_empty_pools",
}


def _pymalloc() -> dict:
    """Python's own allocator (objects up to 512 bytes live in its 1 MiB arenas, which glibc's
    mallinfo2 does not see): sys._debugmallocstats() writes to the C stderr, read back here."""
    import tempfile

    out = {}
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    stray = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        name = _PYMALLOC_KEYS.get(key.strip())
        if name and sep:
            out[name] = int(value.strip().replace(",", ""))
        elif line and not line[:1].isspace() and "=" not in line and not line.startswith(("class", "arena map", "Small block", "-")):
            stray.append(line)  # someone else's stderr line written meanwhile: give it back
    if stray:
        os.write(2, ("\n".join(stray) + "\n").encode())
    if "py_arenas" in out:
        out["py_arenas"] *= 1 << 20  # bytes (1 MiB arenas in 3.10+)
    return out


def _sample(libc, sqlite, t0: float) -> dict:
    # CLOCK_MONOTONIC is the machine's: the soak converts it to its own time line.
    row = {"t": round(time.monotonic() - t0, 1), "mono": time.monotonic(), **_status(), **_pymalloc()}
    if libc is not None:
        m = libc.mallinfo2()
        row.update(heap=m.arena, heap_used=m.uordblks, heap_free=m.fordblks, mmapped=m.hblkhd, top_pad=m.keepcost)
    if sqlite is not None:
        row.update(sqlite_used=sqlite.sqlite3_memory_used(), sqlite_peak=sqlite.sqlite3_memory_highwater(0))
    return row


def _start(path: str) -> None:
    every = float(os.environ.get("SUGU_MEMPROBE_EVERY_S", "5"))
    libc, sqlite = _load()
    t0 = time.monotonic()

    def loop():
        import tracemalloc

        base = None
        with open(path, "a", buffering=1) as out:
            while True:
                row = _sample(libc, sqlite, t0)
                if tracemalloc.is_tracing():
                    row["traced"] = tracemalloc.get_traced_memory()[0]
                    # The soak creates these files: the base snapshot, then the comparison.
                    if base is None and os.path.exists(path + ".base"):
                        base = tracemalloc.take_snapshot()
                    elif base is not None and os.path.exists(path + ".diff"):
                        _write_diff(tracemalloc.take_snapshot().compare_to(base, "traceback"), path)
                        base = None
                        os.unlink(path + ".base")
                out.write(json.dumps(row) + "\n")
                time.sleep(every)

    threading.Thread(target=loop, name="memprobe", daemon=True).start()


def _write_diff(diff, path: str) -> None:
    with open(path + ".tracemalloc.tmp", "w") as out:
        for stat in diff[:30]:
            out.write(f"{stat.size_diff / 1024:+.1f} KiB  {stat.count_diff:+d} blocks\n")
            for line in stat.traceback.format()[-8:]:
                out.write(f"    {line}\n")
    os.replace(path + ".tracemalloc.tmp", path + ".tracemalloc.txt")


if _PATH:
    _start(_PATH)
