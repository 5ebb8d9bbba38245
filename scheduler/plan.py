"""The reminder plan: every deadline of every loaded campaign turned into the moments to remind.

Each stored due time (a :class:`~bot.store.models.DeadlinePeriod`) gets the reminders of its deadline's
schedule (offsets before it, a notice at it, overdue follow-ups) and a coordinator digest at it.
Quiet hours move a reminder to the next allowed minute, but never past the deadline: a reminder
that would land after it is brought forward to the last minute before the quiet hours began.
WeChat's rules ask for no more than one reminder per unit per deadline per day (wechat-rules R5),
so of several reminders falling on the same local day only the first is kept.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select

from bot.campaigns import ReminderKind, definition_of
from bot.store.engine import session
from bot.store.models import Campaign, Deadline, DeadlinePeriod


class Stage(str, enum.Enum):
    """What a planned moment does: remind the units that still owe, or report to coordinators."""

    BEFORE = "before"
    DUE = "due"
    OVERDUE = "overdue"
    DIGEST = "digest"


@dataclass(frozen=True)
class QuietHours:
    """The local hours in which no reminder goes out; ``start`` > ``end`` spans midnight."""

    start: time = time(22, 0)
    end: time = time(8, 0)

    @classmethod
    def parse(cls, text: str) -> "QuietHours":
        """``"22:00-08:00"`` (or ``"off"``, which is an empty span)."""
        if text.strip().lower() == "off":
            return cls(time(0, 0), time(0, 0))
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
        if not match:
            raise ValueError(f"quiet hours must look like 22:00-08:00, not {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        return cls(time(h1, m1), time(h2, m2))

    def contains(self, local: datetime) -> bool:
        """Whether the local time ``local`` falls in the quiet hours."""
        moment = local.time()
        if self.start == self.end:
            return False
        if self.start > self.end:
            return moment >= self.start or moment < self.end
        return self.start <= moment < self.end

    def _began(self, local: datetime) -> date:
        # Past midnight, the quiet hours began the evening before.
        if self.start > self.end and local.time() < self.end:
            return local.date() - timedelta(days=1)
        return local.date()

    def next_allowed(self, local: datetime) -> datetime:
        """The first minute after the quiet hours that contain ``local``."""
        began = self._began(local)
        end_day = began + timedelta(days=1) if self.start > self.end else began
        return datetime.combine(end_day, self.end, local.tzinfo)

    def last_allowed_before(self, local: datetime) -> datetime:
        """The last minute before the quiet hours that contain ``local`` began."""
        return datetime.combine(self._began(local), self.start, local.tzinfo) - timedelta(minutes=1)

    def place(self, at: datetime, due_at: datetime, may_pass_deadline: bool, tz: ZoneInfo) -> datetime:
        """Where a reminder meant for ``at`` goes: ``at`` itself outside the quiet hours, otherwise
        the next allowed minute, or the last one before them when that would pass ``due_at``."""
        local = at.astimezone(tz)
        if not self.contains(local):
            return at
        moved = self.next_allowed(local)
        if may_pass_deadline or moved <= due_at:
            return moved
        return self.last_allowed_before(local)


@dataclass(frozen=True)
class PlannedReminder:
    """One planned moment for one due time of one deadline."""

    campaign_id: int
    campaign_slug: str
    campaign_name: str
    deadline_id: int
    deadline_key: str
    deadline_title: str
    period: str
    due_at: datetime
    stage: Stage
    label: str
    offset: timedelta
    nominal_at: datetime
    at: datetime
    timezone: ZoneInfo
    # The notice's e-mail address ("" if it gives none) when the deadline collects documents only,
    # which units send by e-mail; None for what is sent here.
    by_email: str | None = None

    @property
    def reminder_kind(self) -> ReminderKind | None:
        """The reminder kind whose message template this moment uses (none for digests)."""
        return None if self.stage is Stage.DIGEST else ReminderKind(self.stage.value)

    @property
    def local_at(self) -> datetime:
        """``at`` in the campaign's time zone."""
        return self.at.astimezone(self.timezone)


def offset_label(offset: timedelta) -> str:
    """A short name of an offset for stage keys and tables: ``3d``, ``2h``, ``30m``."""
    seconds = abs(int(offset.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def stage_label(stage: Stage, offset: timedelta) -> str:
    """The stage's name in delivery keys: ``before-3d``, ``due``, ``overdue-1d``, ``digest``."""
    if stage in (Stage.BEFORE, Stage.OVERDUE):
        return f"{stage.value}-{offset_label(offset)}"
    return stage.value  # type: ignore[no-any-return]  # mypy types a narrowed enum member's value as Any


def _moments(rule: dict, due_at: datetime) -> list[tuple[Stage, timedelta]]:
    schedule = rule.get("reminders", {})
    moments = [(Stage.BEFORE, -timedelta(seconds=s)) for s in schedule.get("before", [])]
    if schedule.get("at_due", True):
        moments.append((Stage.DUE, timedelta(0)))
    moments += [(Stage.OVERDUE, timedelta(seconds=s)) for s in schedule.get("overdue", [])]
    return moments


def _for_period(campaign: Campaign, deadline: Deadline, period: DeadlinePeriod, quiet: QuietHours,
                by_email: str | None) -> list[PlannedReminder]:
    """The period's moments; for documents sent by e-mail (``by_email``) only those up to the due
    time and no digest: the bot cannot know who sent them, so it never says who is late."""
    assert campaign.id is not None and deadline.id is not None
    tz = ZoneInfo(campaign.timezone)
    planned = []
    moments = _moments(deadline.rule, period.due_at) + [(Stage.DIGEST, timedelta(0))]
    if by_email is not None:
        moments = [(stage, offset) for stage, offset in moments if stage in (Stage.BEFORE, Stage.DUE)]
    for stage, offset in moments:
        nominal = period.due_at + offset
        # Overdue follow-ups and digests may go later; reminders before the deadline may not.
        at = quiet.place(nominal, period.due_at, stage in (Stage.OVERDUE, Stage.DIGEST), tz)
        planned.append(PlannedReminder(
            campaign.id, campaign.slug, campaign.name, deadline.id, deadline.key, deadline.title, period.period,
            period.due_at, stage, stage_label(stage, offset), offset, nominal, at, tz, by_email,
        ))
    return planned


def one_a_day(planned: Iterable[PlannedReminder]) -> list[PlannedReminder]:
    """Keep, per deadline and local day, only the first reminder (digests are not reminders)."""
    kept, seen = [], set()
    for item in sorted(planned, key=lambda p: (p.at, p.nominal_at)):
        if item.stage is not Stage.DIGEST:
            day = (item.deadline_id, item.local_at.date())
            if day in seen:
                continue
            seen.add(day)
        kept.append(item)
    return kept


def plan(engine: sa.Engine, quiet: QuietHours = QuietHours(), campaign_slug: str | None = None) -> list[PlannedReminder]:
    """Every planned moment of the loaded campaigns (or of ``campaign_slug``), earliest first."""
    with session(engine) as db:
        query = select(Campaign)
        if campaign_slug is not None:
            query = query.where(Campaign.slug == campaign_slug)
        planned: list[PlannedReminder] = []
        for campaign in db.exec(query).all():
            definition = definition_of(campaign)
            by_email = {form.key for form in definition.forms if form.documents_only}
            rows = db.exec(
                select(Deadline, DeadlinePeriod)
                .join(DeadlinePeriod, col(DeadlinePeriod.deadline_id) == col(Deadline.id))
                .where(Deadline.campaign_id == campaign.id)
            ).all()
            for deadline, period in rows:
                planned += _for_period(campaign, deadline, period, quiet,
                                       definition.contact.email if deadline.collects in by_email else None)
    return one_a_day(planned)


def upcoming(planned: Iterable[PlannedReminder], now: datetime) -> list[PlannedReminder]:
    """The planned moments not yet passed at ``now``."""
    return [p for p in planned if p.at >= now]
