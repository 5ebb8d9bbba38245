"""The database engine: SQLite (WAL) by default, PostgreSQL through ``DATABASE_URL``."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
import time
import weakref
from collections import namedtuple
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session

from bot.background import repeating

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# A writer whose commit takes the write-ahead log past this many pages copies it into the database
# file itself, holding the write lock meanwhile (SQLite's default is 1000). A served bot's
# :class:`Checkpointer` copies it long before, off the lock; this bounds the log (about 40 MB)
# when no bot is running.
AUTO_CHECKPOINT_PAGES = 10_000
CHECKPOINT_SECONDS = 0.25
# Pages are read through a memory map of the database file instead of a read() each: when another
# process (a second web worker, the scheduler) has written, SQLite drops its page cache and reads
# the pages again (two workers at 16 connections: ~480 us of CPU a message without, ~350 with).
# Address space, not memory.
MMAP_BYTES = 256 * 1024 * 1024

log = logging.getLogger("safetybot.db")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes a second writer wait
    # instead of failing at once; NORMAL sync is safe under WAL and much faster than FULL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA wal_autocheckpoint={AUTO_CHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    cursor.close()


class Checkpointer:
    """Copies SQLite's write-ahead log into the database file from a thread of its own.

    Left to SQLite, the commit that fills the log does this copy (and its fsync) while it holds the
    write lock, and every other writer waits: every few hundred messages, one waited milliseconds.
    A PASSIVE checkpoint takes no write lock and waits for nobody; the next writer then starts the
    log over. For PostgreSQL, or a database in memory, it does nothing.
    """

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Checkpoint every ``CHECKPOINT_SECONDS`` while the block runs."""
        if self.engine.dialect.name != "sqlite" or self.engine.url.database in (None, "", ":memory:"):
            yield
            return
        connection = self.engine.raw_connection()
        try:
            with repeating(lambda: connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall(),
                           "safetybot-checkpointer", CHECKPOINT_SECONDS):
                yield
        finally:
            connection.close()


WAIT_SECONDS = 10.0
EAGER_SECONDS = 0.005


class WriterTimeout(sa.exc.OperationalError):
    """A writer waited ``WAIT_SECONDS`` for its turn: something holds a transaction open."""

    def __init__(self, message: str):
        super().__init__(message, None, Exception(message))


class WriterQueue:
    """Lets one transaction at a time write a SQLite file, across threads and processes.

    Writers wait here, on a Python lock and then an ``flock`` beside the database file, and wake as
    soon as the previous writer is done; left to SQLite's busy handler they would sleep in growing
    steps of up to 100 ms, which wrecks tail latency under load.
    """

    def __init__(self, database: str):
        self._path = database + "-writer.lock"
        self._threads = threading.Lock()
        self._file: BinaryIO | None = None
        self._pid = 0

    def acquire(self) -> None:
        """Wait for this process's turn, then for the database's; give up after ``WAIT_SECONDS``
        (as SQLite's busy timeout would) rather than hang behind a transaction left open."""
        deadline = time.monotonic() + WAIT_SECONDS
        if not self._threads.acquire(timeout=WAIT_SECONDS):
            raise WriterTimeout(f"no turn to write {self._path} within {WAIT_SECONDS:.0f} s")
        try:
            self._open()
            assert self._file is not None
            pause = 0.0002
            while True:
                try:
                    fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise WriterTimeout(f"another process kept {self._path} for {WAIT_SECONDS:.0f} s") from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.002)
        except BaseException:
            self._threads.release()
            raise

    def _open(self) -> None:
        if self._pid != os.getpid():
            # flock belongs to the open file, which a forked worker must not share: each process
            # opens its own, once (the thread lock keeps its threads in turn).
            if self._file is not None:
                self._file.close()
            self._file = open(self._path, "ab")
            self._pid = os.getpid()
            weakref.finalize(self, self._file.close)

    def try_acquire(self) -> bool:
        """Take the turn if nobody, in this process or another, has it; never waits."""
        if not self._threads.acquire(blocking=False):
            return False
        try:
            self._open()
            assert self._file is not None
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            self._threads.release()
            return False
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        """Let the next writer go: other processes first, then this process's threads."""
        assert self._file is not None
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._threads.release()


_QUEUES: "weakref.WeakKeyDictionary[sa.Engine, WriterQueue]" = weakref.WeakKeyDictionary()


def writer_queue(engine: sa.Engine) -> WriterQueue | None:
    """The queue ``engine``'s writers take turns in: a SQLite file's; None elsewhere."""
    return _QUEUES.get(engine)


def take_turn_now(conn: sa.Connection) -> bool:
    """Take the writer's turn for ``conn``'s next transaction if it is free now; never waits.

    False when another writer has it, or when ``conn`` has no queue; the turn ends with the
    transaction (:func:`transaction`).
    """
    queue = writer_queue(conn.engine)
    if queue is None or not queue.try_acquire():
        return False
    conn.info["writer"] = queue
    return True


async def take_turn(conn: sa.Connection) -> None:
    """Wait, without blocking the event loop, until :func:`take_turn_now` succeeds; give up with
    :class:`WriterTimeout` after ``WAIT_SECONDS``, as :meth:`WriterQueue.acquire` does.

    Another process's turn (a second web worker's group of writes) lasts a millisecond or two, so
    for ``EAGER_SECONDS`` it looks again at every turn of the loop, which goes on serving requests
    meanwhile; then every millisecond (uvloop's timers have no finer step: a shorter sleep is none).
    Looking after 0.5, 1 and 2 ms, two workers at 16 connections answered ~2,600 messages/s;
    looking at every turn, ~3,700.
    """
    started = time.monotonic()
    while not take_turn_now(conn):
        waited = time.monotonic() - started
        if waited > WAIT_SECONDS:
            raise WriterTimeout(f"no turn to write {conn.engine.url.database} within {WAIT_SECONDS:.0f} s")
        await asyncio.sleep(0 if waited < EAGER_SECONDS else 0.001)


def _queue_writers(engine: sa.Engine, queue: WriterQueue) -> None:
    _QUEUES[engine] = queue
    def begin(conn: sa.Connection) -> None:
        # conn.info lives as long as the DBAPI connection: the turn is held until check-in, or
        # until a transaction on a kept connection (:func:`transaction`) ends.
        if not conn.info.get("writer"):
            queue.acquire()
            conn.info["writer"] = queue
        # BEGIN IMMEDIATE takes SQLite's write lock up front, so two transactions that both read
        # and then write never deadlock on the upgrade from a shared to a write lock. Sent on the
        # DBAPI connection: through SQLAlchemy it costs more than the transaction's own work.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")

    def done(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        # The pool gets the connection back after its commit or rollback: only then is SQLite's
        # lock free, so the turn ends here and not in the commit event (which comes before).
        if record is not None and record.info.pop("writer", None):
            queue.release()

    sa.event.listen(engine, "begin", begin)
    sa.event.listen(engine, "checkin", done)
    sa.event.listen(engine, "invalidate", done)


@contextlib.contextmanager
def transaction(conn: sa.Connection) -> Iterator[sa.Connection]:
    """A transaction on a connection the caller keeps open; a SQLite writer's turn ends with it.

    ``engine.begin()`` checks a connection out of the pool and back in every time, which costs
    more than a short transaction; the gateway keeps one connection per handler thread instead.
    """
    try:
        with conn.begin():
            yield conn
    finally:
        # After the commit or rollback has returned, so SQLite's lock is free (see _queue_writers).
        end_turn(conn)


def end_turn(conn: sa.Connection) -> None:
    """Let the next writer go if ``conn`` has the turn; call it only outside a transaction."""
    queue = conn.info.pop("writer", None)
    if queue is not None:
        queue.release()


def make_engine(database_url: str) -> sa.Engine:
    """Create the engine for ``database_url``, with SQLite tuned for several writers."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10, "isolation_level": None})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        if url.database and url.database != ":memory:":
            _queue_writers(engine, WriterQueue(url.database))
        else:
            sa.event.listen(engine, "begin", lambda conn: conn.connection.driver_connection.execute("BEGIN IMMEDIATE"))
        return engine
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def read_engine(engine: sa.Engine) -> sa.Engine:
    """An engine for read-only work beside ``engine``: on SQLite its transactions begin DEFERRED,
    so a reader never takes (or waits for) the write lock; elsewhere it is ``engine`` itself."""
    if engine.dialect.name != "sqlite":
        return engine
    reader = sa.create_engine(engine.url, connect_args={"check_same_thread": False, "timeout": 10})
    sa.event.listen(reader, "connect", _sqlite_pragmas)
    return reader


class Prepared:
    """A Core statement compiled once for one dialect and run on the DBAPI cursor of a connection.

    For a few statements run on every message: SQLAlchemy's execute costs tens of microseconds of
    Python (cache key, execution context, result set-up), more than SQLite takes to run them.
    Values still pass through the column types' own bind and result processors, so what is written
    and read is what Core would write and read. Rows come back as named tuples.
    """

    def __init__(self, statement: Any, dialect: sa.Dialect):
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        binds = compiled.binds
        # Values fixed in the statement (``deliveries=1``) are bound like the caller's.
        self._order = list(compiled.positiontup) if dialect.positional and compiled.positiontup else None
        self._fixed = {compiled.bind_names[b]: b.value for b in binds.values() if not b.required}
        self._bind_processors = {
            compiled.bind_names[b]: processor for b in binds.values()
            if (processor := b.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        columns = list(getattr(statement, "exported_columns", ()))
        self._result_processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self._row = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]

    def execute(self, conn: sa.Connection, params: Mapping[str, Any] | None = None) -> Any:
        """Run on ``conn``'s DBAPI connection, inside its transaction; returns the DBAPI cursor."""
        values = {**self._fixed, **(params or {})}
        for name, processor in self._bind_processors.items():
            values[name] = processor(values[name])
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(self.sql, [values[name] for name in self._order] if self._order is not None else values)
        return cursor

    def rows(self, conn: sa.Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Run and return every row, each value converted by its column's type."""
        cursor = self.execute(conn, params)
        processors = self._result_processors
        rows = [self._row(*(value if process is None else process(value) for process, value in zip(processors, raw)))
                for raw in cursor.fetchall()]
        cursor.close()
        return rows

    def one(self, conn: sa.Connection, params: Mapping[str, Any] | None = None) -> Any:
        """Run and return the one row the statement must yield."""
        rows = self.rows(conn, params)
        if len(rows) != 1:
            raise sa.exc.NoResultFound(f"expected one row, got {len(rows)}: {self.sql}")
        return rows[0]

    def count(self, conn: sa.Connection, params: Mapping[str, Any] | None = None) -> int:
        """Run and return how many rows it changed."""
        cursor = self.execute(conn, params)
        changed = int(cursor.rowcount)
        cursor.close()
        return changed


def is_postgres(engine: sa.Engine) -> bool:
    """Whether ``engine`` talks to PostgreSQL (row locks and advisory locks available)."""
    return engine.dialect.name == "postgresql"


def session(engine: sa.Engine) -> Session:
    """A new session; objects stay readable after commit."""
    return Session(engine, expire_on_commit=False)


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` to ``revision`` with the Alembic migrations."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    command.upgrade(config, revision)


def ping(engine: sa.Engine) -> bool:
    """Whether the database answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        return False
