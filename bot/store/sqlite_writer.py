"""SQLite's single writer: writers take turns, write steps share a commit, the log is copied off the lock.

SQLite lets one transaction at a time write a file. :class:`WriterQueue` lines writers up across
threads and processes (a thread lock, then an ``flock`` beside the file) so each wakes as soon as the
previous one is done; :func:`take_turn` waits for the turn without blocking the event loop;
:class:`GroupCommit` runs short write steps from the event loop, the steps queued at one moment in
one transaction; :class:`Checkpointer` copies the write-ahead log into the database file from a
thread of its own. PostgreSQL needs none of this (its own row and advisory locks).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
import threading
import time
import weakref
from typing import Any, BinaryIO, Callable, Iterator

import sqlalchemy as sa

from bot.aio import settle
from bot.background import repeating

log = logging.getLogger("safetybot.db")

CHECKPOINT_SECONDS = 0.25
# The most write steps (claims, handlings) one SQLite transaction carries: enough to share a commit
# among a busy moment's messages, few enough that the write lock is never held for long.
WRITES_A_TRANSACTION = 32


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


def queue_writers(engine: sa.Engine, queue: WriterQueue) -> None:
    """Make every transaction of ``engine`` (a SQLite file's) take its turn in ``queue`` and begin
    IMMEDIATE; called once by :func:`bot.store.engine.make_engine`."""
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
        # (A checked-out connection always has its DBAPI connection: typed Optional for closed ones.)
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]

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
        # After the commit or rollback has returned, so SQLite's lock is free (see queue_writers).
        end_turn(conn)


def end_turn(conn: sa.Connection) -> None:
    """Let the next writer go if ``conn`` has the turn; call it only outside a transaction."""
    queue = conn.info.pop("writer", None)
    if queue is not None:
        queue.release()


class GroupCommit:
    """Runs short write steps on a SQLite file from the event loop, in the order asked, each
    returning once it is committed; the steps queued when the writer's turn comes share one
    transaction.

    On a thread, each of a transaction's sqlite3 calls (sqlite3 lets Python's lock go around every
    one) waits for the busy event loop to let go of that lock again: a served bot spent about as
    much CPU on that hand-over as on its work, and held SQLite's lock meanwhile. The steps run on one
    connection kept open (checking one out of the pool and back in costs more than these
    transactions' own work), closed by :meth:`close`.
    """

    def __init__(self, engine: sa.Engine):
        self._engine = engine
        self._conn: sa.Connection | None = None
        self._writes: collections.deque[tuple[Callable[[sa.Connection], Any], asyncio.Future[Any]]] = collections.deque()
        self._writer: asyncio.Task[None] | None = None

    def close(self) -> None:
        """Close the kept connection (the engine is the caller's)."""
        if self._conn is not None:
            self._conn.close()

    async def run(self, step: Callable[..., Any], *args: Any) -> Any:
        """Run ``step(conn, *args)`` in the writer's turn and return its result once committed;
        its exception (or :class:`WriterTimeout`) is raised here."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._writes.append((lambda conn: step(conn, *args), done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_in_turn())
        return await done

    def _connection(self) -> sa.Connection:
        if self._conn is None or self._conn.invalidated:
            self._conn = self._engine.connect()
        return self._conn

    async def _write_in_turn(self) -> None:
        """Run the queued write steps, each when the writer's turn is free (waited for without
        blocking the loop): one waiter for the whole process, not one for each message.

        The steps queued at once share one transaction (a group commit): beginning and committing
        one cost more than a step's own work. Their results are given out only after the commit,
        so nobody acts on a write that could still be undone. If a step fails, the whole group is
        rolled back and each of its steps runs again in a transaction of its own, so only the
        failing one fails; the steps are decisions on what the database holds, safe to run again.
        """
        conn = self._connection()
        try:
            while self._writes:
                try:
                    await take_turn(conn)
                except Exception as exc:
                    while self._writes:
                        settle(self._writes.popleft()[1], exception=exc)
                    continue
                # Taken after the wait for the turn, so the steps queued meanwhile go along.
                group = [self._writes.popleft() for _ in range(min(len(self._writes), WRITES_A_TRANSACTION))]
                try:
                    with transaction(conn):
                        results = [step(conn) for step, _ in group]
                except Exception as exc:
                    if len(group) == 1:
                        settle(group[0][1], exception=exc)
                        continue
                    log.info("a write step failed in a group of %d: each runs again on its own", len(group))
                    results = None
                if results is None:
                    # Outside the except block: a step's own failure must not read as caused by this one.
                    for step, done in group:
                        await self._write_alone(conn, step, done)
                    continue
                for (_, done), result in zip(group, results):
                    settle(done, result=result)
        finally:
            self._writer = None

    async def _write_alone(self, conn: sa.Connection, step: Callable[[sa.Connection], Any], done: "asyncio.Future[Any]") -> None:
        try:
            await take_turn(conn)
            with transaction(conn):
                result = step(conn)
        except Exception as exc:
            settle(done, exception=exc)
        else:
            settle(done, result=result)


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
            # (A checked-out connection always has its DBAPI connection: typed Optional for closed ones.)
            with repeating(lambda: connection.driver_connection.execute(  # type: ignore[union-attr]
                    "PRAGMA wal_checkpoint(PASSIVE)").fetchall(),
                           "safetybot-checkpointer", CHECKPOINT_SECONDS):
                yield
        finally:
            connection.close()
