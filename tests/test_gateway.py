"""The WeChat callback in plaintext mode: signatures, every message type, refusals, the inbound log."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest
from defusedxml.ElementTree import fromstring
from sqlalchemy.engine import make_url

from bot.wechat.callback import text_reply_xml
from bot.store.models import InboundStatus
from bot.texts import Texts
from simulator.wechat_side import sign
from tests.fixtures_gateway import RecordingDispatch, StartBot

TEXTS = Texts()


def test_the_console_url_check_echoes_echostr_only_when_signed(start_bot: StartBot) -> None:
    bot = start_bot()
    assert bot.side.verify("8174316953").text == "8174316953"
    forged = bot.side.client.get("/wechat", params={"signature": "0" * 40, "timestamp": "1", "nonce": "2",
                                                    "echostr": "8174316953"})
    assert forged.status_code == 403
    assert "8174316953" not in forged.text


def test_a_message_with_a_wrong_signature_is_refused_and_not_stored(start_bot: StartBot) -> None:
    bot = start_bot()
    xml = bot.side.message_xml("oLiaison1", "text", Content="帮助")
    now = str(int(datetime.now(timezone.utc).timestamp()))
    params = {"signature": sign("not-the-token", now, "42"), "timestamp": now, "nonce": "42"}
    reply = bot.side.post_raw(xml, params)
    assert (reply.status_code, reply.body) == (403, "forbidden")
    assert bot.inbound() == []


@pytest.mark.parametrize(
    ("send", "kind", "event", "expected"),
    [
        (lambda s: s.text("oA", "帮助"), "text", "", TEXTS.render("help")),
        (lambda s: s.text("oA", "今天开会"), "text", "", TEXTS.render("not_understood", text="今天开会", newcomer=True)),
        (lambda s: s.image("oA", "media-1"), "image", "", TEXTS.render("unsupported_kind", kind="image")),
        (lambda s: s.voice("oA", "media-2", recognition="你好"), "voice", "", TEXTS.render("unsupported_kind", kind="voice")),
        (lambda s: s.video("oA", "media-3"), "video", "", TEXTS.render("unsupported_kind", kind="video")),
        (lambda s: s.shortvideo("oA", "media-4"), "shortvideo", "", TEXTS.render("unsupported_kind", kind="shortvideo")),
        (lambda s: s.location("oA", 23.134521, 113.358803, label="晋城市"), "location", "",
         TEXTS.render("unsupported_kind", kind="location")),
        (lambda s: s.link("oA", "通知", "安全生产月", "https://example.org/n"), "link", "",
         TEXTS.render("unsupported_kind", kind="link")),
        (lambda s: s.event("oA", "subscribe"), "event", "subscribe", TEXTS.render("greeting")),
        (lambda s: s.event("oA", "unsubscribe"), "event", "unsubscribe", None),
        (lambda s: s.event("oA", "CLICK", "HELP"), "event", "CLICK", TEXTS.render("help")),
        (lambda s: s.event("oA", "VIEW", "https://example.org/form"), "event", "VIEW", None),
        (lambda s: s.event("oA", "TEMPLATESENDJOBFINISH", MsgID=200163836, Status="success"), "event",
         "TEMPLATESENDJOBFINISH", None),
    ],
    ids=["text-help", "text-other", "image", "voice", "video", "shortvideo", "location", "link", "subscribe",
         "unsubscribe", "click", "view", "templatesendjobfinish"],
)
def test_every_message_type_is_parsed_logged_and_answered(start_bot: StartBot, send, kind, event, expected) -> None:
    bot = start_bot()
    reply = send(bot.side)
    assert reply.status_code == 200
    assert reply.content == expected
    if expected is None:
        assert reply.body == "success"
    else:
        assert (reply.fields["ToUserName"], reply.fields["FromUserName"]) == ("oA", bot.side.account)
    [row] = bot.inbound()
    assert (row.openid, row.msg_type, row.event, row.status) == ("oA", kind, event, InboundStatus.ANSWERED)
    assert "<MsgType><![CDATA[" + kind in row.raw


def test_a_persons_own_message_opens_the_48_hour_window_and_a_click_only_the_short_one(start_bot: StartBot) -> None:
    bot = start_bot()
    bot.side.event("oA", "CLICK", "HELP")
    clicked = bot.person("oA")
    assert clicked is not None and clicked.last_message_at is None and clicked.last_interaction_at is not None
    bot.side.text("oA", "帮助")
    wrote = bot.person("oA")
    assert wrote is not None and wrote.last_message_at is not None


def test_following_is_kept_from_subscribe_and_unsubscribe(start_bot: StartBot) -> None:
    bot = start_bot()
    bot.side.event("oA", "unsubscribe")
    assert bot.person("oA").following is False
    bot.side.event("oA", "subscribe")
    assert bot.person("oA").following is True


def test_a_reply_quoting_cdata_terminators_and_markup_stays_well_formed(start_bot: StartBot) -> None:
    bot = start_bot()
    typed = "a]]>b<c>&d"
    reply = bot.side.text("oA", typed)
    assert reply.content == TEXTS.render("not_understood", text=typed, newcomer=True)
    assert typed in reply.content


def test_reply_xml_drops_characters_xml_forbids() -> None:
    xml = text_reply_xml("oA", "gh_1", "警告\x00\x08\x0b\x1f\ufffe 结束]]>", 1700000000)
    assert fromstring(xml).findtext("Content") == "警告 结束]]>"


def test_two_people_whose_msgids_collide_are_both_handled(start_bot: StartBot) -> None:
    bot = start_bot()
    first = bot.side.text("oA", "帮助", msg_id=6054768590064713728)
    second = bot.side.text("oB", "帮助", msg_id=6054768590064713728)
    assert first.content == second.content == TEXTS.render("help")
    assert [(row.openid, row.deliveries) for row in bot.inbound()] == [("oA", 1), ("oB", 1)]


def test_a_redelivered_message_gets_the_first_answer_without_being_handled_again(start_bot: StartBot) -> None:
    dispatch = RecordingDispatch()
    bot = start_bot(dispatch=dispatch)
    xml = bot.side.message_xml("oA", "text", Content="帮助")
    answers = [bot.side.deliver(xml) for _ in range(4)]
    assert [a.content for a in answers] == [TEXTS.render("help")] * 4
    assert dispatch.calls == ["帮助"]
    [row] = bot.inbound()
    assert row.deliveries == 4


def test_events_of_one_second_are_told_apart_by_event_and_key(start_bot: StartBot) -> None:
    dispatch = RecordingDispatch()
    bot = start_bot(dispatch=dispatch)
    bot.side.event("oA", "CLICK", "HELP")
    bot.side.event("oA", "VIEW", "https://example.org/form")
    assert len(bot.inbound()) == 2
    assert dispatch.calls == ["HELP", "https://example.org/form"]


def test_an_unknown_message_type_is_logged_and_answered_success(start_bot: StartBot, caplog: pytest.LogCaptureFixture) -> None:
    dispatch = RecordingDispatch()
    bot = start_bot(dispatch=dispatch)
    reply = bot.side.deliver(bot.side.message_xml("oA", "miniprogrampage", Title="小程序", AppId="wx1"))
    assert (reply.status_code, reply.body) == (200, "success")
    assert dispatch.calls == []
    [row] = bot.inbound()
    assert (row.msg_type, row.status) == ("miniprogrampage", InboundStatus.ANSWERED)
    assert "unknown MsgType 'miniprogrampage'" in caplog.text


def test_a_failing_handler_apologises_once_and_is_not_run_again(start_bot: StartBot, caplog: pytest.LogCaptureFixture) -> None:
    dispatch = RecordingDispatch(fail=True)
    bot = start_bot(dispatch=dispatch)
    xml = bot.side.message_xml("oA", "text", Content="帮助")
    first, retry = bot.side.deliver(xml), bot.side.deliver(xml)
    assert first.content == retry.content == TEXTS.render("handler_failed")
    assert "Traceback" not in first.body
    assert dispatch.calls == ["帮助"]
    [row] = bot.inbound()
    assert row.status is InboundStatus.FAILED
    assert "RuntimeError: a handler bug" in caplog.text


def test_a_message_is_stored_raw_before_handling(start_bot: StartBot) -> None:
    bot = start_bot()
    xml = bot.side.message_xml("oA", "text", Content="填报", msg_id=1234567890123456789)
    bot.side.deliver(xml)
    [row] = bot.inbound()
    assert row.raw == xml
    assert row.dedupe_key == "msg:1234567890123456789"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>gh_1</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh_1</ToUserName><FromUserName>oA</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&secret;</Content><MsgId>1</MsgId></xml>"""


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"<xml><ToUserName>gh_1</ToUserName><FromUserName>oA", 400),
        (b"not xml at all", 400),
        (b"", 400),
        (b"<other><FromUserName>oA</FromUserName></other>", 400),
        (b"<xml><FromUserName>oA</FromUserName><MsgType>text</MsgType></xml>", 400),
        (BILLION_LAUGHS.encode(), 400),
        (XXE.encode(), 400),
        (b"<!DOCTYPE xml SYSTEM 'http://127.0.0.1:9/x.dtd'><xml><FromUserName>oA</FromUserName></xml>", 400),
        (b"<xml><FromUserName>oA</FromUserName><Content>&undeclared;</Content></xml>", 400),
        (b"<?xml version='1.0' encoding='gbk'?><xml><FromUserName>oA</FromUserName></xml>", 400),
        (b"<xml><Content>" + b"x" * 70_000 + b"</Content></xml>", 413),
    ],
    ids=["truncated", "not-xml", "empty", "wrong-root", "no-createtime", "billion-laughs", "xxe", "external-dtd",
         "undeclared-entity", "multibyte-encoding", "oversize"],
)
def test_bad_bodies_are_refused_with_a_short_plain_answer_and_nothing_stored(start_bot: StartBot, body: bytes, status: int) -> None:
    bot = start_bot()
    now = str(int(datetime.now(timezone.utc).timestamp()))
    reply = bot.side.post_raw(body, bot.side.signed_params(now, "7"))
    assert reply.status_code == status
    assert len(reply.body) < 40 and "Traceback" not in reply.body and "<" not in reply.body
    assert bot.inbound() == []


def test_a_body_over_the_limit_is_refused_even_without_content_length(start_bot: StartBot) -> None:
    bot = start_bot()
    now = str(int(datetime.now(timezone.utc).timestamp()))

    def chunks():
        for _ in range(20):
            yield b"<" + b"x" * 8191

    response = bot.side.client.post("/wechat", params=bot.side.signed_params(now, "7"), content=chunks())
    assert response.status_code == 413
    assert bot.inbound() == []


def test_the_callback_answers_only_get_and_post(start_bot: StartBot) -> None:
    bot = start_bot()
    now = str(int(datetime.now(timezone.utc).timestamp()))
    response = bot.side.client.put("/wechat", params=bot.side.signed_params(now, "7"), content=b"<xml></xml>")
    assert response.status_code == 405
    assert bot.inbound() == []


@pytest.mark.parametrize("skew", [timedelta(minutes=-10), timedelta(minutes=10)], ids=["stale", "far-future"])
def test_a_replayed_or_far_future_timestamp_is_refused(start_bot: StartBot, skew: timedelta) -> None:
    bot = start_bot()
    xml = bot.side.message_xml("oA", "text", Content="帮助")
    then = str(int((datetime.now(timezone.utc) + skew).timestamp()))
    reply = bot.side.post_raw(xml, bot.side.signed_params(then, "7"))
    assert reply.status_code == 403
    assert bot.inbound() == []


def test_an_encrypted_request_to_a_plaintext_bot_is_refused(start_bot: StartBot) -> None:
    bot = start_bot()
    now = str(int(datetime.now(timezone.utc).timestamp()))
    params = {**bot.side.signed_params(now, "7"), "encrypt_type": "aes", "msg_signature": "0" * 40}
    reply = bot.side.post_raw("<xml><Encrypt>abc</Encrypt></xml>", params)
    assert reply.status_code == 400
    assert bot.inbound() == []


def test_health_reports_the_database(start_bot: StartBot) -> None:
    bot = start_bot()
    response = bot.side.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"database": "ok", "access_token": "none"})


def test_a_served_bot_copies_the_write_ahead_log_into_the_database_file(start_bot: StartBot, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write-ahead log")
    bot = start_bot()
    for n in range(5):
        assert bot.side.text(f"o{n}", "帮助").content == TEXTS.render("help")
    # Opened immutable, SQLite reads the file alone, not the log: what a checkpoint has copied.
    file_only = f"file:{make_url(database_url).database}?immutable=1"
    deadline = time.monotonic() + 5
    while True:
        with contextlib.closing(sqlite3.connect(file_only, uri=True)) as database_file:
            copied = database_file.execute("SELECT count(*) FROM inbound_message").fetchone()[0]
        if copied == 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert copied == 5
