"""The stored domain: campaigns and their deadlines, units, people, conversations, what came in,
what went out, and what units submitted (with every change kept).

Tables are created and upgraded only by the Alembic migrations in ``bot/store/migrations``.
All times are stored as UTC and come back timezone-aware.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC (SQLite keeps no zone) and read back as aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a SQLModel table class, for statements built with SQLAlchemy Core.

    SQLModel sets ``__table__`` when the class is mapped; type checkers cannot see it.
    """
    return model.__table__  # type: ignore[attr-defined, no-any-return]


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


def _time(nullable: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    return Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


def _enum(enum_class: type[enum.Enum], default: enum.Enum) -> Any:
    column_type = sa.Enum(
        enum_class, native_enum=False, length=20, values_callable=lambda members: [m.value for m in members]
    )
    return Field(default=default, sa_column=sa.Column(column_type, nullable=False))


def _json(nullable: bool = False) -> Any:
    return Field(default=None if nullable else {}, sa_column=sa.Column(sa.JSON, nullable=nullable))


class Role(str, enum.Enum):
    """What a person may do: liaisons report for their unit, staff broadcast, coordinators see all."""

    LIAISON = "liaison"
    STAFF = "staff"
    COORDINATOR = "coordinator"


class Campaign(SQLModel, table=True):
    """One loaded campaign definition (a notice), for one year."""

    id: Optional[int] = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=100)
    name: str = Field(max_length=200)
    issuer: str = Field(default="", max_length=200)
    year: int
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    definition: dict[str, Any] = _json()
    loaded_at: datetime = _time()


class Deadline(SQLModel, table=True):
    """Something units owe by a time: one-off, or recurring weekly or monthly (one period each)."""

    __table_args__ = (sa.UniqueConstraint("campaign_id", "key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    key: str = Field(max_length=100)
    kind: str = Field(max_length=20)
    title: str = Field(max_length=200)
    collects: str = Field(max_length=100)
    rule: dict[str, Any] = _json()


class DeadlinePeriod(SQLModel, table=True):
    """One due time of a deadline: the only one of a one-off, or one week or month of a recurring one.

    ``period`` is the key :class:`Submission` uses ("" for one-offs, "2023-06-07" for a week,
    "2023-06" for a month); the rows are rewritten from the campaign file on every load.
    """

    __tablename__ = "deadline_period"
    __table_args__ = (sa.UniqueConstraint("deadline_id", "period"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    deadline_id: int = Field(foreign_key="deadline.id", index=True)
    period: str = Field(default="", max_length=20)
    due_at: datetime = _time()


class Unit(SQLModel, table=True):
    """A reporting unit (county, department, village, enterprise) of a campaign."""

    __table_args__ = (sa.UniqueConstraint("campaign_id", "name"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    name: str = Field(max_length=200)
    group: str = Field(default="", max_length=100)
    join_code: str = Field(unique=True, max_length=32)
    # From the units import; lets registration recognise the liaison the office already named.
    liaison_mobile: str = Field(default="", max_length=20)
    created_at: datetime = _time()


class Person(SQLModel, table=True):
    """Someone who writes to the account, known by OpenID; a liaison belongs to one unit."""

    id: Optional[int] = Field(default=None, primary_key=True)
    openid: str = Field(unique=True, max_length=64)
    name: str = Field(default="", max_length=100)
    role: Role = _enum(Role, Role.LIAISON)
    unit_id: Optional[int] = Field(default=None, foreign_key="unit.id", index=True)
    # The campaign a staff member or coordinator works on (None for liaisons: theirs is their unit's).
    campaign_id: Optional[int] = Field(default=None, foreign_key="campaign.id", index=True)
    following: bool = True
    unreachable_reason: Optional[str] = Field(default=None, max_length=200)
    # A user's own message opens WeChat's 48-hour customer-service window (wechat-rules A1).
    last_message_at: Optional[datetime] = _time(nullable=True)
    # A menu click or a follow opens only a 1-minute window of 3 messages (wechat-rules A1).
    last_interaction_at: Optional[datetime] = _time(nullable=True)
    reminder_opt_in_at: Optional[datetime] = _time(nullable=True)
    created_at: datetime = _time()


class Conversation(SQLModel, table=True):
    """Where a person is in a dialogue; written in the same transaction as their answer."""

    openid: str = Field(primary_key=True, max_length=64)
    flow: str = Field(default="", max_length=50)
    step: str = Field(default="", max_length=100)
    data: dict[str, Any] = _json()
    updated_at: datetime = _time()


class InboundStatus(str, enum.Enum):
    """How far the handling of an inbound message got."""

    CLAIMED = "claimed"
    ANSWERED = "answered"
    DEFERRED = "deferred"
    FAILED = "failed"
    # Stored but never handled: the sender was over MESSAGES_PER_MINUTE (bot/rate_limit.py).
    LIMITED = "limited"


class InboundMessage(SQLModel, table=True):
    """Every message WeChat delivered, raw, claimed once per (sender, message key) before handling."""

    __tablename__ = "inbound_message"
    __table_args__ = (sa.UniqueConstraint("openid", "dedupe_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    openid: str = Field(max_length=64, index=True)
    dedupe_key: str = Field(max_length=200)
    msg_type: str = Field(max_length=30)
    event: str = Field(default="", max_length=50)
    raw: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    received_at: datetime = _time()
    deliveries: int = 1
    status: InboundStatus = _enum(InboundStatus, InboundStatus.CLAIMED)
    reply: Optional[str] = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    answered_at: Optional[datetime] = _time(nullable=True)


class RateWindow(SQLModel, table=True):
    """How many messages a person sent in their current minute (bot/rate_limit.py): one row a
    person, started again by their first message after the minute passed."""

    __tablename__ = "rate_window"

    openid: str = Field(primary_key=True, max_length=64)
    started_at: datetime = _time()
    messages: int = 1


class Delivery(SQLModel, table=True):
    """One outbound message, unique by its key, with the channel used and WeChat's answer.

    A reminder's key is ``reminder:<person>:<deadline>:<period>:<stage>``; the row is written in the
    transaction that decides the send (status ``claimed``), marked ``sending`` just before the
    request leaves and given WeChat's answer after it. ``sending`` left behind by a crash is the
    in-doubt window described in docs/reminders.md.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=300)
    openid: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=50)
    channel: str = Field(default="", max_length=20)
    payload: dict[str, Any] = _json()
    status: str = Field(default="pending", max_length=20, index=True)
    errcode: Optional[int] = None
    errmsg: Optional[str] = Field(default=None, max_length=500)
    attempts: int = 0
    wechat_msg_id: Optional[str] = Field(default=None, max_length=64, index=True)
    # TEMPLATESENDJOBFINISH's Status, verbatim ("success", "failed:user block", ...).
    job_status: Optional[str] = Field(default=None, max_length=100)
    unit_id: Optional[int] = Field(default=None, foreign_key="unit.id", index=True)
    deadline_id: Optional[int] = Field(default=None, foreign_key="deadline.id", index=True)
    # The announcement (通知) this row delivers, for its delivery report.
    announcement_id: Optional[int] = Field(default=None, foreign_key="announcement.id", index=True)
    period: str = Field(default="", max_length=20)
    stage: str = Field(default="", max_length=30)
    # The local calendar day of the send, for "at most one reminder per unit per deadline per day".
    local_day: str = Field(default="", max_length=10)
    created_at: datetime = _time()
    sent_at: Optional[datetime] = _time(nullable=True)


class SchedulerLease(SQLModel, table=True):
    """Who runs the scheduler: one row per lock name, held until ``expires_at`` and renewed."""

    __tablename__ = "scheduler_lease"

    name: str = Field(primary_key=True, max_length=50)
    holder: str = Field(max_length=100)
    expires_at: datetime = _time()


class SchedulerJob(SQLModel, table=True):
    """APScheduler's persistent job store (``SQLAlchemyJobStore``'s own layout), made by migration."""

    __tablename__ = "apscheduler_jobs"

    id: str = Field(primary_key=True, max_length=191)
    next_run_time: Optional[float] = Field(default=None, sa_column=sa.Column(sa.Float(25), index=True, nullable=True))
    job_state: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))


class Submission(SQLModel, table=True):
    """What one unit gave for one deadline and period (e.g. the week of 2023-06-07)."""

    __table_args__ = (sa.UniqueConstraint("unit_id", "deadline_id", "period"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    deadline_id: int = Field(foreign_key="deadline.id", index=True)
    period: str = Field(default="", max_length=20)
    status: str = Field(default="draft", max_length=20)
    late: bool = False
    submitted_at: Optional[datetime] = _time(nullable=True)
    submitted_by: Optional[str] = Field(default=None, max_length=64)
    updated_at: datetime = _time()


class Answer(SQLModel, table=True):
    """The current value of one field of a submission."""

    # 合计 (bot/store/totals.py) reads the numbers of a field key from this index alone, in field
    # key order, without sorting; ``value`` is left out (free text: PostgreSQL limits an index
    # row to about 2,700 bytes).
    __table_args__ = (sa.UniqueConstraint("submission_id", "field_key"),
                      sa.Index("ix_answer_totals", "field_key", "submission_id", "number", "approximate"))

    id: Optional[int] = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    field_key: str = Field(max_length=100)
    value: Optional[str] = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    number: Optional[int] = Field(default=None, sa_column=sa.Column(sa.BigInteger, nullable=True))
    approximate: bool = False
    updated_by: str = Field(max_length=64)
    updated_at: datetime = _time()


class AnswerRevision(SQLModel, table=True):
    """One change to an answer: who, when, old and new value."""

    __tablename__ = "answer_revision"

    id: Optional[int] = Field(default=None, primary_key=True)
    answer_id: int = Field(foreign_key="answer.id", index=True)
    old_value: Optional[str] = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    new_value: Optional[str] = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    changed_by: str = Field(max_length=64)
    changed_at: datetime = _time()
    # Changed after the period's due time: accepted, but the office sees it came late.
    late: bool = False


class LiaisonReplacement(SQLModel, table=True):
    """Someone asking to become a unit's liaison, waiting for staff to approve or refuse: taking
    over a unit that has a liaison (``kind`` replacement), or registering for one picked from the
    list of a campaign with open registration (``kind`` registration).

    The requester's liaison-table answers (``answers``: answer key → [text, number, approximate]),
    name and reminders opt-in wait here and are filed when staff approve.
    """

    __tablename__ = "liaison_replacement"

    id: Optional[int] = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    openid: str = Field(max_length=64, index=True)
    # "" when the unit had no liaison at the time of the request.
    holder_openid: str = Field(max_length=64)
    kind: str = Field(default="replacement", max_length=20)
    name: str = Field(default="", max_length=100)
    reminders: bool = False
    answers: dict[str, Any] = _json()
    status: str = Field(default="pending", max_length=20, index=True)
    requested_at: datetime = _time()
    decided_at: Optional[datetime] = _time(nullable=True)
    decided_by: Optional[str] = Field(default=None, max_length=64)


class MediaFile(SQLModel, table=True):
    """A picture, voice or video a user sent, fetched from WeChat before it expires (3 days)."""

    __tablename__ = "media_file"

    id: Optional[int] = Field(default=None, primary_key=True)
    media_id: str = Field(unique=True, max_length=200)
    openid: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=20)
    inbound_message_id: Optional[int] = Field(default=None, foreign_key="inbound_message.id")
    status: str = Field(default="pending", max_length=20, index=True)
    path: Optional[str] = Field(default=None, max_length=500)
    content_type: Optional[str] = Field(default=None, max_length=100)
    size: Optional[int] = None
    sha256: Optional[str] = Field(default=None, max_length=64)
    attempts: int = 0
    last_error: Optional[str] = Field(default=None, max_length=500)
    # When a fetcher may (next) take the row: after a failure the back-off, while one fetches its
    # lease; a worker that died mid-fetch leaves the row to be taken again when the lease ends.
    next_attempt_at: Optional[datetime] = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True, index=True))
    received_at: datetime = _time()
    stored_at: Optional[datetime] = _time(nullable=True)


class ReportItem(SQLModel, table=True):
    """One thing a liaison sent into a report (周报 or 要情): a text, picture, voice note, video or link.

    ``featured`` marks items sent as 要情 (an important or featured activity, reported the same day).
    """

    __tablename__ = "report_item"

    id: Optional[int] = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    openid: str = Field(max_length=64)
    kind: str = Field(max_length=20)
    text: Optional[str] = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    url: Optional[str] = Field(default=None, max_length=1000)
    media_file_id: Optional[int] = Field(default=None, foreign_key="media_file.id")
    featured: bool = False
    created_at: datetime = _time()


class AccessToken(SQLModel, table=True):
    """The one access token all processes share (wechat-rules A6), keyed by AppID."""

    __tablename__ = "access_token"

    app_id: str = Field(primary_key=True, max_length=64)
    token: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    expires_at: datetime = _time()
    fetched_at: datetime = _time()


class Invitation(SQLModel, table=True):
    """A one-time code that makes whoever sends it at 登记 staff or a coordinator of one campaign
    (``safetybot people invite``); refused once used or after ``expires_at``."""

    id: Optional[int] = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=32)
    role: Role = _enum(Role, Role.STAFF)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    created_by: str = Field(default="", max_length=100)
    created_at: datetime = _time()
    expires_at: datetime = _time()
    used_by: Optional[str] = Field(default=None, max_length=64)
    used_at: Optional[datetime] = _time(nullable=True)


class AnnouncementStatus(str, enum.Enum):
    """Where an announcement's fan-out stands."""

    QUEUED = "queued"  # confirmed by its sender; the worker has not finished deciding its recipients
    SENDING = "sending"  # every recipient has a delivery row; claimed rows are being sent
    DONE = "done"  # nothing left claimed or sending; the report went to the sender


class Announcement(SQLModel, table=True):
    """A notice (通知) staff send to all or some liaisons of a campaign, shown literally.

    ``audience`` says who: ``{"kind": "all"}``, ``{"kind": "owing", "deadline": KEY, "period": P}``,
    ``{"kind": "group", "group": NAME}`` or ``{"kind": "units", "unit_ids": [..]}``. Each recipient
    is a :class:`Delivery` row with ``announcement_id`` set; ``report`` holds the final counts.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    sender_openid: str = Field(max_length=64, index=True)
    # The name the template message and the report show ("命令行" when sent from the command line).
    sender_name: str = Field(default="", max_length=100)
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # A picture the sender sent with it: WeChat's media id (usable for 3 days) and our stored copy.
    image_media_id: Optional[str] = Field(default=None, max_length=200)
    audience: dict[str, Any] = _json()
    status: AnnouncementStatus = _enum(AnnouncementStatus, AnnouncementStatus.QUEUED)
    recipients: int = 0
    report: dict[str, Any] = _json()
    created_at: datetime = _time()
    finished_at: Optional[datetime] = _time(nullable=True)
