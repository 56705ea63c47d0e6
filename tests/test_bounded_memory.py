"""What a long-running process keeps in memory stays bounded: caches forget what has expired,
SQLite's page caches share one budget (the soak test, bench/soak.py, measures the whole)."""

from __future__ import annotations

import pytest

from gateway.data.dataview import ContentCache


def test_content_cache_serves_within_its_time_to_live_then_reloads():
    now, loads = [0.0], []
    cache = ContentCache(ttl_s=5, clock=lambda: now[0])

    def load():
        loads.append(now[0])
        return len(loads)

    assert cache.get(("crops",), load) == 1
    now[0] = 4.9
    assert cache.get(("crops",), load) == 1
    now[0] = 5.0
    assert cache.get(("crops",), load) == 2


def test_content_cache_forgets_keys_nobody_asks_for_again():
    """Today's demands are cached under today's date: once the day is over, that key is never
    asked again and must not stay for the months the server runs."""
    now = [0.0]
    cache = ContentCache(ttl_s=5, clock=lambda: now[0])
    for day in range(400):
        now[0] = day * 86_400.0
        cache.get(("demands", day), lambda: ("a demand",) * 10)
        cache.get(("crops",), lambda: ("tomato", "onion"))
    assert len(cache) <= 2


class Uncomparable:
    def __eq__(self, other):
        raise TypeError("cannot compare")

    __hash__ = object.__hash__


# A reload after the time to live: (what the first load found, what the reload finds, whether
# the first object is kept)
RELOADS = [
    pytest.param(("tomato", "onion"), ("tomato", "onion"), True, id="the same content: the same object"),
    pytest.param(("tomato", "onion"), ("tomato", "onion", "okra"), False, id="changed content: the new object"),
    pytest.param({("fr", "a"): "x"}, {("fr", "a"): "y"}, False, id="a changed override: the new object"),
    pytest.param((Uncomparable(),), (Uncomparable(),), False, id="content that cannot be compared: the new object"),
]


@pytest.mark.parametrize("first, reloaded, kept", RELOADS)
def test_an_unchanged_reload_keeps_the_objects_built_on(first, reloaded, kept):
    now = [0.0]
    cache = ContentCache(ttl_s=5, clock=lambda: now[0])
    reloaded = type(reloaded)(list(reloaded.items()) if isinstance(reloaded, dict) else list(reloaded))  # another object
    got = cache.get(("crops",), lambda: first)
    now[0] = 5.0
    again = cache.get(("crops",), lambda: reloaded)
    assert (again is got) is kept
    assert again is (first if kept else reloaded)


def test_what_is_derived_from_the_cache_is_rebuilt_only_when_its_sources_change():
    now, builds = [0.0], []
    cache = ContentCache(ttl_s=5, clock=lambda: now[0])
    content = [{("fr", "a"): "x"}]

    def catalog():
        found = cache.get(("overrides",), lambda: dict(content[0]))
        return cache.derived(("catalog",), (found,), lambda: builds.append(found) or object())

    first = catalog()
    for t in (1.0, 5.0, 11.0, 17.0):  # reloads that find the same overrides
        now[0] = t
        assert catalog() is first
    content[0] = {("fr", "a"): "y"}
    now[0] = 23.0
    assert catalog() is not first
    assert len(builds) == 2
    cache.clear()
    assert catalog() is not first and len(builds) == 3


def test_sqlite_connections_share_one_page_cache_budget(tmp_path):
    """Four pooled connections that each read a 6 MB table hold about the budget, not 4 × 2 MB."""
    import ctypes
    import threading

    from sqlalchemy import text

    from gateway.core.db import Database
    from gateway.core.settings import Settings

    try:
        sqlite = ctypes.CDLL("libsqlite3.so.0")  # the library Python's sqlite3 module uses
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    except OSError:
        pytest.skip("no shared libsqlite3 to ask")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'cache.db'}", sqlite_cache_mb=1)
    db = Database.from_settings(settings)
    try:
        with db.unit_of_work() as session:
            conn = session.connection()
            assert conn.exec_driver_sql("PRAGMA soft_heap_limit").scalar() == 1024 * 1024
            conn.exec_driver_sql("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)")
            conn.execute(text("INSERT INTO filler (body) VALUES (:b)"), [{"b": "x" * 300}] * 20_000)
        before = sqlite.sqlite3_memory_used()
        barrier, held = threading.Barrier(4), []

        def read():  # four connections at once: each has its own page cache
            with db.unit_of_work() as session:
                session.connection().exec_driver_sql("SELECT sum(length(body)) FROM filler").scalar()
                held.append(sqlite.sqlite3_memory_used())
                barrier.wait(timeout=10)

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert max(held) - before < 2.5 * 1024 * 1024  # without the budget: ~8 MB
    finally:
        db.dispose()
        # The pragma is process-wide: give the rest of the suite the default budget back.
        reset = Database.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'reset.db'}"))
        reset.engine.connect().close()
        reset.dispose()
