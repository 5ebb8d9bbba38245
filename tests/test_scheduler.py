"""The scheduler process: one runs among several, its jobs survive a restart and fire once."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

from bot.store.engine import make_engine
from bot.store.models import SchedulerJob
from scheduler.service import Lease, ReminderScheduler
from tests.fixtures_reminders import ReminderWorld, beijing, build_sender


def _scheduler(world: ReminderWorld, tmp_path: Path, holder: str) -> ReminderScheduler:
    engine = make_engine(str(world.engine.url))
    sender = build_sender(engine, world.fake, world.base_url, tmp_path)
    return ReminderScheduler(sender, engine, clock=world.fake.now, lease=Lease(engine, holder=holder))


def _stored_jobs(world: ReminderWorld) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(SchedulerJob.__table__)).scalar_one())


def test_of_several_workers_exactly_one_runs_the_scheduler_and_a_standby_takes_over(
        reminder_world: ReminderWorld, tmp_path: Path) -> None:
    first, second = _scheduler(reminder_world, tmp_path, "worker-1"), _scheduler(reminder_world, tmp_path, "worker-2")
    assert (first.start(paused=True), second.start(paused=True)) == (True, False)
    assert (first.running, second.running) == (True, False)
    first.stop()
    assert second.start(paused=True)
    second.stop()
    for scheduler in (first, second):
        scheduler.engine.dispose()


def test_jobs_planned_before_a_restart_fire_once_after_it(reminder_world: ReminderWorld, tmp_path: Path) -> None:
    world = reminder_world
    for n in range(5):
        world.person(f"o_unit{n}", unit=f"第{n}单位")
    world.at(beijing("2023-06-06 17:00"))
    planner = _scheduler(world, tmp_path, "before-restart")
    assert planner.start(paused=True)
    planned = planner.jobs()
    planner.stop()
    planner.engine.dispose()
    assert "due:2023-06-06T10:00:00+00:00" in planned and _stored_jobs(world) == len(planned)

    # Down over Tuesday 18:00; when the process is back the missed job runs once.
    world.at(beijing("2023-06-06 18:20"))
    restarted = _scheduler(world, tmp_path, "after-restart")
    assert restarted.start()
    waited = time.monotonic()
    while len(world.fake.pushes()) < 5 and time.monotonic() - waited < 30:
        time.sleep(0.05)
    restarted.stop()
    restarted.engine.dispose()

    assert sorted(p.openid for p in world.fake.pushes()) == [f"o_unit{n}" for n in range(5)]
