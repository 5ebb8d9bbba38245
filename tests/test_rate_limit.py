"""One person sending faster than MESSAGES_PER_MINUTE is answered once, politely, then ``success``:
every message is stored, none of the excess is handled, and everyone else is answered as usual."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import httpx
import pytest
from sqlmodel import select

from bot.store.engine import make_engine, session
from bot.store.models import InboundMessage, InboundStatus
from bot.texts import Texts
from simulator.wechat_side import Reply, WeChatSide
from tests.fixtures_forms import Clock
from tests.fixtures_gateway import AES_KEY, Bot, RecordingDispatch, StartBot
from tests.test_serve_workers import APP_ID, TOKEN, bot_env, served  # noqa: F401  (fixtures)

TEXTS = Texts()
HELP = TEXTS.render("help")


def slow_down(per_minute: int) -> str:
    return TEXTS.render("rate_limited", per_minute=per_minute)


def statuses(bot: Bot, openid: str) -> Counter[InboundStatus]:
    return Counter(row.status for row in bot.inbound() if row.openid == openid)


def test_a_person_sending_35_messages_in_a_minute_gets_30_answered_one_polite_reply_and_then_success(
        start_bot: StartBot) -> None:
    clock, dispatch = Clock(), RecordingDispatch()
    bot = start_bot(clock=clock, dispatch=dispatch)
    assert bot.settings.messages_per_minute == 30

    replies = []
    for n in range(35):
        replies.append(bot.side.text("oFast", "帮助"))
        if n == 10:
            # Someone else, meanwhile, is answered as usual.
            assert bot.side.text("oCalm", "帮助").content == HELP
        clock.advance(seconds=1)
    assert [r.content for r in replies[:30]] == [HELP] * 30
    assert replies[30].content == slow_down(30)
    assert [(r.status_code, r.body) for r in replies[31:]] == [(200, "success")] * 4
    # Nothing over the limit reached a handler, and every message is kept.
    assert len(dispatch.calls) == 31  # oFast's 30 and oCalm's one
    assert statuses(bot, "oFast") == {InboundStatus.ANSWERED: 30, InboundStatus.LIMITED: 5}
    assert bot.side.text("oCalm", "帮助").content == HELP

    # Until a minute has passed since their first message (sent 35 s ago), only success;
    clock.advance(seconds=24)
    assert bot.side.text("oFast", "帮助").body == "success"
    # then the person is answered again.
    clock.advance(seconds=1)
    assert bot.side.text("oFast", "帮助").content == HELP
    assert statuses(bot, "oFast") == {InboundStatus.ANSWERED: 31, InboundStatus.LIMITED: 6}


def test_a_minute_is_counted_from_the_persons_first_message_in_it(start_bot: StartBot) -> None:
    clock = Clock()
    bot = start_bot(clock=clock, aes_key=AES_KEY, MESSAGES_PER_MINUTE="2")
    assert [bot.side.text("oFast", "帮助").content for _ in range(2)] == [HELP, HELP]
    clock.advance(seconds=59)
    assert bot.side.text("oFast", "帮助").content == slow_down(2)
    clock.advance(seconds=1)
    assert [bot.side.text("oFast", "帮助").content for _ in range(2)] == [HELP, HELP]
    assert bot.side.text("oFast", "帮助").content == slow_down(2)


def test_wechats_retries_are_not_counted_again_and_get_the_first_answer(start_bot: StartBot) -> None:
    clock, dispatch = Clock(), RecordingDispatch()
    bot = start_bot(clock=clock, dispatch=dispatch, MESSAGES_PER_MINUTE="3")
    xmls = [bot.side.message_xml("oFast", "text", Content="帮助") for _ in range(5)]

    answered = [bot.side.deliver(xml).content for xml in xmls[:3]]
    retried = [bot.side.deliver(xml).content for xml in xmls[:3]]
    assert answered == retried == [HELP] * 3
    over, over_again = bot.side.deliver(xmls[3]), bot.side.deliver(xmls[3])
    assert over.content == over_again.content == slow_down(3)
    silent, silent_again = bot.side.deliver(xmls[4]), bot.side.deliver(xmls[4])
    assert silent.body == silent_again.body == "success"
    # A retry after the minute passed is still the message over the limit: stored, never handled.
    clock.advance(minutes=2)
    assert bot.side.deliver(xmls[4]).body == "success"

    assert len(dispatch.calls) == 3
    assert [(row.status, row.deliveries) for row in bot.inbound()] == (
        [(InboundStatus.ANSWERED, 2)] * 3 + [(InboundStatus.LIMITED, 2), (InboundStatus.LIMITED, 3)])


@pytest.mark.parametrize(
    ("send", "counted"),
    [
        (lambda s: s.text("oA", "帮助"), True),
        (lambda s: s.image("oA", "media-1"), True),
        (lambda s: s.voice("oA", "media-2", recognition="你好"), True),
        (lambda s: s.location("oA", 35.49, 112.85, label="晋城市"), True),
        (lambda s: s.event("oA", "CLICK", "HELP"), True),
        (lambda s: s.event("oA", "SCAN", "7", Ticket="gQH47joAAAAAAAAAASxodHRwOi8v"), True),
        (lambda s: s.event("oA", "scancode_waitmsg", "SCAN_1"), True),
        # Following and unfollowing are recorded whatever the count: the bot must know whom it may write to.
        (lambda s: s.event("oA", "subscribe"), False),
        (lambda s: s.event("oA", "unsubscribe"), False),
        # What WeChat reports on its own, not the person.
        (lambda s: s.event("oA", "VIEW", "https://example.org/form"), False),
        (lambda s: s.event("oA", "LOCATION", Latitude="35.49", Longitude="112.85", Precision="65.0"), False),
        (lambda s: s.event("oA", "TEMPLATESENDJOBFINISH", MsgID=200163836, Status="success"), False),
        (lambda s: s.event("oA", "MASSSENDJOBFINISH", MsgID=1000001625, Status="send success"), False),
    ],
    ids=["text", "image", "voice", "location", "click", "scan", "scancode", "subscribe", "unsubscribe", "view",
         "location-event", "templatesendjobfinish", "masssendjobfinish"],
)
def test_what_a_person_sends_or_clicks_counts_and_what_wechat_reports_does_not(
        start_bot: StartBot, send: Callable[[WeChatSide], Reply], counted: bool) -> None:
    bot = start_bot(MESSAGES_PER_MINUTE="1")
    assert bot.side.text("oA", "帮助").content == HELP
    reply = send(bot.side)
    last = bot.inbound()[-1]
    if counted:
        assert (last.status, reply.content) == (InboundStatus.LIMITED, slow_down(1))
    else:
        assert last.status is InboundStatus.ANSWERED


def test_unfollowing_while_over_the_limit_is_recorded(start_bot: StartBot) -> None:
    bot = start_bot(MESSAGES_PER_MINUTE="1")
    bot.side.text("oA", "帮助")
    assert bot.side.text("oA", "帮助").content == slow_down(1)
    bot.side.event("oA", "unsubscribe")
    person = bot.person("oA")
    assert person is not None and person.following is False


def test_no_limit_when_messages_per_minute_is_0(start_bot: StartBot) -> None:
    bot = start_bot(MESSAGES_PER_MINUTE="0")
    assert [bot.side.text("oFast", "帮助").content for _ in range(40)] == [HELP] * 40
    assert statuses(bot, "oFast") == {InboundStatus.ANSWERED: 40}


def concurrently(sides: list[WeChatSide], each: int) -> list[Reply]:
    """Every side sends ``each`` texts from oFast, all sides at once; every reply."""
    barrier = threading.Barrier(len(sides))

    def send(side: WeChatSide) -> list[Reply]:
        barrier.wait()
        return [side.text("oFast", "帮助") for _ in range(each)]

    with ThreadPoolExecutor(len(sides)) as pool:
        return [r for result in pool.map(send, sides) for r in result]


def assert_counted_once_each(rows: list[InboundMessage], replies: list[Reply]) -> None:
    """36 messages of one person: 30 handled, 6 stored as limited, one polite reply among them."""
    limited = [row for row in rows if row.status is InboundStatus.LIMITED]
    assert (len(rows), len(limited)) == (36, 6)
    assert [row.reply is not None for row in limited].count(True) == 1
    assert Counter(r.content for r in replies)[slow_down(30)] == 1


def test_the_count_is_exact_when_one_persons_messages_arrive_at_once(start_bot: StartBot) -> None:
    bot = start_bot(served=True)
    clients = [httpx.Client(base_url=bot.side.client.base_url, timeout=30) for _ in range(6)]
    sides = [WeChatSide(c, token=bot.settings.wechat_token, app_id=bot.settings.wechat_app_id) for c in clients]
    replies = concurrently(sides, 6)
    for client in clients:
        client.close()
    assert_counted_once_each(bot.inbound(), replies)


@pytest.mark.slow
def test_the_limit_holds_across_two_web_workers(served: tuple[str, subprocess.Popen[bytes]],  # noqa: F811
                                                sqlite_url: str) -> None:
    base_url, _ = served
    clients = [httpx.Client(base_url=base_url, timeout=30) for _ in range(6)]
    # Six connections at once, spread over both workers.
    replies = concurrently([WeChatSide(c, token=TOKEN, app_id=APP_ID) for c in clients], 6)
    for client in clients:
        client.close()
    engine = make_engine(sqlite_url)
    with session(engine) as db:
        rows = list(db.exec(select(InboundMessage)).all())
    engine.dispose()
    assert_counted_once_each(rows, replies)
