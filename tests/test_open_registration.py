"""Open registration (荫城镇 2022: "各村、部门和各有关单位"): without a join code a person picks the
unit from a short numbered list, narrowed by part of its name, fills the 推荐表, and staff approve."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.campaigns import load_definition, load_into_db
from bot.store.engine import session
from bot.store.models import LiaisonReplacement, Role
from bot.texts import Texts
from bot.campaigns.units import import_units, unit_codes
from tests.fixtures_forms import ROOT, Campaign, Clock
from tests.fixtures_gateway import StartBot

TEXTS = Texts()
SLUG = "yincheng-town-2022"
STAFF, VILLAGER = "oStaffYincheng", "oVillageLiaison"
FEW = ["荫城村", "东村", "西村", "北村"]
# 2022-05-20 10:00 in 长治: the 推荐表 is due 5-31.
MAY_20 = datetime(2022, 5, 20, 2, 0, tzinfo=timezone.utc)


def town(start_bot: StartBot, engine: sa.Engine, tmp_path: Path, units: list[str]) -> Campaign:
    """荫城镇 loaded with the office's staff code and ``units``, and a staff member registered."""
    edited = tmp_path / "yincheng.toml"
    text = (ROOT / "campaigns" / "yincheng-town-2022.toml").read_text(encoding="utf-8")
    edited.write_text(text + '\n[staff]\njoin_code = "STAFFYC2022"\n', encoding="utf-8")
    load_into_db(engine, load_definition(edited))
    listing = tmp_path / "units.csv"
    listing.write_text("单位名称,分组\n" + "".join(f"{name},村\n" for name in units), encoding="utf-8")
    import_units(engine, SLUG, listing)
    codes = {name: code for name, _group, code, _mobile in unit_codes(engine, SLUG)}
    campaign = Campaign(start_bot, engine, Clock(MAY_20), codes)
    campaign.say(STAFF, "登记")
    assert "工作人员" in campaign.say(STAFF, "STAFFYC2022")
    campaign.bot.fake.user_wrote(STAFF)
    return campaign


@pytest.fixture
def few(start_bot: StartBot, engine: sa.Engine, tmp_path: Path) -> Campaign:
    return town(start_bot, engine, tmp_path, FEW)


@pytest.fixture
def many(start_bot: StartBot, engine: sa.Engine, tmp_path: Path) -> Campaign:
    return town(start_bot, engine, tmp_path, [f"{n}村" for n in "一二三四五六七八九十"] + ["十一村", "十二村", "东庄", "西庄", "南庄"])


def test_a_villager_picks_the_village_from_the_list_and_staff_approve(few: Campaign) -> None:
    asked = few.say(VILLAGER, "登记")
    assert asked == TEXTS.render("register_ask_code", open=True, units=sorted(FEW))
    listed = sorted(FEW)
    started = few.say(VILLAGER, str(listed.index("东村") + 1))
    assert "已选择：东村" in started and "工作人员审核" in started and "姓名" in started
    for text in ("张建国", "村支书", "0355-5123456", "13912345678", "无", "确认"):
        few.say(VILLAGER, text)
    assert few.say(VILLAGER, "是") == TEXTS.render("replacement_requested", unit="东村", kind="registration")
    villager = few.bot.person(VILLAGER)
    assert villager is not None and villager.unit_id is None
    [note] = few.bot.pushed_texts(STAFF, 1)
    assert "【登记申请】张建国申请登记为“东村”的联络员" in note

    with session(few.engine) as db:
        [request] = db.exec(select(LiaisonReplacement)).all()
    assert (request.kind, request.holder_openid) == ("registration", "")
    assert f"{request.id}. 登记 “东村”：张建国 13912345678" in few.say(STAFF, "待审批")
    few.say(STAFF, f"批准 {request.id}")
    villager = few.bot.person(VILLAGER)
    assert villager is not None and (villager.unit_id, villager.role) == (few.unit_id("东村"), Role.LIAISON)
    answers = few.answers("东村", "liaison")
    assert (answers["unit"].value, answers["job_title"].value, answers["remark"].value) == ("东村", "村支书", None)
    [submission] = few.submissions("东村")
    assert (submission.status, submission.late, submission.submitted_by) == ("submitted", False, VILLAGER)


def test_a_join_code_still_registers_at_once_and_a_wrong_code_is_told(few: Campaign) -> None:
    few.say(VILLAGER, "登记")
    assert few.say(VILLAGER, "ABCDEFGH") == TEXTS.render("invalid_join_code", given="ABCDEFGH")
    assert few.say(VILLAGER, "南村") == TEXTS.render("register_no_unit", given="南村")
    assert "加入码正确：西村" in few.say(VILLAGER, few.codes["西村"])
    for text in ("李明", "主任", "0355-5123456", "13912345678", "跳过", "确认"):
        few.say(VILLAGER, text)
    assert "登记完成" in few.say(VILLAGER, "是")
    villager = few.bot.person(VILLAGER)
    assert villager is not None and villager.unit_id == few.unit_id("西村")


def test_with_many_units_a_part_of_the_name_narrows_the_list(many: Campaign) -> None:
    assert many.say(VILLAGER, "登记") == TEXTS.render("register_ask_code", open=True, units=[])
    assert many.say(VILLAGER, "村") == TEXTS.render("register_too_many", given="村", count=12)
    assert many.say(VILLAGER, "庄") == TEXTS.render("register_units", units=["东庄", "南庄", "西庄"])
    assert many.say(VILLAGER, "4") == TEXTS.render("register_no_unit", given="4")
    assert "已选择：南庄" in many.say(VILLAGER, "2")


def test_a_picked_unit_that_has_a_liaison_becomes_a_takeover_request(few: Campaign) -> None:
    few.say("oFirst", "登记")
    few.say("oFirst", few.codes["北村"])
    for text in ("王一", "主任", "0355-5123456", "13912345678", "跳过", "确认", "是"):
        few.say("oFirst", text)
    few.say(VILLAGER, "登记")
    taken = few.say(VILLAGER, str(sorted(FEW).index("北村") + 1))
    assert taken == TEXTS.render("unit_taken", unit="北村", holder="王一")
    few.say(VILLAGER, "申请")
    for text in ("张三", "会计", "0355-5123457", "13912345670", "跳过", "确认"):
        few.say(VILLAGER, text)
    assert few.say(VILLAGER, "否") == TEXTS.render("replacement_requested", unit="北村", kind="replacement")
