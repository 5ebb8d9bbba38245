"""What the office's Excel file shows, read from the database in a few set-wise queries: the units
with their liaisons, every unit's answers to the statistics table (the period the office sums), the
liaison table and the activity records, the sums (:mod:`bot.store.totals`) and the reminders sent.

The reads grow with the rows, not with round trips: one query per kind of thing, whatever the
number of units (5,000 units × 40 fields read in about a second; ``benchmarks/aggregate.py``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from bot.campaigns.format import CampaignDefinition, FormKind
from bot.store.facts import DatabaseFacts
from bot.store.models import Answer, Campaign, Deadline, Delivery, Person, Role, Submission, Unit, table_of
from handlers.ports import DuePeriod, TotalsFacts
from handlers.totals import statistics_form, summed_keys, summed_period

_UNIT, _PERSON, _CAMPAIGN = table_of(Unit), table_of(Person), table_of(Campaign)
_SUBMISSION, _ANSWER, _DEADLINE, _DELIVERY = table_of(Submission), table_of(Answer), table_of(Deadline), table_of(Delivery)
# scheduler/run.py's Delivery.kind of a reminder.
REMINDER = "reminder"


class Given(NamedTuple):
    """A stored answer (as :class:`handlers.ports.StoredAnswer`): ``text`` None is a field left
    blank. A tuple, because a workbook of 5,000 units reads 200,000 of them and a frozen
    dataclass costs five times as much to make."""

    text: str | None
    number: int | None
    approximate: bool


@dataclass(frozen=True)
class UnitRow:
    """A unit with its registered liaison ("" when it has none)."""

    id: int
    name: str
    group: str
    liaison: str


@dataclass(frozen=True)
class Filled:
    """One unit's submission of one deadline period: ``status`` draft or submitted, and its answers."""

    unit_id: int
    period: str
    status: str
    late: bool
    submitted_at: datetime | None
    answers: dict[str, Given] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportData:
    """Everything the workbook writes for one campaign, read at ``now``.

    ``statistics`` holds each unit's table of the summed ``period`` (by unit id), ``liaison`` each
    unit's liaison-table answers, ``records`` each table form's submissions (by form key, every
    period, oldest first), ``reminders`` the reminders sent to each unit about the summed deadline.
    """

    slug: str
    definition: CampaignDefinition
    now: datetime
    units: list[UnitRow]
    period: DuePeriod | None
    totals: TotalsFacts | None
    statistics: dict[int, Filled]
    liaison: dict[int, Filled]
    records: dict[str, list[Filled]]
    reminders: dict[int, int]


def campaign_id_of(conn: sa.Connection, slug: str) -> int:
    """The id of the campaign stored as ``slug`` (``jincheng-commerce-2023``); LookupError if none."""
    found = conn.execute(sa.select(_CAMPAIGN.c.id).where(_CAMPAIGN.c.slug == slug)).scalar()
    if found is None:
        raise LookupError(f"no campaign {slug!r} is loaded")
    return int(found)


def _driver_rows(conn: sa.Connection, statement: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``statement`` as the database driver's own tuples, untyped (SQLite's booleans
    are 0 or 1): for the 200,000 answers of a workbook, SQLAlchemy's Row objects cost more than
    the query."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params if compiled.positiontup is None else [compiled.params[k] for k in compiled.positiontup]
    cursor = conn.connection.cursor()
    try:
        cursor.execute(compiled.string, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _filled(conn: sa.Connection, deadline_ids: list[int], period: str | None) -> list[Filled]:
    """Every submission of these deadlines (of one period, or all), with its answers: two queries."""
    if not deadline_ids:
        return []
    chosen: list[sa.ColumnElement[bool]] = [_SUBMISSION.c.deadline_id.in_(deadline_ids)]
    if period is not None:
        chosen.append(_SUBMISSION.c.period == period)
    submissions = {r.id: r for r in conn.execute(
        sa.select(_SUBMISSION).where(*chosen).order_by(_SUBMISSION.c.period, _SUBMISSION.c.unit_id)).all()}
    answers: dict[int, dict[str, Given]] = defaultdict(dict)
    rows = _driver_rows(conn, sa.select(
        _ANSWER.c.submission_id, _ANSWER.c.field_key, _ANSWER.c.value, _ANSWER.c.number, _ANSWER.c.approximate)
        .join(_SUBMISSION, _SUBMISSION.c.id == _ANSWER.c.submission_id).where(*chosen))
    for submission_id, key, value, number, approximate in rows:
        # SQLite gives the flag as 0 or 1.
        answers[submission_id][key] = Given(value, number, bool(approximate))
    return [Filled(s.unit_id, s.period, s.status, s.late, s.submitted_at, answers.get(s.id, {}))
            for s in submissions.values()]


def read_export(conn: sa.Connection, campaign_id: int, now: datetime) -> ExportData:
    """What the campaign's workbook shows at ``now`` (the summed period is the one 合计 sums then)."""
    facts = DatabaseFacts(conn)
    definition = facts.definition(campaign_id)
    slug = conn.execute(sa.select(_CAMPAIGN.c.slug).where(_CAMPAIGN.c.id == campaign_id)).scalar_one()
    liaisons = (sa.select(_PERSON.c.unit_id, sa.func.min(_PERSON.c.id).label("person_id"))
                .where(_PERSON.c.role == Role.LIAISON.value, _PERSON.c.unit_id.is_not(None))
                .group_by(_PERSON.c.unit_id).subquery())
    units = [UnitRow(r.id, r.name, r.group, r.liaison or "") for r in conn.execute(
        sa.select(_UNIT.c.id, _UNIT.c.name, _UNIT.c.group, _PERSON.c.name.label("liaison"))
        .outerjoin(liaisons, liaisons.c.unit_id == _UNIT.c.id)
        .outerjoin(_PERSON, _PERSON.c.id == liaisons.c.person_id)
        .where(_UNIT.c.campaign_id == campaign_id).order_by(_UNIT.c.id))]
    deadlines = {r.key: r.id for r in conn.execute(
        sa.select(_DEADLINE.c.key, _DEADLINE.c.id).where(_DEADLINE.c.campaign_id == campaign_id))}
    period = summed_period(definition, facts.periods(campaign_id), now)
    statistics: dict[int, Filled] = {}
    totals: TotalsFacts | None = None
    reminders: dict[int, int] = {}
    if period is not None:
        statistics = {f.unit_id: f for f in _filled(conn, [period.deadline_id], period.period)}
        form = statistics_form(definition)
        totals = facts.totals(period.deadline_id, period.period, summed_keys(form) if form else frozenset())
        reminders = {int(r.unit_id): int(r.n) for r in conn.execute(
            sa.select(_DELIVERY.c.unit_id, sa.func.count().label("n"))
            .where(_DELIVERY.c.kind == REMINDER, _DELIVERY.c.deadline_id == period.deadline_id,
                   _DELIVERY.c.period == period.period, _DELIVERY.c.unit_id.is_not(None))
            .group_by(_DELIVERY.c.unit_id))}
    liaison_form = definition.liaison_form()
    liaison = {f.unit_id: f for f in _filled(conn, [deadlines[d.key] for d in definition.deadlines
                                                     if liaison_form and d.collects == liaison_form.key], None)}
    records = {form.key: _filled(conn, [deadlines[d.key] for d in definition.deadlines if d.collects == form.key], None)
               for form in definition.forms if form.kind is FormKind.TABLE}
    return ExportData(slug, definition, now, units, period, totals, statistics, liaison, records, reminders)
