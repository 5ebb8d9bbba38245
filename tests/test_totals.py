"""合计 in the chat: a coordinator of the replayed 晋城 June sees the statistics table summed over the
units' submitted tables, in the notice's own wording, with estimates marked; nobody else may."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from bot.campaigns import FieldType, load_definition, load_into_db
from bot.store.engine import session
from bot.store.facts import DatabaseFacts
from bot.store.models import Conversation, Deadline
from bot.texts import Texts
from handlers.totals import statistics_form, summed_keys
from sqlmodel import select
from tests.fixtures_forms import CAMPAIGN
from tests.fixtures_gateway import StartBot
from tests.fixtures_june import (  # noqa: F401  (fixtures)
    COORDINATOR, LIAISONS, STAFF, SUBMITTED, YANGCHENG, June, entered, jincheng, june,
)

TEXTS = Texts()
# The 合计 reply's last line: the whole table has arrived, however many parts it took.
ALL_SHOWN = "回复“导出”获取Excel表格。"
FORM = load_definition(CAMPAIGN).form("statistics")


def expected_sums() -> dict[str, tuple[int, bool]]:
    """What the submitting liaisons entered, added up per field: (sum, any estimate)."""
    sums: dict[str, tuple[int, bool]] = {}
    for unit in SUBMITTED:
        for key, typed in entered(unit).items():
            if typed.number is not None:
                total, approximate = sums.get(key, (0, False))
                sums[key] = (total + typed.number, approximate or typed.approximate)
    return sums


def expected_clauses() -> list[str]:
    """Every clause of the notice's table with the entered sums in its blanks, as the notice prints it."""
    sums = expected_sums()
    lines = []
    for item in FORM.items:
        seen: list[tuple] = []
        for f in item.fields:
            clause = item.clause(f.answer_key)
            if clause in seen:
                continue
            seen.append(clause)
            parts = []
            for i, c in enumerate(clause):
                if c.type is FieldType.COUNT:
                    total, approximate = sums[c.answer_key]
                    shown = f"约{total}" if approximate else str(total)
                else:
                    shown = f"{len(SUBMITTED)}个单位填写"
                parts.append(("" if i == 0 else c.sep) + f"{c.label}（{shown}）{c.unit}{c.suffix}")
            lines.append("".join(parts))
    return lines


def test_a_coordinator_types_合计_and_sees_the_sum_of_what_the_liaisons_entered(june: June) -> None:
    shown = june.read(COORDINATOR, "合计", ALL_SHOWN)
    lines = shown.splitlines()
    assert lines[0] == "【晋城市“安全生产月”活动进展情况统计表·合计】"
    # 城区, 泽州 and 高平 submitted; 阳城's draft is left out and said to be.
    assert lines[1] == "已汇总 3/6 个单位提交的统计表；另有 1 个单位填了未提交，未计入。"
    for clause in expected_clauses():
        assert clause in lines, clause
    # Spelled out once, from the entries of tests/fixtures_june.py: 城区 typed 约30 and 高平 200人次左右.
    lectures = sum(entered(u)["study.lectures"].number or 0 for u in SUBMITTED)
    people = sum(entered(u)["study.lectures_people"].number or 0 for u in SUBMITTED)
    assert f"组织开展宣讲活动（{lectures}）场，参与（约{people}）人次" in lines
    assert "1. 开展习近平总书记关于安全生产重要论述宣贯活动" in lines
    assert "网络直播" in shown and "）人观看" in shown
    estimates = sum(1 for _, approximate in expected_sums().values() if approximate)
    assert f"带“约”的 {estimates} 个合计含估计数（约、余）。" in lines


def test_staff_see_the_same_totals_and_the_read_port_counts_units_per_field(june: June) -> None:
    assert june.read(STAFF, "合计", ALL_SHOWN) == june.read(COORDINATOR, "合计", ALL_SHOWN)
    with session(june.engine) as db:
        deadline = db.exec(select(Deadline).where(Deadline.key == "statistics")).one()
        assert deadline.id is not None
        facts = DatabaseFacts(db.connection())
        form = statistics_form(facts.definition(deadline.campaign_id))
        assert form is not None
        totals = facts.totals(deadline.id, "", summed_keys(form))
    assert (totals.units, totals.submitted, totals.drafts) == (6, 3, 1)
    for key, (total, approximate) in expected_sums().items():
        field = totals.fields[key]
        assert (field.total, field.approximate, field.units) == (total, approximate, len(SUBMITTED)), key
    assert totals.fields["other.name"].total is None and totals.fields["other.name"].answered == len(SUBMITTED)
    # The table's header lines (填报单位, 联系人 …) are no totals.
    assert not set(totals.fields) - summed_keys(form)


def test_liaisons_and_strangers_are_refused_politely_and_nothing_changes(june: June) -> None:
    liaison = LIAISONS[YANGCHENG][0]
    before = _state(june, liaison)
    for openid, newcomer in ((liaison, False), ("oStranger", True)):
        for command, action in (("合计", "查看统计表合计"), ("导出", "导出活动的Excel表格")):
            refused = june.say(openid, command)
            assert refused == TEXTS.render("role_refused", action=action, roles=["staff", "coordinator"],
                                           newcomer=newcomer)
            assert refused.startswith(f"只有本活动的工作人员或协调人可以{action}。")
    assert _state(june, liaison) == before and _state(june, "oStranger") is None


def _state(june: June, openid: str) -> tuple | None:
    with session(june.engine) as db:
        conversation = db.get(Conversation, openid)
        return None if conversation is None else (conversation.flow, conversation.step, conversation.data)


def test_a_campaign_without_a_statistics_table_says_there_is_nothing_to_sum(start_bot: StartBot, engine: sa.Engine,
                                                                            tmp_path: Path) -> None:
    notice = CAMPAIGN.parent / "yincheng-town-2022.toml"
    edited = tmp_path / notice.name
    edited.write_text(notice.read_text(encoding="utf-8") + '\n[staff]\ncoordinator_code = "COORDYC"\n', encoding="utf-8")
    definition = load_definition(edited)
    load_into_db(engine, definition)
    bot = start_bot()
    assert bot.side.text(COORDINATOR, "登记").status_code == 200
    bot.side.text(COORDINATOR, "COORDYC")
    assert bot.side.text(COORDINATOR, "合计").content == TEXTS.render("totals_no_table", campaign=definition.name)
