"""Whom WeChat lets the bot reach, and how: the channel rules (wechat-rules A1, A2, R2-R5) applied
to what is stored about a person.

Two readers share these rules so that they agree: the send path decides each delivery with them
(:func:`bot.outbound.delivery.claim_many`), and the preview of an announcement counts its
recipients by channel with them (:meth:`bot.store.facts.DatabaseFacts.audience`) before anything
is sent. Storage may not import the outbound side, so the rules live here, beside the rows they read.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bot.store.models import Delivery, Person, table_of

CUSTOMER_SERVICE_WINDOW = timedelta(hours=48)
CUSTOMER_SERVICE_QUOTA = 5
# WeChat's answers that say the person cannot be reached (wechat-rules A2, R3).
NOT_FOLLOWING = frozenset({43004, 40003})  # unfollowed / OpenID unknown to the account
REFUSED = frozenset({43101})  # the person turned the account's messages off
# Delivery statuses that stand for a message decided or gone (bot.outbound.delivery.Status).
ACTIVE = ("claimed", "sending", "sent")


class Channel(str, enum.Enum):
    """How a notice travels."""

    CUSTOMER_SERVICE = "customer_service"
    TEMPLATE = "template"


class HeldReason(str, enum.Enum):
    """Why no channel reaches a person."""

    UNREACHABLE = "unreachable"
    NO_CONSENT = "no_consent"
    NO_TEMPLATE = "no_template"


@dataclass(frozen=True)
class Reach:
    """What is known about reaching one person at the moment of deciding."""

    openid: str
    following: bool
    unreachable_reason: str | None
    last_message_at: datetime | None
    opted_in_at: datetime | None
    customer_service_sent: int = 0


def window_open(reach: Reach, now: datetime) -> bool:
    """Whether a customer-service message may still reach the person at ``now``."""
    return (
        reach.last_message_at is not None
        and now - reach.last_message_at < CUSTOMER_SERVICE_WINDOW
        and reach.customer_service_sent < CUSTOMER_SERVICE_QUOTA
    )


def choose_channel(reach: Reach, now: datetime, template_ready: bool) -> Channel | HeldReason:
    """Customer service while the person's window is open and not used up, else a template message
    (when the account has one for this notice and the person consented), else why neither."""
    if not reach.following or reach.unreachable_reason:
        return HeldReason.UNREACHABLE
    if window_open(reach, now):
        return Channel.CUSTOMER_SERVICE
    return template_or_reason(reach, template_ready)


def template_or_reason(reach: Reach, template_ready: bool) -> Channel | HeldReason:
    """The template channel, or why it may not be used for this person."""
    if not template_ready:
        return HeldReason.NO_TEMPLATE
    if reach.opted_in_at is None:
        return HeldReason.NO_CONSENT
    return Channel.TEMPLATE


def reaches(conn: sa.Connection, person_ids: list[int]) -> dict[int, Reach]:
    """Each person's reach as stored now, with the customer-service messages already spent in
    their current window (read inside the deciding transaction)."""
    people, table = table_of(Person), table_of(Delivery)
    rows = conn.execute(sa.select(people).where(people.c.id.in_(person_ids))).mappings().all()
    spent: dict[int, int] = dict(conn.execute(
        sa.select(people.c.id, sa.func.count(table.c.id)).join(table, table.c.openid == people.c.openid).where(
            people.c.id.in_(person_ids), table.c.channel == Channel.CUSTOMER_SERVICE.value,
            table.c.status.in_(ACTIVE), table.c.created_at >= people.c.last_message_at)
        .group_by(people.c.id)).all())
    return {row["id"]: Reach(row["openid"], row["following"], row["unreachable_reason"], row["last_message_at"],
                             row["reminder_opt_in_at"], int(spent.get(row["id"], 0))) for row in rows}


def reach_of(conn: sa.Connection, person_id: int) -> Reach:
    """One person's reach as stored now."""
    return reaches(conn, [person_id])[person_id]
