"""``safetybot demo`` (what ``make run`` starts): the fake WeChat API and the bot, side by side.

No WeChat account is needed: the bot's outbound calls go to the fake through
``WECHAT_API_BASE_URL``, and ``safetybot chat`` plays the WeChat user. Both run on one demo clock
(:mod:`bot.demo_clock`), which starts at ``DEMO_CLOCK_START`` (default: 09:00 Beijing time on 5 June
of the coming June) and moves forward at ``/demo/clock``. Given a campaign file and its units
(``--replay-june``, as ``make run`` does), the demo loads the campaign for the clock's June, replays
liaisons reporting in it once the bot is served (:mod:`simulator.replay`) and prints how to try
each side.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Sequence
from zoneinfo import ZoneInfo
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
import uvicorn

from bot.config import Settings
from bot.demo_clock import DemoClock
from bot.menu import MENU
from bot.store.engine import make_engine
from bot.store.models import Campaign, Invitation, Person, Role, table_of, utcnow
from bot.store.people import create_invitation
from simulator.chat import FakeWeChatControl
from simulator.fake_wechat import Callback, FakeWeChat, create_fake_app
from simulator.june import ZEZHOU
from simulator.replay import (
    PICTURED, REPLAYED, REPLAYED_SUBMIT, WEEKLY, DemoCampaign, LiaisonReplay, Replayed, ReplayError, coming_june,
    load_demo_campaign, replay_june, without_liaison,
)
from simulator.sim import Persona, Simulator, with_simulator
from simulator.wechat_side import WeChatSide

log = logging.getLogger(__name__)


# Where the demo clock starts unless DEMO_CLOCK_START says otherwise: a Saturday morning early in June
# (in 2027), with the liaison table's deadline past, weekly reports open and the statistics table ahead.
DEMO_ZONE = ZoneInfo("Asia/Shanghai")
DEMO_START_DAY, DEMO_START_HOUR = 5, 9


def demo_start(settings: Settings, now: datetime) -> datetime:
    """Where the demo clock starts: ``DEMO_CLOCK_START``, else 09:00 Beijing time on 5 June of the
    coming June (:func:`simulator.replay.coming_june` of the real ``now``)."""
    if settings.demo_clock_start is not None:
        return settings.demo_clock_start
    return datetime(coming_june(now), 6, DEMO_START_DAY, DEMO_START_HOUR, tzinfo=DEMO_ZONE)


def demo_year(start: datetime) -> int:
    """The year the demo campaign is loaded for: that of the demo clock's start, in Beijing."""
    return start.astimezone(DEMO_ZONE).year


# The demo's invitations are marked as made by it, and last long enough to try things for a while.
DEMO_CREATOR = "demo"
DEMO_VALIDITY = timedelta(days=30)


@dataclass(frozen=True)
class DemoCode:
    """A one-time code the demo prints: it makes whoever sends it at 登记 ``role`` of ``campaign``."""

    campaign: str
    role: str
    code: str


def demo_codes(engine: sa.Engine, now: datetime) -> list[DemoCode]:
    """A staff and a coordinator invitation for every loaded campaign: the demo's own still unused
    ones (valid for at least a day more), else new ones, so each run prints codes a newcomer can use."""
    campaigns, invitations = table_of(Campaign), table_of(Invitation)
    found = []
    with engine.begin() as conn:
        for campaign_id, slug in conn.execute(sa.select(campaigns.c.id, campaigns.c.slug).order_by(campaigns.c.slug)):
            for role in (Role.STAFF, Role.COORDINATOR):
                code = conn.execute(sa.select(invitations.c.code).where(
                    invitations.c.campaign_id == campaign_id, invitations.c.role == role,
                    invitations.c.created_by == DEMO_CREATOR, invitations.c.used_at.is_(None),
                    invitations.c.expires_at > now + timedelta(days=1)).order_by(invitations.c.id)).scalar()
                if code is None:
                    code = create_invitation(conn, role.value, campaign_id, now + DEMO_VALIDITY, DEMO_CREATOR, now)
                found.append(DemoCode(slug, role.value, code))
    return found


def describe_codes(codes: list[DemoCode], openid: str = "o_staff_demo") -> str:
    """What the demo prints so a newcomer can try the office's side too."""
    lines = [f"To try the office's side: safetybot chat --as {openid}, send 登记, then one of these codes "
             "(one use each; the next run prints fresh ones once used):"]
    lines += [f"  {c.campaign}: {c.role:<11} {c.code}" for c in codes]
    return "\n".join(lines)


def sim_personas(codes: list[DemoCode], campaign: DemoCampaign | None, free_units: list[str]) -> list[Persona]:
    """Who ``/sim`` lets one play, each on the openid ``chat --as`` would use: with a replayed
    ``campaign``, 泽州's registered liaison first; then a new person (who may register for the
    first of ``free_units``), staff and a coordinator, each told the code to send after 登记."""
    code = {c.role: c.code for c in codes if campaign is None or c.campaign == campaign.slug}
    personas = []
    if campaign is not None:
        openid, name = REPLAYED[ZEZHOU][:2]
        personas.append(Persona("liaison", "泽州联络员", openid, f"{ZEZHOU}的联络员{name}，已登记：试试 填报、周报、帮助"))
    newcomer = (f"发 登记，再发{free_units[0]}的加入码 {campaign.join_codes[free_units[0]]}"
                if campaign is not None and free_units else "发 帮助 看看能做什么")
    personas.append(Persona("newcomer", "新用户", "o_liaison_demo", newcomer))
    for key, label in (("staff", "工作人员"), ("coordinator", "协调人")):
        hint = f"发 登记，再发邀请码 {code[key]}（一次有效）" if key in code else "没有加载活动，无邀请码"
        personas.append(Persona(key, label, f"o_{key}_demo", hint))
    return personas


def where_to_watch(settings: Settings) -> str:
    """What the demo prints about ``/sim``."""
    return (f"In a browser: http://127.0.0.1:{settings.port}/sim — a phone-like WeChat conversation as a liaison, "
            "staff, a coordinator or a new person, with a button that moves the demo clock")


class DemoSetupError(Exception):
    """The settings do not point the bot at the demo's fake WeChat."""


def check_demo_settings(settings: Settings, fake_port: int) -> None:
    """Refuse to run a demo whose bot would call a WeChat other than the local fake."""
    parts = urlsplit(settings.wechat_api_base_url)
    if parts.hostname not in {"127.0.0.1", "localhost"} or parts.port != fake_port:
        raise DemoSetupError(
            f"the demo serves the fake WeChat on port {fake_port}, but WECHAT_API_BASE_URL is "
            f"{settings.wechat_api_base_url}; set it to http://127.0.0.1:{fake_port}"
        )


@dataclass(frozen=True)
class JuneFiles:
    """The campaign file and unit list the demo replays a June of (``--replay-june FILE --units FILE``)."""

    campaign: Path
    units: Path


def how_to_move_the_clock(settings: Settings, now: datetime) -> str:
    """What the demo prints about its clock: where it stands and how to move it."""
    clock = f"http://127.0.0.1:{settings.port}/demo/clock"
    return (f"The demo clock shows {now.astimezone(DEMO_ZONE):%Y-%m-%d %H:%M} (Beijing); move it to the next reminder "
            f"or due time, which then goes out: curl -H 'Content-Type: application/json' -d '{{\"to\": \"next\"}}' "
            f"{clock} (or {{\"advance_seconds\": 86400}}; GET {clock} shows it)")


def how_to_try(campaign: DemoCampaign, codes: list[DemoCode], replayed: Replayed, free_units: list[str],
               program: str = "safetybot") -> str:
    """What the demo prints after the replay: what the campaign holds, and how to try each side
    with ``chat`` (``free_units``: the units without a liaison, one of which the newcomer may
    register for; ``program`` is how the newcomer runs ``safetybot``)."""
    code = {c.role: c.code for c in codes if c.campaign == campaign.slug}
    liaison = (f"登记, {free_units[0]}'s join code {campaign.join_codes[free_units[0]]}, the 联络员表; then 填报, 周报, 帮助"
               if free_units else "every unit has a liaison now: 帮助, 填报, 周报 (or --as oLiaisonZezhou)")
    draft = next(unit for unit in REPLAYED if unit not in REPLAYED_SUBMIT)
    when = "just now" if replayed.units else "on an earlier run (nothing replayed twice)"
    return "\n".join([
        f"A June of {campaign.slug} ({campaign.name}) replayed {when}, on the demo clock, so the liaisons "
        "answered on time and 进度 shows its deadlines ahead.",
        f"  {len(REPLAYED_SUBMIT)} units submitted the statistics table (estimates like 约30 included: "
        f"{'、'.join(REPLAYED_SUBMIT)}), {draft} left a draft, {len(WEEKLY)} weekly reports came in "
        f"({PICTURED}'s with a picture); without a liaison: {'、'.join(free_units) or 'none'}.",
        "Try it from a second terminal (codes are one-time; the next run prints fresh ones once used):",
        f"  a liaison:     {program} chat --as o_liaison_demo, then {liaison}",
        f"  a coordinator: {program} chat --as o_coordinator_demo, then 登记, {code['coordinator']}; then 进度, "
        "合计, 未报 统计表, 单位 泽州, 导出 (its link opens in a browser on this machine)",
        f"  staff:         {program} chat --as o_staff_demo, then 登记, {code['staff']}; then 通知, the text, "
        "1 (all liaisons), 确认; the report arrives when it is sent; 通知 状态 shows it again",
    ])


def replay_served(settings: Settings, engine: sa.Engine, campaign: DemoCampaign,
                  clock: Callable[[], datetime] = utcnow) -> Replayed:
    """Replay the June against the bot served at ``settings.port``, through its signed callback and
    the fake WeChat at ``settings.wechat_api_base_url``, the messages stamped by ``clock`` (the
    bot's). Raises :class:`ReplayError` or ``httpx.HTTPError`` when the bot does not answer as the
    liaisons expect."""
    # A few hundred requests, each logged by httpx and uvicorn, would bury what the demo prints next.
    quieted = [logging.getLogger(name) for name in ("httpx", "uvicorn.access")]
    levels = [logger.level for logger in quieted]
    for logger in quieted:
        logger.setLevel(logging.WARNING)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.port}", timeout=10) as bot, \
                httpx.Client(base_url=settings.wechat_api_base_url, timeout=5) as wechat:
            side = WeChatSide(bot, token=settings.wechat_token, app_id=settings.wechat_app_id,
                              aes_key=settings.wechat_encoding_aes_key, clock=lambda: clock().timestamp())
            return replay_june(engine, campaign, LiaisonReplay(side, FakeWeChatControl(wechat)))
    finally:
        for logger, level in zip(quieted, levels):
            logger.setLevel(level)


def remember_followers(fake: FakeWeChat, engine: sa.Engine) -> int:
    """Tell a freshly started fake WeChat what the real one would still know from earlier runs:
    who follows the account and when each last wrote (their 48-hour windows). Returns how many."""
    people = table_of(Person)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(people.c.openid, people.c.last_message_at).where(people.c.following)).all()
    for openid, wrote_at in rows:
        if wrote_at is None:
            fake.follow(openid)
        else:
            fake.user_wrote(openid, at=wrote_at if wrote_at.tzinfo else wrote_at.replace(tzinfo=timezone.utc))
    return len(rows)


async def _serve_both(settings: Settings, fake_port: int, clock: DemoClock, personas: Sequence[Persona],
                      once_served: Callable[[], None] | None = None) -> None:
    from bot.app import create_app

    # Like WeChat, the fake pushes events (TEMPLATESENDJOBFINISH) to the bot's callback.
    callback = Callback(f"http://127.0.0.1:{settings.port}/wechat", settings.wechat_token,
                        settings.wechat_encoding_aes_key)
    fake = FakeWeChat(settings.wechat_app_id, settings.wechat_app_secret, callback=callback, clock=clock)
    # The account's menu, as the real one would hold it once created; /sim draws its bottom menu from it.
    fake.create_menu(MENU)
    engine = make_engine(settings.database_url)
    try:
        remember_followers(fake, engine)
    finally:
        engine.dispose()
    simulator = Simulator(settings, fake, clock, personas, f"http://127.0.0.1:{settings.port}")
    servers = [
        uvicorn.Server(uvicorn.Config(create_fake_app(fake), host="127.0.0.1", port=fake_port,
                                      log_level="warning", lifespan="off")),
        uvicorn.Server(uvicorn.Config(with_simulator(create_app(settings, demo=clock), simulator), host=settings.host,
                                      port=settings.port, log_level=settings.log_level.lower())),
    ]
    log.info("fake WeChat API on http://127.0.0.1:%d", fake_port)
    log.info("bot on http://%s:%d/wechat — talk to it with: safetybot chat --as o_liaison_demo",
             settings.host, settings.port)
    serving = [asyncio.ensure_future(server.serve()) for server in servers]
    if once_served is not None:
        while not all(server.started for server in servers) and not any(task.done() for task in serving):
            await asyncio.sleep(0.05)
        if all(server.started for server in servers):
            # The replay speaks HTTP to the servers of this loop, so it runs on a thread of its own.
            await asyncio.to_thread(once_served)
    # Both servers stop on the same Ctrl-C; collecting their results keeps the shutdown quiet.
    await asyncio.gather(*serving, return_exceptions=True)


def run_demo(settings: Settings, fake_port: int = 8081, june: JuneFiles | None = None,
             program: str = "safetybot") -> None:
    """Serve the fake WeChat and the bot on one demo clock until interrupted, after printing a staff
    and a coordinator code for each loaded campaign; with ``june``, first load that campaign for the
    clock's June and, once served, replay its liaisons and print how to try each side instead.

    Raises what loading the campaign file and the unit list raises (``DefinitionError``,
    ``LoadRefused``, ``ImportRefused``)."""
    check_demo_settings(settings, fake_port)
    clock = DemoClock(demo_start(settings, utcnow()))
    engine = make_engine(settings.database_url)
    try:
        if june is None:
            codes = demo_codes(engine, clock.now())
            print(describe_codes(codes), flush=True)
            print(how_to_move_the_clock(settings, clock.now()), flush=True)
            print(where_to_watch(settings), flush=True)
            asyncio.run(_serve_both(settings, fake_port, clock, sim_personas(codes, None, [])))
            return
        campaign = load_demo_campaign(engine, june.campaign, june.units, demo_year(clock.now()))
        codes = demo_codes(engine, clock.now())
        # The units the replay leaves without a liaison, for the new person to register for.
        free = [unit for unit in without_liaison(engine, campaign.slug) if unit not in REPLAYED]

        def replay_and_tell() -> None:
            try:
                replayed = replay_served(settings, engine, campaign, clock.now)
            except (ReplayError, httpx.HTTPError) as error:
                # The bot is served all the same: what went wrong is worth a look, not a stop.
                log.error("the June replay stopped: %s", error)
                print(describe_codes(codes), flush=True)
                return
            free_units = without_liaison(engine, campaign.slug)
            print("\n" + how_to_try(campaign, codes, replayed, free_units, program), flush=True)
            print(how_to_move_the_clock(settings, clock.now()), flush=True)
            print(where_to_watch(settings) + "\n", flush=True)

        asyncio.run(_serve_both(settings, fake_port, clock, sim_personas(codes, campaign, free), replay_and_tell))
    finally:
        engine.dispose()
