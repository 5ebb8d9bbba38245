"""Who the people are and what they may do, for ``safetybot people``: the listing, a role granted or
taken back, one-time invitations.

A role change is made under the person's lock and leaves their open dialogue as it is: a dialogue
begun under the old role cannot finish under it, since its next message ends it with a reply
naming the change (``handlers/roles.py``), and a message being decided meanwhile is decided again
on the new facts (``bot/handling.py`` compares them before writing).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot.campaigns.units import JOIN_CODE_ALPHABET
from bot.store.facts import DatabaseFacts
from bot.store.models import Campaign, Invitation, Person, Role, Unit, table_of

_PERSON = table_of(Person)
_UNIT = table_of(Unit)
_CAMPAIGN = table_of(Campaign)
_INVITATION = table_of(Invitation)
# Readable on a phone and typed without doubt: the join codes' letters (no 0/O, 1/I/L), 8 of them.
INVITATION_LENGTH = 8


@dataclass(frozen=True)
class PersonRow:
    """One person as ``people list`` shows them: ``campaign`` the key (slug) of the campaign they
    work on (staff) or their unit's, ``last_message_at`` aware, in that campaign's time zone (UTC
    when they have none)."""

    openid: str
    name: str
    role: str
    campaign: str
    unit: str
    last_message_at: datetime | None


@dataclass(frozen=True)
class RoleChanged:
    """What a grant or a revoke changed: the role and campaign before, and the unit the person was
    liaison of and no longer is ("" when none)."""

    openid: str
    role_before: str
    campaign_before: str
    left_unit: str


def campaign_id(conn: sa.Connection, key: str) -> int | None:
    """The id of the loaded campaign whose key (slug, ``<name>-<year>``) is ``key``."""
    found: int | None = conn.execute(sa.select(_CAMPAIGN.c.id).where(_CAMPAIGN.c.slug == key)).scalar()
    return found


def list_people(conn: sa.Connection, campaign: int | None = None, role: str | None = None) -> list[PersonRow]:
    """Everyone the bot knows, office first (coordinators, staff, then liaisons), then by campaign,
    unit and name; narrowed to one campaign's (its staff and its units' liaisons) and one role."""
    unit_campaign = sa.alias(_CAMPAIGN)
    staff_campaign = sa.alias(_CAMPAIGN)
    order = sa.case({Role.COORDINATOR.value: 0, Role.STAFF.value: 1}, value=_PERSON.c.role, else_=2)
    query = (sa.select(_PERSON.c.openid, _PERSON.c.name, _PERSON.c.role, _PERSON.c.last_message_at,
                       _UNIT.c.name.label("unit"),
                       sa.func.coalesce(staff_campaign.c.slug, unit_campaign.c.slug).label("campaign"),
                       sa.func.coalesce(staff_campaign.c.timezone, unit_campaign.c.timezone).label("zone"))
             .select_from(_PERSON.outerjoin(_UNIT, _UNIT.c.id == _PERSON.c.unit_id)
                          .outerjoin(unit_campaign, unit_campaign.c.id == _UNIT.c.campaign_id)
                          .outerjoin(staff_campaign, staff_campaign.c.id == _PERSON.c.campaign_id))
             .order_by(order, sa.func.coalesce(staff_campaign.c.slug, unit_campaign.c.slug), _UNIT.c.name,
                       _PERSON.c.name, _PERSON.c.openid))
    if campaign is not None:
        query = query.where(sa.or_(_PERSON.c.campaign_id == campaign, _UNIT.c.campaign_id == campaign))
    if role is not None:
        query = query.where(_PERSON.c.role == Role(role))
    return [PersonRow(r.openid, r.name, Role(r.role).value, r.campaign or "", r.unit or "",
                      r.last_message_at.astimezone(ZoneInfo(r.zone or "UTC")) if r.last_message_at else None)
            for r in conn.execute(query)]


def set_role(conn: sa.Connection, openid: str, role: str, campaign: int | None) -> RoleChanged:
    """Make the known person ``openid`` ``role`` of ``campaign`` with no unit (a liaison: no unit and
    no campaign, someone who may register again); run it under the person's lock, inside the
    caller's transaction.

    Raises LookupError when the bot has never met ``openid``.
    """
    before = conn.execute(
        sa.select(_PERSON.c.role, _UNIT.c.name.label("unit"), _CAMPAIGN.c.slug)
        .select_from(_PERSON.outerjoin(_UNIT, _UNIT.c.id == _PERSON.c.unit_id)
                     .outerjoin(_CAMPAIGN, _CAMPAIGN.c.id == _PERSON.c.campaign_id))
        .where(_PERSON.c.openid == openid)).first()
    if before is None:
        raise LookupError(f"nobody with the OpenID {openid} has written to the account")
    conn.execute(sa.update(_PERSON).where(_PERSON.c.openid == openid).values(
        role=Role(role), campaign_id=campaign, unit_id=None))
    return RoleChanged(openid, Role(before.role).value, before.slug or "", before.unit or "")


def create_invitation(conn: sa.Connection, role: str, campaign: int, expires_at: datetime, created_by: str,
                      now: datetime) -> str:
    """A new one-time invitation making its redeemer ``role`` of ``campaign`` until ``expires_at``;
    its code, unlike any unit's join code, staff code or other invitation (all are typed at 登记)."""
    facts = DatabaseFacts(conn)
    while True:
        code = "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(INVITATION_LENGTH))
        if (facts.invitation(code) is None and facts.unit_by_join_code(code) is None
                and facts.staff_role(code) is None):
            break
    conn.execute(sa.insert(_INVITATION).values(code=code, role=Role(role), campaign_id=campaign,
                                               created_by=created_by, created_at=now, expires_at=expires_at))
    return code
