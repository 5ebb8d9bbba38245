"""In doubt: a sender dies between marking a reminder ``sending`` and writing WeChat's answer.

WeChat's own record (the fake's pushes) decides what reached whom. A template message WeChat
accepted is confirmed by the TEMPLATESENDJOBFINISH it pushes to the bot's callback; one it never
accepted gets no event and is sent again after the wait; a customer-service message in doubt is
never sent again.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable, Mapping

from sqlmodel import select

from bot.store.engine import make_engine, session
from bot.store.models import Delivery
from scheduler.run import Reminders
from tests.fixtures_fake import losing_message_answers
from tests.fixtures_reminders import TEMPLATE_ID, LaterClock, ReminderWorld, beijing, build_sender

TUESDAY = beijing("2023-06-06 18:00")
UNITS = [f"第{n}单位" for n in range(6)]


class Killed(BaseException):
    """The sender process is gone (a BaseException, as SIGKILL leaves no handler a say)."""


class DiesMidFanOut:
    """WeChat as the sender sees it until the process dies: the first ``accepted`` sends reach
    WeChat, the last of them dies before its answer is read, and every later one dies before its
    request leaves. All of a moment's sends are under way at once, so each row was marked."""

    def __init__(self, api: object, accepted: int):
        self.api = api
        self.accepted = accepted
        self.calls = 0
        self._lock = threading.Lock()

    def _call(self, send: Callable[[], object]) -> object:
        with self._lock:
            self.calls += 1
            number = self.calls
        if number > self.accepted:
            raise Killed()
        answer = send()
        if number == self.accepted:
            raise Killed()
        return answer

    def send_text(self, openid: str, content: str) -> None:
        self._call(lambda: self.api.send_text(openid, content))  # type: ignore[attr-defined]

    def send_template(self, openid: str, template_id: str, data: Mapping[str, str], url: str | None = None) -> str:
        return str(self._call(lambda: self.api.send_template(openid, template_id, data, url)))  # type: ignore[attr-defined]


def _liaisons(world: ReminderWorld) -> None:
    for n, unit in enumerate(UNITS):
        world.person(f"o_unit{n}", unit=unit)


def _killed_sender(world: ReminderWorld, accepted: int) -> None:
    doomed = Reminders(world.engine, DiesMidFanOut(world.reminders.api, accepted), world.reminders.texts,
                       template_messages=True, concurrency=len(UNITS))
    try:
        doomed.run_due(TUESDAY)
    except Killed:
        pass


def _received(world: ReminderWorld) -> list[int]:
    return [len(world.fake.pushes(f"o_unit{n}")) for n in range(len(UNITS))]


def _ledger(world: ReminderWorld) -> list[tuple[str, int, str | None]]:
    with session(world.engine) as db:
        return [(row.status, row.attempts, row.job_status) for row in db.exec(select(Delivery).order_by(Delivery.id))]


def test_a_sender_killed_mid_fan_out_and_restarted_reaches_each_liaison_once(
        reminder_world: ReminderWorld, serve_callback: Callable[..., str], tmp_path: Path) -> None:
    world = reminder_world
    serve_callback(world)
    _liaisons(world)
    world.at(TUESDAY)
    _killed_sender(world, accepted=3)
    assert sorted(_received(world)) == [0, 0, 0, 1, 1, 1]
    assert world.fake.wait_for_events()
    # WeChat's events confirmed the three it accepted, the third one's answer never written; the
    # other three died before their request left.
    assert sorted(status for status, _n, _job in _ledger(world)) == ["sending"] * 3 + ["sent"] * 3

    # Restarted at once: the three in doubt wait for an event that may still come.
    real_time = LaterClock()
    engine = make_engine(str(world.engine.url))
    restarted = build_sender(engine, world.fake, world.base_url, tmp_path, real_clock=real_time)
    restarted.run_due(beijing("2023-06-06 18:01"))
    assert sorted(_received(world)) == [0, 0, 0, 1, 1, 1]

    # No event came within the wait: WeChat never accepted them. Two senders try at once.
    real_time.wait()
    twin = build_sender(engine, world.fake, world.base_url, tmp_path, real_clock=real_time)
    start = threading.Barrier(2)

    def run(sender: Reminders) -> None:
        start.wait()
        sender.run_due(beijing("2023-06-06 18:10"))

    threads = [threading.Thread(target=run, args=(sender,)) for sender in (restarted, twin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert world.fake.wait_for_events()

    assert _received(world) == [1] * len(UNITS)
    ledger = _ledger(world)
    assert {(status, job) for status, _n, job in ledger} == {("sent", "success")}
    assert sorted(attempts for _s, attempts, _j in ledger) == [1, 1, 1, 2, 2, 2]
    engine.dispose()


def test_an_event_that_comes_late_settles_the_reminder_without_a_resend(
        reminder_world: ReminderWorld, serve_callback: Callable[..., str], tmp_path: Path) -> None:
    world = reminder_world
    world.fake.callback_timeout = 1.0
    serve_callback(world, start=False)  # the bot is down when WeChat first pushes
    world.person("o_unit0", unit=UNITS[0])
    world.at(TUESDAY)
    _killed_sender(world, accepted=1)
    real_time = LaterClock()
    restarted = build_sender(world.engine, world.fake, world.base_url, tmp_path, real_clock=real_time)
    restarted.run_due(beijing("2023-06-06 18:01"))
    assert _ledger(world) == [("sending", 1, None)]

    while not world.fake.event_pushes()[0].tries:  # WeChat's first try finds the bot down
        time.sleep(0.01)
    serve_callback(world)  # back up before WeChat's second try
    assert world.fake.wait_for_events()
    (event,) = world.fake.event_pushes()
    assert (event.tries, event.answered) == (("ConnectError", "200"), True)
    real_time.wait()
    restarted.run_due(beijing("2023-06-06 18:10"))

    assert len(world.fake.pushes("o_unit0")) == 1
    assert _ledger(world) == [("sent", 1, "success")]


class EventBeforeAnswer:
    """WeChat's event reaches the bot before the send's own answer is read."""

    def __init__(self, world: ReminderWorld):
        self.world = world

    def send_text(self, openid: str, content: str) -> None:
        raise AssertionError("not used: the liaison is silent, reminders go as templates")

    def send_template(self, openid: str, template_id: str, data: Mapping[str, str], url: str | None = None) -> str:
        msgid = self.world.reminders.api.send_template(openid, template_id, data, url)  # type: ignore[attr-defined]
        assert self.world.fake.wait_for_events()
        assert _ledger(self.world) == [("sent", 1, "success")]  # settled by the event, by OpenID
        return str(msgid)


def test_an_event_before_the_answer_settles_the_row_and_the_answer_agrees(
        reminder_world: ReminderWorld, serve_callback: Callable[..., str]) -> None:
    world = reminder_world
    serve_callback(world)
    world.person("o_unit0", unit=UNITS[0])
    world.at(TUESDAY)
    Reminders(world.engine, EventBeforeAnswer(world), world.reminders.texts, template_messages=True,
              concurrency=1).run_due(TUESDAY)
    (push,) = world.fake.pushes("o_unit0")
    with session(world.engine) as db:
        (row,) = db.exec(select(Delivery)).all()
    assert (row.status, row.wechat_msg_id, row.job_status) == ("sent", str(push.msgid), "success")


def test_a_customer_service_reminder_in_doubt_is_never_sent_again(
        reminder_world: ReminderWorld, serve_callback: Callable[..., str], tmp_path: Path) -> None:
    world = reminder_world
    serve_callback(world)
    world.at(beijing("2023-06-06 17:00"))
    for n in range(2):
        world.person(f"o_unit{n}", unit=UNITS[n])
        world.writes(f"o_unit{n}")  # an hour before: customer service
    world.at(TUESDAY)
    _killed_sender(world, accepted=1)  # one reached WeChat, the other never left
    assert sorted(len(world.fake.pushes(f"o_unit{n}")) for n in range(2)) == [0, 1]

    real_time = LaterClock()
    real_time.wait()
    build_sender(world.engine, world.fake, world.base_url, tmp_path, real_clock=real_time).run_due(
        beijing("2023-06-06 18:10"))

    assert sorted(len(world.fake.pushes(f"o_unit{n}")) for n in range(2)) == [0, 1]
    assert {p.channel for p in world.fake.pushes()} == {"custom"}
    assert [status for status, _n, _job in _ledger(world)] == ["sending", "sending"]


def test_while_wechats_job_events_still_flow_a_reminder_in_doubt_waits_for_its_own(
        reminder_world: ReminderWorld, serve_callback: Callable[..., str], tmp_path: Path) -> None:
    world = reminder_world
    real_time = LaterClock()
    serve_callback(world, clock=real_time)  # the bot's clock: when it heard each event
    world.person("o_unit0", unit=UNITS[0])
    world.person("o_other")  # follows the account, owes nothing
    world.at(TUESDAY)
    doomed = Reminders(world.engine, DiesMidFanOut(world.reminders.api, 0), world.reminders.texts,
                       template_messages=True, concurrency=1, real_clock=real_time)
    try:
        doomed.run_due(TUESDAY)
    except Killed:
        pass
    wait = timedelta(minutes=1)
    restarted = build_sender(world.engine, world.fake, world.base_url, tmp_path, real_clock=real_time,
                             resend_after=wait)

    # A minute later an event still arrives (a backlog after a fan-out looks like this).
    real_time.wait(wait + timedelta(seconds=1))
    world.reminders.api.send_template("o_other", TEMPLATE_ID, {"thing1": "另一项报送", "time2": "18:00",  # type: ignore[attr-defined]
                                                               "thing3": "待报送"})
    assert world.fake.wait_for_events()
    restarted.run_due(beijing("2023-06-06 18:10"))
    assert len(world.fake.pushes("o_unit0")) == 0

    # Quiet for the whole wait: no event of it will come any more.
    real_time.wait(wait + timedelta(seconds=1))
    restarted.run_due(beijing("2023-06-06 18:20"))
    assert len(world.fake.pushes("o_unit0")) == 1


def test_reminders_whose_answers_the_network_lost_are_settled_by_wechats_events_not_resent(
        reminder_world: ReminderWorld, serve_callback: Callable[..., str], tmp_path: Path) -> None:
    world = reminder_world
    serve_callback(world)
    _liaisons(world)
    world.at(TUESDAY)
    with losing_message_answers(world.base_url) as lossy:
        tally = build_sender(world.engine, world.fake, lossy, tmp_path).run_due(TUESDAY)
    # Each request arrived once; none was repeated, none counted failed: they are in doubt.
    assert _received(world) == [1] * len(UNITS)
    assert (tally.in_doubt, tally.failed, sum(tally.sent.values())) == (len(UNITS), 0, 0)

    assert world.fake.wait_for_events()
    real_time = LaterClock()
    real_time.wait()
    build_sender(world.engine, world.fake, world.base_url, tmp_path, real_clock=real_time).run_due(
        beijing("2023-06-06 18:10"))

    assert _received(world) == [1] * len(UNITS)
    assert {(status, job) for status, _n, job in _ledger(world)} == {("sent", "success")}
