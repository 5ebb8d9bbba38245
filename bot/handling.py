"""Handling one message: claim it, decide, write the outcome under the person's lock.

1. Claim: one committed transaction inserts the raw message into ``inbound_message`` under its
   unique key (sender, dedupe key), as soon as it arrives; from then on the gateway may answer
   ``success`` at the budget (:class:`Handoff`). A re-delivery only counts itself and gets the
   stored answer, or takes over a claim left unanswered. Then one person's messages queue in
   arrival order.
2. Decide: on a handler thread (:mod:`bot.decision_pool`), outside any write lock, the routing
   table's handler runs on the person's state (read with the claim when nothing of theirs was in
   flight here, else now through a read-only connection) and reads stored facts through one.
3. Write: one transaction under the person's lock (PostgreSQL advisory lock; SQLite's single
   writer) re-checks that the message is still unanswered and the state unchanged (else decides
   again), writes the handler's changes, the reply, the person's last-message time and the state.

On a SQLite file steps 1 and 3 run on the event loop through :class:`~bot.store.sqlite_writer.GroupCommit`;
on PostgreSQL (network round trips) they run on a handler thread, each transaction on a pooled
connection. :class:`bot.wechat.gateway.Gateway` calls :meth:`Handling.process` and answers
WeChat within the budget.
"""
from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, TypeVar

import sqlalchemy as sa

from bot.config import Settings
from bot.decision_pool import DecisionPool
from bot.exports.links import ExportLinks
from bot.outbound.outbox import claim_replies
from bot.rate_limit import RateLimit
from bot.store.engine import Prepared
from bot.store.facts import DatabaseFacts
from bot.store.models import Conversation, InboundMessage, InboundStatus, Person, Role, table_of
from bot.store.sql import insert_on_conflict
from bot.store.sqlite_writer import GroupCommit, transaction, writer_queue
from bot.store.writers import StaleDecision, Writers, apply_changes, lock_person
from bot.texts import Texts
from bot.wechat.callback import (
    INTERACTION_EVENTS, KNOWN_EVENTS, USER_MESSAGE_KINDS, Message, parse_xml, sent_order, text_reply_xml,
)
from bot.wechat.long_text import split_texts
from handlers.base import Context, DialogueState, Incoming, Outcome
from handlers.ports import PersonFacts, StoredFacts

log = logging.getLogger("safetybot.handling")

T = TypeVar("T")
# With several web workers, two messages of one person sent milliseconds apart can reach two
# processes and be claimed in either order. A message first waits this long for the earlier ones
# (by WeChat's CreateTime, then MsgId) that another process claimed; past it, that process is
# taken to be gone and this message goes first (the earlier one is handled when WeChat retries it).
EARLIER_WAIT_SECONDS = 2.0
EARLIER_POLL_SECONDS = 0.005
Dispatch = Callable[[Incoming, DialogueState, Context], Outcome]
# Pushes a reply's parts, recorded as deliveries under these keys, in order; False if one did not go
# (the outbox sends it later: bot.outbound.outbox.send_replies).
Push = Callable[[tuple[str, ...]], bool]


@dataclass(frozen=True)
class Handled:
    """How a delivery ended: the passive reply XML (None → ``success``) and the delivery keys of the
    texts to push after it (:func:`bot.outbound.outbox.claim_replies`)."""

    reply_xml: str | None = None
    pushes: tuple[str, ...] = ()
    deferred: bool = False
    unavailable: bool = False


class Budget(enum.Enum):
    """What the request does when its budget runs out (:meth:`Handoff.give_up`)."""

    DEFER = "defer"  # answer ``success``: the message is stored, its reply will be pushed
    WAIT = "wait"  # the handler has settled: its reply is a moment away
    UNSTORED = "unstored"  # the message is not stored yet: answer 503, so WeChat sends it again


class Handoff:
    """Decides, once, who delivers the reply: the HTTP response, or the outbound client later.

    The request gives up when the budget runs out; the handler settles just before its commit.
    Whichever comes first wins, so a reply is never both returned and pushed, nor lost. A request
    may give up with ``success`` only once the raw message is durably stored (:meth:`stored`):
    WeChat does not send a message again after a 200, so before that the answer is a 503.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stored = False
        self._settled = False
        self._deferred = False

    def stored(self) -> None:
        """Handler side: the claim (the raw message) is committed."""
        with self._lock:
            self._stored = True

    def give_up(self) -> Budget:
        """Request side, at the end of its budget (the first delivery's, or a retry's)."""
        with self._lock:
            if self._settled:
                return Budget.WAIT
            if not self._stored:
                return Budget.UNSTORED
            self._deferred = True
            return Budget.DEFER

    def settle(self) -> bool:
        """Handler side: True if a request already answered ``success`` (push the reply)."""
        with self._lock:
            self._settled = True
            return self._deferred


class _Turns:
    """A FIFO per person: a message is handled only after that person's previous one finished.

    Turns are taken synchronously on arrival, so the order is the order requests reached this
    process; the database lock in the handling transaction orders across processes.
    """

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Future[None]] = {}

    def take(self, openid: str) -> "_Turn":
        previous = self._tails.get(openid)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[openid] = mine
        return _Turn(self._tails, openid, previous, mine)


class _Turn:
    def __init__(self, tails: dict[str, asyncio.Future[None]], openid: str, previous: asyncio.Future[None] | None, mine: asyncio.Future[None]):
        self._tails = tails
        self._openid = openid
        self._previous = previous
        self._mine = mine

    @property
    def clear(self) -> bool:
        """Whether nothing of this person's is in flight in this process (no wait ahead)."""
        return self._previous is None or self._previous.done()

    async def wait(self) -> None:
        """Return when the person's previous message is done."""
        if self._previous is not None:
            # shield: cancelling this waiter must not cancel the predecessor's future.
            await asyncio.shield(self._previous)

    def finish(self) -> None:
        """Let the next message of this person go, once every earlier one is done."""
        if self._previous is None or self._previous.done():
            self._complete()
        else:
            self._previous.add_done_callback(lambda _: self._complete())

    def _complete(self) -> None:
        self._mine.set_result(None)
        if self._tails.get(self._openid) is self._mine:
            del self._tails[self._openid]


@dataclass
class _Claim:
    id: int
    deliveries: int
    status: InboundStatus
    reply: str | None


class _DispatchFailed(Exception):
    pass


@dataclass(frozen=True)
class _Snapshot:
    """The person's dialogue state and facts as the handler saw them; ``version`` tells a change."""

    state: DialogueState
    facts: PersonFacts
    version: datetime | None


def _facts(role: Role, unit_id: int | None, name: str, following: bool, campaign_id: int | None) -> PersonFacts:
    return PersonFacts(role.value, unit_id, name, following, campaign_id)


def _look_up(conn: sa.Connection, sql: "_Statements", openid: str) -> _Snapshot:
    """The person's dialogue state and facts, in one query (either may not exist yet)."""
    row = sql.look_up.one(conn, {"openid": openid})
    state = DialogueState(row.flow, row.step, dict(row.data)) if row.updated_at is not None else DialogueState()
    return _Snapshot(state, _person_facts(row), row.updated_at)


def _person_facts(row: Any) -> PersonFacts:
    """The facts of a row with the person's columns (all None when the bot has not met them)."""
    return (_facts(row.role, row.unit_id, row.name, row.following, row.campaign_id) if row.role is not None
            else _facts(Role.LIAISON, None, "", True, None))


class _Statements:
    """The hot path's SQL, compiled once per dialect and run on the DBAPI cursor (:class:`Prepared`).

    Building a SQLAlchemy statement (and its cache key) per request, or even running a built one
    through Core, costs more than SQLite takes to run it.
    """

    def __init__(self, dialect: sa.Dialect):
        self._dialect = dialect
        insert = functools.partial(insert_on_conflict, dialect)
        inbound, people, conversations = table_of(InboundMessage), table_of(Person), table_of(Conversation)
        claim = insert(inbound).values(
            **{name: sa.bindparam(name) for name in ("openid", "dedupe_key", "msg_type", "event", "raw", "received_at")},
            deliveries=1, status=InboundStatus.CLAIMED,
        )
        self.claim = Prepared(claim.on_conflict_do_update(
            index_elements=["openid", "dedupe_key"], set_={"deliveries": inbound.c.deliveries + 1}
        ).returning(inbound.c.id, inbound.c.deliveries, inbound.c.status, inbound.c.reply), dialect)
        key = sa.select(sa.cast(sa.bindparam("openid"), sa.String).label("openid")).subquery()
        self.look_up = Prepared(sa.select(
            conversations.c.flow, conversations.c.step, conversations.c.data, conversations.c.updated_at,
            people.c.role, people.c.unit_id, people.c.name, people.c.following, people.c.campaign_id,
        ).select_from(key.outerjoin(conversations, conversations.c.openid == key.c.openid)
                      .outerjoin(people, people.c.openid == key.c.openid)), dialect)
        self.count_delivery = Prepared(
            sa.update(inbound)
            .where(inbound.c.openid == sa.bindparam("key_openid"), inbound.c.dedupe_key == sa.bindparam("key_dedupe"))
            .values(deliveries=inbound.c.deliveries + 1), dialect
        )
        self.settle = Prepared(
            sa.update(inbound)
            .where(inbound.c.id == sa.bindparam("inbound_id"), inbound.c.status == InboundStatus.CLAIMED)
            .values(status=sa.bindparam("status"), reply=sa.bindparam("reply"), answered_at=sa.bindparam("answered_at")),
            dialect,
        )
        # The person's other messages still unanswered (claimed here or by another process).
        self.claimed_of = Prepared(
            sa.select(inbound.c.raw).where(inbound.c.openid == sa.bindparam("openid"),
                                           inbound.c.status == InboundStatus.CLAIMED,
                                           inbound.c.id != sa.bindparam("inbound_id")), dialect
        )
        self.stored = Prepared(
            sa.select(inbound.c.status, inbound.c.reply).where(inbound.c.id == sa.bindparam("inbound_id")), dialect
        )
        # The stored answer, the sender's state version and facts, read together before writing a handling.
        self.unanswered = Prepared(
            sa.select(inbound.c.status, inbound.c.reply, conversations.c.updated_at,
                      people.c.role, people.c.unit_id, people.c.name, people.c.following, people.c.campaign_id)
            .select_from(inbound.outerjoin(conversations, conversations.c.openid == inbound.c.openid)
                         .outerjoin(people, people.c.openid == inbound.c.openid))
            .where(inbound.c.id == sa.bindparam("inbound_id")), dialect
        )
        save = insert(conversations).values(
            {name: sa.bindparam(name) for name in ("openid", "flow", "step", "data", "updated_at")}
        )
        self.save_state = Prepared(save.on_conflict_do_update(
            index_elements=["openid"], set_={name: save.excluded[name] for name in ("flow", "step", "data", "updated_at")}
        ), dialect)
        self._touch = insert(people).values(
            **{name: sa.bindparam(name) for name in ("openid", "following", "created_at", "last_message_at",
                                                     "last_interaction_at")},
            name="", role=Role.LIAISON, unreachable_reason=None,
        )
        self._touches: dict[tuple[str, ...], Prepared] = {}

    def touch_person(self, changed: tuple[str, ...]) -> Prepared:
        """The person upsert that, for an existing person, updates only the ``changed`` columns."""
        statement = self._touches.get(changed)
        if statement is None:
            excluded = self._touch.excluded
            statement = Prepared(self._touch.on_conflict_do_update(index_elements=["openid"],
                                                                   set_={name: excluded[name] for name in changed})
                                 if changed else self._touch.on_conflict_do_nothing(index_elements=["openid"]),
                                 self._dialect)
            self._touches[changed] = statement
        return statement


class Handling:
    """Claim → decide → write for one process: the per-person order, the handler threads, and on
    SQLite the group commit. ``dispatch`` is the routing table's entry point; ``push`` sends a reply
    the request could not wait for; ``clock`` gives aware now."""

    def __init__(self, settings: Settings, *, engine: sa.Engine, reads: sa.Engine, texts: Texts,
                 dispatch: Dispatch, writers: Writers, push: Push, clock: Callable[[], datetime]):
        self.settings = settings
        # 导出's reply carries a signed link to the Excel file; the reads handlers make can sign it.
        self._links = ExportLinks.of(settings)
        self.engine = engine
        self.texts = texts
        self.dispatch = dispatch
        self.writers = writers
        self.push = push
        self.clock = clock
        self._sql = _Statements(engine.dialect)
        self._rate_limit = RateLimit(settings, engine.dialect, texts)
        # Handlers read through this one (bot.store.engine.read_engine): on SQLite it never takes the write lock.
        self._reads = reads
        self._turns = _Turns()
        # Handlers decide (and, on PostgreSQL, messages are claimed and written) on a few threads of
        # their own: every extra thread costs each of them more waiting for Python's lock.
        self._handlers = ThreadPoolExecutor(settings.handler_threads, thread_name_prefix="safetybot-handler")
        self._decisions = DecisionPool(self._handlers)
        # A SQLite file: the claim and the handling write from the event loop; PostgreSQL's round
        # trips would hold the loop up, so there they run on a handler thread.
        self._group_commit = GroupCommit(engine) if writer_queue(engine) is not None else None
        # On SQLite without a file (in memory) each handler thread keeps its connection (see _writing).
        self._kept = threading.local()
        self._all_kept: list[sa.Connection] = []

    def close(self) -> None:
        """Stop the handler threads and close the connections kept (the engines are the caller's)."""
        self._handlers.shutdown()
        if self._group_commit is not None:
            self._group_commit.close()
        for conn in self._all_kept:
            conn.close()

    async def process(self, message: Message, handoff: Handoff) -> Handled:
        """Store one delivery at once, then handle it after the person's previous message: decide,
        write the outcome; a delivery already handled gets its stored answer. Never raises: a
        failure outside the handler is logged and comes back ``unavailable`` (503, so WeChat tries
        again).

        The raw message is stored before it waits for the person's earlier ones: a message queued
        behind a slow one is safe when its budget runs out, so it may be answered ``success``
        (:class:`Handoff`) and its reply pushed."""
        turn = self._turns.take(message.incoming.openid)
        try:
            # With nothing of the person's in flight here, their state is read with the claim, in
            # one step (the common case); else after their earlier messages are written.
            claim, snapshot = await self._store(message, look_up=turn.clear)
            handoff.stored()
            if claim.status is InboundStatus.LIMITED:  # over MESSAGES_PER_MINUTE: stored, never handled
                return _stored(claim.status, claim.reply)
            if claim.deliveries > 1 and not self._take_over(claim, message):
                return _stored(claim.status, claim.reply)
            await turn.wait()
            if self.settings.web_workers > 1 and await self._after_earlier(claim, message):
                snapshot = None  # another process wrote the person's earlier message meanwhile
            if self._group_commit is not None:
                return await self._handle_here(self._group_commit, claim, message, handoff, snapshot)
            return await self._in_thread(self._handle, claim, message, handoff, snapshot)
        except Exception:
            log.exception("handling %s %s failed outside the handler", message.incoming.openid, message.dedupe_key)
            return Handled(unavailable=True)
        finally:
            turn.finish()

    def _in_thread(self, function: Callable[..., T], *args: Any) -> "asyncio.Future[T]":
        return asyncio.get_running_loop().run_in_executor(self._handlers, functools.partial(function, *args))

    async def _after_earlier(self, claim: _Claim, message: Message) -> bool:
        """Wait (up to ``EARLIER_WAIT_SECONDS``) until no earlier message of this person, claimed by
        another process, is still unanswered: the person's order holds across web workers. Whether
        there was one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + EARLIER_WAIT_SECONDS
        waited = False
        while await self._in_thread(self._earlier_unanswered, claim.id, message.incoming.openid, message.order):
            waited = True
            if loop.time() > deadline:
                log.warning("%s %s: an earlier message is still unanswered after %.1fs; going first",
                            message.incoming.openid, message.dedupe_key, EARLIER_WAIT_SECONDS)
                break
            await asyncio.sleep(EARLIER_POLL_SECONDS)
        return waited

    def _earlier_unanswered(self, claim_id: int, openid: str, mine: tuple[int, int]) -> bool:
        with self._reads.connect() as conn:
            rows = self._sql.claimed_of.rows(conn, {"openid": openid, "inbound_id": claim_id})
        return any(sent_order(parse_xml(row.raw)) < mine for row in rows)

    async def _store(self, message: Message, look_up: bool) -> tuple[_Claim, _Snapshot | None]:
        """The claim, committed (with the person's state when ``look_up``): on SQLite in the event
        loop's group commit, on PostgreSQL on a handler thread (network round trips would hold the
        loop up)."""
        if self._group_commit is not None:
            stored: tuple[_Claim, _Snapshot | None] = await self._group_commit.run(self._claim, message, look_up)
            return stored
        return await self._in_thread(self._claim_committed, message, look_up)

    def _claim_committed(self, message: Message, look_up: bool) -> tuple[_Claim, _Snapshot | None]:
        with self._writing() as conn:
            return self._claim(conn, message, look_up)

    async def _handle_here(self, commit: GroupCommit, claim: _Claim, message: Message, handoff: Handoff,
                           snapshot: _Snapshot | None) -> Handled:
        """:meth:`_handle` with the write on the event loop (SQLite): only the decision, which may
        be slow, and the pushes go to a handler thread. A decision taken again under the lock
        (rare: another worker changed the person's state meanwhile) runs in the write step."""
        snapshot, outcome = await self._decisions.run(functools.partial(self._first_decision, message, snapshot))
        handled: Handled = await commit.run(self._write_handling, claim.id, message, handoff, snapshot, outcome)
        if handled.deferred:
            await self._in_thread(self.push, handled.pushes)
            return Handled(deferred=True)
        return handled

    def _handle(self, claim: _Claim, message: Message, handoff: Handoff, snapshot: _Snapshot | None) -> Handled:
        snapshot, outcome = self._first_decision(message, snapshot)
        with self._writing() as conn:
            handled = self._write_handling(conn, claim.id, message, handoff, snapshot, outcome)
        if handled.deferred:
            self.push(handled.pushes)
            return Handled(deferred=True)
        return handled

    def _take_over(self, claim: _Claim, message: Message) -> bool:
        """For a delivery already claimed: whether to handle it here after all.

        A retry reaches another process (or this one after a restart) only when the first delivery
        got no answer: its worker died, or its claim was not stored in time. A claim still
        unanswered is therefore taken over at once, never answered a bare ``success`` that would
        end WeChat's retries while nobody handles it. Taking over is safe even if the first worker
        still runs: handling is one transaction, and :meth:`_write_handling` re-checks the status
        under the person's lock and writes only if the row is still unanswered."""
        if claim.status is not InboundStatus.CLAIMED:
            log.info("delivery %d of %s %s: %s", claim.deliveries, message.incoming.openid,
                     message.dedupe_key, claim.status.value)
            return False
        log.warning("taking over the unanswered claim of %s %s (delivery %d)", message.incoming.openid,
                    message.dedupe_key, claim.deliveries)
        return True

    def _claim(self, conn: sa.Connection, message: Message, look_up: bool) -> tuple[_Claim, _Snapshot | None]:
        """Store the raw message, or count one more delivery of it; and read the person's state
        when ``look_up``.

        Committed before the handler runs, outside any transaction, so a slow handler never holds
        SQLite's single write lock.
        """
        incoming = message.incoming
        now = self.clock()
        row = self._sql.claim.one(conn, {
            "openid": incoming.openid, "dedupe_key": message.dedupe_key, "msg_type": incoming.kind,
            "event": incoming.event, "raw": message.raw, "received_at": now,
        })
        status, reply = row.status, row.reply
        if row.deliveries == 1:
            # A new message, not WeChat's retry of one stored: it counts toward the sender's limit.
            status, reply = self._rate_limit.admit(conn, message, row.id, now)
        snapshot = _look_up(conn, self._sql, incoming.openid) if look_up else None
        return _Claim(id=row.id, deliveries=row.deliveries, status=status, reply=reply), snapshot

    def _writing(self) -> contextlib.AbstractContextManager[sa.Connection]:
        """The claim's and the handling's transaction.

        On SQLite on a connection this thread keeps: checking one out of the pool and back in
        costs more than these transactions' own work. PostgreSQL's are checked out each time, so
        the pool's pre-ping still finds a connection the server dropped.
        """
        if self.engine.dialect.name != "sqlite":
            return self.engine.begin()
        return transaction(self._kept_connection())

    def _kept_connection(self) -> sa.Connection:
        conn: sa.Connection | None = getattr(self._kept, "conn", None)
        if conn is None or conn.invalidated:
            conn = self._kept.conn = self.engine.connect()
            self._all_kept.append(conn)
        return conn

    def count_delivery(self, message: Message) -> None:
        """One more delivery of a message another request is handling (a WeChat retry)."""
        with self.engine.begin() as conn:
            self._sql.count_delivery.count(conn, {"key_openid": message.incoming.openid, "key_dedupe": message.dedupe_key})

    def _first_decision(self, message: Message, snapshot: _Snapshot | None) -> tuple[_Snapshot, Outcome | None]:
        """The decision on the person's state and facts, outside any write lock; the outcome is
        None if the handler failed. ``snapshot`` None: read the state now (the person's previous
        message is written by now).

        It reads through a read-only connection, opened only when needed, so a slow handler holds
        nobody up.
        """
        incoming = message.incoming
        with contextlib.ExitStack() as opened:
            if snapshot is None:
                reader = opened.enter_context(self._reads.connect())
                snapshot, facts = _look_up(reader, self._sql, incoming.openid), self._facts(reader)
            else:
                facts = self._facts(lambda: opened.enter_context(self._reads.connect()))
            if not message.known:
                log.warning("unknown MsgType %r from %s: stored, answered success", incoming.kind, incoming.openid)
                return snapshot, Outcome()
            try:
                return snapshot, self._decide(incoming, snapshot, facts)
            except _DispatchFailed:
                return snapshot, None

    def _facts(self, conn: sa.Connection | Callable[[], sa.Connection]) -> DatabaseFacts:
        """The stored facts handlers read, on ``conn`` (or one opened at the first read)."""
        return DatabaseFacts(conn, self._links, template_messages=self.settings.features.template_messages)

    def _write_handling(self, conn: sa.Connection, inbound_id: int, message: Message, handoff: Handoff,
                        snapshot: _Snapshot, outcome: Outcome | None) -> Handled:
        """Under the person's lock, write the handler's changes, the answer, the person and the
        state; ``outcome`` None (the handler failed) records the failure instead.

        If the person's state or facts (role, unit, campaign: a takeover approved, a role revoked)
        moved since ``snapshot``, or a change finds what it read outdated (another person's
        concurrent write), the handler decides again under the lock. Whatever changes a person's
        facts holds their lock too (:func:`~bot.store.writers.lock_person`), so those read here
        stay true until this commits.
        """
        if outcome is None:
            return self._record_failure(conn, inbound_id, message, handoff)
        incoming = message.incoming
        lock_person(conn, incoming.openid)
        # Every handling of this person's messages holds this lock, so the status read here stays
        # true until commit: a take-over never writes changes twice.
        row = self._sql.unanswered.one(conn, {"inbound_id": inbound_id})
        if row.status is not InboundStatus.CLAIMED:
            return _stored(row.status, row.reply)
        if message.known:
            try:
                if (row.updated_at, _person_facts(row)) != (snapshot.version, snapshot.facts):
                    outcome = self._decide(incoming, _look_up(conn, self._sql, incoming.openid), self._facts(conn))
                outcome = self._apply(conn, incoming, outcome)
            except _DispatchFailed:
                # Nothing of this handling is written: _apply undid its own changes.
                return self._record_failure(conn, inbound_id, message, handoff)
        if message.known:
            _touch_person(conn, self._sql, incoming, self.clock())
        handled = self._settle(conn, inbound_id, message, outcome.replies, InboundStatus.ANSWERED, handoff)
        if handled is None:
            raise RuntimeError(f"inbound {inbound_id} was settled by another worker under the person's lock")
        if outcome.state is not None:
            state = outcome.state
            self._sql.save_state.count(conn, {"openid": incoming.openid, "flow": state.flow, "step": state.step,
                                              "data": dict(state.data), "updated_at": self.clock()})
        return handled

    def _apply(self, conn: sa.Connection, incoming: Incoming, outcome: Outcome) -> Outcome:
        """Write the outcome's changes; on an outdated read, decide once more under the lock."""
        if not outcome.changes:
            return outcome
        try:
            with conn.begin_nested():
                apply_changes(conn, incoming, outcome.changes, self.clock(), self.writers)
            return outcome
        except StaleDecision:
            log.info("%s: a change met newer data; deciding again under the lock", incoming.openid)
        outcome = self._decide(incoming, _look_up(conn, self._sql, incoming.openid), self._facts(conn))
        try:
            with conn.begin_nested():
                apply_changes(conn, incoming, outcome.changes, self.clock(), self.writers)
        except Exception as exc:
            log.exception("writing the changes for %s failed", incoming.openid)
            raise _DispatchFailed() from exc
        return outcome

    def _decide(self, incoming: Incoming, snapshot: _Snapshot, stored: StoredFacts) -> Outcome:
        if incoming.kind == "event" and incoming.event not in KNOWN_EVENTS:
            log.info("event %r from %s is not one the bot knows; routing it anyway", incoming.event, incoming.openid)
        try:
            context = Context(texts=self.texts, facts=snapshot.facts, now=self.clock(), stored=stored)
            return self.dispatch(incoming, snapshot.state, context)
        except Exception as exc:
            log.exception("handler failed on %s from %s", incoming.kind, incoming.openid)
            raise _DispatchFailed() from exc

    def _record_failure(self, conn: sa.Connection, inbound_id: int, message: Message, handoff: Handoff) -> Handled:
        """Mark the message failed (a retry will not run the handler again) and apologise."""
        lock_person(conn, message.incoming.openid)
        apology = self.texts.render("handler_failed")
        _touch_person(conn, self._sql, message.incoming, self.clock())
        handled = self._settle(conn, inbound_id, message, (apology,), InboundStatus.FAILED, handoff)
        if handled is None:
            return _stored(*self._sql.stored.one(conn, {"inbound_id": inbound_id}))
        return handled

    def _settle(self, conn: sa.Connection, inbound_id: int, message: Message, replies: tuple[str, ...],
                status: InboundStatus, handoff: Handoff) -> Handled | None:
        """Record how the message was answered; None if it was answered meanwhile (a take-over).
        Called after the person's last-message time is written (the pushes go by customer service).

        Every reply leaves here, so here each is split to WeChat's text limit: the first part is
        the passive reply, the rest are pushed after it in order. What is pushed (all of a reply
        the request could not wait for) is recorded as deliveries in this transaction, so a push
        WeChat refuses or a crash does not lose it: the outbox sends it later."""
        now = self.clock()
        replies = split_texts(replies)
        deferred = handoff.settle()
        if deferred:
            values: dict[str, Any] = {"status": InboundStatus.DEFERRED, "reply": None, "answered_at": None}
            reply, pushed = None, replies
        else:
            reply = (text_reply_xml(message.incoming.openid, message.account, replies[0], int(now.timestamp()))
                     if replies else None)
            values = {"status": status, "reply": reply, "answered_at": now}
            pushed = replies[1:]
        if self._sql.settle.count(conn, {"inbound_id": inbound_id, **values}) != 1:
            return None
        keys = claim_replies(conn, inbound_id, message.incoming.openid, pushed, now) if pushed else ()
        return Handled(reply_xml=reply, pushes=keys, deferred=deferred)


def _stored(status: InboundStatus, reply: str | None) -> Handled:
    """The answer for a delivery already handled: its stored reply, or ``success``."""
    if status in (InboundStatus.ANSWERED, InboundStatus.FAILED, InboundStatus.LIMITED):
        return Handled(reply_xml=reply)
    return Handled()


def _touch_person(conn: sa.Connection, sql: _Statements, incoming: Incoming, now: datetime) -> None:
    """Record when the person last wrote or interacted; it decides which channel may reach them."""
    values: dict[str, Any] = {"openid": incoming.openid, "following": incoming.event != "unsubscribe",
                              "created_at": now, "last_message_at": None, "last_interaction_at": None}
    changed: tuple[str, ...] = ()
    if incoming.kind in USER_MESSAGE_KINDS:
        values["last_message_at"], changed = incoming.created_at, ("last_message_at",)
    elif incoming.event in INTERACTION_EVENTS:
        values["last_interaction_at"], changed = incoming.created_at, ("last_interaction_at",)
    if incoming.event == "subscribe":
        changed += ("following", "unreachable_reason")
    elif incoming.event == "unsubscribe":
        changed += ("following",)
    sql.touch_person(changed).count(conn, values)
