"""Reports (周报, 要情) in the database: the writer of :class:`~handlers.report_changes.AddReportItem`
(listed with the other writers in ``bot.app.change_writers``) and the draft submission it goes into.
Handlers read reports through :class:`bot.store.facts.DatabaseFacts`.

A report is a :class:`~bot.store.models.Submission` of a weekly deadline; each text, picture, voice note,
video or link is a :class:`~bot.store.models.ReportItem`. Pictures, voice and video also get a
:class:`~bot.store.models.MediaFile` row in the same transaction, which ``bot.outbound.media`` fetches from WeChat.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from bot.store.models import MediaFile, ReportItem, Submission, table_of
from bot.store.sql import insert_on_conflict
from handlers.base import Incoming
from handlers.report_changes import AddReportItem

_SUBMISSION = table_of(Submission)
_ITEM = table_of(ReportItem)
_MEDIA = table_of(MediaFile)


def submission_id(conn: sa.Connection, unit_id: int, deadline_id: int, period: str, now: datetime) -> int:
    """The unit's submission for a deadline period, made a draft first when there is none."""
    key = dict(unit_id=unit_id, deadline_id=deadline_id, period=period)
    conn.execute(insert_on_conflict(conn, _SUBMISSION).values(**key, status="draft", late=False, updated_at=now)
                 .on_conflict_do_nothing(index_elements=["unit_id", "deadline_id", "period"]))
    return int(conn.execute(sa.select(_SUBMISSION.c.id).filter_by(**key)).scalar_one())


def _media_file_id(conn: sa.Connection, incoming: Incoming, media_id: str, kind: str, now: datetime) -> int:
    """The media row to fetch; a media_id seen before (WeChat lets one be sent again) keeps its row."""
    conn.execute(insert_on_conflict(conn, _MEDIA).values(
        media_id=media_id, openid=incoming.openid, kind=kind, status="pending", attempts=0, received_at=now,
        next_attempt_at=now).on_conflict_do_nothing(index_elements=["media_id"]))
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
