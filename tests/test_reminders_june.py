"""A whole 晋城 2023 June replayed against the fake WeChat with a fake clock.

Five units: 城区 (silent liaison, reached by template messages), 高平 (a liaison who writes now and
then), 阳城 (a liaison who never agreed to reminders), 沁水 (no liaison registered) and 泽州 (a
diligent liaison whose unit submits early, once a minute before the reminder).
"""

from __future__ import annotations

from datetime import timedelta

from bot.store.models import Role
from scheduler.plan import Stage, plan
from tests.fixtures_reminders import BEIJING, ReminderWorld, beijing

WEEKLY = "报送一周活动开展情况"
LIAISON, PLAN = "报送联络员表", "报送安全月活动方案"
CASES, SUMMARY, STATISTICS = "报送上月典型案例", "报送安全生产月总结报告", "报送安全生产月统计表"

# Every reminder a unit that never submits gets from 2023-05-20 to 2023-07-05, in order: at most one
# per deadline a day, none in the quiet hours (those at 23:59 come at 08:00 or 21:59 instead). The
# plan and the summary report are documents sent by e-mail: reminded up to their due day, never
# after it (the bot cannot know who sent them).
SILENT_LIAISON_GETS = [
    ("05-29 08:00", LIAISON), ("05-29 08:00", PLAN),
    ("05-31 08:00", LIAISON), ("05-31 08:00", PLAN),
    ("06-02 08:00", LIAISON),
    ("06-06 18:00", WEEKLY), ("06-07 16:00", WEEKLY), ("06-08 18:00", WEEKLY),
    ("06-13 18:00", WEEKLY), ("06-14 16:00", WEEKLY), ("06-15 18:00", WEEKLY),
    ("06-20 18:00", WEEKLY), ("06-21 16:00", WEEKLY), ("06-22 18:00", WEEKLY),
    ("06-27 18:00", WEEKLY), ("06-28 08:00", CASES), ("06-28 16:00", WEEKLY),
    ("06-29 08:00", SUMMARY), ("06-29 08:00", STATISTICS), ("06-29 18:00", WEEKLY),
    ("06-30 08:00", CASES),
    ("07-01 08:00", SUMMARY), ("07-01 08:00", STATISTICS),
    ("07-02 08:00", CASES),
    ("07-03 08:00", STATISTICS),
]


def _people(world: ReminderWorld) -> None:
    world.person("o_chengqu", unit="城区商务局")
    world.person("o_gaoping", unit="高平市商务局")
    world.person("o_yangcheng", unit="阳城县商务局", opted_in=False)
    world.unit("沁水县商务局")
    world.person("o_zezhou", unit="泽州县商务局")
    world.person("o_coordinator", role=Role.COORDINATOR)
    # 泽州 sends its liaison table and plan long before they are due.
    world.submits("泽州县商务局", "liaison")
    world.submits("泽州县商务局", "plan")


def _replay(world: ReminderWorld, until: str, events: dict[str, list] | None = None) -> None:
    """Run ``reminders run-due`` at every planned moment (and at each scripted event) up to ``until``."""
    events = events or {}
    moments = {p.at for p in plan(world.engine)} | {beijing(t) for t in events}
    for moment in sorted(m for m in moments if m <= beijing(until)):
        local = moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
        world.at(moment)
        for action in events.get(local, []):
            action()
        world.run_due(moment)


def test_a_whole_june_reaches_each_liaison_exactly_as_planned(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    _people(world)
    weeks = ["2023-06-07", "2023-06-14", "2023-06-21", "2023-06-28"]
    events: dict[str, list] = {
        # 高平's liaison writes an hour before Tuesday's reminder, then is silent for three days.
        "2023-06-06 17:00": [lambda: world.writes("o_gaoping")],
        # 泽州 submits each week at noon on Wednesday; the second week a minute before the reminder.
        **{f"{w} 12:00": [lambda w=w: world.submits("泽州县商务局", "weekly", w)] for w in weeks if w != "2023-06-14"},
        "2023-06-14 15:59": [lambda: world.submits("泽州县商务局", "weekly", "2023-06-14")],
    }
    _replay(world, "2023-07-05 12:00", events)

    assert [(at, what) for at, _channel, what in world.received("o_chengqu")] == SILENT_LIAISON_GETS
    assert {channel for _at, channel, _what in world.received("o_chengqu")} == {"template"}

    first_week = [(at, channel, what) for at, channel, what in world.received("o_gaoping")
                  if at.startswith(("06-06", "06-07", "06-08"))]
    text = ("【2023年全市商务系统“安全生产月”活动】提醒：高平市商务局的“报送一周活动开展情况”（2023-06-07）"
            "将于6月7日 18:00截止，目前尚未收到。回复“填报”即可开始报送。")
    # Wrote an hour before: customer service; 47 hours later still; after 48 hours a template.
    assert first_week == [("06-06 18:00", "custom", text), ("06-07 16:00", "custom", text),
                          ("06-08 18:00", "template", WEEKLY)]

    assert world.received("o_yangcheng") == []

    zezhou = [(at, what) for at, _channel, what in world.received("o_zezhou")]
    assert (LIAISON in {w for _, w in zezhou}, PLAN in {w for _, w in zezhou}) == (False, False)
    assert [at for at, what in zezhou if what == WEEKLY] == ["06-06 18:00", "06-13 18:00", "06-20 18:00", "06-27 18:00"]

    for push in world.fake.pushes():
        local = push.at.astimezone(BEIJING)
        assert 8 <= local.hour < 22, f"sent in the quiet hours: {push}"


def test_coordinators_learn_who_was_not_reached_and_get_a_digest_at_the_deadline(reminder_world: ReminderWorld) -> None:
    world = reminder_world
    _people(world)
    world.submits("泽州县商务局", "weekly", "2023-06-07")
    world.at(beijing("2023-06-07 15:00"))
    world.writes("o_coordinator")
    _replay(world, "2023-06-07 18:00")

    notes = [what for _at, channel, what in world.received("o_coordinator")]
    before_2h = next(n for n in notes if "以下单位的提醒未能送达" in n and "2023-06-07" in n)
    assert "未登记联络员：沁水县商务局" in before_2h
    assert "联络员未同意接收提醒：阳城县商务局" in before_2h
    digest = next(n for n in notes if "已于6月7日 18:00截止" in n)
    assert "1/5个单位已报送" in digest
    assert "未报送：城区商务局、高平市商务局、阳城县商务局、沁水县商务局" in digest


def test_the_plan_moves_reminders_out_of_the_quiet_hours_but_never_past_the_deadline(reminder_world: ReminderWorld) -> None:
    planned = [p for p in plan(reminder_world.engine) if p.deadline_key == "liaison"]
    due = planned[0].due_at
    for item in planned:
        local = item.local_at
        assert not (local.hour >= 22 or local.hour < 8), item
        if item.stage in (Stage.BEFORE, Stage.DUE):
            assert item.at <= due
    assert [(p.label, p.local_at.strftime("%m-%d %H:%M")) for p in planned] == [
        ("before-3d", "05-29 08:00"), ("before-1d", "05-31 08:00"), ("digest", "06-01 08:00"), ("overdue-1d", "06-02 08:00"),
    ]
    assert due - planned[1].at > timedelta(hours=15)


def test_a_document_sent_by_email_is_reminded_with_the_notices_address_and_never_as_late(
        reminder_world: ReminderWorld) -> None:
    world = reminder_world
    world.person("o_gaoping", unit="高平市商务局")
    world.person("o_coordinator", role=Role.COORDINATOR)
    # 高平's liaison wrote the day before, so the plan's reminders come as customer-service texts.
    _replay(world, "2023-06-03 12:00", {"2023-05-28 10:00": [lambda: world.writes("o_gaoping")]})

    about_plan = [(at, text) for at, channel, text in world.received("o_gaoping") if "安全月活动方案" in text]
    assert [at for at, _ in about_plan] == ["05-29 08:00", "05-31 08:00"]
    assert about_plan[0][1] == ("【2023年全市商务系统“安全生产月”活动】提醒：高平市商务局的“报送安全月活动方案”将于5月31日 "
                                "23:59截止。此项不在这里报送，请按通知发送至邮箱 jcswjzsk@163.com；已发送的请忽略本提醒。")
    # Nobody is told who has not sent it: the bot cannot know.
    assert not [text for _, _, text in world.received("o_coordinator") if "安全月活动方案" in text]
