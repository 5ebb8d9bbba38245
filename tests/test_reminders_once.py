"""Exactly once: restarts, concurrent schedulers, downtime, and the in-doubt window."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Mapping

import pytest
from sqlmodel import select

from bot.store.engine import make_engine, session
from bot.outbound.delivery import record_template_job
from bot.store.models import Delivery
from scheduler.run import Reminders
from tests.fixtures_reminders import ReminderWorld, beijing, build_sender

TUESDAY = beijing("2023-06-06 18:00")
UNITS = [f"第{n}单位" for n in range(12)]


def _liaisons(world: ReminderWorld) -> None:
    for n, unit in enumerate(UNITS):
        world.person(f"o_unit{n}", unit=unit)


def _pushes_per_liaison(world: ReminderWorld) -> list[int]:
    return [len(world.fake.pushes(f"o_unit{n}")) for n in range(len(UNITS))]


def _statuses(world: ReminderWorld) -> list[str]:
    with session(world.engine) as db:
        return [row.status for row in db.exec(select(Delivery).order_by(Delivery.id))]


def test_a_restart_between_deciding_and_sending_sends_each_reminder_once(reminder_world: ReminderWorld, tmp_path: Path) -> None:
    world = reminder_world
    _liaisons(world)
    world.at(TUESDAY)
    claimed = world.reminders.claim_due(TUESDAY)
    assert claimed.held == {} and world.fake.pushes() == []
    assert set(_statuses(world)) == {"claimed"}

    # The process is gone; a new one (new engine, new client) starts and runs what is due.
    engine = make_engine(str(world.engine.url))
    restarted = build_sender(engine, world.fake, world.base_url, tmp_path)
    restarted.run_due(TUESDAY)
    restarted.run_due(beijing("2023-06-06 18:05"))

    assert _pushes_per_liaison(world) == [1] * len(UNITS)
    engine.dispose()


def test_two_schedulers_started_at_once_send_once(reminder_world: ReminderWorld, tmp_path: Path) -> None:
    world = reminder_world
    _liaisons(world)
    world.at(TUESDAY)
    engines = [make_engine(str(world.engine.url)) for _ in range(2)]
    senders = [build_sender(engine, world.fake, world.base_url, tmp_path) for engine in engines]
    start = threading.Barrier(2)

    def run(sender: Reminders) -> None:
        start.wait()
        sender.run_due(TUESDAY)

    threads = [threading.Thread(target=run, args=(sender,)) for sender in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert _pushes_per_liaison(world) == [1] * len(UNITS)
    for engine in engines:
        engine.dispose()


def test_after_downtime_only_the_latest_useful_reminder_goes_and_obsolete_ones_are_skipped(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    _liaisons(world)
    # Down from Monday until Wednesday 17:00: Tuesday's reminder is superseded by Wednesday 16:00's.
    world.run_due(beijing("2023-06-07 17:00"))
    assert {at for n in range(len(UNITS)) for at, _c, _w in world.received(f"o_unit{n}")} == {"06-07 17:00"}
    assert {p.payload["data"]["thing1"]["value"] for p in world.fake.pushes()} == {"报送一周活动开展情况"}

    # Down again until after the deadline: no "before" reminder is worth sending any more.
    world.run_due(beijing("2023-06-07 18:30"))
    assert _pushes_per_liaison(world) == [1] * len(UNITS)


class _DiesAfterSending:
    """WeChat accepts the message, then the process is killed before it records the answer."""

    def __init__(self, api: object):
        self.api = api

    def send_text(self, openid: str, content: str) -> None:
        raise AssertionError("not used: the liaison is silent, reminders go as templates")

    def send_template(self, openid: str, template_id: str, data: Mapping[str, str], url: str | None = None) -> str:
        self.api.send_template(openid, template_id, data, url)  # type: ignore[attr-defined]
        raise SystemExit("killed")


def test_a_reminder_in_doubt_waits_for_wechats_job_event_which_settles_it(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    world.person("o_unit0", unit=UNITS[0])
    world.at(TUESDAY)
    doomed = Reminders(world.engine, _DiesAfterSending(world.reminders.api), world.reminders.texts,
                       template_messages=True, concurrency=1)
    with pytest.raises(SystemExit):
        doomed.run_due(TUESDAY)
    assert _statuses(world) == ["sending"]

    # Ten minutes later on the replay's clock, but not on the real one: the event may still come.
    world.run_due(beijing("2023-06-06 18:10"))
    (push,) = world.fake.pushes("o_unit0")
    assert _statuses(world) == ["sending"]

    event = world.fake.template_job_finish_event(push.msgid)
    assert record_template_job(world.engine, event["FromUserName"], event["MsgID"], event["Status"])
    assert _statuses(world) == ["sent"]
