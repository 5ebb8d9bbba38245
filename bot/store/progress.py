"""The office's reads of a campaign's progress (``进度``, ``未报``, ``单位``), for
:class:`bot.store.facts.DatabaseFacts`.

Each answer is a few set-based queries whatever the number of units (a campaign has up to 5,000):
counts are grouped in the database, the missing units come from one anti-join, and their liaisons
and liaison-table answers from one plain query each over the campaign; never a query per unit.
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
        missing = () if not shown else conn.execute(sa.select(_UNIT.c.name).where(_UNIT.c.campaign_id == campaign_id,
                                                             _not_sent(deadline_id, period))
                               .order_by(_UNIT.c.name).limit(shown)).scalars()
        found.append(PeriodProgress(deadline_id, period, units, done, late, tuple(missing)))
    return found


def missing_contacts(conn: sa.Connection, definition: CampaignDefinition, campaign_id: int, deadline_id: int,
                     period: str) -> list[UnitContact]:
    """The units of the campaign that have not submitted ``deadline_id`` for ``period``, by name,
    each with its liaison (see :func:`_contacts`)."""
    return _contacts(conn, definition, campaign_id, _not_sent(deadline_id, period))


def unit_contact(conn: sa.Connection, definition: CampaignDefinition, campaign_id: int, unit_id: int) -> UnitContact:
    """One unit of the campaign with its liaison; LookupError if the campaign has no such unit."""
    found = _contacts(conn, definition, campaign_id, _UNIT.c.id == unit_id)
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


def _not_sent(deadline_id: int, period: str) -> sa.ColumnElement[bool]:
    """True for a unit row with no sent submission for the deadline period (an anti-join)."""
    sent = _SUBMISSION.alias("sent")
    return ~sa.select(sent.c.id).where(
        sent.c.unit_id == _UNIT.c.id, sent.c.deadline_id == deadline_id, sent.c.period == period,
        sent.c.status == "submitted").exists()


def _contacts(conn: sa.Connection, definition: CampaignDefinition, campaign_id: int,
              which: sa.ColumnElement[bool]) -> list[UnitContact]:
    """The campaign's units for which ``which`` holds, by name, each with its registered liaison:
    their name (as registered, else the liaison table's) and mobile (the liaison table's, else the
    one the units import gave). Three queries, each over the campaign at once: the liaisons and
    their answers are read for all its units, a plain join the planner cannot get wrong, and
    matched to the units chosen here."""
    units = conn.execute(sa.select(_UNIT.c.id, _UNIT.c.name, _UNIT.c.liaison_mobile)
                         .where(_UNIT.c.campaign_id == campaign_id, which).order_by(_UNIT.c.name, _UNIT.c.id)).all()
    liaisons: dict[int, str] = {r.unit_id: r.name for r in conn.execute(
        sa.select(_PERSON.c.unit_id, sa.func.min(_PERSON.c.name).label("name"))
        .join(_UNIT, _UNIT.c.id == _PERSON.c.unit_id)
        .where(_PERSON.c.role == Role.LIAISON, _UNIT.c.campaign_id == campaign_id)
        .group_by(_PERSON.c.unit_id))}
    names, mobiles = _table_answers(conn, definition, campaign_id)
    return [UnitContact(unit_id, name, unit_id in liaisons, liaisons.get(unit_id) or names.get(unit_id, ""),
                        mobiles.get(unit_id) or imported or "") for unit_id, name, imported in units]


def _table_answers(conn: sa.Connection, definition: CampaignDefinition,
                   campaign_id: int) -> tuple[dict[int, str], dict[int, str]]:
    """The liaison table's name and mobile answers of the campaign's units, by unit id: the newest
    non-blank of each (the table is filed anew when the liaison changes)."""
    form = definition.liaison_form()
    if form is None:
        return {}, {}
    fields = form.answer_fields()
    name_key = next((f.answer_key for f in fields if f.type is FieldType.PERSON_NAME), None)
    mobile_key = next((f.answer_key for f in fields if f.type is FieldType.MOBILE), None)
    rows = conn.execute(
        sa.select(_SUBMISSION.c.unit_id, _ANSWER.c.field_key, _ANSWER.c.value)
        .join(_SUBMISSION, _SUBMISSION.c.id == _ANSWER.c.submission_id)
        .join(_DEADLINE, _DEADLINE.c.id == _SUBMISSION.c.deadline_id)
        .where(_DEADLINE.c.campaign_id == campaign_id, _DEADLINE.c.collects == form.key,
               _ANSWER.c.field_key.in_([k for k in (name_key, mobile_key) if k]),
               _ANSWER.c.value.is_not(None), _ANSWER.c.value != "")
        .order_by(_ANSWER.c.updated_at, _ANSWER.c.id))
    names: dict[int, str] = {}
    mobiles: dict[int, str] = {}
    for unit_id, key, value in rows:
        (names if key == name_key else mobiles)[unit_id] = value  # the newest comes last
    return names, mobiles
