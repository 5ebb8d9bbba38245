"""Hostile requests at the callback's edge: numbers WeChat never sends, bodies that never finish,
and the URL as people paste it. Each is answered with a short status and leaves no traceback in
the log and nothing stored (issue 19, items 1, 3 and 4)."""

from __future__ import annotations

import logging
import socket
import time
from typing import Iterator
from datetime import datetime, timezone
from urllib.parse import urlencode, urlsplit

import pytest

from simulator.wechat_side import sign
from tests.fixtures_gateway import AES_KEY, StartBot


def _now() -> str:
    return str(int(datetime.now(timezone.utc).timestamp()))


@pytest.mark.parametrize("timestamp", ["¹²³", "１７００００００００", "٣", "7" * 5000, "-1700000000", "1e9", ""],
                         ids=["superscript", "full-width", "arabic-indic", "5000-digits", "negative", "float", "empty"])
def test_a_signed_request_whose_timestamp_is_not_ascii_seconds_is_forbidden(start_bot: StartBot, timestamp: str,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    bot = start_bot()
    xml = bot.side.message_xml("oA", "text", Content="帮助")
    # Signed with the bot's own token: only the number itself is wrong.
    params = {"signature": sign(bot.settings.wechat_token, timestamp, "7"), "timestamp": timestamp, "nonce": "7"}
    reply = bot.side.post_raw(xml, params)
    assert reply.status_code == 403
    assert bot.side.verify("echo").status_code == 200  # the same bot still verifies a good request
    assert bot.inbound() == []
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("create_time", ["100000000000000000000", "¹²³", "1700000000.5", "-5"],
                         ids=["21-digits", "superscript", "fraction", "negative"])
@pytest.mark.parametrize("aes_key", [None, AES_KEY], ids=["plaintext", "safe-mode"])
def test_a_message_whose_create_time_is_not_ascii_seconds_is_a_bad_request(
        start_bot: StartBot, create_time: str, aes_key: str | None, caplog: pytest.LogCaptureFixture) -> None:
    bot = start_bot(aes_key=aes_key)
    xml = bot.side.message_xml("oA", "text", Content="帮助")
    xml = xml.replace(f"<CreateTime>{int(bot.side.clock())}</CreateTime>", f"<CreateTime>{create_time}</CreateTime>")
    assert create_time in xml
    reply = bot.side.deliver(xml)
    assert reply.status_code == 400
    assert bot.inbound() == []
    assert "Traceback" not in caplog.text


def test_a_trailing_slash_reaches_the_same_callback(start_bot: StartBot) -> None:
    bot = start_bot()
    bot.side.path = "/wechat/"
    assert bot.side.verify("echo-slash").text == "echo-slash"
    reply = bot.side.text("oSlash", "帮助")
    assert reply.status_code == 200 and reply.fields is not None and reply.fields["MsgType"] == "text"
    assert [m.openid for m in bot.inbound()] == ["oSlash"]


@pytest.fixture
def served_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, seeing uvicorn's records too: uvicorn's logger does not pass them to the root logger,
    where caplog listens, so its "Exception in ASGI application" would go unseen."""
    uvicorn_log = logging.getLogger("uvicorn")
    uvicorn_log.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        uvicorn_log.removeHandler(caplog.handler)


def _raw_post(base_url: str, query: str, head_length: int, sent: bytes) -> socket.socket:
    """Open a connection and send a POST announcing ``head_length`` bytes but only ``sent``."""
    where = urlsplit(base_url)
    conn = socket.create_connection((where.hostname, where.port), timeout=10)
    conn.sendall(f"POST /wechat?{query} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: text/xml\r\n"
                 f"Content-Length: {head_length}\r\n\r\n".encode() + sent)
    return conn


def test_an_unsigned_post_is_refused_before_its_body_is_read(start_bot: StartBot,
                                                             served_log: pytest.LogCaptureFixture) -> None:
    bot = start_bot(served=True)
    conn = _raw_post(str(bot.side.client.base_url), "signature=0&timestamp=1&nonce=2", 5000, b"<xml>")
    with conn:
        answer = conn.recv(4096).decode()
    # Answered at once, without waiting for the 4,995 bytes that never come.
    assert answer.startswith("HTTP/1.1 403")
    assert bot.inbound() == []
    assert "Exception in ASGI application" not in served_log.text and "Traceback" not in served_log.text


def test_a_signed_post_whose_sender_disconnects_mid_body_is_one_log_line(start_bot: StartBot,
                                                                        served_log: pytest.LogCaptureFixture) -> None:
    bot = start_bot(served=True)
    query = urlencode(bot.side.signed_params(_now(), "7"))
    with served_log.at_level(logging.WARNING):
        for _ in range(3):
            _raw_post(str(bot.side.client.base_url), query, 5000, b"<xml>").close()
        deadline = time.monotonic() + 5
        while served_log.text.count("disconnected while its body was read") < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert served_log.text.count("disconnected while its body was read") == 3
    assert "Exception in ASGI application" not in served_log.text and "Traceback" not in served_log.text
    assert bot.inbound() == []
    assert bot.side.text("oAfter", "帮助").status_code == 200


def test_a_signed_body_that_trickles_past_the_reply_budget_times_out(start_bot: StartBot,
                                                                    served_log: pytest.LogCaptureFixture) -> None:
    bot = start_bot(served=True, REPLY_BUDGET_SECONDS="0.5")
    query = urlencode(bot.side.signed_params(_now(), "7"))
    started = time.monotonic()
    with _raw_post(str(bot.side.client.base_url), query, 5000, b"<xml>") as conn:
        answer = conn.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408")
    assert time.monotonic() - started < 3
    assert bot.inbound() == []
    assert "Traceback" not in served_log.text


def test_an_event_listing_two_pictures_is_stored_though_its_items_repeat(start_bot: StartBot) -> None:
    # A field given twice is refused (tests/corpus/076-078), but a list's items repeat by design.
    bot = start_bot()
    xml = bot.side.event_xml("oPictures", "pic_sysphoto", "rselfmenu_1_0").replace("</xml>", (
        "<SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]>"
        "</PicMd5Sum></item><item><PicMd5Sum><![CDATA[7c2a24a3d4e9b2f1a0c8e7d6b5a49382]]></PicMd5Sum></item>"
        "</PicList></SendPicsInfo></xml>"))
    assert bot.side.deliver(xml).status_code == 200
    assert [m.openid for m in bot.inbound()] == ["oPictures"]
