"""What the dashboard's pages show, read from the database: the campaigns a session sees, a
campaign's progress per deadline period, its totals (as 合计 sums them), its units with their
status, liaison, last activity and reminders, and one unit's answers and reports.

Each page costs a few set-wise queries whatever the number of units, as 进度 and 导出 do: the
progress is :meth:`bot.store.facts.DatabaseFacts.progress`'s, the totals
:func:`bot.admin.campaign_totals`' (the API's), the units' rows :func:`bot.store.exports.read_export`'s.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bot.admin import campaign_overview, campaign_totals
from bot.store.exports import read_export
from bot.store.facts import DatabaseFacts
from bot.store.models import (
    Answer, Campaign, Deadline, MediaFile, Person, ReportItem, Role, Submission, Unit, table_of,
)
from handlers.ports import AnnouncementFacts, DuePeriod, UnitContact
from handlers.progress import collected
from handlers.totals import heading, statistics_form, summed_period

_CAMPAIGN, _UNIT, _PERSON, _DEADLINE = table_of(Campaign), table_of(Unit), table_of(Person), table_of(Deadline)
_SUBMISSION, _ANSWER, _ITEM, _MEDIA = table_of(Submission), table_of(Answer), table_of(ReportItem), table_of(MediaFile)
# Names of missing units shown per period before "等 K 个" (as 进度 shows them).
SHOWN_MISSING = 8
# The unit table's orders (?sort=…): a key of a row, and whether the largest comes first.
SORTS = {"name": False, "status": False, "liaison": False, "activity": True, "reminders": True}
# The order of statuses when sorting by status: who still owes comes first.
STATUS_ORDER = {"owing": 0, "draft": 1, "late": 2, "submitted": 3}
ANNOUNCEMENTS_SHOWN = 10


@dataclass(frozen=True)
class PeriodShown:
    """One deadline period: of ``units`` units ``submitted`` sent it, ``late`` of them after
    ``due_at`` (campaign time), named in ``late_units``; ``missing`` the first missing units' names."""

    title: str
    period: str
    due_at: datetime
    passed: bool
    units: int
    submitted: int
    late: int
    late_units: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def percent(self) -> int:
        """Submitted units in whole percent of all units (0 without units)."""
        return round(100 * self.submitted / self.units) if self.units else 0


@dataclass(frozen=True)
class UnitLine:
    """A row of the units table: ``status`` of the summed statistics period (owing, draft, late,
    submitted); ``last_activity`` the latest change to its submissions or message of its liaison
    (campaign time), None if neither; ``reminders`` sent about the summed period."""

    id: int
    name: str
    group: str
    liaison: str
    status: str
    last_activity: datetime | None
    reminders: int

    def key(self, sort: str) -> Any:
        """The value this row is sorted by for ``sort`` (a key of :data:`SORTS`), name breaking ties."""
        if sort == "status":
            return (STATUS_ORDER[self.status], self.name)
        if sort == "activity":
            return (self.last_activity is not None, self.last_activity or datetime.min, self.name)
        if sort == "reminders":
            return (self.reminders, self.name)
        if sort == "liaison":
            return (self.liaison == "", self.liaison, self.name)
        return (self.name,)


@dataclass(frozen=True)
class CampaignShown:
    """A campaign's page: ``totals`` as :func:`bot.admin.campaign_totals` gives them, ``summed`` the
    title and period of the statistics deadline the units' status is about ("" without one)."""

    id: int
    key: str
    title: str
    issuer: str
    periods: list[PeriodShown]
    totals: dict[str, Any]
    summed: str
    units: list[UnitLine]
    announcements: list[AnnouncementFacts]


@dataclass(frozen=True)
class AnswerShown:
    """One field of a unit's statistics table: its item's heading, label, the answer as typed ("" blank)."""

    heading: str
    label: str
    unit: str
    text: str


@dataclass(frozen=True)
class ItemShown:
    """One report item; ``picture`` the media file id of a stored picture (its thumbnail), else None."""

    kind: str
    text: str
    url: str
    featured: bool
    media_status: str | None
    picture: int | None


@dataclass(frozen=True)
class ReportShown:
    """One submission of the unit that holds report items (a week's 周报, 要情)."""

    title: str
    period: str
    status: str
    items: list[ItemShown]


@dataclass(frozen=True)
class UnitShown:
    """A unit's page: its liaison, its statistics table's answers (the summed period) and its reports."""

    contact: UnitContact
    summed: str
    status: str
    answers: list[AnswerShown]
    reports: list[ReportShown]


@dataclass(frozen=True)
class Picture:
    """A stored picture and the campaign whose report it is in; ``path`` relative to MEDIA_DIR."""

    campaign_id: int
    path: str
    content_type: str


def campaigns_seen(conn: sa.Connection, campaign_id: int | None) -> list[dict[str, Any]]:
    """The campaigns a session sees (every one for None), as :func:`bot.admin.campaign_overview`
    lists them, each with its ``id`` too."""
    ids = {r.slug: r.id for r in conn.execute(sa.select(_CAMPAIGN.c.slug, _CAMPAIGN.c.id))}
    return [{**c, "id": ids[c["key"]]} for c in campaign_overview(conn)
            if campaign_id is None or ids[c["key"]] == campaign_id]


def campaign_id_of(conn: sa.Connection, key: str) -> int | None:
    """The id of the campaign stored as ``key``, None if there is none."""
    found = conn.execute(sa.select(_CAMPAIGN.c.id).where(_CAMPAIGN.c.slug == key)).scalar()
    return None if found is None else int(found)


def _late_units(conn: sa.Connection, campaign_id: int) -> dict[tuple[int, str], list[str]]:
    rows = conn.execute(
        sa.select(_SUBMISSION.c.deadline_id, _SUBMISSION.c.period, _UNIT.c.name)
        .join(_UNIT, _UNIT.c.id == _SUBMISSION.c.unit_id)
        .where(_UNIT.c.campaign_id == campaign_id, _SUBMISSION.c.status == "submitted", _SUBMISSION.c.late)
        .order_by(_UNIT.c.name))
    late: dict[tuple[int, str], list[str]] = defaultdict(list)
    for r in rows:
        late[(r.deadline_id, r.period)].append(r.name)
    return late


def _last_activity(conn: sa.Connection, campaign_id: int) -> dict[int, datetime]:
    """Per unit, the latest change to any of its submissions or message of its liaisons."""
    latest: dict[int, datetime] = {}
    changed = (sa.select(_SUBMISSION.c.unit_id, sa.func.max(_SUBMISSION.c.updated_at).label("at"))
               .join(_UNIT, _UNIT.c.id == _SUBMISSION.c.unit_id).where(_UNIT.c.campaign_id == campaign_id)
               .group_by(_SUBMISSION.c.unit_id))
    wrote = (sa.select(_PERSON.c.unit_id, sa.func.max(_PERSON.c.last_message_at).label("at"))
             .join(_UNIT, _UNIT.c.id == _PERSON.c.unit_id)
             .where(_UNIT.c.campaign_id == campaign_id, _PERSON.c.role == Role.LIAISON.value)
             .group_by(_PERSON.c.unit_id))
    for statement in (changed, wrote):
        for r in conn.execute(statement):
            if r.at is not None and (r.unit_id not in latest or r.at > latest[r.unit_id]):
                latest[r.unit_id] = r.at
    return latest


def _due_so_far(periods: list[DuePeriod], now: datetime) -> list[DuePeriod]:
    """The periods due by ``now`` and each deadline's next one, earliest first: a monthly deadline's
    later months would only fill a phone's screen with 0/N."""
    upcoming: set[int] = set()
    kept = []
    for period in periods:
        if period.due_at >= now:
            if period.deadline_id in upcoming:
                continue
            upcoming.add(period.deadline_id)
        kept.append(period)
    return kept


def campaign_shown(conn: sa.Connection, campaign_id: int, now: datetime, sort: str) -> CampaignShown:
    """Everything the campaign's page shows at ``now`` (the progress of :func:`_due_so_far`'s
    periods), its units ordered by ``sort`` (a key of
    :data:`SORTS`; another falls back to the name)."""
    facts = DatabaseFacts(conn)
    export = read_export(conn, campaign_id, now)
    zone = export.definition.timezone
    periods = _due_so_far(collected(export.definition, facts.periods(campaign_id)), now)
    counted = facts.progress(campaign_id, [(p.deadline_id, p.period) for p in periods], SHOWN_MISSING)
    late = _late_units(conn, campaign_id)
    shown = [PeriodShown(p.title, p.period, p.due_at.astimezone(zone), p.due_at < now, c.units, c.submitted, c.late,
                         tuple(late.get((p.deadline_id, p.period), ())), c.missing) for p, c in zip(periods, counted)]
    activity = _last_activity(conn, campaign_id)
    units = []
    for u in export.units:
        filled = export.statistics.get(u.id)
        status = ("owing" if filled is None else "draft" if filled.status != "submitted"
                  else "late" if filled.late else "submitted")
        at = activity.get(u.id)
        units.append(UnitLine(u.id, u.name, u.group, u.liaison, status, at.astimezone(zone) if at else None,
                              export.reminders.get(u.id, 0)))
    sort = sort if sort in SORTS else "name"
    units.sort(key=lambda line: line.key(sort), reverse=SORTS[sort])
    summed = f"{export.period.title}（{export.period.period}）" if export.period and export.period.period else (
        export.period.title if export.period else "")
    slug = export.slug
    return CampaignShown(campaign_id, slug, export.definition.name, export.definition.issuer, shown,
                         campaign_totals(conn, campaign_id, now), summed, units,
                         facts.announcements(campaign_id, ANNOUNCEMENTS_SHOWN))


def _reports(conn: sa.Connection, unit_id: int, titles: dict[int, str]) -> list[ReportShown]:
    rows = conn.execute(
        sa.select(_SUBMISSION.c.id, _SUBMISSION.c.deadline_id, _SUBMISSION.c.period, _SUBMISSION.c.status,
                  _ITEM.c.kind, _ITEM.c.text, _ITEM.c.url, _ITEM.c.featured, _ITEM.c.media_file_id,
                  _MEDIA.c.status.label("media_status"), _MEDIA.c.content_type)
        .join(_ITEM, _ITEM.c.submission_id == _SUBMISSION.c.id)
        .outerjoin(_MEDIA, _MEDIA.c.id == _ITEM.c.media_file_id)
        .where(_SUBMISSION.c.unit_id == unit_id)
        .order_by(_SUBMISSION.c.period, _SUBMISSION.c.id, _ITEM.c.id))
    reports: dict[int, ReportShown] = {}
    for r in rows:
        report = reports.setdefault(r.id, ReportShown(titles.get(r.deadline_id, ""), r.period, r.status, []))
        picture = (r.media_file_id if r.media_status == "stored" and (r.content_type or "").startswith("image/")
                   else None)
        report.items.append(ItemShown(r.kind, r.text or "", r.url or "", bool(r.featured), r.media_status, picture))
    return list(reports.values())


def unit_shown(conn: sa.Connection, campaign_id: int, unit_id: int, now: datetime) -> UnitShown:
    """A unit's page at ``now``; LookupError if the campaign has no such unit."""
    facts = DatabaseFacts(conn)
    contact = facts.unit_contact(campaign_id, unit_id)
    definition = facts.definition(campaign_id)
    form = statistics_form(definition)
    period = summed_period(definition, facts.periods(campaign_id), now)
    answers: list[AnswerShown] = []
    status = "owing"
    if form is not None and period is not None:
        submission = conn.execute(sa.select(_SUBMISSION.c.id, _SUBMISSION.c.status, _SUBMISSION.c.late).where(
            _SUBMISSION.c.unit_id == unit_id, _SUBMISSION.c.deadline_id == period.deadline_id,
            _SUBMISSION.c.period == period.period)).first()
        given: dict[str, str] = {}
        if submission is not None:
            status = ("draft" if submission.status != "submitted" else "late" if submission.late else "submitted")
            given = {r.field_key: r.value or "" for r in conn.execute(
                sa.select(_ANSWER.c.field_key, _ANSWER.c.value).where(_ANSWER.c.submission_id == submission.id))}
        answers = [AnswerShown(heading(item), f.label or f.prompt, f.unit, given.get(f.answer_key, ""))
                   for item in form.items for f in item.fields]
    titles = {r.id: r.title for r in conn.execute(
        sa.select(_DEADLINE.c.id, _DEADLINE.c.title).where(_DEADLINE.c.campaign_id == campaign_id))}
    summed = f"{period.title}（{period.period}）" if period and period.period else (period.title if period else "")
    return UnitShown(contact, summed, status, answers, _reports(conn, unit_id, titles))


def picture(conn: sa.Connection, media_file_id: int) -> Picture | None:
    """The stored picture ``media_file_id`` of a report item, with its campaign; None when there is
    no such stored picture in any report."""
    row = conn.execute(
        sa.select(_UNIT.c.campaign_id, _MEDIA.c.path, _MEDIA.c.content_type)
        .select_from(_MEDIA).join(_ITEM, _ITEM.c.media_file_id == _MEDIA.c.id)
        .join(_SUBMISSION, _SUBMISSION.c.id == _ITEM.c.submission_id).join(_UNIT, _UNIT.c.id == _SUBMISSION.c.unit_id)
        .where(_MEDIA.c.id == media_file_id, _MEDIA.c.status == "stored")).first()
    if row is None or row.path is None or not (row.content_type or "").startswith("image/"):
        return None
    return Picture(int(row.campaign_id), row.path, row.content_type)
