"""Every WeChat answer a reminder can get, handled as WeChat means it (wechat-rules R3)."""

from __future__ import annotations

from sqlmodel import select

from bot.store.engine import session
from bot.outbound.delivery import record_template_job
from bot.store.models import Delivery, Person, Role
from tests.fixtures_reminders import TEMPLATE_ID, ReminderWorld, beijing

TEMPLATE_SEND = "/cgi-bin/message/template/send"
CUSTOM_SEND = "/cgi-bin/message/custom/send"
TUESDAY, WEDNESDAY = beijing("2023-06-06 18:00"), beijing("2023-06-07 16:00")


def _liaison(world: ReminderWorld, openid: str = "o_chengqu", unit: str = "城区商务局") -> None:
    world.person(openid, unit=unit)


def _coordinator_listening(world: ReminderWorld) -> None:
    world.person("o_coordinator", role=Role.COORDINATOR)
    world.at(beijing("2023-06-06 09:00"))
    world.writes("o_coordinator")


def _person(world: ReminderWorld, openid: str) -> Person:
    with session(world.engine) as db:
        return db.exec(select(Person).where(Person.openid == openid)).one()


def _deliveries(world: ReminderWorld, openid: str) -> list[Delivery]:
    with session(world.engine) as db:
        return list(db.exec(select(Delivery).where(Delivery.openid == openid).order_by(Delivery.id)))


def _sends_to(world: ReminderWorld, openid: str, path: str = TEMPLATE_SEND) -> int:
    return sum(1 for call in world.fake.calls if call.path == path and (call.body or {}).get("touser") == openid)


def _notes(world: ReminderWorld) -> list[str]:
    return [what for _at, _channel, what in world.received("o_coordinator")]


def test_a_liaison_who_unfollowed_is_marked_unreachable_and_coordinators_are_told(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    _liaison(world)
    _coordinator_listening(world)
    world.fake.unfollow("o_chengqu")

    world.run_due(TUESDAY)
    world.run_due(WEDNESDAY)

    person = _person(world, "o_chengqu")
    assert (person.following, person.unreachable_reason.split()[0]) == (False, "43004")
    assert _sends_to(world, "o_chengqu") == 1  # Wednesday's reminder is held, not sent blindly
    assert any("无法送达（已取消关注或拒收）：城区商务局（43004）" in note for note in _notes(world))


def test_a_closed_window_sends_the_same_reminder_once_as_a_template_message(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    _liaison(world)
    _liaison(world, "o_gaoping", "高平市商务局")
    world.at(beijing("2023-06-06 17:00"))
    world.writes("o_chengqu")
    world.writes("o_gaoping")
    world.fake.fail_next(CUSTOM_SEND, 45015)
    world.fake.fail_next(CUSTOM_SEND, 45047)

    world.run_due(TUESDAY)

    for openid in ("o_chengqu", "o_gaoping"):
        assert [channel for _at, channel, _what in world.received(openid)] == ["template"]
        (row,) = _deliveries(world, openid)
        assert (row.channel, row.status, row.stage) == ("template", "sent", "before-1d")


def test_a_refusal_is_recorded_verbatim_and_never_retried(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    _liaison(world)
    world.fake.fail_next(TEMPLATE_SEND, 43101)

    world.run_due(TUESDAY)
    world.run_due(WEDNESDAY)

    first, second = _deliveries(world, "o_chengqu")
    assert (first.status, first.errcode) == ("failed", 43101)
    assert first.errmsg and "rid:" in first.errmsg  # WeChat's errmsg as it came
    assert (second.status, second.errmsg) == ("held", "unreachable")
    assert _person(world, "o_chengqu").unreachable_reason.startswith("43101")
    assert world.received("o_chengqu") == []


def test_a_failed_template_job_is_recorded_against_its_delivery_and_marks_the_liaison(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    _liaison(world)
    world.fake.template_job_status["o_chengqu"] = "failed:user block"
    world.run_due(TUESDAY)
    (push,) = world.fake.pushes("o_chengqu")

    event = world.fake.template_job_finish_event(push.msgid)
    assert record_template_job(world.engine, event["FromUserName"], event["MsgID"], event["Status"])

    (row,) = _deliveries(world, "o_chengqu")
    assert (row.wechat_msg_id, row.job_status) == (str(push.msgid), "failed:user block")
    assert _person(world, "o_chengqu").unreachable_reason == "TEMPLATESENDJOBFINISH failed:user block"
    world.run_due(WEDNESDAY)
    assert len(world.fake.pushes("o_chengqu")) == 1


def test_a_field_wechat_refuses_is_a_defect_alerted_and_not_retried(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    _liaison(world, "o_chengqu", "高平市商务局")
    _coordinator_listening(world)
    # The admin picked a template whose third field is a phrase (at most 5 hanzi): a unit name breaks it.
    world.fake.add_template(TEMPLATE_ID, {"thing1": "thing", "time2": "time", "thing3": "phrase"})

    world.run_due(TUESDAY)
    world.run_due(beijing("2023-06-06 18:30"))

    (row,) = _deliveries(world, "o_chengqu")
    assert (row.status, row.errcode) == ("defect", 47003)
    assert _sends_to(world, "o_chengqu") == 1
    assert any("提醒内容格式有误未发送（请联系管理员）：高平市商务局（47003）" in note for note in _notes(world))


def test_a_used_up_quota_stops_the_batch_and_a_later_run_sends_the_rest_once(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    for n in range(6):
        _liaison(world, f"o_unit{n}", f"第{n}单位")
    # The quota stays used up for the whole first run, however many sends were in flight when it stopped.
    world.fake.fail_next(TEMPLATE_SEND, 45009, times=100)

    stopped = world.run_due(TUESDAY)
    assert stopped.stopped and "45009" in stopped.stopped
    assert world.fake.pushes() == []

    world.fake.clear_faults(TEMPLATE_SEND)  # the next day's quota
    resumed = world.run_due(beijing("2023-06-06 19:00"))
    assert (resumed.stopped, resumed.sent["template"]) == (None, 6)
    assert sorted(p.openid for p in world.fake.pushes()) == [f"o_unit{n}" for n in range(6)]


def test_busy_wechat_and_a_rejected_token_are_retried_inside_the_client(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    _liaison(world)
    world.fake.fail_next(TEMPLATE_SEND, -1, times=2)
    world.run_due(TUESDAY)
    world.fake.expire_tokens()
    world.run_due(WEDNESDAY)

    assert [at for at, _channel, _what in world.received("o_chengqu")] == ["06-06 18:00", "06-07 16:00"]
    assert [row.status for row in _deliveries(world, "o_chengqu")] == ["sent", "sent"]
