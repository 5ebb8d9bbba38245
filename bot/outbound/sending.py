"""Sending claimed delivery rows, many at once: the concurrent send path reminders and
announcements share.

Each row turns ``sending`` in its own transaction immediately before its own request; the answers
are written in batches. A crash before a batch is written leaves those rows ``sending`` (in
doubt): a template row is settled by WeChat's job event or, without one, sent again after the
wait (:func:`resend_cutoff`); a customer-service row stays in doubt, never resent
(docs/reminders.md). A quota error (45009/45011) stops the batch: the rows not yet sent stay
``claimed`` for a later run.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Literal, Mapping, Sequence

import sqlalchemy as sa

from bot.outbound.delivery import (
    Channel, HeldReason, Notice, Outbound, Result, Status, Verdict, claim_many, record_many, send, start_sending,
    take_in_doubt, unconfirmed_filter,
)
from bot.store.models import Delivery, InboundMessage, Person, table_of, utcnow
from bot.store.reach import reach_of, template_or_reason

log = logging.getLogger(__name__)

RECORD_BATCH = 50
TEMPLATE_JOB_EVENT = "TEMPLATESENDJOBFINISH"

# How one row's message goes: (api, payload, openid, channel, template allowed) → WeChat's answer.
Deliver = Callable[[Any, Mapping[str, Any], str, Channel, bool], Result]


@dataclass
class Tally:
    """What a run did, for the command's closing line and the tests."""

    sent: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    failed: int = 0
    defects: int = 0
    resent: int = 0  # template messages WeChat never confirmed, sent again under their row
    in_doubt: int = 0  # no answer from WeChat, the request may have arrived: not sent again blindly
    stopped: str | None = None

    def add(self, other: "Tally") -> None:
        """Fold ``other`` into this tally."""
        self.sent.update(other.sent)
        self.held.update(other.held)
        self.skipped += other.skipped
        self.resent += other.resent
        self.in_doubt += other.in_doubt
        self.failed += other.failed
        self.defects += other.defects
        self.stopped = self.stopped or other.stopped


def resend_cutoff(engine: sa.Engine, now: datetime, resend_after: timedelta) -> datetime | None:
    """Template rows in doubt whose request left before the returned time may be sent again; None
    when there are none, or while WeChat's job events still flow (one heard within
    ``resend_after`` of ``now``, the real time: a backlog of events may yet hold theirs)."""
    cutoff = now - resend_after
    table = table_of(Delivery)
    inbound = table_of(InboundMessage)
    with engine.connect() as conn:
        if conn.execute(sa.select(table.c.id).where(unconfirmed_filter(cutoff)).limit(1)).first() is None:
            return None
        # The newest first, by primary key: no index on the event is needed to find a recent one.
        last_heard = conn.execute(sa.select(inbound.c.received_at).where(inbound.c.event == TEMPLATE_JOB_EVENT)
                                  .order_by(inbound.c.id.desc()).limit(1)).scalar()
    return None if last_heard is not None and last_heard >= cutoff else cutoff


def rows_to_send(engine: sa.Engine, cutoff: datetime | None, *where: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    """The delivery rows matching ``where`` that are to be sent, oldest first, in the shape
    :meth:`ConcurrentSender.send_rows` takes: the claimed ones and, when ``cutoff`` is given (by
    :func:`resend_cutoff`), template rows WeChat never confirmed before it."""
    table, people = table_of(Delivery), table_of(Person)
    to_send = table.c.status == Status.CLAIMED.value
    if cutoff is not None:
        to_send = sa.or_(to_send, unconfirmed_filter(cutoff))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.openid, table.c.channel, table.c.payload, table.c.status,
                                      table.c.attempts, people.c.id.label("person_id"))
                            .join(people, people.c.openid == table.c.openid).where(*where, to_send)
                            .order_by(table.c.id))
        return [dict(r._mapping) | {"cutoff": cutoff} for r in rows]


# Answers that stop a batch, the rows not sent going back to claimed for a later run: WeChat's
# quota, and a send that could not leave (every other row would meet the same outage).
STOPS = {Verdict.QUOTA: "WeChat quota", Verdict.NOT_SENT: "not sent (token store or WeChat unreachable)"}


class ConcurrentSender:
    """Sends delivery rows through ``api`` on up to ``concurrency`` threads, each row once.

    ``real_clock`` stamps when each request left (the wait for job events counts from it);
    ``progress(done, total)`` is told after each row; ``what`` names the rows in the log.
    """

    def __init__(self, engine: sa.Engine, api: Outbound, *, concurrency: int = 32,
                 real_clock: Callable[[], datetime] = utcnow, progress: Callable[[int, int], None] | None = None,
                 what: str = "notice"):
        self.engine = engine
        self.api = api
        self.concurrency = concurrency
        self.real_clock = real_clock
        self.progress = progress
        self.what = what

    def send_rows(self, rows: list[dict[str, Any]], now: datetime, template_ready: bool,
                  deliver: Deliver = send) -> Tally:
        """Send ``rows`` concurrently: claimed ones, and template rows WeChat never confirmed.

        Each row is a mapping of ``id``, ``openid``, ``channel``, ``payload``, ``status``,
        ``attempts``, ``person_id`` and ``cutoff`` (from :func:`resend_cutoff`, for rows still
        ``sending``). ``deliver`` makes the request(s) of one row (default
        :func:`bot.outbound.delivery.send`).
        """
        tally, lock, stop = Tally(), threading.Lock(), threading.Event()
        answers: list[tuple[int, str, Result]] = []
        done = [0]

        def one(row: dict[str, Any]) -> None:
            if stop.is_set():
                return
            result = self._send_row(row, template_ready, deliver)
            with lock:
                count(tally, result, resent=row["status"] == Status.SENDING.value)
                if isinstance(result, Result):
                    answers.append((row["id"], row["openid"], result))
                if isinstance(result, Result) and result.verdict in STOPS:
                    stop.set()
                    tally.stopped = f"{STOPS[result.verdict]}: {result.errcode} {result.errmsg}"
                done[0] += 1
                if self.progress:
                    self.progress(done[0], len(rows))
                batch = answers[:] if len(answers) >= RECORD_BATCH else []
                del answers[:len(batch)]
            self._record(batch, now)

        if not rows:
            return tally
        try:
            with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(rows)))) as pool:
                list(pool.map(one, rows))
        finally:
            self._record(answers, now)
        return tally

    def _record(self, answers: list[tuple[int, str, Result]], now: datetime) -> None:
        if answers:
            with self.engine.begin() as conn:
                record_many(conn, answers, now)
        for _delivery_id, openid, result in answers:
            if result.verdict is not Verdict.SENT:
                log.warning("%s to %s: %s %s", self.what, openid, result.errcode, result.errmsg)

    def _send_row(self, row: dict[str, Any], template_ready: bool,
                  deliver: Deliver) -> Result | Literal[Status.SENDING, Status.SKIPPED]:
        """Mark the row and send it: WeChat's answer, or SKIPPED (the unit submitted meanwhile) or
        SENDING (another sender took this unconfirmed row first, or its job event came)."""
        channel = Channel(row["channel"])
        with self.engine.begin() as conn:
            # Only a customer-service send may fall back to a template (45015/45047); decided before
            # the row is marked, so nothing but the request itself follows the mark.
            fallback = channel is Channel.CUSTOMER_SERVICE and template_or_reason(
                reach_of(conn, row["person_id"]), template_ready) is Channel.TEMPLATE
            left_at = self.real_clock()
            if row["status"] == Status.SENDING.value:
                if not take_in_doubt(conn, row["id"], row["attempts"], left_at, row["cutoff"]):
                    return Status.SENDING
                log.warning("template %s %s to %s never confirmed by WeChat: sending it again",
                            self.what, row["id"], row["openid"])
            elif not start_sending(conn, row["id"], left_at):
                return Status.SKIPPED
        return deliver(self.api, row["payload"], row["openid"], channel, fallback)


def count(tally: Tally, result: Result | Literal[Status.SENDING, Status.SKIPPED], resent: bool) -> None:
    """Count one row's outcome into ``tally``."""
    if result is Status.SENDING:
        return
    if result is Status.SKIPPED:
        tally.skipped += 1
        return
    if resent:
        tally.resent += 1
    if result.verdict is Verdict.SENT:
        assert result.channel is not None
        tally.sent[result.channel.value] += 1
    elif result.verdict is Verdict.DEFECT:
        tally.defects += 1
    elif result.verdict is Verdict.IN_DOUBT:
        tally.in_doubt += 1
    elif result.verdict not in STOPS:
        tally.failed += 1


CLAIM_CHUNK = 200


def claim_all(engine: sa.Engine, notices: Sequence[Notice], now: datetime, template_ready: bool) -> Tally:
    """Decide every notice (:func:`bot.outbound.delivery.claim_many`), a chunk of ``CLAIM_CHUNK``
    per transaction; held ones are counted, claimed ones wait for :meth:`ConcurrentSender.send_rows`."""
    tally = Tally()
    for start in range(0, len(notices), CLAIM_CHUNK):
        with engine.begin() as conn:
            for choice in claim_many(conn, list(notices[start:start + CLAIM_CHUNK]), now, template_ready):
                if isinstance(choice, HeldReason):
                    tally.held[choice.value] += 1
    return tally
