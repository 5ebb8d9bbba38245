"""The office's reads of a campaign's progress (``进度``, ``未报``, ``单位``), for
:class:`bot.store.facts.DatabaseFacts`.

Each answer is a few set-based queries whatever the number of units (a campaign has up to 5,000):
counts are grouped in the database, and the missing units come from one anti-join with their
liaisons joined on, never a query per unit.
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa

from bot.campaigns.format import CampaignDefinition, FieldType
from bot.store.models import Answer, Deadline, Person, ReportItem, Role, Submission, Unit, table_of
from handlers.ports import PeriodProgress, UnitContact, UnitFacts, UnitFiling

_UNIT = table_of(Unit)
_PERSON = table_of(Person)
_DEADLINE = table_of(Deadline)
_SUBMISSION = table_of(Submission)
_ANSWER = table_of(Answer)
_ITEM = table_of(ReportItem)


def period_progress(conn: sa.Connection, campaign_id: int, periods: Sequence[tuple[int, str]],
                    shown: int) -> list[PeriodProgress]:
    """For each (deadline id, period) of ``periods``, in that order: the campaign's units, how many
    submitted (and how many of those late), and the names of the first ``shown`` missing units by name."""
    units = conn.execute(sa.select(sa.func.count()).select_from(_UNIT)
                         .where(_UNIT.c.campaign_id == campaign_id)).scalar_one()
    counts = {(r.deadline_id, r.period): (int(r.submitted), int(r.late or 0)) for r in conn.execute(
        sa.select(_SUBMISSION.c.deadline_id, _SUBMISSION.c.period, sa.func.count().label("submitted"),
                  sa.func.sum(sa.case((_SUBMISSION.c.late, 1), else_=0)).label("late"))
        .where(_SUBMISSION.c.deadline_id.in_({d for d, _ in periods}), _SUBMISSION.c.status == "submitted")
        .group_by(_SUBMISSION.c.deadline_id, _SUBMISSION.c.period))}
    found = []
    for deadline_id, period in periods:
        done, late = counts.get((deadline_id, period), (0, 0))
        missing = conn.execute(sa.select(_UNIT.c.name).where(_UNIT.c.id.in_(_missing_units(campaign_id, deadline_id, period)))
                               .order_by(_UNIT.c.name).limit(shown)).scalars()
        found.append(PeriodProgress(deadline_id, period, units, done, late, tuple(missing)))
    return found


def missing_contacts(conn: sa.Connection, definition: CampaignDefinition, campaign_id: int, deadline_id: int,
                     period: str) -> list[UnitContact]:
    """The units of the campaign that have not submitted ``deadline_id`` for ``period``, by name,
    each with its liaison (see :func:`_contacts`)."""
    return _contacts(conn, definition, campaign_id, _missing_units(campaign_id, deadline_id, period))


def unit_contact(conn: sa.Connection, definition: CampaignDefinition, campaign_id: int, unit_id: int) -> UnitContact:
    """One unit of the campaign with its liaison; LookupError if the campaign has no such unit."""
    found = _contacts(conn, definition, campaign_id,
                      sa.select(_UNIT.c.id).where(_UNIT.c.id == unit_id, _UNIT.c.campaign_id == campaign_id))
    if not found:
        raise LookupError(f"no unit {unit_id}")
    return found[0]


def units_named(conn: sa.Connection, campaign_id: int, fragment: str, limit: int) -> list[UnitFacts]:
    """Up to ``limit`` units of the campaign whose name contains ``fragment``, by name; a unit named
    exactly ``fragment`` comes first."""
    exact = sa.case((_UNIT.c.name == fragment, 0), else_=1)
    rows = conn.execute(sa.select(_UNIT.c.id, _UNIT.c.campaign_id, _UNIT.c.name)
                        .where(_UNIT.c.campaign_id == campaign_id, _UNIT.c.name.contains(fragment, autoescape=True))
                        .order_by(exact, _UNIT.c.name, _UNIT.c.id).limit(limit))
    return [UnitFacts(r.id, r.campaign_id, r.name) for r in rows]


def unit_filings(conn: sa.Connection, unit_id: int) -> list[UnitFiling]:
    """Every submission (begun or sent) of the unit, with how many answers it holds (blanks not
    counted) and how many report items and 要情 among them; in no particular order."""
    answered = (sa.select(sa.func.count()).where(_ANSWER.c.submission_id == _SUBMISSION.c.id,
                                                 _ANSWER.c.value.is_not(None), _ANSWER.c.value != "")
                .correlate(_SUBMISSION).scalar_subquery())
    items = (sa.select(sa.func.count()).where(_ITEM.c.submission_id == _SUBMISSION.c.id)
             .correlate(_SUBMISSION).scalar_subquery())
    featured = (sa.select(sa.func.count()).where(_ITEM.c.submission_id == _SUBMISSION.c.id, _ITEM.c.featured.is_(True))
                .correlate(_SUBMISSION).scalar_subquery())
    rows = conn.execute(sa.select(_SUBMISSION.c.deadline_id, _SUBMISSION.c.period, _SUBMISSION.c.status,
                                  _SUBMISSION.c.late, _SUBMISSION.c.submitted_at, answered.label("answered"),
                                  items.label("items"), featured.label("featured"))
                        .where(_SUBMISSION.c.unit_id == unit_id))
    return [UnitFiling(r.deadline_id, r.period, r.status, r.late, r.submitted_at, r.answered, r.items, r.featured)
            for r in rows]


def _missing_units(campaign_id: int, deadline_id: int, period: str) -> sa.Select[tuple[int]]:
    """The campaign's units with no sent submission for the deadline period (an anti-join)."""
    # An alias of its own: the callers select from the unit table around it.
    owing = _UNIT.alias("owing")
    sent = sa.select(_SUBMISSION.c.id).where(
        _SUBMISSION.c.unit_id == owing.c.id, _SUBMISSION.c.deadline_id == deadline_id,
        _SUBMISSION.c.period == period, _SUBMISSION.c.status == "submitted")
    return sa.select(owing.c.id).where(owing.c.campaign_id == campaign_id, ~sent.exists())


def _contacts(conn: sa.Connection, definition: CampaignDefinition, campaign_id: int,
              units: sa.Select[tuple[int]]) -> list[UnitContact]:
    """The units whose ids ``units`` selects, by name, each with its registered liaison: their
    name (as registered, else the liaison table's) and mobile (the liaison table's, else the one
    the units import gave)."""
    liaison = (sa.select(_PERSON.c.unit_id, sa.func.min(_PERSON.c.name).label("name"))
               .where(_PERSON.c.role == Role.LIAISON, _PERSON.c.unit_id.is_not(None))
               .group_by(_PERSON.c.unit_id).subquery())
    query = (sa.select(_UNIT.c.id, _UNIT.c.name, _UNIT.c.liaison_mobile, liaison.c.unit_id.label("registered"),
                       liaison.c.name.label("liaison"),
                       _table_answer(conn, definition, campaign_id, FieldType.PERSON_NAME).label("table_name"),
                       _table_answer(conn, definition, campaign_id, FieldType.MOBILE).label("table_mobile"))
             .select_from(_UNIT.outerjoin(liaison, liaison.c.unit_id == _UNIT.c.id))
             .where(_UNIT.c.id.in_(units)).order_by(_UNIT.c.name, _UNIT.c.id))
    return [UnitContact(r.id, r.name, r.registered is not None, r.liaison or r.table_name or "",
                        r.table_mobile or r.liaison_mobile or "") for r in conn.execute(query)]


def _table_answer(conn: sa.Connection, definition: CampaignDefinition, campaign_id: int,
                  kind: FieldType) -> sa.ScalarSelect[str | None]:
    """The unit's latest non-blank answer to the liaison table's first field of type ``kind``,
    correlated to the unit row (NULL when the campaign's liaison table has no such field)."""
    form = definition.liaison_form()
    key = next((f.answer_key for f in form.answer_fields() if f.type is kind), None) if form else None
    collecting = [d.key for d in definition.deadlines if form is not None and d.collects == form.key]
    deadline_ids = list(conn.execute(sa.select(_DEADLINE.c.id).where(
        _DEADLINE.c.campaign_id == campaign_id, _DEADLINE.c.key.in_(collecting))).scalars()) if key else []
    return (sa.select(_ANSWER.c.value)
            .join(_SUBMISSION, _SUBMISSION.c.id == _ANSWER.c.submission_id)
            .where(_SUBMISSION.c.unit_id == _UNIT.c.id, _SUBMISSION.c.deadline_id.in_(deadline_ids),
                   _ANSWER.c.field_key == (key or ""), _ANSWER.c.value.is_not(None), _ANSWER.c.value != "")
            .order_by(_ANSWER.c.updated_at.desc(), _ANSWER.c.id.desc()).limit(1)
            .correlate(_UNIT).scalar_subquery())
