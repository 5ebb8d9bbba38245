"""``safetybot people list|grant|revoke|invite``: who works on a campaign, from the terminal.

:func:`register` adds these sub-commands to the ``safetybot`` parser. Output is for office staff at
a terminal, not for WeChat users, so it is printed here rather than templated. Exit status: 0 done,
1 a name that is not there (campaign, OpenID) or a database error, 2 a malformed command (argparse).
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from datetime import timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot.cli.database import with_database
from bot.store.models import Role, utcnow
from bot.store.people import RoleChanged, campaign_id, create_invitation, list_people, set_role
from bot.store.writers import lock_person

ROLES = [r.value for r in Role]
OFFICE_ROLES = [Role.STAFF.value, Role.COORDINATOR.value]
ROLE_NAMES = {Role.LIAISON.value: "联络员", Role.STAFF.value: "工作人员", Role.COORDINATOR.value: "协调人"}
_DURATION = re.compile(r"(\d+)\s*([wdhm])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


def duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``2w``, ``30m`` (weeks, days, hours, minutes) as a positive timedelta;
    argparse's error otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 7d, 12h, 2w or 30m")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _campaign(conn: sa.Connection, key: str) -> int | None:
    """The campaign's id, or None after saying on stderr which campaigns there are."""
    found = campaign_id(conn, key)
    if found is None:
        loaded = conn.execute(sa.text("SELECT slug FROM campaign ORDER BY slug")).scalars().all()
        print(f"safetybot: no campaign {key!r} is loaded; loaded: {', '.join(loaded) or 'none'}", file=sys.stderr)
    return found


@with_database
def cmd_list(args: argparse.Namespace, engine: sa.Engine) -> int:
    """Print everyone the bot knows (or one campaign's, one role's) as a table."""
    with engine.connect() as conn:
        campaign = None
        if args.campaign:
            campaign = _campaign(conn, args.campaign)
            if campaign is None:
                return 1
        rows = list_people(conn, campaign, args.role)
    print(f"{'openid':<30} {'name':<10} {'role':<12} {'campaign':<28} {'unit':<20} last message")
    for row in rows:
        last = f"{row.last_message_at:%Y-%m-%d %H:%M}" if row.last_message_at else "-"
        print(f"{row.openid:<30} {row.name or '-':<10} {row.role:<12} {row.campaign or '-':<28} "
              f"{row.unit or '-':<20} {last}")
    print(f"{len(rows)} {'person' if len(rows) == 1 else 'people'}")
    return 0


def _change_role(engine: sa.Engine, openid: str, role: str, key: str | None) -> RoleChanged | None:
    """Set the role in one transaction under the person's lock; None (said on stderr) when the
    campaign or the person is unknown."""
    with engine.begin() as conn:
        campaign = None
        if key is not None:
            campaign = _campaign(conn, key)
            if campaign is None:
                return None
        lock_person(conn, openid)
        try:
            return set_role(conn, openid, role, campaign)
        except LookupError as exc:
            print(f"safetybot: {exc}; they must write to it once (e.g. 帮助) before a role is given", file=sys.stderr)
            return None


def _say_changed(changed: RoleChanged, now: str) -> None:
    print(f"{changed.openid}: {changed.role_before}"
          f"{' of ' + changed.campaign_before if changed.campaign_before else ''} → {now}")
    if changed.left_unit:
        print(f"  no longer the liaison of {changed.left_unit}: that unit has no liaison now")
    print("  an open dialogue of theirs ends at their next message, which is told why")


@with_database
def cmd_grant(args: argparse.Namespace, engine: sa.Engine) -> int:
    """Make a known person staff or a coordinator of a campaign."""
    changed = _change_role(engine, args.openid, args.role, args.campaign)
    if changed is None:
        return 1
    _say_changed(changed, f"{args.role} of {args.campaign}")
    return 0


@with_database
def cmd_revoke(args: argparse.Namespace, engine: sa.Engine) -> int:
    """Take a person's role back: a liaison with no unit and no campaign, who may register again."""
    changed = _change_role(engine, args.openid, Role.LIAISON.value, None)
    if changed is None:
        return 1
    _say_changed(changed, "liaison without a unit")
    return 0


@with_database
def cmd_invite(args: argparse.Namespace, engine: sa.Engine) -> int:
    """Print a new one-time code that makes whoever sends it at 登记 ``ROLE`` of the campaign."""
    now = utcnow()
    with engine.begin() as conn:
        campaign = _campaign(conn, args.campaign)
        if campaign is None:
            return 1
        zone = conn.execute(sa.text("SELECT timezone FROM campaign WHERE id = :id"), {"id": campaign}).scalar_one()
        expires_at = now + args.expires
        code = create_invitation(conn, args.role, campaign, expires_at, _operator(), now)
    local = expires_at.astimezone(ZoneInfo(zone))
    print(code)
    print(f"  makes one person {ROLE_NAMES[args.role]} ({args.role}) of {args.campaign}: they send 登记, then "
          f"this code; valid until {local:%Y-%m-%d %H:%M} ({zone})", file=sys.stderr)
    return 0


def _operator() -> str:
    """Who made an invitation, as far as the terminal knows (kept with it for the record)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _role(choices: list[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not a role here; choose {' or '.join(choices)}")
        return text
    return parse


def register(commands: Any) -> None:
    """Add ``people`` to the sub-parsers of the ``safetybot`` command."""
    people = commands.add_parser("people", help="staff, coordinators and liaisons; one-time invitations").add_subparsers(
        dest="people_command", required=True)
    listing = people.add_parser("list", help="everyone the bot knows: openid, name, role, campaign, unit, last message")
    listing.add_argument("--campaign", metavar="KEY", help="only this campaign's staff and its units' liaisons")
    listing.add_argument("--role", type=_role(ROLES), help="only this role: " + ", ".join(ROLES))
    listing.set_defaults(func=cmd_list)
    grant = people.add_parser("grant", help="make a person staff or a coordinator of a campaign")
    grant.add_argument("openid", metavar="OPENID")
    grant.add_argument("role", metavar="ROLE", type=_role(OFFICE_ROLES), help="staff or coordinator")
    grant.add_argument("--campaign", metavar="KEY", required=True)
    grant.set_defaults(func=cmd_grant)
    revoke = people.add_parser("revoke", help="back to a liaison with no unit and no campaign")
    revoke.add_argument("openid", metavar="OPENID")
    revoke.set_defaults(func=cmd_revoke)
    invite = people.add_parser("invite", help="print a one-time code that makes whoever sends it at 登记 ROLE")
    invite.add_argument("role", metavar="ROLE", type=_role(OFFICE_ROLES), help="staff or coordinator")
    invite.add_argument("--campaign", metavar="KEY", required=True)
    invite.add_argument("--expires", type=duration, default=timedelta(days=7),
                        help="how long the code stays valid: 7d (default), 12h, 2w, 30m")
    invite.set_defaults(func=cmd_invite)
