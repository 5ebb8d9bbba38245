"""Notes outside the reply: to staff when something needs them (a liaison request, a 要情, media
WeChat no longer has), and to a person when staff decided their request.

A note is data a handler returns (:class:`~handlers.changes.StaffNote`,
:class:`~handlers.changes.PersonNote`); its writer turns it into :class:`~bot.store.models.Delivery` rows
in the handling transaction, one per recipient, unique by ``note:<topic>:<person id>``, so a WeChat
retry or a second worker cannot note twice. The channel is decided with ``bot.outbound.delivery``'s rules:
a customer-service message inside the person's 48-hour window; outside it the row is ``held`` (no
template fits free text, wechat-rules A1/A2) until the person writes again. Held announcements
are released here the same way (:meth:`Outbox.send_claimed`).

:class:`Outbox` sends the claimed rows: a thread of the worker role (:mod:`bot.worker`) looks
for them a few times a second and also takes any row a crash left claimed; ``start_sending``'s
conditional UPDATE lets one process send each row.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Protocol

import sqlalchemy as sa

from bot.background import repeating
from bot.outbound.delivery import (
    WINDOW_CLOSED, Channel, HeldReason, Notice, Outbound, Result, Status, Verdict, claim_many, record_many, send,
    start_sending,
)
from bot.store.models import Delivery, InboundMessage, InboundStatus, Person, Role, Unit, table_of
from bot.store.reach import CUSTOMER_SERVICE_WINDOW
from handlers.base import Incoming
from handlers.changes import PersonNote, StaffNote

log = logging.getLogger("safetybot.outbox")

STAFF_NOTE, PERSON_NOTE = "staff_note", "person_note"
NOTE_KINDS = (STAFF_NOTE, PERSON_NOTE)
# A reply that did not fit the passive answer: the parts after the first of a long one, or all of
# one that took longer than the budget. The web process that handled the message pushes them at
# once, in order (:func:`send_replies`); the outbox sends what is still claimed after
# REPLY_TAKEOVER (WeChat's API or the token store was down, or the process died).
REPLY = "reply"
REPLY_TAKEOVER = timedelta(seconds=10)
# Announcements (bot.outbound.announcements) are held like notes and released here when their
# person writes; the announcements' own pass sends them, with their picture.
RELEASED_KINDS = (*NOTE_KINDS, REPLY, "announcement")
POLL_SECONDS = 0.25
# After WeChat's quota error, or a send that could not leave (the token store or WeChat down), the
# claimed notes wait this long rather than meet the same wall again each poll.
PAUSES = {Verdict.QUOTA: timedelta(minutes=1), Verdict.NOT_SENT: timedelta(seconds=15)}
_DELIVERY = table_of(Delivery)
_INBOUND = table_of(InboundMessage)
_CLAIMED = sa.select(_DELIVERY.c.id, _DELIVERY.c.key, _DELIVERY.c.kind, _DELIVERY.c.openid, _DELIVERY.c.payload).where(
    _DELIVERY.c.status == Status.CLAIMED.value)
_PERSON = table_of(Person)
_UNIT = table_of(Unit)


def office(conn: sa.Connection, campaign_id: int, roles: tuple[Role, ...] = (Role.STAFF, Role.COORDINATOR)
           ) -> list[tuple[int, str]]:
    """The person id and OpenID of every staff member and coordinator (or only ``roles``) of the
    campaign ``campaign_id``."""
    return [(r.id, r.openid) for r in conn.execute(
        sa.select(_PERSON.c.id, _PERSON.c.openid).where(_PERSON.c.role.in_([role.value for role in roles]),
                                                        _PERSON.c.campaign_id == campaign_id)
        .order_by(_PERSON.c.id))]


def claim_notes(conn: sa.Connection, kind: str, topic: str, text: str, people: list[tuple[int, str]],
                now: datetime) -> None:
    """Record one note per person in the caller's transaction: claimed for a customer-service
    send, or held when the person's window is closed."""
    notices = [Notice(key=f"note:{topic}:{person_id}"[:300], kind=kind, person_id=person_id, openid=openid, text=text)
               for person_id, openid in people]
    if notices:
        claim_many(conn, notices, now, template_ready=False)


def note_staff(conn: sa.Connection, campaign_id: int, topic: str, text: str, now: datetime) -> None:
    """:func:`claim_notes` to every staff member and coordinator of the campaign."""
    claim_notes(conn, STAFF_NOTE, topic, text, office(conn, campaign_id), now)


def write_staff_note(conn: sa.Connection, incoming: Incoming, change: StaffNote, now: datetime) -> None:
    """The writer of :class:`StaffNote` (listed in ``bot.app.change_writers``): the office of the
    unit's campaign hears of it."""
    campaign_id = conn.execute(sa.select(_UNIT.c.campaign_id).where(_UNIT.c.id == change.unit_id)).scalar_one()
    note_staff(conn, campaign_id, change.topic, change.text, now)


def reply_keys(inbound_id: int, parts: int) -> tuple[str, ...]:
    """The ledger keys of a reply's ``parts`` pushed texts: one each, so a retry writes none twice."""
    return tuple(f"{REPLY}:{inbound_id}:{n}" for n in range(parts))


def claim_replies(conn: sa.Connection, inbound_id: int, openid: str, texts: tuple[str, ...],
                  now: datetime) -> tuple[str, ...]:
    """Record ``texts`` (a reply's pushed parts, in order) as customer-service deliveries in the
    handling transaction, after the person's last-message time was written; their keys."""
    person_id = conn.execute(sa.select(_PERSON.c.id).where(_PERSON.c.openid == openid)).scalar_one()
    keys = reply_keys(inbound_id, len(texts))
    claim_many(conn, [Notice(key=key, kind=REPLY, person_id=person_id, openid=openid, text=text)
                      for key, text in zip(keys, texts)], now, template_ready=False)
    return keys


def send_replies(engine: sa.Engine, wechat: Outbound, keys: tuple[str, ...], clock: Callable[[], datetime]) -> bool:
    """Push a reply's parts (:func:`claim_replies`) now, in order, stopping at the first that does
    not go (the outbox sends it and the rest later); whether all went."""
    with engine.connect() as conn:
        rows = conn.execute(_CLAIMED.where(_DELIVERY.c.key.in_(keys)).order_by(_DELIVERY.c.id)).all()
    return len(rows) == len(keys) and all(
        (result := send_row(engine, wechat, row, clock)) is not None and result.verdict is Verdict.SENT
        for row in rows)


class ClaimedRow(Protocol):
    """A delivery row as :data:`_CLAIMED` reads it."""

    id: int
    key: str
    kind: str
    openid: str
    payload: dict[str, Any]


def send_row(engine: sa.Engine, wechat: Outbound, row: ClaimedRow, clock: Callable[[], datetime]) -> Result | None:
    """Send one claimed customer-service row (a note or a reply's part) unless another process took
    it (None), and record WeChat's answer; a pushed reply marks its message answered."""
    with engine.begin() as conn:
        if not start_sending(conn, row.id):
            return None
    result = send(wechat, row.payload, row.openid, Channel.CUSTOMER_SERVICE, template_allowed=False)
    with engine.begin() as conn:
        if result.errcode in WINDOW_CLOSED:
            # The window closed (or its 5 messages went) since the claim: wait for the person.
            conn.execute(_DELIVERY.update().where(_DELIVERY.c.id == row.id).values(
                status=Status.HELD.value, channel="", errcode=result.errcode, errmsg=HeldReason.NO_TEMPLATE.value))
        else:
            record_many(conn, [(row.id, row.openid, result)], clock())
        if row.kind == REPLY and result.verdict is Verdict.SENT:
            inbound_id = int(row.key.split(":")[1])
            conn.execute(_INBOUND.update().where(_INBOUND.c.id == inbound_id,
                                                 _INBOUND.c.status == InboundStatus.DEFERRED)
                         .values(status=InboundStatus.ANSWERED, answered_at=clock()))
    if result.errcode:
        log.warning("%s %d to %s: %s %s", row.kind, row.id, row.openid, result.errcode, result.errmsg)
    return result


def write_person_note(conn: sa.Connection, incoming: Incoming, change: PersonNote, now: datetime) -> None:
    """The writer of :class:`PersonNote` (listed in ``bot.store.writers.writers``); a person the bot
    has never seen gets nothing."""
    person_id = conn.execute(sa.select(_PERSON.c.id).where(_PERSON.c.openid == change.openid)).scalar()
    if person_id is not None:
        claim_notes(conn, PERSON_NOTE, change.topic, change.text, [(person_id, change.openid)], now)


class Outbox:
    """Sends claimed notes through ``wechat`` (:class:`bot.wechat.client.WeChatAPI`), and claims
    again a held note once its person has written (their window is open again). ``reads`` is the
    engine for read-only work (:func:`bot.store.engine.read_engine`)."""

    def __init__(self, engine: sa.Engine, reads: sa.Engine, wechat: Outbound, clock: Callable[[], datetime]):
        self.engine = engine
        self.wechat = wechat
        self.clock = clock
        # Looking for work several times a second must not take SQLite's write lock.
        self._reads = reads
        self._paused_until: datetime | None = None

    def send_claimed(self) -> int:
        """Send every claimed note (this process's or one a crash left); how many were sent."""
        if self._paused_until is not None and self.clock() < self._paused_until:
            return 0
        self._release_held()
        pushed_by_now = self.clock() - REPLY_TAKEOVER
        with self._reads.connect() as reader:
            rows = reader.execute(_CLAIMED.where(
                _DELIVERY.c.kind.in_(NOTE_KINDS) | ((_DELIVERY.c.kind == REPLY) & (_DELIVERY.c.created_at < pushed_by_now)))
                .order_by(_DELIVERY.c.id)).all()
        sent = 0
        for row in rows:
            result = send_row(self.engine, self.wechat, row, self.clock)
            if result is None:
                continue  # another process took it
            sent += result.errcode == 0
            if result.verdict in PAUSES:
                self._paused_until = self.clock() + PAUSES[result.verdict]
                break
        return sent

    def _release_held(self) -> None:
        """Held notes and announcements whose person wrote after they were held (inside the 48
        hours) are claimed again, for customer service."""
        now = self.clock()
        wrote = sa.select(_PERSON.c.id).where(
            _PERSON.c.openid == _DELIVERY.c.openid, _PERSON.c.last_message_at > _DELIVERY.c.created_at,
            _PERSON.c.last_message_at > now - CUSTOMER_SERVICE_WINDOW, _PERSON.c.following.is_(True),
            _PERSON.c.unreachable_reason.is_(None)).exists()
        held = sa.and_(_DELIVERY.c.status == Status.HELD.value, _DELIVERY.c.kind.in_(RELEASED_KINDS), wrote)
        with self._reads.connect() as reader:
            due = reader.execute(sa.select(_DELIVERY.c.id).where(held).limit(50)).scalars().all()
        if due:
            with self.engine.begin() as conn:
                conn.execute(_DELIVERY.update().where(_DELIVERY.c.id.in_(due), held).values(
                    status=Status.CLAIMED.value, channel=Channel.CUSTOMER_SERVICE.value, created_at=now,
                    errcode=None, errmsg=None))

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Run the outbox in a thread for the duration of the ``with`` block (the worker role's lifetime)."""
        with repeating(self.send_claimed, "outbox", POLL_SECONDS):
            yield
