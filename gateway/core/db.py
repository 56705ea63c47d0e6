"""Engine and unit of work. Nothing here connects until a Database is built at start-up."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from gateway.core.settings import Settings
from gateway.core.startup import prepare_sqlite_path

SQLITE_BUSY_TIMEOUT_MS = 5000

T = TypeVar("T")


def _sqlite_pragmas(cache_mb: int, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS):
    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run during a write; NORMAL is durable across application crashes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        # One budget for the whole process (the pragma is process-wide): each pooled connection
        # would otherwise fill its own 2 MB page cache as the database grows, and the soak test
        # saw the resident size creep up with every connection that did. The operating system's
        # file cache still holds the database's pages.
        cursor.execute(f"PRAGMA soft_heap_limit={cache_mb * 1024 * 1024}")
        cursor.close()

    return on_connect


def make_engine(settings: Settings, *, wait: bool = True) -> Engine:
    """`wait=False` (SQLite): connections whose writes fail at once when another writer holds
    the lock, with an error that `Database.is_busy` recognises."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        prepare_sqlite_path(settings.database_url)
        # 32 prepared statements a connection, not pysqlite's 128: a hop, a webhook or a worker
        # step runs a handful, and each statement kept holds SQLite memory in every pooled
        # connection (~0.45 MB a connection at 128 once the console has been used; bench/soak.py).
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 5, "cached_statements": 32})
        busy_timeout_ms = SQLITE_BUSY_TIMEOUT_MS if wait else 0
        event.listen(engine, "connect", _sqlite_pragmas(settings.sqlite_cache_mb, busy_timeout_ms))
        return engine
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


class Database:
    def __init__(self, engine: Engine, nowait_engine: Engine | None = None) -> None:
        self.engine = engine
        self._nowait_engine = nowait_engine or engine
        # SQLite: this process's write that waits in the thread pool for another writer's lock
        # (read_then_write), an asyncio future of the serving loop.
        self._pool_write = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Database":
        engine = make_engine(settings)
        nowait = None
        if engine.dialect.name == "sqlite" and make_url(settings.database_url).database not in (None, "", ":memory:"):
            # Writes tried without waiting (a USSD hop's, on the event loop) get pooled
            # connections of their own, made not to wait: switching a shared connection's
            # busy timeout off and on again cost two statements a write. (An in-memory database
            # is one connection's: nobody else writes to it.)
            nowait = make_engine(settings, wait=False)
        return cls(engine, nowait)

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine this database runs statements on (SQLite: also the no-wait writers')."""
        return (self.engine,) if self._nowait_engine is self.engine else (self.engine, self._nowait_engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self, *, wait: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block succeeds, rolled back when it raises.

        Services receive the session and never commit; the request or job that opened it does.
        `wait=False` (SQLite): fail at once with an error that `is_busy` recognises, instead of
        waiting for another writer's lock.
        """
        with Session(self.engine if wait else self._nowait_engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def transaction(self, *, wait: bool = True) -> Iterator[Connection]:
        """One transaction on a plain connection, for writes that need no ORM session: committed
        when the block succeeds, rolled back when it raises. About half the cost of a
        `unit_of_work` for a write of a statement or two (a USSD hop's). `wait`: as there."""
        with (self.engine if wait else self._nowait_engine).begin() as connection:
            yield connection

    async def read_then_write(
        self, read: Callable[[Session], T], write: Callable[[Connection, T], None], *, writes: Callable[[T], bool],
        reads_nothing: bool = False,
    ) -> T:
        """A request's reads, then its writes when `writes(result)` says there are any.

        PostgreSQL: both in one unit of work, in the thread pool; but when the caller expects
        the reads to find all they need in memory (`reads_nothing`: a USSD hop of a session this
        process remembers, its content cached), they run on the event loop, as handing work
        that touches no table to the pool cost more than the work (bench/ussd_load.py
        --postgres), and only writes go to the pool. SQLite: on the event loop,
        because handing a millisecond of work to the thread pool cost more than the work (GIL
        hand-offs; bench/ussd_load.py: 1.85 → 1.38 ms of server CPU per USSD hop, 514 → 712
        req/s). WAL readers never wait for a lock; the writes are tried without waiting, and only
        when another writer (a broadcast) holds the lock do they go to the pool to wait there,
        never stalling the loop. pysqlite reads outside a transaction anyway, so splitting the
        reads from the writes changes nothing the request sees.
        """
        # Imported here: the worker process, which never serves requests, stays without them.
        import asyncio

        from starlette.concurrency import run_in_threadpool

        if self.dialect != "sqlite":
            if not reads_nothing:
                return await run_in_threadpool(self._read_and_write, read, write, writes)
            with Session(self.engine, expire_on_commit=False) as session:
                result = read(session)  # a cache that expired meanwhile reads here: rare and short
            if writes(result):
                await run_in_threadpool(self._write, write, result)
            return result
        # Reads only: nothing to commit (committing a session that ran nothing still costs a
        # transaction's bookkeeping, and most hops run nothing).
        with Session(self.engine, expire_on_commit=False) as session:
            result = read(session)
        if writes(result):
            while self._pool_write is not None and not self._pool_write.done():
                # A write of this process already waits in the pool for the lock: wait for it
                # rather than fail against the same lock. Otherwise, under load, every later
                # write followed it there, each a thread hand-off, for as long as writes kept
                # coming (the in-process broadcaster's step every second set it off: a third of
                # the hops' writes went to the pool, bench/ussd_load.py).
                await asyncio.wait([self._pool_write])
            try:
                with self.transaction(wait=False) as connection:
                    write(connection, result)
            except OperationalError as exc:
                if not self.is_busy(exc):
                    raise
                pending = self._pool_write = asyncio.ensure_future(run_in_threadpool(self._write, write, result))
                try:
                    await pending
                finally:
                    if self._pool_write is pending:
                        self._pool_write = None
        return result

    def _read_and_write(self, read: Callable[[Session], T], write: Callable[[Connection, T], None], writes) -> T:
        with self.unit_of_work() as session:
            result = read(session)
            if writes(result):
                write(session.connection(), result)
            return result

    def _write(self, write: Callable[[Connection, T], None], result: T) -> None:
        with self.transaction() as connection:
            write(connection, result)

    @staticmethod
    def is_busy(exc: BaseException) -> bool:
        """Another writer holds SQLite's lock (what `unit_of_work(wait=False)` raises)."""
        return isinstance(exc, OperationalError) and ("locked" in str(exc) or "busy" in str(exc))

    def dispose(self) -> None:
        for engine in self.engines:
            engine.dispose()
