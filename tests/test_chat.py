"""`safetybot chat` against a served bot and the fake WeChat, as a person would use it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.app import create_app
from bot.config import Settings
from bot.store.engine import make_engine, session
from simulator.fake_wechat import BackgroundServer
from bot.store.models import InboundMessage
from bot.wechat.client import WeChatAPI, WeChatAPIError
from bot.texts import Texts
from tests.conftest import free_port, make_settings
from tests.fixtures_fake import ServedFake

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def chat(settings: Settings, bot_url: str, openid: str, lines: list[str]) -> str:
    """Run ``safetybot chat`` in its own process, typing ``lines``; return what it printed."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "WECHAT_TOKEN": settings.wechat_token,
        "WECHAT_APP_ID": settings.wechat_app_id,
        "WECHAT_APP_SECRET": settings.wechat_app_secret,
        "ADMIN_TOKEN": settings.admin_token,
        "WECHAT_API_BASE_URL": settings.wechat_api_base_url,
        "WECHAT_ENCODING_AES_KEY": settings.wechat_encoding_aes_key or "",
        "DATABASE_URL": settings.database_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--env-file", os.devnull, "chat", "--as", openid, "--url", bot_url],
        input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(params=["plaintext", "safe"])
def served_bot(request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str, fake_wechat: ServedFake):
    overrides = {"DATABASE_URL": sqlite_url, "WECHAT_API_BASE_URL": fake_wechat.base_url}
    if request.param == "safe":
        overrides["WECHAT_ENCODING_AES_KEY"] = AES_KEY
    settings = make_settings(tmp_path, **overrides)
    with BackgroundServer(create_app(settings), free_port()) as bot_url:
        yield settings, bot_url


def test_a_person_follows_asks_for_help_and_is_answered(served_bot, wechat_api: WeChatAPI):
    settings, bot_url = served_bot
    texts = Texts()
    printed = chat(settings, bot_url, "o_chat_1", ["/follow", "帮助", "/click HELP", "/quit", "不会发出"])
    assert texts.render("greeting") in printed
    assert printed.count(texts.render("help")) == 2
    assert "不会发出" not in printed and "[warning" not in printed
    # The fake WeChat learnt that the person wrote, as the real one would: the 48-hour window is open.
    wechat_api.send_text("o_chat_1", "收到")


def test_a_follower_who_never_wrote_is_out_of_reach_a_minute_later(served_bot, wechat_api: WeChatAPI,
                                                                   fake_wechat: ServedFake):
    settings, bot_url = served_bot
    chat(settings, bot_url, "o_chat_silent", ["/follow"])
    fake_wechat.fake.advance(120)
    with pytest.raises(WeChatAPIError) as refused:
        wechat_api.send_text("o_chat_silent", "收到")
    assert refused.value.errcode == 45015


def test_an_unknown_command_is_explained_without_reaching_the_bot(served_bot):
    settings, bot_url = served_bot
    printed = chat(settings, bot_url, "o_chat_2", ["/dance"])
    assert "/help" in printed


def test_a_picture_reaches_the_bot_as_an_image_message(served_bot, tmp_path: Path, wechat_api: WeChatAPI):
    settings, bot_url = served_bot
    picture = tmp_path / "site.jpg"
    picture.write_bytes(b"\xff\xd8\xff\xe0 a tiny jpeg")
    printed = chat(settings, bot_url, "o_chat_3", [f"/image {picture}"])
    assert Texts().render("unsupported_kind", kind="image") in printed
    with session(make_engine(settings.database_url)) as db:
        (message,) = db.exec(select(InboundMessage).where(InboundMessage.openid == "o_chat_3")).all()
    media_id = message.raw.split("<MediaId><![CDATA[")[1].split("]]>")[0]
    assert wechat_api.download_media(media_id).content == picture.read_bytes()


def test_a_passive_reply_over_wechats_limit_is_printed_with_a_warning(tmp_path: Path, fake_wechat: ServedFake):
    """A bot (here a stand-in answering every message with 3,003 bytes) that breaks WeChat's limit
    is caught at the terminal, where the whole text would otherwise show as if nothing were wrong."""
    async def too_long(request: Request) -> Response:
        content = "安" * 1000 + "END"
        return Response(f"<xml><ToUserName><![CDATA[o_chat_4]]></ToUserName><FromUserName><![CDATA[gh_x]]>"
                        f"</FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                        f"<Content><![CDATA[{content}]]></Content></xml>", media_type="application/xml")

    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=fake_wechat.base_url)
    with BackgroundServer(Starlette(routes=[Route("/wechat", too_long, methods=["POST"])]), free_port()) as bot_url:
        printed = chat(settings, bot_url, "o_chat_4", ["帮助"])
    assert "安" * 1000 + "END" in printed
    assert "[warning: this passive reply is 3,003 bytes; WeChat cuts or drops a text over 2,048 bytes" in printed
