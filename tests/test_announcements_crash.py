"""An announcement's fan-out dies halfway and is run again: every liaison gets it exactly once.

WeChat's own record (the fake's pushes) says what reached whom. The sender is the worker role's
:class:`~bot.outbound.announcements.Announcements` on the 晋城 database, as after a restart; the
bot's /wechat is served beside it so WeChat's TEMPLATESENDJOBFINISH events reach the ledger.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from sqlmodel import select

from bot.campaigns import load_definition, load_into_db
from bot.outbound.announcements import Announcements, queue_announcement
from bot.store.engine import session
from bot.store.models import Announcement, Delivery, utcnow
from bot.texts import Texts
from handlers.ports import Audience
from tests.fixtures_reminders import LaterClock, ReminderWorld, beijing
from tests.test_announcements import NOTICE_FIELDS, NOTICE_TEMPLATE, campaign_file
from tests.test_reminders_doubt import DiesMidFanOut, Killed

UNITS = [f"第{n}单位" for n in range(6)]
TUESDAY = beijing("2023-06-06 18:00")


def _world(world: ReminderWorld, tmp_path: Path) -> int:
    """Six silent liaisons (template messages) and a queued announcement to all; its id."""
    load_into_db(world.engine, load_definition(campaign_file(tmp_path)))
    world.fake.add_template(NOTICE_TEMPLATE, NOTICE_FIELDS)
    for n, unit in enumerate(UNITS):
        world.person(f"o_unit{n}", unit=unit)
    world.at(TUESDAY)
    with world.engine.begin() as conn:
        return queue_announcement(conn, world.campaign_id, "防汛期间安全检查的通知", Audience("all"), TUESDAY,
                                  sender_name="市商务局")


def _sender(world: ReminderWorld, api: object, real_clock: Callable[[], datetime] = utcnow,
            concurrency: int = 8) -> Announcements:
    return Announcements(world.engine, api, Texts(), template_messages=True,  # type: ignore[arg-type]
                         page_base="https://bot.example.cn", link_key=b"k" * 32, clock=world.fake.now,
                         concurrency=concurrency, real_clock=real_clock)


def _received(world: ReminderWorld) -> list[int]:
    return [len(world.fake.pushes(f"o_unit{n}")) for n in range(len(UNITS))]


def _announcement(world: ReminderWorld, announcement_id: int) -> Announcement:
    with session(world.engine) as db:
        found = db.get(Announcement, announcement_id)
        assert found is not None
        return found


def test_a_fan_out_killed_mid_send_and_restarted_reaches_each_liaison_once(
        reminder_world: ReminderWorld, serve_callback: Callable[..., str], tmp_path: Path) -> None:
    world = reminder_world
    serve_callback(world)
    announcement_id = _world(world, tmp_path)
    try:
        _sender(world, DiesMidFanOut(world.reminders.api, accepted=3), concurrency=len(UNITS)).run_pending()
    except Killed:
        pass
    assert sorted(_received(world)) == [0, 0, 0, 1, 1, 1]
    assert world.fake.wait_for_events()

    real_time = LaterClock()
    restarted = _sender(world, world.reminders.api, real_time)
    restarted.run_pending()  # at once: the three in doubt wait for WeChat's event
    assert sorted(_received(world)) == [0, 0, 0, 1, 1, 1]
    assert _announcement(world, announcement_id).status == "sending"

    real_time.wait()  # no event came: WeChat never took them
    restarted.run_pending()
    restarted.run_pending()
    assert world.fake.wait_for_events()
    assert _received(world) == [1] * len(UNITS)
    done = _announcement(world, announcement_id)
    assert (done.status, done.recipients, done.report["sent"]) == ("done", 6, {"customer_service": 0, "template": 6})
    with session(world.engine) as db:
        rows = db.exec(select(Delivery).where(Delivery.announcement_id == announcement_id)).all()
    assert sorted(row.attempts for row in rows) == [1, 1, 1, 2, 2, 2]
    assert {(row.status, row.job_status) for row in rows} == {("sent", "success")}


def test_a_fan_out_that_died_before_it_was_marked_sending_claims_nobody_twice(
        reminder_world: ReminderWorld, tmp_path: Path) -> None:
    world = reminder_world
    announcement_id = _world(world, tmp_path)
    first = _sender(world, world.reminders.api)
    assert first.fan_out(announcement_id).held == {}
    # The process died after claiming every recipient, before the announcement left ``queued``
    # and before any request: the next pass fans out again and sends.
    with world.engine.begin() as conn:
        conn.execute(sa.update(Announcement).where(Announcement.id == announcement_id).values(status="queued"))  # type: ignore[arg-type]
    again = _sender(world, world.reminders.api)
    tally = again.run_pending()
    assert sum(tally.sent.values()) == len(UNITS)
    assert again.run_pending().sent == {}
    assert _received(world) == [1] * len(UNITS)
    with session(world.engine) as db:
        assert len(db.exec(select(Delivery).where(Delivery.announcement_id == announcement_id)).all()) == len(UNITS)
    assert _announcement(world, announcement_id).status == "done"
