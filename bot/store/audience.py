"""Announcements (通知) in storage: who an audience is, how each recipient would be reached now,
and how the deliveries of an announcement stand.

The same functions serve the preview a staff member sees before ``确认``
(:meth:`bot.store.facts.DatabaseFacts.audience`), the fan-out that claims one delivery per
recipient (:mod:`bot.outbound.announcements`), the report the sender gets when it ends and
``通知 状态`` (:meth:`bot.store.facts.DatabaseFacts.announcements`), so all of them count alike.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

import sqlalchemy as sa

from bot.campaigns.format import CampaignDefinition
from bot.store.models import Announcement, Deadline, Delivery, Person, Role, Submission, Unit, table_of
from bot.store.reach import NOT_FOLLOWING, REFUSED, Channel, HeldReason, choose_channel, reaches
from handlers.ports import Audience, AudienceFacts, DeliveryCounts

ANNOUNCEMENT = "announcement"  # the delivery kind of an announcement's rows
TITLE_LENGTH = 20
# Reading reaches in slices keeps each statement's parameters well under SQLite's limit.
_SLICE = 500
_UNIT = table_of(Unit)
_PERSON = table_of(Person)
_SUBMISSION = table_of(Submission)
_DEADLINE = table_of(Deadline)
_DELIVERY = table_of(Delivery)
_ANNOUNCEMENT = table_of(Announcement)


@dataclass(frozen=True)
class Recipient:
    """One liaison an announcement goes to."""

    person_id: int
    openid: str
    unit_id: int


def notice_template_ready(definition: CampaignDefinition, template_messages: bool) -> bool:
    """Whether announcements of this campaign may go by template message: the account kind has
    template messages and the campaign names a template for them (``[message_templates.notice]``)."""
    template = definition.notice_template
    return template_messages and template is not None and bool(template.template_id)


def title_of(text: str) -> str:
    """An announcement's title: its first non-empty line, cut to 20 characters with "…"."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= TITLE_LENGTH else line[:TITLE_LENGTH - 1] + "…"


def _units(campaign_id: int, audience: Audience) -> sa.Select[tuple[int]]:
    """The ids of the campaign's units ``audience`` names."""
    query = sa.select(_UNIT.c.id).where(_UNIT.c.campaign_id == campaign_id)
    if audience.kind == "group":
        return query.where(_UNIT.c.group == audience.group)
    if audience.kind == "units":
        return query.where(_UNIT.c.id.in_(audience.unit_ids))
    if audience.kind == "owing":
        submitted = sa.select(_SUBMISSION.c.id).join(_DEADLINE, _DEADLINE.c.id == _SUBMISSION.c.deadline_id).where(
            _SUBMISSION.c.unit_id == _UNIT.c.id, _DEADLINE.c.campaign_id == campaign_id,
            _DEADLINE.c.key == audience.deadline, _SUBMISSION.c.period == audience.period,
            _SUBMISSION.c.status == "submitted")
        return query.where(~submitted.exists())
    return query


def recipients(conn: sa.Connection, campaign_id: int, audience: Audience) -> tuple[list[Recipient], int, int]:
    """The liaisons of the units ``audience`` names (by person id), how many units it names, and
    how many of those have no liaison registered."""
    units = _units(campaign_id, audience).subquery()
    people = conn.execute(sa.select(_PERSON.c.id, _PERSON.c.openid, _PERSON.c.unit_id).where(
        _PERSON.c.role == Role.LIAISON.value, _PERSON.c.unit_id.in_(sa.select(units.c.id)))
        .order_by(_PERSON.c.id)).all()
    named = conn.execute(sa.select(sa.func.count()).select_from(units)).scalar_one()
    covered = {row.unit_id for row in people}
    return [Recipient(r.id, r.openid, r.unit_id) for r in people], int(named), int(named) - len(covered)


def channels(conn: sa.Connection, people: Iterable[int], now: datetime,
             template_ready: bool) -> Counter[Channel | HeldReason]:
    """How many of ``people`` each channel (or held reason) would take at ``now``."""
    ids = list(people)
    counted: Counter[Channel | HeldReason] = Counter()
    for start in range(0, len(ids), _SLICE):
        known = reaches(conn, ids[start:start + _SLICE])
        counted.update(choose_channel(reach, now, template_ready) for reach in known.values())
    return counted


def audience_facts(conn: sa.Connection, definition: CampaignDefinition, campaign_id: int, audience: Audience,
                   now: datetime, template_messages: bool) -> AudienceFacts:
    """The preview's counts: :class:`~handlers.ports.AudienceFacts`."""
    found, units, without_liaison = recipients(conn, campaign_id, audience)
    counted = channels(conn, (r.person_id for r in found), now, notice_template_ready(definition, template_messages))
    return AudienceFacts(
        recipients=len(found), customer_service=counted[Channel.CUSTOMER_SERVICE], template=counted[Channel.TEMPLATE],
        held=counted[HeldReason.NO_TEMPLATE] + counted[HeldReason.NO_CONSENT],
        unreachable=counted[HeldReason.UNREACHABLE], units=units, without_liaison=without_liaison)


def counts(conn: sa.Connection, announcement_ids: list[int]) -> dict[int, DeliveryCounts]:
    """Each announcement's delivery counts, read from its rows now (one grouped query)."""
    job_failed = sa.func.coalesce(_DELIVERY.c.job_status, "").like("failed%").label("job_failed")
    delivered = (sa.func.coalesce(_DELIVERY.c.job_status, "") == "success").label("delivered")
    refused = sa.func.coalesce(_DELIVERY.c.errcode, 0).in_(NOT_FOLLOWING | REFUSED).label("refused")
    rows = conn.execute(sa.select(
        _DELIVERY.c.announcement_id, _DELIVERY.c.status, _DELIVERY.c.channel, _DELIVERY.c.errmsg, job_failed,
        delivered, refused, sa.func.count().label("n"))
        .where(_DELIVERY.c.announcement_id.in_(announcement_ids), _DELIVERY.c.kind == ANNOUNCEMENT)
        .group_by(_DELIVERY.c.announcement_id, _DELIVERY.c.status, _DELIVERY.c.channel, _DELIVERY.c.errmsg,
                  job_failed, delivered, refused)).all()
    tallies: dict[int, Counter[str]] = {i: Counter() for i in announcement_ids}
    for row in rows:
        tally = tallies[row.announcement_id]
        if row.status == "sent" and not row.job_failed:
            tally[f"sent:{row.channel}"] += row.n
            tally["delivered"] += row.n if row.delivered else 0
        elif row.status == "held":
            tally["unreachable" if row.errmsg == HeldReason.UNREACHABLE.value else "held"] += row.n
        elif row.status in ("claimed", "sending"):
            tally["pending"] += row.n
        elif row.status == "failed" and row.refused:
            tally["unreachable"] += row.n
        elif row.status != "skipped":
            tally["failed"] += row.n
    return {i: DeliveryCounts({c.value: t[f"sent:{c.value}"] for c in Channel}, t["delivered"], t["held"], t["failed"],
                              t["unreachable"], t["pending"]) for i, t in tallies.items()}


def latest(conn: sa.Connection, campaign_id: int, limit: int) -> list[sa.Row[tuple[object, ...]]]:
    """The campaign's latest announcements, newest first."""
    return list(conn.execute(sa.select(_ANNOUNCEMENT).where(_ANNOUNCEMENT.c.campaign_id == campaign_id)
                             .order_by(_ANNOUNCEMENT.c.id.desc()).limit(limit)).all())
