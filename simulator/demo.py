"""``safetybot demo`` (what ``make run`` starts): the fake WeChat API and the bot, side by side.

No WeChat account is needed: the bot's outbound calls go to the fake through
``WECHAT_API_BASE_URL``, and ``safetybot chat`` plays the WeChat user.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
import uvicorn

from bot.config import Settings
from bot.store.engine import make_engine
from bot.store.models import Campaign, Invitation, Role, table_of, utcnow
from bot.store.people import create_invitation

log = logging.getLogger(__name__)


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


async def _serve_both(settings: Settings, fake_port: int) -> None:
    from bot.app import create_app
    from simulator.fake_wechat import Callback, FakeWeChat, create_fake_app

    # Like WeChat, the fake pushes events (TEMPLATESENDJOBFINISH) to the bot's callback.
    callback = Callback(f"http://127.0.0.1:{settings.port}/wechat", settings.wechat_token,
                        settings.wechat_encoding_aes_key)
    fake = FakeWeChat(settings.wechat_app_id, settings.wechat_app_secret, callback=callback)
    servers = [
        uvicorn.Server(uvicorn.Config(create_fake_app(fake), host="127.0.0.1", port=fake_port,
                                      log_level="warning", lifespan="off")),
        uvicorn.Server(uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                                      log_level=settings.log_level.lower())),
    ]
    log.info("fake WeChat API on http://127.0.0.1:%d", fake_port)
    log.info("bot on http://%s:%d/wechat — talk to it with: safetybot chat --as o_liaison_demo",
             settings.host, settings.port)
    # Both servers stop on the same Ctrl-C; collecting their results keeps the shutdown quiet.
    await asyncio.gather(*(server.serve() for server in servers), return_exceptions=True)


def run_demo(settings: Settings, fake_port: int = 8081) -> None:
    """Serve the fake WeChat and the bot until interrupted, after printing a staff and a
    coordinator code for each loaded campaign."""
    check_demo_settings(settings, fake_port)
    engine = make_engine(settings.database_url)
    try:
        print(describe_codes(demo_codes(engine, utcnow())), flush=True)
    finally:
        engine.dispose()
    asyncio.run(_serve_both(settings, fake_port))
