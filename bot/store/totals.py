"""The office's 合计: a statistics deadline period summed over all units, in the database.

One ``GROUP BY`` over the answers of the submitted tables gives, per answer key, the sum of the
numbers, how many units gave one, whether any was an estimate (约/余), how many answered 是 and how
many answered at all (on SQLite the last two from a second query over the keys whose answers are
not all numbers: see :func:`totals`); a small query counts the submitted tables and the drafts
left out.
The work grows with the number of answers in the database, not with Python: 5,000 units × 40
fields sum in tens of milliseconds (``benchmarks/aggregate.py``).
"""

from __future__ import annotations

import sqlalchemy as sa

from bot.store.models import Answer, Deadline, Submission, Unit, table_of
from handlers.ports import FieldTotal, TotalsFacts

_ANSWER, _SUBMISSION, _DEADLINE, _UNIT = table_of(Answer), table_of(Submission), table_of(Deadline), table_of(Unit)
SUBMITTED = "submitted"
# What the walk stores for a yes (handlers/answers.py parse_yes_no).
YES = "是"


def _as_int(flag: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    # SQLite keeps booleans as 0/1, PostgreSQL as boolean: CASE gives both the same integer.
    return sa.case((flag, 1), else_=0)


def totals(conn: sa.Connection, deadline_id: int, period: str, keys: frozenset[str]) -> TotalsFacts:
    """The submitted tables of one deadline period summed per answer key of ``keys``, the fields
    the table sums (see :class:`TotalsFacts`).

    Raises LookupError when there is no such deadline.
    """
    campaign_id = conn.execute(sa.select(_DEADLINE.c.campaign_id).where(_DEADLINE.c.id == deadline_id)).scalar()
    if campaign_id is None:
        raise LookupError(f"no deadline {deadline_id}")
    of_period = (_SUBMISSION.c.deadline_id == deadline_id) & (_SUBMISSION.c.period == period)
    # ``+answer.submission_id`` keeps SQLite from walking submissions into ix_answer_submission_id
    # and sorting 200,000 answers for the GROUP BY: it scans ix_answer_totals in field key order
    # instead, reading no table row (sqlite.org/optoverview.html, "Disqualifying WHERE clause
    # terms"). PostgreSQL hash-joins a sequential scan of the answers with or without it, so there
    # the same query also sums the texts; SQLite sums them in a second query over the few keys that
    # have answers without a number, as the index does not hold them (free text).
    texts_here = conn.dialect.name != "sqlite"
    texts = [sa.func.sum(_as_int(_ANSWER.c.value == YES)).label("yes"), sa.func.count(_ANSWER.c.value).label("answered")]
    numbers = conn.execute(
        sa.select(_ANSWER.c.field_key,
                  sa.func.sum(_ANSWER.c.number).label("total"),
                  sa.func.count(_ANSWER.c.number).label("units"),
                  # Only a number is ever stored as an estimate (bot/store/writers.py): the flag
                  # alone says it, and testing the number too cost SQLite a third of the query.
                  sa.func.max(_as_int(_ANSWER.c.approximate)).label("approximate"),
                  sa.func.count().label("answers"), *(texts if texts_here else []))
        .join(_SUBMISSION, _SUBMISSION.c.id == sa.sql.expression.UnaryExpression(
            _ANSWER.c.submission_id, operator=sa.sql.operators.custom_op("+")))
        .where(of_period, _SUBMISSION.c.status == SUBMITTED)
        .group_by(_ANSWER.c.field_key)).all()
    # An answer with a number always has a text, the number's digits (handlers/answers.py): where
    # every answer of a key has one, all are answered and none is 是; the other keys' texts are read.
    of_texts: dict[str, tuple[int, int]] = {}
    if texts_here:
        of_texts = {r.field_key: (int(r.yes or 0), int(r.answered)) for r in numbers}
    elif without_number := [r.field_key for r in numbers if r.units < r.answers and r.field_key in keys]:
        of_texts = {r.field_key: (int(r.yes or 0), int(r.answered)) for r in conn.execute(
            sa.select(_ANSWER.c.field_key, *texts)
            .join(_SUBMISSION, _SUBMISSION.c.id == _ANSWER.c.submission_id)
            .where(of_period, _SUBMISSION.c.status == SUBMITTED, _ANSWER.c.field_key.in_(without_number))
            .group_by(_ANSWER.c.field_key))}
    fields = {r.field_key: FieldTotal(r.field_key, None if r.total is None else int(r.total), int(r.units),
                                      bool(r.approximate), *of_texts.get(r.field_key, (0, int(r.answers))))
              for r in numbers if r.field_key in keys}
    by_status: dict[str, int] = {r.status: int(r.n) for r in conn.execute(
        sa.select(_SUBMISSION.c.status, sa.func.count().label("n")).where(of_period).group_by(_SUBMISSION.c.status))}
    units = conn.execute(sa.select(sa.func.count()).select_from(_UNIT).where(_UNIT.c.campaign_id == campaign_id)).scalar_one()
    submitted = by_status.pop(SUBMITTED, 0)
    return TotalsFacts(deadline_id, period, int(units), submitted, sum(by_status.values()), fields)
