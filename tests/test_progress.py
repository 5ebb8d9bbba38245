"""Coordinators and staff ask how their campaign's units are doing: 进度, 未报 [事项] and 单位 名称, on a
replayed 晋城 June (2023-06-20 10:00), through the real /wechat endpoint.

The six demo units on that morning:

- 泽州 (liaison 王小明): the week of 6-14 on time, and this week's report early with a 要情;
- 高平 (liaison 李华): the week of 6-14 a day late;
- 城区 (liaison 张强): nothing this month;
- 阳城 (no liaison; the office sent its report by hand): the week of 6-14 on time;
- 陵川 (no liaison, but the units import named a mobile) and 沁水 (no liaison at all): nothing.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.campaigns import load_definition, load_into_db
from bot.store.engine import session
from bot.store.models import Conversation, Deadline, Delivery, Person, Role, Submission, Unit
from handlers.progress import ASK_ACTION
from bot.texts import Texts
from tests.fixtures_forms import CAMPAIGN, Campaign, jincheng  # noqa: F401  (fixture)
from tests.test_weekly_report import eventually

TEXTS = Texts()
COORDINATOR, STAFF = "oCoordinator", "oStaffWang"
ZEZHOU, GAOPING, CHENGQU = "oLiaisonZezhou", "oLiaisonGaoping", "oLiaisonChengqu"
WEEK = "报送一周活动开展情况"
DADUKOU = Path(CAMPAIGN).with_name("dadukou-commerce-2021.toml")
BEIJING = ZoneInfo("Asia/Shanghai")


def with_staff_codes(source: Path, tmp_path: Path, staff: str, coordinator: str) -> Path:
    """The campaign file with the office's own staff codes written in."""
    edited = tmp_path / source.name
    edited.write_text(source.read_text(encoding="utf-8")
                      + f'\n[staff]\njoin_code = "{staff}"\ncoordinator_code = "{coordinator}"\n', encoding="utf-8")
    return edited


def files_week(june: Campaign, unit: str, week: str, at: datetime, late: bool = False) -> None:
    """The unit's weekly report for ``week`` was sent at ``at`` (as the report walk records it)."""
    unit_id = june.unit_id(unit)
    with session(june.engine) as db:
        deadline = db.exec(select(Deadline).where(Deadline.key == "weekly")).one()
        db.add(Submission(unit_id=unit_id, deadline_id=deadline.id, period=week, status="submitted",
                          late=late, submitted_at=at, updated_at=at))
        db.commit()


def _utc(text: str) -> datetime:
    """A 晋城 time ("2023-06-14 12:00") in UTC."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=BEIJING).astimezone(timezone.utc)


@pytest.fixture
def june(jincheng: Campaign, tmp_path: Path) -> Campaign:
    """The morning of 2023-06-20 as the module's docstring tells it, with a coordinator and a staff member."""
    load_into_db(jincheng.engine, load_definition(with_staff_codes(CAMPAIGN, tmp_path, "STAFF2023JC", "COORD2023JC")))
    for openid, code in ((COORDINATOR, "COORD2023JC"), (STAFF, "STAFF2023JC")):
        jincheng.say(openid, "登记")
        jincheng.say(openid, code)
        jincheng.bot.fake.user_wrote(openid)
    jincheng.register(ZEZHOU, "泽州县商务局", name="王小明", mobile="13812345678")
    jincheng.register(GAOPING, "高平市商务局", name="李华", mobile="13900001111")
    jincheng.register(CHENGQU, "城区商务局", name="张强", mobile="13700002222")
    files_week(jincheng, "泽州县商务局", "2023-06-14", _utc("2023-06-14 12:00"))
    files_week(jincheng, "高平市商务局", "2023-06-14", _utc("2023-06-15 09:00"), late=True)
    files_week(jincheng, "阳城县商务局", "2023-06-14", _utc("2023-06-14 17:00"))
    with session(jincheng.engine) as db:
        lingchuan = db.exec(select(Unit).where(Unit.name == "陵川县商务局")).one()
        lingchuan.liaison_mobile = "13600003333"
        db.add(lingchuan)
        db.commit()
    jincheng.say(ZEZHOU, "要情")
    jincheng.say(ZEZHOU, "今天泽州县开展危化品泄漏应急演练，300人参加。")
    jincheng.say(ZEZHOU, "完成")
    # The office hears of the 要情 (the outbox's thread); the scenario goes on once it has.
    assert eventually(lambda: _notes_sent(jincheng) == 2)
    jincheng.say(ZEZHOU, "周报")
    jincheng.say(ZEZHOU, "本周开展安全培训2场，参与120人次。")
    assert "已提交" in jincheng.say(ZEZHOU, "完成")
    return jincheng


def _notes_sent(june: Campaign) -> int:
    with session(june.engine) as db:
        return len(db.exec(select(Delivery).where(Delivery.status == "sent")).all())


def _block(reply: str, heading: str) -> list[str]:
    """The lines of 进度's block that starts with ``heading`` (up to the next blank line)."""
    lines = reply.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


def _names(line: str, prefix: str) -> set[str]:
    assert line.startswith(prefix), line
    return set(re.sub(r" 等 \d+ 个$", "", line[len(prefix):]).split("、"))


def test_a_coordinator_types_进度_and_sees_each_open_and_just_passed_deadline(june: Campaign) -> None:
    shown = june.say(COORDINATOR, "进度")
    assert shown.startswith("2023年全市商务系统“安全生产月”活动报送进度：")
    last_week = _block(shown, f"【{WEEK}（2023-06-14）】")
    assert last_week[:2] == [f"【{WEEK}（2023-06-14）】6月14日 18:00已截止", "3/6 个单位已报送，其中逾期 1 个。"]
    assert _names(last_week[2], "未报：") == {"城区商务局", "陵川县商务局", "沁水县商务局"}
    this_week = _block(shown, f"【{WEEK}（2023-06-21）】")
    assert this_week[:2] == [f"【{WEEK}（2023-06-21）】6月21日 18:00截止", "1/6 个单位已报送。"]
    assert _names(this_week[2], "未报：") == {"城区商务局", "高平市商务局", "阳城县商务局", "陵川县商务局", "沁水县商务局"}
    assert _block(shown, "【报送安全生产月统计表】")[:2] == ["【报送安全生产月统计表】7月1日 23:59截止", "0/6 个单位已报送。"]
    # The liaison table was due on 5-31: three weeks gone, no longer the office's daily business.
    assert "【报送联络员表】" not in shown
    assert len(shown.encode()) <= 2048


def test_进度_names_the_first_missing_units_and_counts_the_rest(june: Campaign) -> None:
    with session(june.engine) as db:
        campaign_id = db.exec(select(Unit)).first().campaign_id  # type: ignore[union-attr]
        db.add_all(Unit(campaign_id=campaign_id, name=f"开发区第{i:02d}分局", join_code=f"KF{i:04d}") for i in range(20))
        db.commit()
    summary = _block(june.say(STAFF, "进度"), "【报送安全生产月统计表】")
    assert summary[1] == "0/26 个单位已报送。"
    assert summary[2].endswith(" 等 26 个") and len(_names(summary[2], "未报：")) == 8
    # 单位 lists the first ten of many, and the number picks from what was listed.
    listed = june.say(STAFF, "单位 分局").split("\n")
    assert listed[0] == "名称含“分局”的单位很多，先列出 10 个："
    assert [line.split(". ")[0] for line in listed[1:11]] == [str(n) for n in range(1, 11)]
    assert listed[11] == "回复“单位 序号”查看，如“单位 1”；或把名称说得更完整些。"
    assert june.say(STAFF, "单位 10").split("\n")[0] == listed[10].split(". ")[1]


def test_after_the_campaign_进度_shows_each_deadlines_last_period(june: Campaign) -> None:
    june.clock.now = datetime(2024, 3, 1, 2, 0, tzinfo=timezone.utc)
    shown = june.say(COORDINATOR, "进度")
    assert _block(shown, f"【{WEEK}（2023-06-28）】")[:2] == [f"【{WEEK}（2023-06-28）】6月28日 18:00已截止",
                                                            "0/6 个单位已报送。"]
    assert "【报送联络员表】5月31日 23:59已截止" in shown
    assert f"【{WEEK}（2023-06-14）】" not in shown


def test_未报_lists_the_missing_units_with_the_liaisons_name_and_mobile(june: Campaign) -> None:
    shown = june.say(COORDINATOR, "未报").split("\n")
    assert shown[0] == f"“{WEEK}”（2023-06-14）6月14日 18:00已截止，3/6 个单位未报："
    assert set(shown[1:4]) == {"城区商务局 张强 13700002222", "陵川县商务局 无联络员 13600003333", "沁水县商务局 无联络员"}
    # The summary report goes by e-mail: nobody here knows who sent it, so it is no 未报 to list.
    assert shown[4] == "其他事项（回复“未报 事项名”）：报送上月典型案例、报送安全生产月统计表"
    assert june.say(STAFF, "未报 总结报告") == TEXTS.render(
        "progress_by_email", title="报送安全生产月总结报告", email="jcswjzsk@163.com")
    assert "不在这里报送，本号无法知道哪些单位已发送" in june.say(STAFF, "未报 总结报告")

    # A deadline named by a part of its title, or 周报 with a week's period key.
    statistics = june.say(STAFF, "未报 统计表").split("\n")
    assert statistics[0] == "“报送安全生产月统计表”7月1日 23:59截止，6/6 个单位未报："
    assert "泽州县商务局 王小明 13812345678" in statistics and "阳城县商务局 无联络员" in statistics
    this_week = june.say(STAFF, "未报 周报 2023-06-21").split("\n")
    assert this_week[0] == f"“{WEEK}”（2023-06-21）6月21日 18:00截止，5/6 个单位未报："
    assert "高平市商务局 李华 13900001111" in this_week and not any(line.startswith("泽州") for line in this_week)

    assert june.say(STAFF, "未报 年终考核") == TEXTS.render(
        "progress_no_deadline", what="年终考核",
        titles=["报送联络员表", "报送安全月活动方案", WEEK, "报送安全生产月总结报告", "报送安全生产月统计表", "报送上月典型案例"])


def test_单位_with_several_matches_lists_them_and_单位_N_picks_one(june: Campaign) -> None:
    listed = june.say(COORDINATOR, "单位 县")
    lines = listed.split("\n")
    assert lines[0] == "名称含“县”的单位有 4 个："
    units = [line.split(". ", 1)[1] for line in lines[1:5]]
    assert set(units) == {"泽州县商务局", "阳城县商务局", "陵川县商务局", "沁水县商务局"}

    picked = june.say(COORDINATOR, f"单位 {units.index('泽州县商务局') + 1}")
    assert picked.split("\n")[:2] == ["泽州县商务局", "联络员：王小明 13812345678"]
    assert "· 报送联络员表：6月20日 10:00已报送（逾期）" in picked
    assert "报送安全月活动方案" not in picked  # sent by e-mail: the bot cannot say whether it was
    assert f"· {WEEK}：已报 2 期，逾期未报 1 期，要情 1 条" in picked
    assert "  2023-06-07：未报（6月7日 18:00截止）" in picked
    assert "  2023-06-14：6月14日 12:00已报送" in picked
    assert "  2023-06-21：6月20日 10:00已报送" in picked
    assert "· 报送安全生产月统计表：未报，7月1日 23:59截止" in picked
    assert "· 报送上月典型案例：已报 0 期\n  2023-06：未报，6月30日 23:59截止" in picked
    conversation = june.conversation(COORDINATOR)
    assert conversation is not None and conversation.flow == ""

    # The full name picks the unit even where a shorter name is part of another's.
    assert june.say(STAFF, "单位 高平市商务局").split("\n")[:2] == ["高平市商务局", "联络员：李华 13900001111"]
    lingchuan = june.say(STAFF, "单位 陵川")
    assert lingchuan.split("\n")[1] == "联络员：无联络员（名单手机 13600003333）"
    assert f"· {WEEK}：已报 0 期，逾期未报 2 期\n  2023-06-07：未报（6月7日 18:00截止）" in lingchuan
    assert "  2023-06-21：未报，6月21日 18:00截止" in lingchuan
    assert june.say(STAFF, "单位 太原") == TEXTS.render("progress_no_unit", asked="太原")
    assert june.say(STAFF, "单位") == TEXTS.render("progress_ask_unit")


def _stored(june: Campaign) -> list[tuple[str, ...]]:
    """What a command could change: submissions, deliveries and dialogue states, row by row."""
    with session(june.engine) as db:
        return [tuple(str(v) for v in row) for table in (Submission, Delivery, Conversation)
                for row in db.exec(sa.select(table)).all()]


@pytest.mark.parametrize("command", ["进度", "未报", "未报 周报", "单位 泽州", "单位 1"])
def test_liaisons_and_strangers_are_told_who_may_ask_and_nothing_changes(june: Campaign, command: str) -> None:
    before = _stored(june)
    for openid, newcomer in ((ZEZHOU, False), ("oStranger", True)):
        assert june.say(openid, command) == TEXTS.render("role_refused", action=ASK_ACTION,
                                                         roles=["staff", "coordinator"], newcomer=newcomer)
    assert _stored(june) == before


def test_staff_without_a_campaign_are_told_who_may_ask(june: Campaign) -> None:
    """Staff made before staff belonged to a campaign work on none: they cannot ask about any."""
    june.say("oOldStaff", "你好")
    with session(june.engine) as db:
        person = db.exec(select(Person).where(Person.openid == "oOldStaff")).one()
        person.role = Role.STAFF
        db.add(person)
        db.commit()
    assert june.say("oOldStaff", "进度") == TEXTS.render("role_no_campaign", role="staff", action=ASK_ACTION)


def test_staff_of_another_campaign_see_only_their_own(june: Campaign, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    load_into_db(june.engine, load_definition(with_staff_codes(DADUKOU, other, "STAFFDDK", "COORDDDK")))
    june.say("oDadukouStaff", "登记")
    june.say("oDadukouStaff", "COORDDDK")
    assert june.say("oDadukouStaff", "单位 泽州") == TEXTS.render("progress_no_unit", asked="泽州")
    shown = june.say("oDadukouStaff", "进度")
    assert shown.startswith("2021年全区商务领域“安全生产月”活动报送进度：")
    assert "泽州" not in shown and WEEK not in shown
    assert "泽州" not in june.say("oDadukouStaff", "未报")


def test_a_liaison_in_a_report_who_types_单位_or_未报_is_taken_as_reporting(june: Campaign) -> None:
    june.say(GAOPING, "周报")
    assert june.say(GAOPING, "单位 3个科室开展应急演练") == TEXTS.render("report_received", kind="text", number=1,
                                                                   featured=False)
    assert june.say(GAOPING, "未报 情况已说明") == TEXTS.render("report_received", kind="text", number=2,
                                                              featured=False)
    conversation = june.conversation(GAOPING)
    assert conversation is not None and conversation.flow == "weekly"


def test_帮助_for_staff_lists_every_office_command_within_one_message(june: Campaign) -> None:
    shown = june.say(COORDINATOR, "帮助")
    for command in ("待审批", "批准 N", "驳回 N", "通知", "通知 状态", "进度", "合计", "未报 [事项]", "单位 名称", "导出",
                    "帮助"):
        assert f"· {command} ——" in shown, command
    assert len(shown.encode()) <= 2048
