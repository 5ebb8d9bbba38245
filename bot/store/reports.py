"""Reports (周报, 要情) in the database: what handlers may read about them, and the writer of their
changes, registered in ``bot.store.facts.WRITERS`` as :data:`REPORT_WRITERS`.

A report is a :class:`~bot.store.models.Submission` of a weekly deadline; each text, picture, voice note,
video or link is a :class:`~bot.store.models.ReportItem`. Pictures, voice and video also get a
:class:`~bot.store.models.MediaFile` row in the same transaction, which ``bot.outbound.media`` fetches from WeChat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.campaigns.store import definition_of
from bot.store.models import Answer, Campaign, Deadline, MediaFile, ReportItem, Submission
from handlers.base import Incoming
from handlers.report_changes import AddReportItem

_CAMPAIGN = Campaign.__table__
_DEADLINE = Deadline.__table__
_SUBMISSION = Submission.__table__
_ANSWER = Answer.__table__
_ITEM = ReportItem.__table__
_MEDIA = MediaFile.__table__


@dataclass(frozen=True)
class ItemFacts:
    """One report item as the report's summary shows it; ``media_status`` is None for text and
    links, else the fetcher's status (pending, fetching, stored, failed)."""

    kind: str
    featured: bool
    media_status: str | None


def report_items(conn: sa.Connection, submission_id: int) -> list[ItemFacts]:
    """The items of a submission, in the order they came."""
    rows = conn.execute(
        sa.select(_ITEM.c.kind, _ITEM.c.featured, _MEDIA.c.status)
        .select_from(_ITEM.outerjoin(_MEDIA, _MEDIA.c.id == _ITEM.c.media_file_id))
        .where(_ITEM.c.submission_id == submission_id).order_by(_ITEM.c.id))
    return [ItemFacts(r.kind, r.featured, r.status) for r in rows]


def report_texts(conn: sa.Connection, submission_id: int, featured_only: bool = False) -> list[str]:
    """The texts of a submission's items (only the 要情 ones with ``featured_only``), in the order they came."""
    query = sa.select(_ITEM.c.text).where(_ITEM.c.submission_id == submission_id, _ITEM.c.kind == "text")
    if featured_only:
        query = query.where(_ITEM.c.featured.is_(True))
    rows = conn.execute(query.order_by(_ITEM.c.id))
    return [r.text for r in rows if r.text]


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT that can say ON CONFLICT, in the connection's dialect."""
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


def submission_id(conn: sa.Connection, unit_id: int, deadline_id: int, period: str, now: datetime) -> int:
    """The unit's submission for a deadline period, made a draft first when there is none."""
    key = dict(unit_id=unit_id, deadline_id=deadline_id, period=period)
    conn.execute(_insert(conn, _SUBMISSION).values(**key, status="draft", late=False, updated_at=now)
                 .on_conflict_do_nothing(index_elements=["unit_id", "deadline_id", "period"]))
    return int(conn.execute(sa.select(_SUBMISSION.c.id).filter_by(**key)).scalar_one())


def _media_file_id(conn: sa.Connection, incoming: Incoming, media_id: str, kind: str, now: datetime) -> int:
    """The media row to fetch; a media_id seen before (WeChat lets one be sent again) keeps its row."""
    conn.execute(_insert(conn, _MEDIA).values(media_id=media_id, openid=incoming.openid, kind=kind, status="pending",
                                              attempts=0, received_at=now, next_attempt_at=now)
                 .on_conflict_do_nothing(index_elements=["media_id"]))
    return int(conn.execute(sa.select(_MEDIA.c.id).where(_MEDIA.c.media_id == media_id)).scalar_one())


def write_report_item(conn: sa.Connection, incoming: Incoming, change: AddReportItem, now: datetime) -> None:
    """Store the item (and its media row for the fetcher) in the unit's submission for the period."""
    submission = submission_id(conn, change.unit_id, change.deadline_id, change.period, now)
    media_file = None
    if change.media_id is not None:
        media_file = _media_file_id(conn, incoming, change.media_id, change.media_kind or change.kind, now)
    conn.execute(sa.insert(_ITEM).values(submission_id=submission, openid=incoming.openid, kind=change.kind,
                                         text=change.text, url=change.url, media_file_id=media_file,
                                         featured=change.featured, created_at=now))
    conn.execute(sa.update(_SUBMISSION).where(_SUBMISSION.c.id == submission).values(updated_at=now))


REPORT_WRITERS: dict[type, Any] = {AddReportItem: write_report_item}


def weekly_sums(conn: sa.Connection, unit_id: int, campaign_id: int) -> dict[str, int]:
    """The unit's numbers from all its weekly reports, added up per statistics answer key.

    Only forms with ``sums_into`` (docs/campaign-format.md) carry numbers; blanks count as nothing.
    """
    row = conn.execute(sa.select(_CAMPAIGN).where(_CAMPAIGN.c.id == campaign_id)).one()
    definition = definition_of(Campaign(**row._mapping))
    summed = {d.key: {f.answer_key for f in definition.summed_fields(d.collects)} for d in definition.deadlines}
    keys = set().union(*summed.values())
    if not keys:
        return {}
    rows = conn.execute(
        sa.select(_ANSWER.c.field_key, sa.func.sum(_ANSWER.c.number).label("total"))
        .join(_SUBMISSION, _SUBMISSION.c.id == _ANSWER.c.submission_id)
        .join(_DEADLINE, _DEADLINE.c.id == _SUBMISSION.c.deadline_id)
        .where(_SUBMISSION.c.unit_id == unit_id, _DEADLINE.c.campaign_id == campaign_id,
               _DEADLINE.c.key.in_([key for key, fields in summed.items() if fields]),
               _ANSWER.c.field_key.in_(keys), _ANSWER.c.number.is_not(None))
        .group_by(_ANSWER.c.field_key))
    return {r.field_key: int(r.total) for r in rows}
