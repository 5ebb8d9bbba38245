"""帮助 lists what the person can do now: by role, and with their unit's open deadlines."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.store.engine import session
from bot.store.models import Person, Role, Unit
from bot.texts import Texts
from tests.fixtures_forms import Campaign, jincheng  # noqa: F401  (fixture)
from tests.test_staff import ask_to_take_over
from tests.test_statistics import fill_and_submit

TEXTS = Texts()
ME = "oLiaisonZezhou"


def test_a_newcomer_is_told_to_register(jincheng: Campaign) -> None:
    assert jincheng.say("oNew", "帮助") == TEXTS.render("help")
    assert jincheng.click("oNew", "HELP") == TEXTS.render("help")


def test_a_liaison_sees_the_open_deadlines_and_what_is_filed(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    shown = jincheng.say(ME, "帮助")
    assert "“泽州县商务局”的联络员" in shown
    # On 6-20 the liaison table (5-31) is filed, late; the plan (5-31) is overdue and still owed.
    assert "报送联络员表" not in shown
    # The plan is a document the notice asks for by e-mail: past its due time help says nothing of it.
    assert "报送安全月活动方案" not in shown
    assert "报送安全生产月总结报告：7月1日 23:59前，不在这里报送，请按通知发送至邮箱 jcswjzsk@163.com" in shown
    assert "报送一周活动开展情况：6月21日 18:00前" in shown
    assert "报送安全生产月统计表：7月1日 23:59前" in shown
    assert "填报 —— " in shown and "周报 —— " in shown and "修改资料 —— " in shown

    fill_and_submit(jincheng, ME)
    assert "报送安全生产月统计表：7月1日 23:59前（已报）" in jincheng.say(ME, "帮助")


def test_after_the_last_weekly_due_time_the_unfiled_last_week_shows_as_overdue(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    jincheng.clock.now = datetime(2023, 6, 28, 12, 0, tzinfo=timezone.utc)  # 20:00 in 晋城, after 18:00
    assert "报送一周活动开展情况：6月28日 18:00前（已逾期，仍可补报）" in jincheng.say(ME, "帮助")


def test_documents_are_listed_with_the_address_the_notice_gives_not_as_things_to_send_here(jincheng: Campaign) -> None:
    jincheng.clock.now = datetime(2023, 5, 20, 2, 0, tzinfo=timezone.utc)
    jincheng.register(ME, "泽州县商务局")
    shown = jincheng.say(ME, "帮助")
    assert "报送安全月活动方案：5月31日 23:59前，不在这里报送，请按通知发送至邮箱 jcswjzsk@163.com" in shown
    assert "报送安全月活动方案：5月31日 23:59前（" not in shown


def test_a_person_whose_request_to_take_over_waits_hears_so_in_help(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    ask_to_take_over(jincheng, "oNewcomer")
    shown = jincheng.say("oNewcomer", "帮助")
    assert shown == "\n".join([TEXTS.render("help_requested", units=["泽州县商务局"]), TEXTS.render("help")])
    assert "正等待工作人员审批" in shown


def _give_role(office: Campaign, openid: str, role: Role) -> None:
    """Give a person who has written the role ``role`` in the campaign, straight in the database."""
    unit_id = office.unit_id("泽州县商务局")
    with session(office.engine) as db:
        person = db.get(Person, office.bot.person(openid).id)  # type: ignore[union-attr]
        assert person is not None
        person.role = role
        person.campaign_id = db.get(Unit, unit_id).campaign_id  # type: ignore[union-attr]
        db.add(person)
        db.commit()


def test_staff_and_coordinators_see_their_own_commands_and_what_waits(jincheng: Campaign) -> None:
    jincheng.say("oStaff", "你好")
    _give_role(jincheng, "oStaff", Role.STAFF)
    shown = jincheng.say("oStaff", "帮助")
    assert shown == TEXTS.render("help_staff", role="staff", pending=0)
    assert "待审批" in shown and "批准 N" in shown and "驳回 N" in shown and "填报" not in shown
    jincheng.register(ME, "泽州县商务局")
    jincheng.say("oNewcomer", "登记")
    jincheng.say("oNewcomer", jincheng.codes["泽州县商务局"])
    jincheng.say("oNewcomer", "申请")
    for text in ("李华", "2056819", "13900001111", "跳过", "跳过", "li@163.com", "泽州路2号", "确认", "是"):
        jincheng.say("oNewcomer", text)
    assert "（现有 1 条）" in jincheng.say("oStaff", "帮助")
    _give_role(jincheng, "oStaff", Role.COORDINATOR)
    assert "协调人" in jincheng.say("oStaff", "帮助") and "报送情况汇总" in jincheng.say("oStaff", "帮助")
