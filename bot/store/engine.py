"""The database engine: SQLite (WAL) by default, PostgreSQL through ``DATABASE_URL``; sessions, migrations,
precompiled hot-path statements. SQLite's writers taking turns are in :mod:`bot.store.sqlite_writer`."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session

from bot.store.sqlite_writer import WriterQueue, queue_writers

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# A writer whose commit takes the write-ahead log past this many pages copies it into the database
# file itself, holding the write lock meanwhile (SQLite's default is 1000). A served bot's
# :class:`~bot.store.sqlite_writer.Checkpointer` copies it long before, off the lock; this bounds the log (about 40 MB)
# when no bot is running.
AUTO_CHECKPOINT_PAGES = 10_000
# Pages are read through a memory map of the database file instead of a read() each: when another
# process (a second web worker, the scheduler) has written, SQLite drops its page cache and reads
# the pages again (two workers at 16 connections: ~480 us of CPU a message without, ~350 with).
# Address space, not memory.
MMAP_BYTES = 256 * 1024 * 1024


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


def make_engine(database_url: str) -> sa.Engine:
    """Create the engine for ``database_url``, with SQLite tuned for several writers."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10, "isolation_level": None})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        if url.database and url.database != ":memory:":
            queue_writers(engine, WriterQueue(url.database))
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
