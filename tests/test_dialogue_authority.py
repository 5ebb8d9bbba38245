"""A dialogue acts only with the authority it was opened with (issue 19, item 10): a liaison whose
unit is given to someone else, or staff whose role is revoked, get a reply saying so at their next
message in the dialogue, and nothing of that message is written, not even when the change commits
while that very message is being decided. Through the real /wechat endpoint; roles are revoked
with ``safetybot people revoke`` as an operator would."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.campaigns import load_definition, load_into_db
from bot.store.engine import session
from bot.store.models import LiaisonReplacement, Role
from bot.texts import Texts
from handlers.roles import Described
from tests.fixtures_cli import safetybot
from tests.fixtures_forms import CAMPAIGN, Campaign, jincheng  # noqa: F401  (fixture)
from tests.test_people_races import HeldAfterDeciding
from tests.test_staff import HOLDER, NEWCOMER, STAFF, ask_to_take_over, office  # noqa: F401  (fixture)

TEXTS = Texts()
UNIT = "泽州县商务局"
CAMPAIGN_NAME = "2023年全市商务系统“安全生产月”活动"
# What the takeover request files as the unit's liaison table (tests/test_staff.py: ask_to_take_over).
NEWCOMERS_MOBILE = "13900001111"


def no_longer_liaison(flow: str) -> str:
    """The reply ending ``flow`` for the liaison of 泽州县商务局 who is no longer."""
    return TEXTS.render("dialogue_authority_lapsed", flow=flow, was=Described("liaison", UNIT, ""),
                        now=Described("liaison", "", ""))


def no_longer_staff(flow: str) -> str:
    """The reply ending ``flow`` for the campaign's staff member whose role was revoked."""
    return TEXTS.render("dialogue_authority_lapsed", flow=flow, was=Described("staff", "", CAMPAIGN_NAME),
                        now=Described("liaison", "", ""))


def stored(office: Campaign) -> dict[str, list[Any]]:
    """Everything a dialogue may write: answers and their revisions, submissions, report items,
    announcements, requests, people's roles, and how many messages wait to go out."""
    queries = {
        "answer": "SELECT submission_id, field_key, value, updated_by FROM answer ORDER BY id",
        "answer_revision": "SELECT answer_id, old_value, new_value, changed_by FROM answer_revision ORDER BY id",
        "submission": "SELECT unit_id, deadline_id, period, status, submitted_by FROM submission ORDER BY id",
        "report_item": "SELECT submission_id, kind, text FROM report_item ORDER BY id",
        "announcement": "SELECT campaign_id, text FROM announcement ORDER BY id",
        "liaison_replacement": "SELECT unit_id, openid, status FROM liaison_replacement ORDER BY id",
        "person": "SELECT openid, role, unit_id, campaign_id, name FROM person ORDER BY openid",
        "delivery": "SELECT count(*) FROM delivery",
    }
    with office.engine.connect() as conn:
        return {table: [tuple(row) for row in conn.execute(sa.text(sql))] for table, sql in queries.items()}


def request_id(office: Campaign) -> int:
    with session(office.engine) as db:
        found = db.exec(select(LiaisonReplacement).where(LiaisonReplacement.status == "pending")).one().id
    assert found is not None
    return found


def approve_takeover(office: Campaign) -> None:
    """Someone else asks to take over 泽州县商务局 and staff approve it."""
    ask_to_take_over(office)
    number = request_id(office)
    assert office.say(STAFF, f"批准 {number}") == TEXTS.render(
        "staff_decided", number=number, unit=UNIT, person="李华", approved=True)
    newcomer = office.bot.person(NEWCOMER)
    assert newcomer is not None and newcomer.unit_id == office.unit_id(UNIT)


def test_the_former_liaisons_确认_after_a_takeover_leaves_the_new_liaisons_table_as_it_is(office: Campaign) -> None:
    office.register(HOLDER, UNIT, name="王小明")
    office.say(HOLDER, "修改资料")
    assert "手机号码" in office.say(HOLDER, "修改 3")
    assert "13700002222" in office.say(HOLDER, "13700002222")  # the review, with the new number
    approve_takeover(office)
    before = stored(office)

    assert office.say(HOLDER, "确认") == no_longer_liaison("details")
    assert "您已不是“泽州县商务局”的联络员，修改资料已结束：本次修改没有保存" in no_longer_liaison("details")
    assert stored(office) == before
    answers = office.answers(UNIT, "liaison")
    assert (answers["mobile"].value, answers["mobile"].updated_by) == (NEWCOMERS_MOBILE, NEWCOMER)
    assert office.conversation(HOLDER).flow == ""  # type: ignore[union-attr]
    # What the former liaison may still do is what anyone without a unit may: 修改资料 is refused.
    assert "联络员请先回复“登记”" in office.say(HOLDER, "修改资料")


@pytest.mark.parametrize(("opener", "flow", "message"), [
    ("填报", "statistics", "12"),
    ("周报", "weekly", "今天组织全体职工开展了安全生产培训"),
    ("要情", "featured", "今天开展了消防应急演练"),
    ("典型案例", "records", "2023年5月10日"),
    ("修改资料", "details", "修改 3"),
])
def test_every_dialogue_that_writes_ends_once_its_unit_was_given_to_someone_else(
        office: Campaign, opener: str, flow: str, message: str) -> None:
    office.register(HOLDER, UNIT, name="王小明")
    office.say(HOLDER, opener)
    assert office.conversation(HOLDER).flow == flow  # type: ignore[union-attr]
    approve_takeover(office)
    before = stored(office)

    assert office.say(HOLDER, message) == no_longer_liaison(flow)
    assert stored(office) == before
    assert office.conversation(HOLDER).flow == ""  # type: ignore[union-attr]


def test_an_opening_word_refused_to_the_former_liaison_ends_the_dialogue_too(office: Campaign) -> None:
    office.register(HOLDER, UNIT, name="王小明")
    office.say(HOLDER, "周报")
    approve_takeover(office)
    before = stored(office)
    # Not "your 周报 is still open": it is not, and the reply says why.
    assert office.say(HOLDER, "填报") == (TEXTS.render("fill_needs_registration") + "\n\n"
                                         + no_longer_liaison("weekly"))
    assert office.conversation(HOLDER).flow == ""  # type: ignore[union-attr]
    assert stored(office) == before


def test_the_new_liaison_walks_the_statistics_table_the_former_one_had_open(office: Campaign) -> None:
    office.register(HOLDER, UNIT, name="王小明")
    office.say(HOLDER, "填报")
    approve_takeover(office)
    assert "统计表" in office.say(NEWCOMER, "填报")
    before = stored(office)
    assert office.say(HOLDER, "5") == no_longer_liaison("statistics")
    assert stored(office) == before
    office.say(NEWCOMER, "3")
    assert 3 in {a.number for a in office.answers(UNIT, "statistics").values() if a.updated_by == NEWCOMER}


def test_an_announcement_written_before_the_role_was_revoked_is_not_sent(
        office: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    office.register(HOLDER, UNIT, name="王小明")
    assert office.say(STAFF, "通知") == TEXTS.render("announce_start")
    office.say(STAFF, "关于开展安全生产大检查的通知")
    assert "确认" in office.say(STAFF, "1")  # the preview: one liaison would get it
    assert safetybot(env_file, "people", "revoke", STAFF) == 0
    assert "ends at their next message" in capsys.readouterr().out
    before = stored(office)

    ended = office.say(STAFF, "确认")
    assert ended == no_longer_staff("announce")
    assert ended.startswith(f"您已不是{CAMPAIGN_NAME}的工作人员，通知已结束：这条通知没有发送")
    assert stored(office) == before and before["announcement"] == []
    assert office.bot.fake.pushes(HOLDER) == []


def test_an_announcement_begun_for_one_campaign_is_not_sent_in_the_next_after_staff_moved_there(
        office: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_into_db(office.engine, load_definition(CAMPAIGN, year=2024))
    office.register(HOLDER, UNIT, name="王小明")
    office.say(STAFF, "通知")
    office.say(STAFF, "关于开展安全生产大检查的通知")
    assert "确认" in office.say(STAFF, "1")
    assert safetybot(env_file, "people", "grant", STAFF, "staff", "--campaign", "jincheng-commerce-2024") == 0
    capsys.readouterr()
    before = stored(office)

    ended = office.say(STAFF, "确认")
    # 2024's campaign is 2023's notice loaded again, its year moved in its name.
    assert ended.startswith(f"您已不是{CAMPAIGN_NAME}的工作人员（现为{CAMPAIGN_NAME.replace('2023', '2024')}的工作人员）")
    assert "通知已结束：这条通知没有发送" in ended
    assert stored(office) == before and before["announcement"] == []


def test_a_takeover_approved_while_the_former_liaisons_确认_is_decided_is_seen_before_it_is_written(
        office: Campaign) -> None:
    office.register(HOLDER, UNIT, name="王小明")
    office.say(HOLDER, "修改资料")
    office.say(HOLDER, "修改 3")
    office.say(HOLDER, "13700002222")
    ask_to_take_over(office)
    number = request_id(office)
    held = HeldAfterDeciding(HOLDER, "确认")
    office.bot = office.start_bot(clock=office.clock, dispatch=held, served=True)
    with ThreadPoolExecutor(1) as pool:
        confirming = pool.submit(office.say, HOLDER, "确认")
        assert held.decided.wait(10)
        # Decided as "saved", not written yet; staff approve the takeover meanwhile.
        assert "已批准" in office.say(STAFF, f"批准 {number}")
        held.release.set()
        assert confirming.result(timeout=30) == no_longer_liaison("details")
    assert held.decisions == [(TEXTS.render("details_saved", changed=1),), (no_longer_liaison("details"),)]
    answers = office.answers(UNIT, "liaison")
    assert (answers["mobile"].value, answers["mobile"].updated_by) == (NEWCOMERS_MOBILE, NEWCOMER)
    assert all(r.changed_by != HOLDER for r in office.revisions())


def test_批准_by_staff_whose_role_is_revoked_while_it_is_decided_changes_nothing(
        office: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    office.register(HOLDER, UNIT, name="王小明")
    ask_to_take_over(office)
    number = request_id(office)
    refused = TEXTS.render("role_refused", action="审批联络员申请", roles=["staff", "coordinator"], newcomer=True)
    held = HeldAfterDeciding(STAFF, f"批准 {number}")
    office.bot = office.start_bot(clock=office.clock, dispatch=held, served=True)
    before = stored(office)
    with ThreadPoolExecutor(1) as pool:
        approving = pool.submit(office.say, STAFF, f"批准 {number}")
        assert held.decided.wait(10)
        assert safetybot(env_file, "people", "revoke", STAFF) == 0
        held.release.set()
        assert approving.result(timeout=30) == refused
    assert "已批准" in held.decisions[0][0] and held.decisions[1] == (refused,)
    after = stored(office)
    staff = office.bot.person(STAFF)
    assert staff is not None and (staff.role, staff.campaign_id) == (Role.LIAISON, None)
    # Only the revoke itself changed something: the request waits, the unit keeps its liaison.
    assert {k: v for k, v in after.items() if k != "person"} == {k: v for k, v in before.items() if k != "person"}
    assert [p for p in after["person"] if p[0] != STAFF] == [p for p in before["person"] if p[0] != STAFF]
    # And a second 批准 from them is refused the same way.
    assert office.say(STAFF, f"批准 {number}") == refused
    assert stored(office) == after
