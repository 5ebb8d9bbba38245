"""Staff in the chat: the campaign's staff code, notes when a liaison asks for a unit, 待审批,
批准 N and 驳回 N, through the real /wechat endpoint with the fake WeChat carrying the notes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from bot.campaigns import load_definition, load_into_db
from bot.store.engine import session
from bot.store.models import Delivery, LiaisonReplacement, Role
from bot.texts import Texts
from tests.fixtures_forms import CAMPAIGN, Campaign, jincheng  # noqa: F401  (fixture)
from tests.test_weekly_report import eventually

TEXTS = Texts()
HOLDER, NEWCOMER, STAFF = "oLiaisonZezhou", "oNewcomer", "oStaffWang"
STAFF_CODE, COORDINATOR_CODE = "STAFF2023JC", "COORD2023JC"


@pytest.fixture
def office(jincheng: Campaign, tmp_path: Path) -> Campaign:
    """晋城 2023 with the office's own staff codes written into its file, and one staff member
    who registered with the code (so their 48-hour window is open)."""
    edited = tmp_path / "jincheng-commerce-2023.toml"
    edited.write_text(CAMPAIGN.read_text(encoding="utf-8")
                      + f'\n[staff]\njoin_code = "{STAFF_CODE}"\ncoordinator_code = "{COORDINATOR_CODE}"\n',
                      encoding="utf-8")
    load_into_db(jincheng.engine, load_definition(edited))
    jincheng.say(STAFF, "登记")
    assert jincheng.say(STAFF, STAFF_CODE.lower()) == TEXTS.render("staff_registered", role="staff")
    jincheng.bot.fake.user_wrote(STAFF)
    return jincheng


def ask_to_take_over(office: Campaign, openid: str = NEWCOMER, name: str = "李华") -> None:
    office.say(openid, "登记")
    office.say(openid, office.codes["泽州县商务局"])
    office.say(openid, "申请")
    for text in (name, "2056819", "13900001111", "跳过", "跳过", "li@163.com", "泽州路2号", "确认"):
        office.say(openid, text)
    assert "已提交接替" in office.say(openid, "是")


def notes(office: Campaign) -> list[Delivery]:
    with session(office.engine) as db:
        return list(db.exec(select(Delivery).where(Delivery.kind.in_(["staff_note", "person_note"]))  # type: ignore[attr-defined]
                            .order_by(Delivery.id)))


def test_the_staff_code_makes_staff_and_the_coordinator_code_a_coordinator(office: Campaign) -> None:
    staff = office.bot.person(STAFF)
    assert staff is not None and (staff.role, staff.unit_id) == (Role.STAFF, None)
    office.say("oCoordinator", "登记")
    assert office.say("oCoordinator", COORDINATOR_CODE) == TEXTS.render("staff_registered", role="coordinator")
    coordinator = office.bot.person("oCoordinator")
    assert coordinator is not None and coordinator.role is Role.COORDINATOR
    # Registering again cannot turn staff into a unit's liaison.
    assert office.say(STAFF, "登记") == TEXTS.render("staff_registered", role="staff")
    code = office.codes["泽州县商务局"]
    assert office.say(STAFF, code) == TEXTS.render("not_understood", text=code, newcomer=False)
    staff = office.bot.person(STAFF)
    assert staff is not None and (staff.role, staff.unit_id) == (Role.STAFF, None)


def test_staff_are_told_of_a_takeover_request_and_approving_it_moves_the_unit(office: Campaign) -> None:
    office.register(HOLDER, "泽州县商务局", name="王小明")
    office.bot.fake.user_wrote(HOLDER)
    ask_to_take_over(office)
    office.bot.fake.user_wrote(NEWCOMER)

    [note] = office.bot.pushed_texts(STAFF, 1)
    assert "【接替申请】李华申请接替“泽州县商务局”的联络员（现为王小明）" in note

    [request] = _requests(office)
    listed = office.say(STAFF, "待审批")
    assert f"{request.id}. 接替 “泽州县商务局”：李华 13900001111（现联络员王小明）" in listed
    assert office.say(STAFF, "批准 99") == TEXTS.render("staff_no_request", number=99)
    # a number past what a request id can be is as unknown as 99: never a database error
    for number in (str(2**31), str(2**63 + 1), "9" * 5000):
        for word in ("批准", "驳回"):
            reply = office.say(STAFF, f"{word} {number}")
            assert reply == TEXTS.render("staff_no_request", number=number) and len(reply.encode()) < 2048
    decided = office.say(STAFF, f"批准 {request.id}")
    assert decided == TEXTS.render("staff_decided", number=request.id, unit="泽州县商务局", person="李华", approved=True)

    newcomer, holder = office.bot.person(NEWCOMER), office.bot.person(HOLDER)
    assert newcomer is not None and holder is not None
    assert (newcomer.unit_id, newcomer.name, newcomer.role) == (office.unit_id("泽州县商务局"), "李华", Role.LIAISON)
    assert newcomer.reminder_opt_in_at is not None
    assert holder.unit_id is None
    answers = office.answers("泽州县商务局", "liaison")
    assert (answers["name"].value, answers["mobile"].value, answers["mobile"].updated_by) == ("李华", "13900001111", NEWCOMER)
    assert office.bot.pushed_texts(NEWCOMER, 1) == [TEXTS.render("request_approved", unit="泽州县商务局", reminders=True)]
    assert office.bot.pushed_texts(HOLDER, 1) == [TEXTS.render("liaison_replaced", unit="泽州县商务局", person="李华")]
    # The new liaison works at once; the old one is a newcomer again.
    assert "“泽州县商务局”的联络员" in office.say(NEWCOMER, "帮助")
    assert office.say(HOLDER, "帮助") == TEXTS.render("help")
    # Deciding twice is answered, and nobody is told twice.
    assert office.say(STAFF, f"驳回 {request.id}") == TEXTS.render(
        "staff_already_decided", number=request.id, unit="泽州县商务局", approved=True)
    assert len(office.bot.fake.pushes(NEWCOMER)) == 1 and len(office.bot.fake.pushes(HOLDER)) == 1
    assert "没有等待审批" in office.say(STAFF, "待审批")


def test_refusing_tells_the_requester_and_leaves_the_unit_with_its_liaison(office: Campaign) -> None:
    office.register(HOLDER, "泽州县商务局", name="王小明")
    ask_to_take_over(office)
    office.bot.fake.user_wrote(NEWCOMER)
    [request] = _requests(office)
    assert "已驳回申请" in office.say(STAFF, f"驳回 {request.id}")
    assert office.bot.pushed_texts(NEWCOMER, 1) == [TEXTS.render("request_refused", unit="泽州县商务局",
                                                                 kind="replacement")]
    holder = office.bot.person(HOLDER)
    assert holder is not None and holder.unit_id == office.unit_id("泽州县商务局")
    assert _requests(office, pending=False)[0].status == "refused"


def test_a_liaison_cannot_approve_and_a_retried_approval_notes_once(office: Campaign) -> None:
    office.register(HOLDER, "泽州县商务局")
    ask_to_take_over(office)
    [request] = _requests(office)
    assert office.say(HOLDER, f"批准 {request.id}") == TEXTS.render(
        "role_refused", action="审批联络员申请", roles=["staff", "coordinator"], newcomer=False)
    side = office.bot.side
    message = side.message_xml(STAFF, "text", Content=f"批准 {request.id}")
    first, again = side.deliver(message), side.deliver(message)
    assert first.content == again.content and "已批准" in (first.content or "")
    approved = [n for n in notes(office) if n.key.startswith(f"note:request:{request.id}:approved")]
    assert len(approved) == 1


def test_a_note_to_staff_outside_their_window_is_held_until_they_write(office: Campaign) -> None:
    office.register(HOLDER, "泽州县商务局")
    office.clock.advance(days=3)  # the staff member's 48 hours have passed
    ask_to_take_over(office)
    [held] = [n for n in notes(office) if n.kind == "staff_note"]
    assert (held.status, held.errmsg) == ("held", "no_template")
    assert office.bot.fake.pushes(STAFF) == []
    office.clock.advance(minutes=30)
    office.say(STAFF, "你好")
    office.bot.fake.user_wrote(STAFF)
    [note] = office.bot.pushed_texts(STAFF, 1)
    assert "【接替申请】" in note


def _requests(office: Campaign, pending: bool = True) -> list[LiaisonReplacement]:
    with session(office.engine) as db:
        query = select(LiaisonReplacement).order_by(LiaisonReplacement.id)  # type: ignore[arg-type]
        if pending:
            query = query.where(LiaisonReplacement.status == "pending")
        return list(db.exec(query))


def test_staff_hear_of_a_featured_report_when_the_liaison_finishes_it(office: Campaign) -> None:
    office.register(HOLDER, "泽州县商务局")
    office.say(HOLDER, "要情")
    office.say(HOLDER, "今天上午泽州县开展危化品泄漏应急演练，300人参加。")
    office.bot.side.link(HOLDER, "泽州县应急演练", "晋城日报", "https://example.org/drill")
    assert office.bot.fake.pushes(STAFF) == []  # nothing before 完成
    office.say(HOLDER, "完成")
    [note] = office.bot.pushed_texts(STAFF, 1)
    assert "【要情】“泽州县商务局”6月20日报送要情：文字 1 条、链接 1 个" in note
    assert "危化品泄漏应急演练" in note


def test_media_wechat_no_longer_has_is_noted_to_staff_once(office: Campaign) -> None:
    office.register(HOLDER, "泽州县商务局")
    office.say(HOLDER, "周报")
    office.bot.side.image(HOLDER, "media-id-wechat-never-had")
    office.clock.advance(days=3)  # WeChat has deleted it; the staff member's window has closed too
    lost = eventually(lambda: [n for n in notes(office) if n.key.startswith("note:media_lost:")])
    assert [(n.status, n.openid) for n in lost] == [("held", STAFF)]
    assert "“泽州县商务局”周报中的一个图片（6月20日发送）未能从微信取回" in lost[0].payload["text"]
    office.clock.advance(minutes=5)
    office.say(STAFF, "帮助")
    office.bot.fake.user_wrote(STAFF)
    [note] = office.bot.pushed_texts(STAFF, 1)
    assert "【文件未取回】" in note
