"""The role matrix: every chat command × every kind of sender, allowed or refused; a refusal names
who may use the command and changes nothing in the database.

The senders: someone who has only said hello (stranger), the liaisons of two units (A, B), staff
and a coordinator of the campaign, and staff of another campaign. Two requests wait (someone asks
to take over unit A, someone else unit B), so the office commands have something to see and decide.

Adding a command is adding a :class:`Command` row to ``COMMANDS``: its messages for a sender (the
last one is the command; those before lead up to it) and, for each sender, :class:`Allowed` with
what must then hold, or :class:`Refused` with the reply. Each row runs on a world of its own: the
refused senders first (each compared with a dump of the tables), then the allowed ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Union

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from bot.campaigns import load_definition, load_into_db
from bot.dashboard.sessions import Sessions, dashboard_key
from bot.exports.links import ExportLinks
from bot.store.engine import session
from bot.store.models import LiaisonReplacement, Role
from bot.store.people import campaign_id, create_invitation
from bot.texts import Texts
from tests.fixtures_forms import CAMPAIGN, SLUG, Campaign, jincheng  # noqa: F401  (fixture)
from handlers.backstage import ACTION as BACKSTAGE_ACTION
from handlers.progress import ASK_ACTION
from tests.test_staff import ask_to_take_over

TEXTS = Texts()
UNIT_A, UNIT_B = "泽州县商务局", "高平市商务局"
STRANGER, LIAISON_A, LIAISON_B = "oStranger", "oLiaisonA", "oLiaisonB"
STAFF, COORDINATOR, OTHER_STAFF = "oStaff", "oCoordinator", "oOtherStaff"
OFFICE = (STAFF, COORDINATOR, OTHER_STAFF)
SENDERS = (STRANGER, LIAISON_A, LIAISON_B) + OFFICE
OTHER_SLUG = "jincheng-commerce-2024"
# The handling's own bookkeeping, not data a command changes: the inbound log, where a person is in a
# dialogue, when they last wrote, the access token, the scheduler's jobs; and how the worker is
# getting on with sending notes written before.
SKIPPED_TABLES = {"inbound_message", "conversation", "access_token", "scheduler_lease", "apscheduler_jobs"}
SKIPPED_COLUMNS = {"person": {"last_message_at", "last_interaction_at"},
                   "delivery": {"status", "channel", "errcode", "errmsg", "attempts", "wechat_msg_id", "sent_at",
                                "job_status"}}


@dataclass
class World:
    """The campaign with its senders, and what a check needs to look at: an unused staff invitation
    for each sender, and the pending request each office member decides (staff unit A's,
    everyone else unit B's)."""

    office: Campaign
    invitations: dict[str, str]
    requests: dict[str, int]

    def person(self, openid: str) -> Any:
        found = self.office.bot.person(openid)
        assert found is not None
        return found

    def request_status(self, sender: str) -> str:
        with session(self.office.engine) as db:
            request = db.get(LiaisonReplacement, self.requests[sender])
            assert request is not None
            return request.status

    def flow(self, openid: str) -> str:
        conversation = self.office.conversation(openid)
        return conversation.flow if conversation else ""


Check = Callable[[World, str, str], None]  # (world, sender, the reply to the command)


@dataclass(frozen=True)
class Allowed:
    """The command does its work for this sender; ``check`` says what then holds."""

    check: Check


@dataclass(frozen=True)
class Refused:
    """The command is refused with a reply containing ``reply`` (a text, or a function of the
    world and the sender giving it), and nothing in the database changes."""

    reply: Union[str, Callable[[World, str], str]]


Expected = Union[Allowed, Refused]


@dataclass(frozen=True)
class Command:
    """One row of the matrix: ``key`` names it in test ids, ``messages(world, sender)`` are sent
    (the last is the command), ``expected`` holds for each sender."""

    key: str
    messages: Callable[[World, str], list[str]]
    expected: dict[str, Expected]


def _office_refusal(newcomer: bool, action: str = "审批联络员申请") -> str:
    return TEXTS.render("role_refused", action=action, roles=["staff", "coordinator"], newcomer=newcomer)


def _opens(flow: str, unit: str) -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert world.flow(sender) == flow, reply
        assert world.person(sender).unit_id == world.office.unit_id(unit)
    return check


def _became(role: Role, left_unit: str = "") -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert reply == TEXTS.render("staff_registered", role=role.value, left_unit=left_unit)
        person = world.person(sender)
        with world.office.engine.connect() as conn:
            assert (person.role, person.unit_id, person.campaign_id) == (role, None, campaign_id(conn, SLUG))
    return check


def _asked_to_take_over(world: World, sender: str, reply: str) -> None:
    assert reply == TEXTS.render("unit_taken", unit=UNIT_A, holder="王小明")
    assert world.flow(sender) == "registration" and world.person(sender).unit_id is None


def _lists_both_requests(world: World, sender: str, reply: str) -> None:
    assert f"{world.requests[STAFF]}. 接替 “{UNIT_A}”：李华" in reply
    assert f"{world.requests[COORDINATOR]}. 接替 “{UNIT_B}”：赵敏" in reply


def _decided(status: str) -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert reply.startswith("已批准" if status == "approved" else "已驳回"), reply
        assert world.request_status(sender) == status
    return check


def _replied(template: str, **values: Any) -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert reply == TEXTS.render(template, **values)
    return check


def _liaison_help(unit: str) -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert f"“{unit}”的联络员" in reply and (UNIT_B if unit == UNIT_A else UNIT_A) not in reply, reply
    return check


def _same(senders: tuple[str, ...], expected: Expected) -> dict[str, Expected]:
    return {sender: expected for sender in senders}


def _only_liaisons(key: str, word: str, refusal: str, flow: str) -> Command:
    """A liaison's command: each liaison works on their own unit; everyone else is told who may."""
    return Command(key, lambda world, sender: [word], {
        LIAISON_A: Allowed(_opens(flow, UNIT_A)), LIAISON_B: Allowed(_opens(flow, UNIT_B)),
        **_same((STRANGER,) + OFFICE, Refused(refusal))})


def _deciding(key: str, word: str, status: str) -> Command:
    return Command(key, lambda world, sender: [f"{word} {world.requests[sender]}"], {
        STAFF: Allowed(_decided(status)), COORDINATOR: Allowed(_decided(status)),
        # Another campaign's request is, to them, no request at all.
        OTHER_STAFF: Refused(lambda world, sender: TEXTS.render("staff_no_request", number=world.requests[sender])),
        STRANGER: Refused(_office_refusal(newcomer=True)),
        **_same((LIAISON_A, LIAISON_B), Refused(_office_refusal(newcomer=False)))})


def _office(key: str, words: str, action: str, own: Check, other: Check | None = None) -> Command:
    """An office command: staff and the coordinator get ``own`` (about this campaign), another
    campaign's staff ``other`` (about theirs); liaisons and strangers are told who may."""
    return Command(key, lambda world, sender: [words], {
        STAFF: Allowed(own), COORDINATOR: Allowed(own), OTHER_STAFF: Allowed(other or own),
        STRANGER: Refused(_office_refusal(newcomer=True, action=action)),
        **_same((LIAISON_A, LIAISON_B), Refused(_office_refusal(newcomer=False, action=action)))})


def _contains(*texts: str, absent: str = "") -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert all(text in reply for text in texts), reply
        assert not absent or absent not in reply, reply
    return check


def _opened_announcement(world: World, sender: str, reply: str) -> None:
    assert reply == TEXTS.render("announce_start") and world.flow(sender) == "announce"


def _export_link_to(slug: str) -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        token = re.search(r"/files/export/([^/\s]+)\.xlsx", reply)
        assert token is not None, reply
        links = ExportLinks.of(world.office.bot.settings)
        with world.office.engine.connect() as conn:
            assert links.campaign_of(token[1], world.office.clock.now) == campaign_id(conn, slug)
    return check


def _coordinator_refusal(newcomer: bool) -> str:
    return TEXTS.render("role_refused", action=BACKSTAGE_ACTION, roles=["coordinator"], newcomer=newcomer)


def _dashboard_link_to(slug: str) -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        token = re.search(r"/dashboard/enter/(\S+)", reply)
        assert token is not None, reply
        sessions = Sessions(dashboard_key(world.office.bot.settings.link_key))
        with world.office.engine.connect() as conn:
            assert sessions.campaign_of_link(token[1], world.office.clock.now) == campaign_id(conn, slug)
    return check


def _not_understood(text: Callable[[World, str], str]) -> Refused:
    return Refused(lambda world, sender: TEXTS.render("not_understood", text=text(world, sender), newcomer=False))


COMMANDS: list[Command] = [
    Command("register-invitation", lambda world, sender: ["登记", world.invitations[sender]], {
        STRANGER: Allowed(_became(Role.STAFF)),
        # The office invited them: they become staff, and the office hears their unit needs a liaison.
        LIAISON_A: Allowed(_became(Role.STAFF, left_unit=UNIT_A)),
        LIAISON_B: Allowed(_became(Role.STAFF, left_unit=UNIT_B)),
        # Staff stay staff of their campaign (`people grant` moves them); the code is not taken.
        **_same(OFFICE, _not_understood(lambda world, sender: world.invitations[sender]))}),
    Command("register-join-code", lambda world, sender: ["登记", world.office.codes[UNIT_A]], {
        STRANGER: Allowed(_asked_to_take_over),
        **_same((LIAISON_A, LIAISON_B), Refused(lambda world, sender: TEXTS.render(
            "register_not_office_code", given=world.office.codes[UNIT_A], staff=False))),
        **_same(OFFICE, _not_understood(lambda world, sender: world.office.codes[UNIT_A]))}),
    _only_liaisons("fill", "填报", TEXTS.render("fill_needs_registration"), "statistics"),
    _only_liaisons("weekly-report", "周报", TEXTS.render("report_needs_registration"), "weekly"),
    _only_liaisons("records", "典型案例", TEXTS.render("records_needs_registration"), "records"),
    _only_liaisons("details", "我的资料", "只有已登记的联络员可以查看和修改联络员资料", "details"),
    Command("pending", lambda world, sender: ["待审批"], {
        STAFF: Allowed(_lists_both_requests), COORDINATOR: Allowed(_lists_both_requests),
        # Another campaign's staff see their own campaign's requests: none of these.
        OTHER_STAFF: Refused(TEXTS.render("staff_pending", requests=[])),
        STRANGER: Refused(_office_refusal(newcomer=True)),
        **_same((LIAISON_A, LIAISON_B), Refused(_office_refusal(newcomer=False)))}),
    _deciding("approve", "批准", "approved"),
    _deciding("refuse", "驳回", "refused"),
    Command("help", lambda world, sender: ["帮助"], {
        STRANGER: Allowed(_replied("help")),
        LIAISON_A: Allowed(_liaison_help(UNIT_A)), LIAISON_B: Allowed(_liaison_help(UNIT_B)),
        STAFF: Allowed(_replied("help_staff", role="staff", pending=2)),
        COORDINATOR: Allowed(_replied("help_staff", role="coordinator", pending=2)),
        # Only their own campaign's requests are counted.
        OTHER_STAFF: Allowed(_replied("help_staff", role="staff", pending=0))}),
    _office("announce", "通知", "发送通知", _opened_announcement),
    _office("announce-status", "通知 状态", "发送通知", _contains("本活动还没有发过通知")),
    _office("progress", "进度", ASK_ACTION, _contains("报送进度", "个单位已报送")),
    # The other campaign has no units yet: its staff never see this campaign's.
    _office("missing", "未报 统计表", ASK_ACTION, _contains(f"{UNIT_A} 王小明"),
            _contains("本活动还没有单位", absent=UNIT_A)),
    _office("unit", "单位 泽州", ASK_ACTION, _contains(UNIT_A, "联络员：王小明"),
            _contains("本活动没有名称含“泽州”的单位", absent="王小明")),
    _office("totals", "合计", "查看统计表合计", _contains("·合计】", "已汇总 0/")),
    _office("export", "导出", "导出活动的Excel表格", _export_link_to(SLUG), _export_link_to(OTHER_SLUG)),
    # The dashboard shows every liaison's mobile: only the coordinator gets a link, to their campaign.
    Command("dashboard", lambda world, sender: ["后台"], {
        COORDINATOR: Allowed(_dashboard_link_to(SLUG)),
        STRANGER: Refused(_coordinator_refusal(newcomer=True)),
        **_same((LIAISON_A, LIAISON_B, STAFF, OTHER_STAFF), Refused(_coordinator_refusal(newcomer=False)))}),
]


def _invite(office: Campaign, role: str, slug: str = SLUG) -> str:
    with office.engine.begin() as conn:
        campaign = campaign_id(conn, slug)
        assert campaign is not None
        return create_invitation(conn, role, campaign, office.clock.now + timedelta(days=7), "test", office.clock.now)


@pytest.fixture
def world(jincheng: Campaign) -> World:
    office = jincheng
    load_into_db(office.engine, load_definition(CAMPAIGN, year=2024))
    office.say(STRANGER, "你好")
    office.register(LIAISON_A, UNIT_A, name="王小明")
    office.register(LIAISON_B, UNIT_B, name="李强")
    for openid, role, slug in ((STAFF, "staff", SLUG), (COORDINATOR, "coordinator", SLUG),
                               (OTHER_STAFF, "staff", OTHER_SLUG)):
        office.say(openid, "登记")
        assert "您已登记为" in office.say(openid, _invite(office, role, slug))
    for openid in SENDERS:  # each has written within 48 hours, so the notes to them go out at once
        office.bot.fake.user_wrote(openid)
    ask_to_take_over(office)
    office.say("oNewcomerB", "登记")
    office.say("oNewcomerB", office.codes[UNIT_B])
    office.say("oNewcomerB", "申请")
    for text in ("赵敏", "2056819", "13900002222", "跳过", "跳过", "zhao@163.com", "高平路2号", "确认", "是"):
        office.say("oNewcomerB", text)
    for openid in (STAFF, COORDINATOR):  # the campaign's office has heard of both requests before the matrix looks
        assert len(office.bot.pushed_texts(openid, 2)) == 2
    # Another campaign's office never hears of this one's requests.
    assert office.bot.fake.pushes(OTHER_STAFF) == []
    with session(office.engine) as db:
        first, second = db.exec(sa.select(LiaisonReplacement.id).order_by(LiaisonReplacement.id)).scalars()  # type: ignore[call-overload, arg-type]
    requests = {sender: first if sender == STAFF else second for sender in SENDERS}
    return World(office, {sender: _invite(office, "staff") for sender in SENDERS}, requests)


Dump = dict[str, set[tuple[tuple[str, str], ...]]]


def _dump(engine: sa.Engine) -> Dump:
    """Every table's rows, each as (column, value) pairs, but for the handling's own bookkeeping."""
    dumped = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in SKIPPED_TABLES:
                continue
            columns = [c for c in table.columns if c.name not in SKIPPED_COLUMNS.get(table.name, set())]
            dumped[table.name] = {tuple((c.name, repr(v)) for c, v in zip(columns, row))
                                  for row in conn.execute(sa.select(*columns))}
    return dumped


def _changed(before: Dump, after: Dump) -> dict[str, dict[str, list[Any]]]:
    """The rows each table lost and gained between two dumps (empty when nothing changed)."""
    return {name: {"lost": sorted(before[name] - rows), "gained": sorted(rows - before[name])}
            for name, rows in after.items() if rows != before[name]}


def test_every_command_has_an_expectation_for_every_sender() -> None:
    for command in COMMANDS:
        assert set(command.expected) == set(SENDERS), command.key


@pytest.mark.parametrize("command", COMMANDS, ids=[c.key for c in COMMANDS])
def test_the_role_matrix(world: World, command: Command) -> None:
    refused = [s for s in SENDERS if isinstance(command.expected[s], Refused)]
    allowed = [s for s in SENDERS if isinstance(command.expected[s], Allowed)]
    # Refusals first: they must leave the world as it is for the senders after them.
    for sender in refused + allowed:
        *leading, last = command.messages(world, sender)
        for text in leading:
            world.office.say(sender, text)
        before = _dump(world.office.engine)
        reply = world.office.say(sender, last)
        expected = command.expected[sender]
        if isinstance(expected, Allowed):
            expected.check(world, sender, reply)
            continue
        wanted = expected.reply if isinstance(expected.reply, str) else expected.reply(world, sender)
        assert wanted in reply, f"{sender}: {reply}"
        changed = _changed(before, _dump(world.office.engine))
        assert not changed, f"{sender} changed: " + "\n".join(f"{k}: {v}" for k, v in changed.items())


def test_the_dump_sees_a_change_a_refusal_must_not_make(world: World) -> None:
    before = _dump(world.office.engine)
    world.office.say(STAFF, f"批准 {world.requests[STAFF]}")
    assert set(_changed(before, _dump(world.office.engine))) >= {"liaison_replacement", "person"}
