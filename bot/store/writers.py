"""The writers of the form and registration changes handlers return, and how an outcome is written.

Handlers stay pure: they return :mod:`handlers.changes` (and report, note, template-job) values in
their ``Outcome``; :func:`apply_changes` writes those with the writers' table (one writer a change
type, listed in ``bot/app.py`` where the app is assembled) in the same transaction as the person's
dialogue state and the answer to WeChat, so a retry, a restart or another worker never sees one
without the other. The report item's writer is in :mod:`bot.store.reports`, the notes' in
:mod:`bot.outbound.outbox`, the template job's in :mod:`bot.outbound.delivery`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

import sqlalchemy as sa

from bot.store.facts import DatabaseFacts
from bot.store.models import (
    Answer, AnswerRevision, Invitation, LiaisonReplacement, Person, Role, Submission, table_of,
)
from bot.store.reports import submission_id
from bot.store.sql import insert_on_conflict
from handlers.base import Incoming
from handlers.changes import (
    AppointLiaison, BecomeStaff, ClaimUnit, DecideRequest, RedeemInvitation, RenamePerson, RequestLiaison, SaveAnswers,
    SubmitForm, Value,
)

_PERSON = table_of(Person)
_SUBMISSION = table_of(Submission)
_ANSWER = table_of(Answer)
_REVISION = table_of(AnswerRevision)
_REPLACEMENT = table_of(LiaisonReplacement)
_INVITATION = table_of(Invitation)
# Advisory-lock namespaces: one person's handlings, and "who holds this unit".
PERSON_LOCK_NAMESPACE = 7301
_UNIT_LOCK_NAMESPACE = 7302

Writer = Callable[[sa.Connection, Incoming, Any, datetime], None]
Writers = Mapping[type, Writer]


class StaleDecision(Exception):
    """A change found the data its handler read has moved on (e.g. another liaison took the unit
    meanwhile); the gateway then lets the handler decide again under the lock."""


def apply_changes(conn: sa.Connection, incoming: Incoming, changes: tuple[Any, ...], now: datetime,
                  writers: Writers) -> None:
    """Write every change of an outcome, in order, on ``conn`` (inside the handling transaction),
    each with its writer in ``writers``.

    Raises TypeError for a change with no writer, :class:`StaleDecision` when a change met newer data.
    """
    for change in changes:
        writer = writers.get(type(change))
        if writer is None:
            raise TypeError(f"no writer for the change {type(change).__name__}")
        writer(conn, incoming, change, now)


# --- writers of the form handlers' changes --------------------------------------------------------


def _save_value(conn: sa.Connection, submission: int, value: Value, who: str, now: datetime, late: bool) -> None:
    """Insert or update one answer; a changed answer leaves a revision (who, when, old → new)."""
    row = conn.execute(sa.select(_ANSWER.c.id, _ANSWER.c.value).where(
        _ANSWER.c.submission_id == submission, _ANSWER.c.field_key == value.field_key)).first()
    # Only a number is an estimate (约50): 合计 reads the flag alone, without looking at the number.
    values = dict(value=value.text, number=value.number, approximate=value.approximate and value.number is not None,
                  updated_by=who, updated_at=now)
    if row is None:
        conn.execute(sa.insert(_ANSWER).values(submission_id=submission, field_key=value.field_key, **values))
        return
    conn.execute(sa.update(_ANSWER).where(_ANSWER.c.id == row.id).values(**values))
    if row.value != value.text:
        conn.execute(sa.insert(_REVISION).values(answer_id=row.id, old_value=row.value, new_value=value.text,
                                                 changed_by=who, changed_at=now, late=late))


def write_answers(conn: sa.Connection, incoming: Incoming, change: SaveAnswers, now: datetime) -> None:
    """Store the answers; a change after the due time to a submitted table marks it late."""
    submission = submission_id(conn, change.unit_id, change.deadline_id, change.period, now)
    status = conn.execute(sa.select(_SUBMISSION.c.status).where(_SUBMISSION.c.id == submission)).scalar_one()
    late = status == "submitted" and now > change.due_at
    for value in change.values:
        _save_value(conn, submission, value, change.on_behalf_of or incoming.openid, now, late)
    update = sa.update(_SUBMISSION).where(_SUBMISSION.c.id == submission).values(updated_at=now)
    conn.execute(update.values(late=True) if late else update)


def write_submit(conn: sa.Connection, incoming: Incoming, change: SubmitForm, now: datetime) -> None:
    """Mark the submission submitted now, by the sender; late when past the due time."""
    submission = submission_id(conn, change.unit_id, change.deadline_id, change.period, now)
    late = _SUBMISSION.c.late | sa.literal(now > change.due_at)
    conn.execute(sa.update(_SUBMISSION).where(_SUBMISSION.c.id == submission).values(
        status="submitted", submitted_at=now, submitted_by=change.on_behalf_of or incoming.openid, late=late,
        updated_at=now))


def write_claim(conn: sa.Connection, incoming: Incoming, change: ClaimUnit, now: datetime) -> None:
    """Make the sender the unit's liaison, unless someone else took the unit meanwhile."""
    _lock_unit(conn, change.unit_id)
    holder = DatabaseFacts(conn).holder(change.unit_id)
    if holder is not None and holder.openid != incoming.openid:
        raise StaleDecision(f"unit {change.unit_id} is held by {holder.openid}")
    values = dict(unit_id=change.unit_id, name=change.name, role=Role.LIAISON,
                  reminder_opt_in_at=now if change.reminders else None)
    _upsert_person(conn, incoming.openid, values, now)


def write_rename(conn: sa.Connection, incoming: Incoming, change: RenamePerson, now: datetime) -> None:
    """The sender's new name."""
    conn.execute(sa.update(_PERSON).where(_PERSON.c.openid == incoming.openid).values(name=change.name))


def write_request(conn: sa.Connection, incoming: Incoming, change: RequestLiaison, now: datetime) -> None:
    """Record the request for staff, once while it is pending (a new one replaces the answers)."""
    values = dict(holder_openid=change.holder_openid, kind=change.kind, name=change.name, reminders=change.reminders,
                  answers={v.field_key: [v.text, v.number, v.approximate] for v in change.answers})
    pending = sa.and_(_REPLACEMENT.c.openid == incoming.openid, _REPLACEMENT.c.unit_id == change.unit_id,
                      _REPLACEMENT.c.status == "pending")
    if not conn.execute(sa.update(_REPLACEMENT).where(pending).values(**values)).rowcount:
        conn.execute(sa.insert(_REPLACEMENT).values(unit_id=change.unit_id, openid=incoming.openid, status="pending",
                                                    requested_at=now, **values))


def write_decision(conn: sa.Connection, incoming: Incoming, change: DecideRequest, now: datetime) -> None:
    """Approve or refuse a pending request, unless another staff member decided it first."""
    decided = conn.execute(sa.update(_REPLACEMENT).where(
        _REPLACEMENT.c.id == change.request_id, _REPLACEMENT.c.status == "pending").values(
        status="approved" if change.approved else "refused", decided_at=now, decided_by=incoming.openid))
    if decided.rowcount != 1:
        raise StaleDecision(f"request {change.request_id} was decided meanwhile")


def write_appointment(conn: sa.Connection, incoming: Incoming, change: AppointLiaison, now: datetime) -> None:
    """The unit's liaison is now ``change.openid``; the one it had keeps the account, not the unit.

    Both people's facts change: their locks are taken first, so a message of theirs being written
    meanwhile either commits before (on the facts it was decided on) or is decided again on these
    (``bot/handling.py``), never written for a unit its sender no longer holds."""
    _lock_unit(conn, change.unit_id)
    held = _PERSON.c.unit_id == change.unit_id, _PERSON.c.role == Role.LIAISON, _PERSON.c.openid != change.openid
    # Taken in one order (by OpenID), so two transactions locking the same people never deadlock on them.
    for openid in sorted({change.openid, *conn.execute(sa.select(_PERSON.c.openid).where(*held)).scalars()}):
        lock_person(conn, openid)
    conn.execute(sa.update(_PERSON).where(*held).values(unit_id=None))
    values = dict(unit_id=change.unit_id, name=change.name, role=Role.LIAISON,
                  reminder_opt_in_at=now if change.reminders else None)
    _upsert_person(conn, change.openid, values, now)


def write_staff(conn: sa.Connection, incoming: Incoming, change: BecomeStaff, now: datetime) -> None:
    """The sender is staff (or a coordinator) of the change's campaign from now on, with no unit."""
    values = dict(role=Role(change.role), unit_id=None, campaign_id=change.campaign_id)
    _upsert_person(conn, incoming.openid, values, now)


def lock_person(conn: sa.Connection, openid: str) -> None:
    """Hold ``openid``'s person and dialogue until the transaction ends: every handling of their
    messages takes this lock before it writes (``bot/handling.py``), and so does anything else that
    changes who they are (``safetybot people``), so a message decided meanwhile is decided again.
    PostgreSQL: a transaction-scoped advisory lock; SQLite needs nothing, BEGIN IMMEDIATE
    (bot/store/engine.py) already serialises writers."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:openid))"),
                     {"namespace": PERSON_LOCK_NAMESPACE, "openid": openid})


def _lock_unit(conn: sa.Connection, unit_id: int) -> None:
    """Hold "who is this unit's liaison" until the transaction ends. PostgreSQL: a transaction-scoped
    advisory lock; SQLite needs nothing, its one writer already runs alone."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:namespace, :unit_id)"),
                     {"namespace": _UNIT_LOCK_NAMESPACE, "unit_id": unit_id})


def _upsert_person(conn: sa.Connection, openid: str, values: dict[str, Any], now: datetime) -> None:
    """Set ``values`` on the person ``openid``, adding them (as following) if the bot has not met them yet."""
    conn.execute(insert_on_conflict(conn, _PERSON).values(openid=openid, created_at=now, following=True, **values)
                 .on_conflict_do_update(index_elements=["openid"], set_=values))


def write_redemption(conn: sa.Connection, incoming: Incoming, change: RedeemInvitation, now: datetime) -> None:
    """Mark the invitation used by the sender, only if it is still unused and unexpired now (one
    conditional UPDATE: of two people redeeming it at once, one wins), and make the sender
    ``change.role`` of ``change.campaign_id`` with no unit. :class:`StaleDecision` when the
    condition fails, so the handler decides again and refuses."""
    used = conn.execute(sa.update(_INVITATION).where(
        _INVITATION.c.id == change.invitation_id, _INVITATION.c.used_at.is_(None), _INVITATION.c.expires_at > now)
        .values(used_by=incoming.openid, used_at=now))
    if used.rowcount != 1:
        raise StaleDecision(f"invitation {change.invitation_id} was used or expired meanwhile")
    values = dict(role=Role(change.role), unit_id=None, campaign_id=change.campaign_id)
    _upsert_person(conn, incoming.openid, values, now)
