"""Where handlers meet the database: a read-only view for deciding, and the writer of their changes.

Handlers stay pure: they read through :class:`StoredFacts` (bound to the handling transaction) and
return :mod:`handlers.changes` values in their ``Outcome``; :func:`apply_changes` writes those in the
same transaction as the person's dialogue state and the answer to WeChat, so a retry, a restart or
another worker never sees one without the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.campaigns.format import CampaignDefinition
from bot.campaigns.store import definition_of
from bot.outbound.delivery import record_template_job_on
from bot.store.models import (
    Answer, AnswerRevision, Campaign, Deadline, DeadlinePeriod, LiaisonReplacement, Person, Role, Submission, Unit,
)
from bot.outbound.outbox import NOTE_WRITERS
from bot.store.reports import REPORT_WRITERS
from handlers.base import Incoming
from handlers.changes import (
    AppointLiaison, BecomeStaff, ClaimUnit, DecideRequest, RenamePerson, RequestLiaison, SaveAnswers, SubmitForm, Value,
)
from handlers.template_job import TemplateJobFinished

_UNIT = Unit.__table__
_PERSON = Person.__table__
_CAMPAIGN = Campaign.__table__
_DEADLINE = Deadline.__table__
_PERIOD = DeadlinePeriod.__table__
_SUBMISSION = Submission.__table__
_ANSWER = Answer.__table__
_REVISION = AnswerRevision.__table__
_REPLACEMENT = LiaisonReplacement.__table__
# Advisory-lock namespace for "who holds this unit", apart from the gateway's person locks.
_UNIT_LOCK_NAMESPACE = 7302


class StaleDecision(Exception):
    """A change found the data its handler read has moved on (e.g. another liaison took the unit
    meanwhile); the gateway then lets the handler decide again under the lock."""


@dataclass(frozen=True)
class UnitFacts:
    """A unit as handlers need it."""

    id: int
    campaign_id: int
    name: str


@dataclass(frozen=True)
class Holder:
    """The person registered as a unit's liaison."""

    openid: str
    name: str


@dataclass(frozen=True)
class DuePeriod:
    """One period of one deadline of a campaign, with the form it collects."""

    deadline_id: int
    key: str
    title: str
    collects: str
    period: str
    due_at: datetime


@dataclass(frozen=True)
class SubmissionFacts:
    """Where a unit's submission for one period stands."""

    id: int
    status: str
    late: bool
    submitted_at: datetime | None


@dataclass(frozen=True)
class LiaisonRequest:
    """A pending (or decided) request to become a unit's liaison, as staff see it."""

    id: int
    kind: str
    unit_id: int
    unit_name: str
    openid: str
    name: str
    holder_openid: str
    holder_name: str
    reminders: bool
    answers: dict[str, list[Any]]
    status: str
    requested_at: datetime


@dataclass(frozen=True)
class StoredAnswer:
    """A stored answer; ``text`` None is a field deliberately left blank."""

    text: str | None
    number: int | None
    approximate: bool


# Parsing a stored definition costs milliseconds; a campaign changes only when it is loaded again,
# so (id, loaded_at) names one version for good.
_DEFINITIONS: dict[tuple[int, datetime], CampaignDefinition] = {}


class StoredFacts:
    """Read-only queries handlers may make while deciding, on the handling transaction's connection.

    Given a function instead of a connection, it opens the connection at the first query: many
    decisions (help for a newcomer, a walk's next question) read nothing stored.
    """

    def __init__(self, conn: sa.Connection | Callable[[], sa.Connection]):
        self._conn = conn if isinstance(conn, sa.Connection) else None
        self._connect = conn

    @property
    def conn(self) -> sa.Connection:
        """The connection queries run on, opened now if it was not yet."""
        if self._conn is None:
            assert callable(self._connect)
            self._conn = self._connect()
        return self._conn

    def unit(self, unit_id: int) -> UnitFacts | None:
        """The unit with this id."""
        row = self.conn.execute(sa.select(_UNIT.c.id, _UNIT.c.campaign_id, _UNIT.c.name)
                                .where(_UNIT.c.id == unit_id)).first()
        return None if row is None else UnitFacts(row.id, row.campaign_id, row.name)

    def unit_by_join_code(self, code: str) -> UnitFacts | None:
        """The unit whose join code is ``code`` (compared without case: codes are typed on phones)."""
        row = self.conn.execute(sa.select(_UNIT.c.id, _UNIT.c.campaign_id, _UNIT.c.name)
                                .where(_UNIT.c.join_code == code.strip().upper())).first()
        return None if row is None else UnitFacts(row.id, row.campaign_id, row.name)

    def holder(self, unit_id: int) -> Holder | None:
        """The unit's registered liaison, if any."""
        row = self.conn.execute(sa.select(_PERSON.c.openid, _PERSON.c.name)
                                .where(_PERSON.c.unit_id == unit_id, _PERSON.c.role == Role.LIAISON)
                                .order_by(_PERSON.c.id)).first()
        return None if row is None else Holder(row.openid, row.name)

    def definition(self, campaign_id: int) -> CampaignDefinition:
        """The campaign's definition (see docs/campaign-format.md)."""
        loaded_at = self.conn.execute(sa.select(_CAMPAIGN.c.loaded_at).where(_CAMPAIGN.c.id == campaign_id)).scalar_one()
        cached = _DEFINITIONS.get((campaign_id, loaded_at))
        if cached is None:
            row = self.conn.execute(sa.select(_CAMPAIGN).where(_CAMPAIGN.c.id == campaign_id)).one()
            cached = definition_of(Campaign(**row._mapping))
            _DEFINITIONS[(campaign_id, loaded_at)] = cached
        return cached

    def periods(self, campaign_id: int) -> list[DuePeriod]:
        """Every period of every deadline of the campaign, earliest due first."""
        rows = self.conn.execute(
            sa.select(_DEADLINE.c.id, _DEADLINE.c.key, _DEADLINE.c.title, _DEADLINE.c.collects, _PERIOD.c.period,
                      _PERIOD.c.due_at)
            .join(_PERIOD, _PERIOD.c.deadline_id == _DEADLINE.c.id)
            .where(_DEADLINE.c.campaign_id == campaign_id)
            .order_by(_PERIOD.c.due_at, _DEADLINE.c.id))
        return [DuePeriod(r.id, r.key, r.title, r.collects, r.period, r.due_at) for r in rows]

    def submission(self, unit_id: int, deadline_id: int, period: str) -> SubmissionFacts | None:
        """The unit's submission for one deadline period, if it has begun one."""
        row = self.conn.execute(sa.select(_SUBMISSION).where(
            _SUBMISSION.c.unit_id == unit_id, _SUBMISSION.c.deadline_id == deadline_id,
            _SUBMISSION.c.period == period)).first()
        return None if row is None else SubmissionFacts(row.id, row.status, row.late, row.submitted_at)

    def answers(self, submission_id: int) -> dict[str, StoredAnswer]:
        """A submission's answers by field key."""
        rows = self.conn.execute(sa.select(_ANSWER.c.field_key, _ANSWER.c.value, _ANSWER.c.number,
                                           _ANSWER.c.approximate).where(_ANSWER.c.submission_id == submission_id))
        return {r.field_key: StoredAnswer(r.value, r.number, r.approximate) for r in rows}

    def requests(self, *, request_id: int | None = None, openid: str | None = None,
                 pending: bool = True) -> list[LiaisonRequest]:
        """Liaison requests, oldest first: pending ones, or one by id, or those of one requester."""
        holder = sa.alias(_PERSON)
        query = (sa.select(_REPLACEMENT, _UNIT.c.name.label("unit_name"), _PERSON.c.name.label("person_name"),
                           holder.c.name.label("holder_name"))
                 .join(_UNIT, _UNIT.c.id == _REPLACEMENT.c.unit_id)
                 .outerjoin(_PERSON, _PERSON.c.openid == _REPLACEMENT.c.openid)
                 .outerjoin(holder, holder.c.openid == _REPLACEMENT.c.holder_openid)
                 .order_by(_REPLACEMENT.c.id))
        if pending:
            query = query.where(_REPLACEMENT.c.status == "pending")
        if request_id is not None:
            query = query.where(_REPLACEMENT.c.id == request_id)
        if openid is not None:
            query = query.where(_REPLACEMENT.c.openid == openid)
        return [LiaisonRequest(r.id, r.kind, r.unit_id, r.unit_name, r.openid, r.name or r.person_name or "",
                               r.holder_openid, r.holder_name or "", r.reminders, dict(r.answers or {}), r.status,
                               r.requested_at) for r in self.conn.execute(query)]

    def campaign_ids(self) -> list[int]:
        """Every loaded campaign's id."""
        return list(self.conn.execute(sa.select(_CAMPAIGN.c.id).order_by(_CAMPAIGN.c.id)).scalars())

    def staff_role(self, code: str) -> str | None:
        """The role a loaded campaign's [staff] code gives (staff, coordinator), if ``code`` is one."""
        code = code.strip().upper()
        for campaign_id in self.campaign_ids():
            definition = self.definition(campaign_id)
            if code and code == definition.coordinator_code:
                return Role.COORDINATOR.value
            if code and code == definition.staff_code:
                return Role.STAFF.value
        return None

    def open_units(self, fragment: str = "") -> list[UnitFacts]:
        """Units of campaigns with open registration whose name contains ``fragment``, by name."""
        open_ids = [c for c in self.campaign_ids() if self.definition(c).open_registration]
        if not open_ids:
            return []
        query = sa.select(_UNIT.c.id, _UNIT.c.campaign_id, _UNIT.c.name).where(_UNIT.c.campaign_id.in_(open_ids))
        if fragment:
            query = query.where(_UNIT.c.name.contains(fragment, autoescape=True))
        return [UnitFacts(r.id, r.campaign_id, r.name) for r in self.conn.execute(query.order_by(_UNIT.c.name, _UNIT.c.id))]


Writer = Callable[[sa.Connection, Incoming, Any, datetime], None]

# One writer per change type; the handler modules' change types register theirs here.
WRITERS: dict[type, Writer] = {}


def apply_changes(conn: sa.Connection, incoming: Incoming, changes: tuple[Any, ...], now: datetime) -> None:
    """Write every change of an outcome, in order, on ``conn`` (inside the handling transaction)."""
    for change in changes:
        writer = WRITERS.get(type(change))
        if writer is None:
            raise TypeError(f"no writer for the change {type(change).__name__}")
        writer(conn, incoming, change, now)


# --- writers of the form handlers' changes ------------------------------------------------------


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT that can say ON CONFLICT, in the connection's dialect."""
    return (postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table))


def _submission_id(conn: sa.Connection, unit_id: int, deadline_id: int, period: str, now: datetime) -> int:
    key = dict(unit_id=unit_id, deadline_id=deadline_id, period=period)
    conn.execute(_insert(conn, _SUBMISSION).values(**key, status="draft", late=False, updated_at=now)
                 .on_conflict_do_nothing(index_elements=["unit_id", "deadline_id", "period"]))
    return int(conn.execute(sa.select(_SUBMISSION.c.id).filter_by(**key)).scalar_one())


def _save_value(conn: sa.Connection, submission_id: int, value: Value, who: str, now: datetime, late: bool) -> None:
    """Insert or update one answer; a changed answer leaves a revision (who, when, old → new)."""
    row = conn.execute(sa.select(_ANSWER.c.id, _ANSWER.c.value).where(
        _ANSWER.c.submission_id == submission_id, _ANSWER.c.field_key == value.field_key)).first()
    values = dict(value=value.text, number=value.number, approximate=value.approximate, updated_by=who, updated_at=now)
    if row is None:
        conn.execute(sa.insert(_ANSWER).values(submission_id=submission_id, field_key=value.field_key, **values))
        return
    conn.execute(sa.update(_ANSWER).where(_ANSWER.c.id == row.id).values(**values))
    if row.value != value.text:
        conn.execute(sa.insert(_REVISION).values(answer_id=row.id, old_value=row.value, new_value=value.text,
                                                 changed_by=who, changed_at=now, late=late))


def write_answers(conn: sa.Connection, incoming: Incoming, change: SaveAnswers, now: datetime) -> None:
    """Store the answers; a change after the due time to a submitted table marks it late."""
    submission_id = _submission_id(conn, change.unit_id, change.deadline_id, change.period, now)
    status = conn.execute(sa.select(_SUBMISSION.c.status).where(_SUBMISSION.c.id == submission_id)).scalar_one()
    late = status == "submitted" and now > change.due_at
    for value in change.values:
        _save_value(conn, submission_id, value, change.on_behalf_of or incoming.openid, now, late)
    update = sa.update(_SUBMISSION).where(_SUBMISSION.c.id == submission_id).values(updated_at=now)
    conn.execute(update.values(late=True) if late else update)


def write_submit(conn: sa.Connection, incoming: Incoming, change: SubmitForm, now: datetime) -> None:
    """Mark the submission submitted now, by the sender; late when past the due time."""
    submission_id = _submission_id(conn, change.unit_id, change.deadline_id, change.period, now)
    late = _SUBMISSION.c.late | sa.literal(now > change.due_at)
    conn.execute(sa.update(_SUBMISSION).where(_SUBMISSION.c.id == submission_id).values(
        status="submitted", submitted_at=now, submitted_by=change.on_behalf_of or incoming.openid, late=late,
        updated_at=now))


def write_claim(conn: sa.Connection, incoming: Incoming, change: ClaimUnit, now: datetime) -> None:
    """Make the sender the unit's liaison, unless someone else took the unit meanwhile."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:namespace, :unit_id)"),
                     {"namespace": _UNIT_LOCK_NAMESPACE, "unit_id": change.unit_id})
    holder = StoredFacts(conn).holder(change.unit_id)
    if holder is not None and holder.openid != incoming.openid:
        raise StaleDecision(f"unit {change.unit_id} is held by {holder.openid}")
    values = dict(unit_id=change.unit_id, name=change.name, role=Role.LIAISON,
                  reminder_opt_in_at=now if change.reminders else None)
    conn.execute(_insert(conn, _PERSON).values(openid=incoming.openid, created_at=now, following=True, **values)
                 .on_conflict_do_update(index_elements=["openid"], set_=values))


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
    """The unit's liaison is now ``change.openid``; the one it had keeps the account, not the unit."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:namespace, :unit_id)"),
                     {"namespace": _UNIT_LOCK_NAMESPACE, "unit_id": change.unit_id})
    conn.execute(sa.update(_PERSON).where(_PERSON.c.unit_id == change.unit_id, _PERSON.c.role == Role.LIAISON,
                                          _PERSON.c.openid != change.openid).values(unit_id=None))
    values = dict(unit_id=change.unit_id, name=change.name, role=Role.LIAISON,
                  reminder_opt_in_at=now if change.reminders else None)
    conn.execute(_insert(conn, _PERSON).values(openid=change.openid, created_at=now, following=True, **values)
                 .on_conflict_do_update(index_elements=["openid"], set_=values))


def write_staff(conn: sa.Connection, incoming: Incoming, change: BecomeStaff, now: datetime) -> None:
    """The sender is staff (or a coordinator) from now on, with no unit."""
    values = dict(role=Role(change.role), unit_id=None)
    conn.execute(_insert(conn, _PERSON).values(openid=incoming.openid, created_at=now, following=True, **values)
                 .on_conflict_do_update(index_elements=["openid"], set_=values))


WRITERS.update({SaveAnswers: write_answers, SubmitForm: write_submit, ClaimUnit: write_claim,
                RenamePerson: write_rename, RequestLiaison: write_request, DecideRequest: write_decision,
                AppointLiaison: write_appointment, BecomeStaff: write_staff})
WRITERS.update(REPORT_WRITERS)
WRITERS.update(NOTE_WRITERS)


def write_template_job(conn: sa.Connection, incoming: Incoming, change: TemplateJobFinished, now: datetime) -> None:
    """The reminders ledger learns how a template message ended (bot/outbound/delivery.py)."""
    record_template_job_on(conn, incoming.openid, change.msgid, change.status)


WRITERS[TemplateJobFinished] = write_template_job
