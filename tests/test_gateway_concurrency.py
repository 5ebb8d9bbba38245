"""Retries, ordering and the 5-second budget, against the bot served by uvicorn."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

import handlers
from bot.store.engine import session
from bot.store.models import Conversation, InboundMessage, InboundStatus, utcnow
from bot.texts import Texts
from simulator.wechat_side import Reply
from handlers.base import Outcome
from handlers.changes import ClaimUnit
from tests.fixtures_gateway import Bot, RecordingDispatch, StartBot

TEXTS = Texts()


def _wait_for_status(bot: Bot, status: InboundStatus, timeout: float = 10.0) -> list[InboundStatus]:
    deadline = time.monotonic() + timeout
    while True:
        statuses = [row.status for row in bot.inbound()]
        if all(s is status for s in statuses) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.01)


def test_a_message_delivered_four_times_concurrently_is_handled_once(start_bot: StartBot) -> None:
    dispatch = RecordingDispatch(gate=threading.Event())
    bot = start_bot(dispatch=dispatch, served=True)
    xml = bot.side.message_xml("oA", "text", Content="帮助")
    barrier = threading.Barrier(4)

    def deliver() -> Reply:
        barrier.wait()
        return bot.side.deliver(xml)

    with ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(deliver) for _ in range(4)]
        assert dispatch.started.wait(10)
        time.sleep(0.2)  # let the re-deliveries arrive while the first is held in its handler
        dispatch.gate.set()
        replies = [answer.result() for answer in answers]
    assert dispatch.calls == ["帮助"]
    assert [r.content for r in replies] == [TEXTS.render("help")] * 4
    [row] = bot.inbound()
    assert (row.deliveries, row.status) == (4, InboundStatus.ANSWERED)


def test_a_handler_over_the_budget_answers_success_and_pushes_the_reply_later(start_bot: StartBot) -> None:
    dispatch = RecordingDispatch(gate=threading.Event())
    bot = start_bot(dispatch=dispatch, REPLY_BUDGET_SECONDS="0.2")
    bot.fake.user_wrote("oA")
    reply = bot.side.text("oA", "帮助")
    assert (reply.status_code, reply.body) == (200, "success")
    dispatch.gate.set()
    assert bot.pushed_texts("oA", 1) == [TEXTS.render("help")]
    assert _wait_for_status(bot, InboundStatus.ANSWERED) == [InboundStatus.ANSWERED]


def test_a_late_reply_that_cannot_be_pushed_leaves_the_message_deferred(start_bot: StartBot) -> None:
    dispatch = RecordingDispatch(gate=threading.Event())
    bot = start_bot(dispatch=dispatch, REPLY_BUDGET_SECONDS="0.2")
    bot.fake.unfollow("oA")  # WeChat refuses the push: 45015
    assert bot.side.text("oA", "帮助").body == "success"
    dispatch.gate.set()
    assert _wait_for_status(bot, InboundStatus.DEFERRED) == [InboundStatus.DEFERRED]


def test_one_persons_messages_are_handled_in_arrival_order(start_bot: StartBot) -> None:
    dispatch = RecordingDispatch(gate=threading.Event())
    bot = start_bot(dispatch=dispatch, served=True, REPLY_BUDGET_SECONDS="0.3")
    bot.fake.user_wrote("oA")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(bot.side.text, "oA", "帮助")
        assert dispatch.started.wait(10)
        second = bot.side.text("oA", "你好")  # waits behind the first, so its budget runs out
        dispatch.gate.set()
        assert first.result().body == second.body == "success"
    assert bot.pushed_texts("oA", 2) == [TEXTS.render("help"), TEXTS.render("not_understood", text="你好", newcomer=True)]
    assert dispatch.events == ["start 帮助", "end 帮助", "start 你好", "end 你好"]


def test_other_people_are_not_held_up_by_a_slow_one(start_bot: StartBot) -> None:
    gate = threading.Event()
    slow = RecordingDispatch(gate=gate)

    def dispatch(incoming, state, ctx):
        if incoming.openid == "oSlow":
            return slow(incoming, state, ctx)
        return RecordingDispatch()(incoming, state, ctx)

    bot = start_bot(dispatch=dispatch, served=True)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(bot.side.text, "oSlow", "帮助")
        assert slow.started.wait(10)
        assert bot.side.text("oFast", "帮助").content == TEXTS.render("help")
        gate.set()
        assert held.result().content == TEXTS.render("help")


def test_a_handling_that_cannot_be_written_fails_alone_among_those_committed_with_it(start_bot: StartBot) -> None:
    """On SQLite the writes queued at one moment share a transaction; one that fails must not undo
    or repeat the others. The test holds the writer's turn twice so that the six claims, and then
    the six handlings, wait and go together."""
    gate, started = threading.Event(), threading.Semaphore(0)

    def dispatch(incoming, state, ctx):
        started.release()
        assert gate.wait(30)
        if incoming.openid == "oBad":  # a handler bug: a unit that does not exist
            return Outcome(replies=("好的",), changes=(ClaimUnit(unit_id=999_999, name="王五", reminders=False),))
        return handlers.dispatch(incoming, state, ctx)

    bot = start_bot(dispatch=dispatch, served=True, HANDLER_THREADS="8")
    people = ["oA", "oB", "oC", "oD", "oE", "oBad"]
    hold = sa.text("UPDATE inbound_message SET deliveries = deliveries")
    with ThreadPoolExecutor(len(people)) as pool:
        with bot.engine.begin() as writer:
            writer.execute(hold)
            answers = {openid: pool.submit(bot.side.text, openid, "帮助") for openid in people}
            time.sleep(0.3)
        for _ in people:
            assert started.acquire(timeout=10)
        with bot.engine.begin() as writer:
            writer.execute(hold)
            gate.set()
            time.sleep(0.3)
        replies = {openid: answer.result(timeout=30) for openid, answer in answers.items()}
    assert {openid: reply.content for openid, reply in replies.items() if openid != "oBad"} == {
        openid: TEXTS.render("help") for openid in people if openid != "oBad"}
    assert replies["oBad"].status_code == 503
    rows = {row.openid: row for row in bot.inbound()}
    assert {openid: (row.deliveries, row.status) for openid, row in rows.items()} == {
        **{openid: (1, InboundStatus.ANSWERED) for openid in people}, "oBad": (1, InboundStatus.CLAIMED)}
    assert bot.person("oBad") is None
    assert all(bot.person(openid) is not None for openid in people if openid != "oBad")


def test_a_slow_decision_holds_up_nobody_whose_message_came_with_it(start_bot: StartBot) -> None:
    """Decisions asked for together go to one handler thread; the slow one must not keep the
    others waiting behind it. Holding the writer's turn makes the claims, and so the decisions,
    go together, the slow person's first."""
    gate = threading.Event()

    def dispatch(incoming, state, ctx):
        if incoming.openid == "oSlow":
            assert gate.wait(30)
        return handlers.dispatch(incoming, state, ctx)

    bot = start_bot(dispatch=dispatch, served=True, HANDLER_THREADS="2")
    others = ["oA", "oB", "oC"]
    with ThreadPoolExecutor(len(others) + 1) as pool:
        with bot.engine.begin() as writer:
            writer.execute(sa.text("UPDATE inbound_message SET deliveries = deliveries"))
            slow = pool.submit(bot.side.text, "oSlow", "帮助")
            time.sleep(0.2)
            answers = [pool.submit(bot.side.text, openid, "帮助") for openid in others]
            time.sleep(0.2)
        try:
            assert [answer.result(timeout=3).content for answer in answers] == [TEXTS.render("help")] * len(others)
            assert not slow.done()
        finally:
            gate.set()
        assert slow.result(timeout=10).content == TEXTS.render("help")


def test_a_decision_on_a_state_another_worker_moved_meanwhile_is_taken_again(start_bot: StartBot) -> None:
    """The handler decides on the state read with the claim; if another worker moved the person's
    dialogue before the handling is written, the decision is taken again on the new state."""
    gate, seen = threading.Event(), []

    def dispatch(incoming, state, ctx):
        seen.append(state.flow)
        if len(seen) == 1:
            assert gate.wait(30)
        return handlers.dispatch(incoming, state, ctx)

    bot = start_bot(dispatch=dispatch, served=True)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(bot.side.text, "oA", "帮助")
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        with session(bot.engine) as db, db.begin():
            db.add(Conversation(openid="oA", flow="elsewhere", step="somewhere", data={}, updated_at=utcnow()))
        gate.set()
        assert answer.result(timeout=10).content == TEXTS.render("help")
    assert seen == ["", "elsewhere"]


def _claimed_by_another_worker(bot: Bot, xml: str, dedupe_key: str, age: timedelta) -> None:
    with session(bot.engine) as db, db.begin():
        db.add(InboundMessage(openid="oA", dedupe_key=dedupe_key, msg_type="text", raw=xml,
                              received_at=utcnow() - age))


def test_a_retry_of_a_claim_another_worker_left_unanswered_is_handled_not_answered_success(start_bot: StartBot) -> None:
    """WeChat sends a message again only when the first delivery got no answer in 5 s: that worker
    died or could not store it in time. A bare ``success`` here would end WeChat's retries with
    nobody handling the message, however young the claim."""
    dispatch = RecordingDispatch()
    bot = start_bot(dispatch=dispatch)
    xml = bot.side.message_xml("oA", "text", Content="帮助", msg_id=42)
    _claimed_by_another_worker(bot, xml, "msg:42", age=timedelta(seconds=0.2))
    assert bot.side.deliver(xml).content == TEXTS.render("help")
    assert dispatch.calls == ["帮助"]
    [row] = bot.inbound()
    assert (row.deliveries, row.status) == (2, InboundStatus.ANSWERED)


def test_a_claim_whose_worker_died_is_taken_over_by_the_retry(start_bot: StartBot) -> None:
    dispatch = RecordingDispatch()
    bot = start_bot(dispatch=dispatch)
    xml = bot.side.message_xml("oA", "text", Content="帮助", msg_id=43)
    _claimed_by_another_worker(bot, xml, "msg:43", age=timedelta(seconds=30))
    assert bot.side.deliver(xml).content == TEXTS.render("help")
    assert dispatch.calls == ["帮助"]
    [row] = bot.inbound()
    assert (row.deliveries, row.status) == (2, InboundStatus.ANSWERED)


def test_a_message_waiting_for_another_sqlite_writer_leaves_the_server_answering(start_bot: StartBot,
                                                                                database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer")
    bot = start_bot(served=True)
    with ThreadPoolExecutor(1) as pool, bot.engine.begin() as writer:
        writer.execute(sa.text("UPDATE inbound_message SET deliveries = deliveries"))
        waiting = pool.submit(bot.side.text, "oA", "帮助")
        time.sleep(0.3)
        # The message waits on a handler thread, not on the event loop: the server still answers,
        # and the health check reads without waiting for the writer's turn.
        assert bot.side.client.get("/wechat", params={"echostr": "x"}).status_code == 403
        assert bot.side.client.get("/healthz", timeout=2).json()["database"] == "ok"
        assert not waiting.done()
    assert waiting.result(timeout=10).content == TEXTS.render("help")
    assert [row.status for row in bot.inbound()] == [InboundStatus.ANSWERED]


def test_one_persons_messages_that_reach_two_workers_are_handled_in_the_order_sent(start_bot: StartBot) -> None:
    """Two web workers (two apps on one database): the later message, claimed by the second while
    the first still handles the earlier one, waits for it (issue 19, item 9)."""
    events: list[str] = []
    gate = threading.Event()

    def dispatch(incoming, state, ctx):
        events.append(f"start {incoming.text}")
        if incoming.text == "第一条":
            assert gate.wait(10)
        events.append(f"end {incoming.text}")
        return handlers.dispatch(incoming, state, ctx)

    first_worker = start_bot(dispatch=dispatch, WEB_WORKERS="2")
    second_worker = start_bot(dispatch=dispatch, WEB_WORKERS="2")
    # One second of WeChat's CreateTime: the MsgIds tell the order.
    earlier = first_worker.side.message_xml("oA", "text", msg_id=9001, Content="第一条")
    later = second_worker.side.message_xml("oA", "text", msg_id=9002, Content="第二条")
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(first_worker.side.deliver, earlier)
        deadline = time.monotonic() + 10
        while "start 第一条" not in events and time.monotonic() < deadline:
            time.sleep(0.01)
        threading.Timer(0.3, gate.set).start()
        assert second_worker.side.deliver(later).status_code == 200
        assert held.result().status_code == 200
    assert events == ["start 第一条", "end 第一条", "start 第二条", "end 第二条"]
