"""``safetybot people list|grant|revoke|invite`` run as an operator would, against the bot that the
people then talk to through the real /wechat endpoint."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.campaigns import load_definition, load_into_db
from bot.campaigns.units import JOIN_CODE_ALPHABET
from bot.store.engine import session
from bot.store import people
from bot.store.models import Invitation, Person, Role
from bot.texts import Texts
from tests.fixtures_cli import safetybot
from tests.fixtures_forms import CAMPAIGN, SLUG, Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()
OTHER_SLUG = "jincheng-commerce-2024"


@pytest.fixture
def office(jincheng: Campaign) -> Campaign:
    """晋城 2023 with its units, and the same notice loaded again for 2024 (another campaign)."""
    load_into_db(jincheng.engine, load_definition(CAMPAIGN, year=2024))
    return jincheng


def invite(env_file: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``people invite ARGV…`` and return the code it printed."""
    assert safetybot(env_file, "people", "invite", *argv) == 0
    printed = capsys.readouterr()
    return printed.out.strip()


def campaign_id(office: Campaign, slug: str = SLUG) -> int | None:
    with office.engine.connect() as conn:
        return people.campaign_id(conn, slug)


def test_an_invitation_is_a_code_a_phone_can_type_and_makes_its_first_sender_staff_once(
        office: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = invite(env_file, capsys, "staff", "--campaign", SLUG)
    assert re.fullmatch(f"[{JOIN_CODE_ALPHABET}]{{8}}", code) and not set(code) & set("0O1I")
    office.say("oWang", "登记")
    assert office.say("oWang", code.lower()) == TEXTS.render("staff_registered", role="staff", left_unit="")
    wang = office.bot.person("oWang")
    assert wang is not None and (wang.role, wang.campaign_id, wang.unit_id) == (Role.STAFF, campaign_id(office), None)
    # The same code a second time: refused, and it says why.
    office.say("oLi", "登记")
    assert office.say("oLi", code) == TEXTS.render("invitation_used")
    li = office.bot.person("oLi")
    assert li is not None and (li.role, li.campaign_id) == (Role.LIAISON, None)


def test_an_expired_invitation_is_refused_and_says_when_it_expired(
        office: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The CLI stamps real time; the bot's clock is the test's, so the code is made relative to it.
    code = invite(env_file, capsys, "coordinator", "--campaign", SLUG, "--expires", "12h")
    office.clock.now = _expiry(office, code)
    office.say("oLate", "登记")
    refused = office.say("oLate", code)
    assert "已于" in refused and "过期" in refused and "身份没有变化" in refused
    late = office.bot.person("oLate")
    assert late is not None and late.role is Role.LIAISON
    office.clock.now = _expiry(office, code) - timedelta(hours=1)  # an hour before, it was valid
    assert office.say("oLate", code) == TEXTS.render("staff_registered", role="coordinator", left_unit="")


def _expiry(office: Campaign, code: str) -> datetime:
    with session(office.engine) as db:
        return db.exec(select(Invitation).where(Invitation.code == code)).one().expires_at


def test_grant_makes_a_liaison_a_coordinator_and_ends_the_dialogue_they_had_open(
        office: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    office.register("oZhao", "泽州县商务局", name="赵敏")
    office.say("oZhao", "填报")
    assert office.conversation("oZhao").flow != ""  # type: ignore[union-attr]
    before = {k: a.value for k, a in office.answers("泽州县商务局", "statistics").items()}
    assert safetybot(env_file, "people", "grant", "oZhao", "coordinator", "--campaign", SLUG) == 0
    out = capsys.readouterr().out
    assert "oZhao: liaison → coordinator of jincheng-commerce-2023" in out
    assert "no longer the liaison of 泽州县商务局" in out
    zhao = office.bot.person("oZhao")
    assert zhao is not None and (zhao.role, zhao.unit_id, zhao.campaign_id) == (
        Role.COORDINATOR, None, campaign_id(office))
    # The statistics walk begun as a liaison does not go on: the next answer ends it, saying why.
    ended = office.say("oZhao", "12")
    assert ended.startswith("您已不是“泽州县商务局”的联络员（现为2023年全市商务系统“安全生产月”活动的协调人）")
    assert "统计表填报已结束：这条消息没有保存" in ended
    assert office.conversation("oZhao").flow == ""  # type: ignore[union-attr]
    assert {k: a.value for k, a in office.answers("泽州县商务局", "statistics").items()} == before
    assert "没有等待审批" in office.say("oZhao", "待审批")

    assert safetybot(env_file, "people", "list", "--role", "coordinator") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split() == ["openid", "name", "role", "campaign", "unit", "last", "message"]
    assert listed[1].split()[:4] == ["oZhao", "赵敏", "coordinator", SLUG] and listed[-1] == "1 person"

    assert safetybot(env_file, "people", "revoke", "oZhao") == 0
    assert "coordinator of jincheng-commerce-2023 → liaison without a unit" in capsys.readouterr().out
    zhao = office.bot.person("oZhao")
    assert zhao is not None and (zhao.role, zhao.unit_id, zhao.campaign_id) == (Role.LIAISON, None, None)
    assert office.say("oZhao", "待审批") == TEXTS.render(
        "role_refused", action="审批联络员申请", roles=["staff", "coordinator"], newcomer=True)


def test_people_list_shows_each_campaign_s_office_and_liaisons(
        office: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    office.register("oZhao", "泽州县商务局", name="赵敏")
    office.say("oQian", "你好")
    assert safetybot(env_file, "people", "grant", "oQian", "staff", "--campaign", OTHER_SLUG) == 0
    capsys.readouterr()
    assert safetybot(env_file, "people", "list") == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:-1]]
    assert [r[:3] for r in rows] == [["oQian", "-", "staff"], ["oZhao", "赵敏", "liaison"]]
    assert rows[0][3] == OTHER_SLUG and rows[1][3:5] == [SLUG, "泽州县商务局"]
    assert re.fullmatch(r"2023-06-20", rows[1][5])  # 晋城's local date of the last message
    assert safetybot(env_file, "people", "list", "--campaign", SLUG) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:-1]] == ["oZhao"]


@pytest.mark.parametrize(("argv", "status", "said"), [
    (("grant", "oNobody", "staff", "--campaign", SLUG), 1, "nobody with the OpenID oNobody"),
    (("grant", "oKnown", "staff", "--campaign", "no-such-2023"), 1, "no campaign 'no-such-2023' is loaded"),
    (("invite", "staff", "--campaign", "no-such-2023"), 1, "loaded: jincheng-commerce-2023, jincheng-commerce-2024"),
    (("revoke", "oNobody"), 1, "nobody with the OpenID oNobody"),
    (("list", "--campaign", "no-such-2023"), 1, "no campaign 'no-such-2023'"),
    (("grant", "oKnown", "boss", "--campaign", SLUG), 2, "'boss' is not a role here; choose staff or coordinator"),
    (("invite", "liaison", "--campaign", SLUG), 2, "choose staff or coordinator"),
    (("invite", "staff", "--campaign", SLUG, "--expires", "7 days"), 2, "is not a duration like 7d"),
    (("invite", "staff", "--campaign", SLUG, "--expires", "0d"), 2, "is not a duration like 7d"),
])
def test_mistakes_are_named_and_change_nothing(office: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str],
                                                argv: tuple[str, ...], status: int, said: str) -> None:
    office.say("oKnown", "你好")
    with office.engine.connect() as conn:
        before = conn.exec_driver_sql("SELECT openid, role, campaign_id, unit_id FROM person ORDER BY id").all()
    try:
        got = safetybot(env_file, "people", *argv)
    except SystemExit as exit:  # argparse refuses a malformed command itself
        got = int(exit.code or 0)
    assert got == status
    assert said in capsys.readouterr().err
    with office.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT openid, role, campaign_id, unit_id FROM person ORDER BY id").all() == before
        assert conn.exec_driver_sql("SELECT count(*) FROM invitation").scalar_one() == 0


def test_a_liaison_who_redeems_an_invitation_gives_up_the_unit_and_the_office_hears_it(
        office: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    office.say("oStaff", "你好")
    office.bot.fake.user_wrote("oStaff")
    assert safetybot(env_file, "people", "grant", "oStaff", "staff", "--campaign", SLUG) == 0
    capsys.readouterr()
    office.register("oZhao", "泽州县商务局", name="赵敏")
    code = invite(env_file, capsys, "coordinator", "--campaign", SLUG)
    assert "如收到活动办公室的工作人员邀请码" in office.say("oZhao", "登记")
    assert office.say("oZhao", code) == TEXTS.render("staff_registered", role="coordinator", left_unit="泽州县商务局")
    zhao = office.bot.person("oZhao")
    assert zhao is not None and (zhao.role, zhao.unit_id) == (Role.COORDINATOR, None)
    [note] = office.bot.pushed_texts("oStaff", 1)
    assert note == TEXTS.render("staff_note_liaison_left", unit="泽州县商务局", person="赵敏", role="coordinator")
    # The unit is free: a newcomer registers with its join code at once.
    office.register("oNew", "泽州县商务局", name="钱多")
    assert office.bot.person("oNew").unit_id == office.unit_id("泽州县商务局")  # type: ignore[union-attr]


def test_a_liaison_who_sends_another_code_after_登记_stays_where_they_are(office: Campaign) -> None:
    office.register("oZhao", "泽州县商务局", name="赵敏")
    office.say("oZhao", "登记")
    given = office.codes["高平市商务局"]
    assert office.say("oZhao", given) == TEXTS.render("register_not_office_code", given=given, staff=False)
    zhao = office.bot.person("oZhao")
    assert zhao is not None and (zhao.role, zhao.unit_id) == (Role.LIAISON, office.unit_id("泽州县商务局"))
    assert office.conversation("oZhao").flow == ""  # type: ignore[union-attr]


def test_staff_made_before_staff_had_a_campaign_are_asked_for_its_code_again(
        office: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    office.say("oOld", "你好")
    with session(office.engine) as db:  # as migration 0003 left a staff member made by an older bot
        old = db.exec(select(Person).where(Person.openid == "oOld")).one()
        old.role = Role.STAFF
        db.add(old)
        db.commit()
    assert office.say("oOld", "待审批") == TEXTS.render("role_no_campaign", role="staff", action="审批联络员申请")
    assert office.say("oOld", "登记") == TEXTS.render("register_office_code", role="staff")
    code = invite(env_file, capsys, "staff", "--campaign", SLUG)
    assert office.say("oOld", code) == TEXTS.render("staff_registered", role="staff", left_unit="")
    old = office.bot.person("oOld")
    assert old is not None and (old.role, old.campaign_id) == (Role.STAFF, campaign_id(office))
    assert "没有等待审批" in office.say("oOld", "待审批")
