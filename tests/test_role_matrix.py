"""The role matrix: every chat command × every kind of sender, allowed or refused; a refusal names
who may use the command and changes nothing in the database.

The senders: someone who has only said hello (stranger), the liaisons of two units (A, B), staff
and a coordinator of the campaign, and staff of another campaign. One campaign request waits
(someone asks to take over unit A), so the office commands have something to see and decide.

Adding a command is adding a :class:`Command` row to ``COMMANDS``: its messages (the last one is
the command; the ones before lead up to it) and, for each sender, :class:`Allowed` with what
must then hold, or :class:`Refused` with the reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Union

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from bot.campaigns import load_definition, load_into_db
from bot.store.engine import session
from bot.store.models import LiaisonReplacement, Role
from bot.store.people import campaign_id, create_invitation
from bot.texts import Texts
from tests.fixtures_forms import CAMPAIGN, SLUG, Campaign, jincheng  # noqa: F401  (fixture)
from tests.test_staff import ask_to_take_over

TEXTS = Texts()
UNIT_A, UNIT_B = "泽州县商务局", "高平市商务局"
STRANGER, LIAISON_A, LIAISON_B = "oStranger", "oLiaisonA", "oLiaisonB"
STAFF, COORDINATOR, OTHER_STAFF = "oStaff", "oCoordinator", "oOtherStaff"
SENDERS = (STRANGER, LIAISON_A, LIAISON_B, STAFF, COORDINATOR, OTHER_STAFF)
OFFICE_ONLY = TEXTS.render("role_refused", action="审批联络员申请", roles=["staff", "coordinator"], newcomer=False)
NEWCOMER_REFUSED = TEXTS.render("role_refused", action="审批联络员申请", roles=["staff", "coordinator"], newcomer=True)
# The handling's own bookkeeping, not data a command changes: the inbound log, where a person is in a
# dialogue, when they last wrote, the access token, the scheduler's jobs; and how the worker is
# getting on with sending notes written before.
SKIPPED_TABLES = {"inbound_message", "conversation", "access_token", "scheduler_lease", "apscheduler_jobs"}
SKIPPED_COLUMNS = {"person": {"last_message_at", "last_interaction_at"},
                   "delivery": {"status", "channel", "errcode", "errmsg", "attempts", "wechat_msg_id", "sent_at",
                                "job_status"}}


@dataclass
class World:
    """The campaign with its senders, and what a check needs to look at."""

    office: Campaign
    invitation: str  # an unused staff invitation of the campaign
    request_id: int  # the pending takeover request for unit A

    def person(self, openid: str) -> Any:
        found = self.office.bot.person(openid)
        assert found is not None
        return found

    def request_status(self) -> str:
        with session(self.office.engine) as db:
            request = db.get(LiaisonReplacement, self.request_id)
            assert request is not None
            return request.status

    def flow(self, openid: str) -> str:
        conversation = self.office.conversation(openid)
        return conversation.flow if conversation else ""


Check = Callable[[World, str, str], None]  # (world, sender, reply to the command)


@dataclass(frozen=True)
class Allowed:
    """The command does its work for this sender; ``check`` says what then holds."""

    check: Check


@dataclass(frozen=True)
class Refused:
    """The command is refused with ``reply`` (the text, or a function of the world giving it) and
    nothing in the database changes."""

    reply: Union[str, Callable[[World], str]]


Expected = Union[Allowed, Refused]


@dataclass(frozen=True)
class Command:
    """One row of the matrix: ``messages(world)`` to send (the last is the command), and the
    expectation for each sender."""

    name: str
    messages: Callable[[World], list[str]]
    expected: dict[str, Expected] = field(default_factory=dict)


def _opens(flow: str, unit: str = "") -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert world.flow(sender) == flow, reply
        if unit:
            assert world.person(sender).unit_id == world.office.unit_id(unit)
    return check


def _became(role: Role, left_unit: str = "") -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert reply == TEXTS.render("staff_registered", role=role.value, left_unit=left_unit)
        person = world.person(sender)
        assert (person.role, person.unit_id) == (role, None)
        with world.office.engine.connect() as conn:
            assert person.campaign_id == campaign_id(conn, SLUG)
    return check


def _asked_to_take_over(world: World, sender: str, reply: str) -> None:
    assert reply == TEXTS.render("unit_taken", unit=UNIT_A, holder="王小明")
    assert world.flow(sender) == "registration" and world.person(sender).unit_id is None


def _lists_the_request(world: World, sender: str, reply: str) -> None:
    assert f"{world.request_id}. 接替 “{UNIT_A}”：李华" in reply


def _decided(status: str) -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert reply.startswith("已批准" if status == "approved" else "已驳回") and world.request_status() == status
    return check


def _helped(template: str, **values: Any) -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert reply == TEXTS.render(template, **values)
    return check


def _liaison_help(unit: str) -> Check:
    def check(world: World, sender: str, reply: str) -> None:
        assert reply.startswith(f"您是“{unit}”的联络员") or f"“{unit}”的联络员" in reply.splitlines()[0], reply
    return check


def _same_for(senders: tuple[str, ...], expected: Expected) -> dict[str, Expected]:
    return {sender: expected for sender in senders}


LIAISONS_ONLY = {
    "fill": ("填报", "只有已登记的单位联络员可以填报", "statistics"),
    "weekly": ("周报", "只有已登记的单位联络员可以报送周报", "weekly"),
    "records": ("典型案例", "只有已登记的单位联络员可以报送典型案例", "records"),
    "details": ("我的资料", "只有已登记的联络员可以查看和修改联络员资料", "details"),
}
OFFICE = (STAFF, COORDINATOR, OTHER_STAFF)


def _liaison_command(key: str) -> Command:
    word, refusal, flow = LIAISONS_ONLY[key]
    refused = Refused(lambda world, refusal=refusal: refusal)  # type: ignore[misc]
    return Command(word, lambda world, word=word: [word], {  # type: ignore[misc]
        LIAISON_A: Allowed(_opens(flow, UNIT_A)), LIAISON_B: Allowed(_opens(flow, UNIT_B)),
        **_same_for((STRANGER,) + OFFICE, refused)})


COMMANDS: list[Command] = [
    Command("登记 with an invitation", lambda world: ["登记", world.invitation], {
        STRANGER: Allowed(_became(Role.STAFF)),
        # The office invited them: they become staff, and their unit is told to find a new liaison.
        LIAISON_A: Allowed(_became(Role.STAFF, left_unit=UNIT_A)),
        LIAISON_B: Allowed(_became(Role.STAFF, left_unit=UNIT_B)),
        # Staff are staff of one campaign; another campaign's staff is made with `people grant`.
        **_same_for(OFFICE, Refused(lambda world: TEXTS.render("not_understood", text=world.invitation,
                                                               newcomer=False)))}),
    Command("登记 with a unit's join code", lambda world: ["登记", world.office.codes[UNIT_A]], {
        STRANGER: Allowed(_asked_to_take_over),
        **_same_for((LIAISON_A, LIAISON_B), Refused(lambda world: TEXTS.render(
            "register_not_office_code", given=world.office.codes[UNIT_A], staff=False))),
        **_same_for(OFFICE, Refused(lambda world: TEXTS.render("not_understood", text=world.office.codes[UNIT_A],
                                                               newcomer=False)))}),
    *[_liaison_command(key) for key in LIAISONS_ONLY],
    Command("待审批", lambda world: ["待审批"], {
        STAFF: Allowed(_lists_the_request), COORDINATOR: Allowed(_lists_the_request),
        # Another campaign's staff see their own campaign's requests: none of these.
        OTHER_STAFF: Refused(TEXTS.render("staff_pending", requests=[])),
        STRANGER: Refused(NEWCOMER_REFUSED), LIAISON_A: Refused(OFFICE_ONLY), LIAISON_B: Refused(OFFICE_ONLY)}),
    *[Command(word, lambda world, word=word: [f"{word} {world.request_id}"], {  # type: ignore[misc]
        STAFF: Allowed(_decided(status)), COORDINATOR: Allowed(_decided(status)),
        OTHER_STAFF: Refused(lambda world: TEXTS.render("staff_no_request", number=world.request_id)),
        STRANGER: Refused(NEWCOMER_REFUSED), LIAISON_A: Refused(OFFICE_ONLY), LIAISON_B: Refused(OFFICE_ONLY)})
      for word, status in (("批准", "approved"), ("驳回", "refused"))],
    Command("帮助", lambda world: ["帮助"], {
        STRANGER: Allowed(_helped("help")),
        LIAISON_A: Allowed(_liaison_help(UNIT_A)), LIAISON_B: Allowed(_liaison_help(UNIT_B)),
        STAFF: Allowed(_helped("help_staff", role="staff", pending=1)),
        COORDINATOR: Allowed(_helped("help_staff", role="coordinator", pending=1)),
        # Only their own campaign's requests are counted.
        OTHER_STAFF: Allowed(_helped("help_staff", role="staff", pending=0))}),
]


def test_every_command_has_an_expectation_for_every_sender() -> None:
    for command in COMMANDS:
        assert set(command.expected) == set(SENDERS), command.name


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
                               (OTHER_STAFF, "staff", "jincheng-commerce-2024")):
        office.say(openid, "登记")
        assert "您已登记为" in office.say(openid, _invite(office, role, slug))
    for openid in SENDERS:  # each has written within 48 hours, so the notes to them go out at once
        office.bot.fake.user_wrote(openid)
    ask_to_take_over(office)
    for openid in OFFICE:  # every office member hears of the request (before the matrix looks)
        assert len(office.bot.pushed_texts(openid, 1)) == 1
    with session(office.engine) as db:
        request = db.exec(sa.select(LiaisonReplacement.id)).scalar_one()  # type: ignore[call-overload]
    return World(office, _invite(office, "staff"), request)


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


CASES = [pytest.param(command, sender, id=f"{command.name}-{sender}") for command in COMMANDS for sender in SENDERS]


@pytest.mark.parametrize(("command", "sender"), CASES)
def test_the_role_matrix(world: World, command: Command, sender: str) -> None:
    *leading, last = command.messages(world)
    for text in leading:
        world.office.say(sender, text)
    before = _dump(world.office.engine)
    reply = world.office.say(sender, last)
    expected = command.expected[sender]
    if isinstance(expected, Allowed):
        expected.check(world, sender, reply)
        return
    wanted = expected.reply if isinstance(expected.reply, str) else expected.reply(world)
    assert wanted in reply
    changed = _changed(before, _dump(world.office.engine))
    assert not changed, "\n".join(f"{k}: {v}" for k, v in changed.items())


def test_the_dump_sees_a_change_a_refusal_must_not_make(world: World) -> None:
    before = _dump(world.office.engine)
    world.office.say(STAFF, f"批准 {world.request_id}")
    assert set(_changed(before, _dump(world.office.engine))) >= {"liaison_replacement", "person"}

