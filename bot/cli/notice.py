"""``safetybot notice send``: an announcement (通知) from the command line, by the chat's own path.

The command queues the announcement as ``确认`` in the chat does
(:func:`bot.outbound.announcements.queue_announcement`, sender "命令行" or ``--sender``) and runs
its fan-out in this process (:class:`bot.outbound.announcements.Announcements`, the worker role's
own), with a progress bar on stderr; it prints the same delivery report the chat's sender gets.
A worker running meanwhile may take part of the rows: each liaison still gets it once.

``--to``: ``all``; ``owing:KEY[:PERIOD]`` (units that have not submitted the deadline ``KEY``, a
key of the campaign file, for ``PERIOD``, e.g. ``owing:weekly:2023-06-14``; without one, the
period due next); ``group:NAME``;
``unit:NAME[,NAME…]`` (each a part of one unit's name). The output is for office staff at a
terminal, so it is printed here rather than templated (the report is the chat's template).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from bot.campaigns.store import definition_of, find_campaign
from bot.cli.reminders import ProgressBar
from bot.config import Settings, load_settings
from bot.outbound.announcements import CLI_SENDER, queue_announcement
from bot.store import audience as audiences
from bot.store.engine import make_engine, session
from bot.store.facts import DatabaseFacts
from bot.store.models import Announcement, table_of, utcnow
from bot.texts import Texts
from bot.wechat.client import wechat_api
from bot.worker import announcement_sender
from handlers.announcements import TEXT_LIMIT_BYTES
from handlers.ports import Audience

# How many of the units a name fits the refusal lists (it must fit one).
UNIT_MATCHES_SHOWN = 10


class Refused(Exception):
    """The command cannot go ahead; the message says why."""


def _audience(facts: DatabaseFacts, campaign_id: int, to: str, now: datetime) -> Audience:
    """``--to`` as an audience of the campaign at ``now``; :class:`Refused` when it names nothing."""
    kind, _, rest = to.partition(":")
    if kind == "all" and not rest:
        return Audience("all")
    if kind == "owing" and rest:
        key, _, period = rest.partition(":")
        periods = [p for p in facts.periods(campaign_id) if p.key == key]
        if not periods:
            raise Refused(f"the campaign has no deadline {key!r}")
        if not period:
            # A recurring deadline without a period: the one due next (the last once all have passed).
            period = next((p.period for p in periods if p.due_at >= now), periods[-1].period)
        elif period not in {p.period for p in periods}:
            raise Refused(f"the deadline {key!r} has no period {period!r}")
        return Audience("owing", deadline=key, period=period)
    if kind == "group" and rest:
        if rest not in facts.definition(campaign_id).unit_groups:
            raise Refused(f"the campaign has no unit group {rest!r}")
        return Audience("group", group=rest)
    if kind == "unit" and rest:
        chosen = []
        for fragment in (f.strip() for f in rest.split(",") if f.strip()):
            found = facts.units_named(campaign_id, fragment, UNIT_MATCHES_SHOWN)
            exact = [u for u in found if u.name == fragment]
            if len(exact or found) != 1:
                names = "、".join(u.name for u in found) or "none"
                raise Refused(f"unit:{fragment} must name one unit; it fits: {names}")
            chosen.append((exact or found)[0].id)
        return Audience("units", unit_ids=tuple(dict.fromkeys(chosen)))
    raise Refused(f"--to {to!r}: give all, owing:KEY[:PERIOD], group:NAME or unit:NAME[,NAME]")


def cmd_send(args: argparse.Namespace) -> int:
    """Queue the announcement, fan it out here, print its report; exit 1 on a quota stop, 2 when refused."""
    settings = load_settings(args.env_file)
    text = Path(args.text_file).read_text(encoding="utf-8").strip()
    engine = make_engine(settings.database_url)
    try:
        return _send(args, settings, engine, text)
    except Refused as refused:
        print(f"safetybot: {refused}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def _send(args: argparse.Namespace, settings: Settings, engine: sa.Engine, text: str) -> int:
    texts = Texts()
    with session(engine) as db:
        campaign = find_campaign(db, args.campaign)
        if campaign is None or campaign.id is None:
            raise Refused(f"no campaign {args.campaign!r} is loaded (safetybot campaign list)")
        campaign_id, definition = campaign.id, definition_of(campaign)
    if not text:
        raise Refused(f"{args.text_file} is empty")
    size = len(texts.render("announcement_text", campaign=definition.name, text=text).encode())
    if size > TEXT_LIMIT_BYTES:
        raise Refused(f"the announcement is {size} bytes as a liaison gets it; WeChat takes {TEXT_LIMIT_BYTES}")
    now = utcnow()
    with engine.connect() as conn:
        facts = DatabaseFacts(conn, template_messages=settings.features.template_messages)
        audience = _audience(facts, campaign_id, args.to, now)
        counts = facts.audience(campaign_id, audience, now)
    if not counts.recipients:
        raise Refused(f"--to {args.to} reaches no liaison ({counts.units} units, {counts.without_liaison} without one)")
    print(f"{counts.recipients} liaisons: {counts.customer_service} by customer service, {counts.template} by template "
          f"message, {counts.held} held until they write, {counts.unreachable} unreachable; "
          f"{counts.without_liaison} of {counts.units} units have no liaison", file=sys.stderr)
    api = wechat_api(settings, engine)
    image = None
    if args.image:
        picture = Path(args.image)
        image = api.upload_media("image", picture.name, picture.read_bytes())
    with engine.begin() as conn:
        announcement_id = queue_announcement(conn, campaign_id, text, audience, now,
                                             sender_name=args.sender or CLI_SENDER, image_media_id=image)
    sender = announcement_sender(settings, engine, api, texts, progress=ProgressBar())
    tally = sender.run(announcement_id)
    with engine.connect() as conn:
        row = conn.execute(sa.select(table_of(Announcement)).where(table_of(Announcement).c.id == announcement_id)).one()
        found = audiences.counts(conn, [announcement_id])[announcement_id]
    print(sender.report_text(row, found))
    if tally.stopped:
        print(f"safetybot: stopped by {tally.stopped}; `safetybot worker` sends the rest", file=sys.stderr)
        return 1
    return 0


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``notice send`` to the ``safetybot`` sub-commands."""
    notice = commands.add_parser("notice", help="announcements (通知) to liaisons").add_subparsers(
        dest="notice_command", required=True)
    send = notice.add_parser("send", help="send an announcement to liaisons of a campaign and print its report")
    send.add_argument("--campaign", required=True, help="the campaign's slug, e.g. jincheng-commerce-2023")
    send.add_argument("--to", required=True, help="all | owing:KEY[:PERIOD] | group:NAME | unit:NAME[,NAME]")
    send.add_argument("--text-file", required=True, help="the text, UTF-8, sent exactly as written")
    send.add_argument("--image", default=None, help="a picture (jpg/png) sent after the text by customer service")
    send.add_argument("--sender", default=None, help=f"the name shown as sender (default {CLI_SENDER})")
    send.set_defaults(func=cmd_send)
