"""Registration (联络员表) and 修改资料, through the real /wechat endpoint with signed XML."""

from __future__ import annotations

from sqlmodel import select

from bot.store.engine import session
from bot.store.models import LiaisonReplacement, Role
from bot.texts import Texts
from tests.fixtures_forms import Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()
ME = "oLiaisonZezhou"


def test_a_liaison_registers_with_the_join_code_every_field_checked_and_opts_in(jincheng: Campaign) -> None:
    code = jincheng.codes["泽州县商务局"]
    assert "加入码" in jincheng.say(ME, "登记")
    assert "没有找到加入码" in jincheng.say(ME, "ABCDEFGH")
    started = jincheng.say(ME, code.lower())
    assert "泽州县商务局" in started and "（1/7）姓名" in started
    assert "不像姓名" in jincheng.say(ME, "W")
    assert "办公电话" in jincheng.say(ME, "王小明")
    assert "不像办公电话" in jincheng.say(ME, "12345")
    assert "手机号码" in jincheng.say(ME, "0356-2056819转801")
    assert "不是手机号码" in jincheng.say(ME, "12812345678")
    assert "传真" in jincheng.say(ME, "138 1234 5678")
    assert "微信号" in jincheng.say(ME, "跳过")
    assert "电子邮箱" in jincheng.say(ME, "无")  # an optional field: 无 leaves it blank
    assert "不是有效的电子邮箱" in jincheng.say(ME, "wang@163")
    assert "通信地址" in jincheng.say(ME, "wang@163.com")
    review = jincheng.say(ME, "晋城市泽州路1号")
    assert "王小明" in review and "13812345678" in review and "确认" in review
    assert "手机号码" in jincheng.say(ME, "修改 3")
    assert "13900001111" in jincheng.say(ME, "13900001111")
    assert "同意接收报送截止提醒" in jincheng.say(ME, "确认")
    assert jincheng.say(ME, "好") == TEXTS.render("invalid_opt_in")
    assert jincheng.say(ME, "是") == TEXTS.render("registered", unit="泽州县商务局", reminders=True)

    person = jincheng.bot.person(ME)
    assert person is not None
    assert (person.unit_id, person.name, person.role) == (jincheng.unit_id("泽州县商务局"), "王小明", Role.LIAISON)
    assert person.reminder_opt_in_at == jincheng.clock.now
    answers = jincheng.answers("泽州县商务局", "liaison")
    assert {k: a.value for k, a in answers.items()} == {
        "unit": "泽州县商务局", "name": "王小明", "office_phone": "0356-2056819转801", "mobile": "13900001111",
        "fax": None, "wechat_id": None, "email": "wang@163.com", "address": "晋城市泽州路1号"}
    [submission] = jincheng.submissions("泽州县商务局")
    # The liaison table was due on 5-31; registering on 6-20 files it late.
    assert (submission.status, submission.late, submission.submitted_by) == ("submitted", True, ME)


def test_the_menu_button_starts_the_same_registration_and_no_means_no_reminders(jincheng: Campaign) -> None:
    assert jincheng.click(ME, "REGISTER") == TEXTS.render("register_ask_code", open=False, units=[])
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    for text in ("王小明", "2056819", "13812345678", "跳过", "跳过", "wang@163.com", "泽州路1号", "确认"):
        jincheng.say(ME, text)
    assert "不接收" in jincheng.say(ME, "否")
    person = jincheng.bot.person(ME)
    assert person is not None and person.unit_id is not None and person.reminder_opt_in_at is None


def test_a_registered_liaison_is_told_so_and_cancelling_registration_stores_nothing(jincheng: Campaign) -> None:
    jincheng.say("oOther", "登记")
    jincheng.say("oOther", jincheng.codes["高平市商务局"])
    assert jincheng.say("oOther", "取消") == TEXTS.render("register_cancelled", kept=0)
    other = jincheng.bot.person("oOther")
    assert other is not None and other.unit_id is None
    jincheng.register(ME, "泽州县商务局")
    assert jincheng.say(ME, "登记") == TEXTS.render("register_already", unit="泽州县商务局")


def test_a_second_person_for_a_held_unit_is_told_who_holds_it_fills_the_table_and_asks_staff(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局", name="王小明")
    jincheng.say("oNewcomer", "登记")
    taken = jincheng.say("oNewcomer", jincheng.codes["泽州县商务局"])
    assert taken == TEXTS.render("unit_taken", unit="泽州县商务局", holder="王小明")
    assert jincheng.say("oNewcomer", "好吧") == TEXTS.render("replace_waiting")
    assert "（1/7）姓名" in jincheng.say("oNewcomer", "申请")
    for text in ("李华", "2056819", "13900001111", "跳过", "跳过", "li@163.com", "泽州路2号", "确认"):
        jincheng.say("oNewcomer", text)
    assert jincheng.say("oNewcomer", "是") == TEXTS.render("replacement_requested", unit="泽州县商务局",
                                                           kind="replacement")
    with session(jincheng.engine) as db:
        [request] = db.exec(select(LiaisonReplacement)).all()
    assert (request.openid, request.holder_openid, request.status, request.kind, request.name, request.reminders) == (
        "oNewcomer", ME, "pending", "replacement", "李华", True)
    assert request.answers["mobile"] == ["13900001111", None, False]
    newcomer = jincheng.bot.person("oNewcomer")
    assert newcomer is not None and newcomer.unit_id is None
    # Until staff decide, 登记 says the request waits; the unit's table is still the holder's.
    assert jincheng.say("oNewcomer", "登记") == TEXTS.render("register_pending", unit="泽州县商务局")
    assert jincheng.answers("泽州县商务局", "liaison")["name"].value == "王小明"


def test_two_people_finishing_registration_for_one_unit_leave_one_liaison(jincheng: Campaign) -> None:
    code = jincheng.codes["泽州县商务局"]
    for openid in ("oFirst", "oSecond"):
        jincheng.say(openid, "登记")
        jincheng.say(openid, code)
        for text in ("王小明", "2056819", "13812345678", "跳过", "跳过", "wang@163.com", "泽州路1号", "确认"):
            jincheng.say(openid, text)
    assert "登记完成" in jincheng.say("oFirst", "是")
    assert jincheng.say("oSecond", "是") == TEXTS.render("unit_taken", unit="泽州县商务局", holder="王小明")
    second = jincheng.bot.person("oSecond")
    assert second is not None and second.unit_id is None


def test_details_are_changed_later_and_the_old_value_is_kept(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局", name="王小明", mobile="13812345678")
    review = jincheng.say(ME, "修改资料")
    assert "13812345678" in review and "修改 N" in review
    assert "手机号码" in jincheng.say(ME, "修改 3")
    jincheng.say(ME, "13900001111")
    jincheng.say(ME, "修改 1")
    jincheng.say(ME, "李华")
    assert jincheng.say(ME, "确认") == TEXTS.render("details_saved", changed=2)
    answers = jincheng.answers("泽州县商务局", "liaison")
    assert (answers["mobile"].value, answers["name"].value) == ("13900001111", "李华")
    person = jincheng.bot.person(ME)
    assert person is not None and person.name == "李华"
    changes = {(r.old_value, r.new_value, r.changed_by) for r in jincheng.revisions()}
    assert changes == {("13812345678", "13900001111", ME), ("王小明", "李华", ME)}
