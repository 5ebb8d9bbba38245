"""``safetybot demo`` (what ``make run`` starts): the fake WeChat API and the bot, side by side.

No WeChat account is needed: the bot's outbound calls go to the fake through
``WECHAT_API_BASE_URL``, and ``safetybot chat`` plays the WeChat user.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import uvicorn

from bot.config import Settings

log = logging.getLogger(__name__)


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
    """Serve the fake WeChat and the bot until interrupted."""
    check_demo_settings(settings, fake_port)
    asyncio.run(_serve_both(settings, fake_port))
