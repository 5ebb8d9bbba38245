"""Roles changing while a message is being decided: the decision is taken again on what is true
when it is written (two people redeeming one invitation at once; a role granted meanwhile).

The bot runs served; one person's decision is held after it is made, until the other change has
committed, through a dispatch that wraps the real routing table (as tests/test_gateway_concurrency.py does).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

import handlers
from bot.store.engine import session
from bot.store.models import Invitation, Role
from bot.texts import Texts
from handlers.base import Context, DialogueState, Incoming, Outcome
from tests.fixtures_cli import safetybot
from tests.fixtures_forms import SLUG, Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()


class HeldAfterDeciding:
    """The real routing table; the first decision on ``openid``'s ``text`` is held, once made, until
    ``release``; ``decisions`` are the replies decided for it each time."""

    def __init__(self, openid: str, text: str):
        self.openid, self.text = openid, text
        self.decided = threading.Event()
        self.release = threading.Event()
        self.decisions: list[tuple[str, ...]] = []

    def __call__(self, incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
        outcome = handlers.dispatch(incoming, state, ctx)
        if (incoming.openid, incoming.text) == (self.openid, self.text):
            self.decisions.append(outcome.replies)
            if len(self.decisions) == 1:
                self.decided.set()
                assert self.release.wait(30), "the test never released the decision"
        return outcome


def _served(jincheng: Campaign, held: HeldAfterDeciding) -> Campaign:
    jincheng.bot = jincheng.start_bot(clock=jincheng.clock, dispatch=held, served=True)
    return jincheng


def _invitation(jincheng: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert safetybot(env_file, "people", "invite", "staff", "--campaign", SLUG) == 0
    code = capsys.readouterr().out.strip()
    with session(jincheng.engine) as db:  # valid at the bot's clock (the CLI stamps real time)
        invitation = db.exec(select(Invitation).where(Invitation.code == code)).one()
        invitation.expires_at = jincheng.clock.now + timedelta(days=7)
        db.add(invitation)
        db.commit()
    return code


def test_two_people_sending_one_invitation_at_once_make_one_staff_member(
        jincheng: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _invitation(jincheng, env_file, capsys)
    held = HeldAfterDeciding("oFirst", code)
    office = _served(jincheng, held)
    for openid in ("oFirst", "oSecond"):
        office.say(openid, "登记")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(office.say, "oFirst", code)
        assert held.decided.wait(10)
        # oFirst was told yes, but nothing is written yet; oSecond redeems it meanwhile.
        assert office.say("oSecond", code) == TEXTS.render("staff_registered", role="staff", left_unit="")
        held.release.set()
        # oFirst's write finds the invitation used: decided again, and refused.
        assert first.result(timeout=30) == TEXTS.render("invitation_used")
    assert held.decisions == [(TEXTS.render("staff_registered", role="staff", left_unit=""),),
                              (TEXTS.render("invitation_used"),)]
    first_person, second_person = office.bot.person("oFirst"), office.bot.person("oSecond")
    assert first_person is not None and first_person.role is Role.LIAISON
    assert second_person is not None and second_person.role is Role.STAFF
    with session(office.engine) as db:
        assert db.exec(select(Invitation)).one().used_by == "oSecond"


def test_a_role_taken_back_while_a_decision_is_made_is_seen_before_it_is_written(
        jincheng: Campaign, env_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    held = HeldAfterDeciding("oStaff", "待审批")
    office = _served(jincheng, held)
    office.say("oStaff", "你好")
    assert safetybot(env_file, "people", "grant", "oStaff", "staff", "--campaign", SLUG) == 0
    office.register("oHolder", "泽州县商务局")
    with ThreadPoolExecutor(1) as pool:
        listing = pool.submit(office.say, "oStaff", "待审批")
        assert held.decided.wait(10)
        assert safetybot(env_file, "people", "revoke", "oStaff") == 0
        held.release.set()
        refused = listing.result(timeout=30)
    assert refused == TEXTS.render("role_refused", action="审批联络员申请", roles=["staff", "coordinator"],
                                   newcomer=True)
    assert held.decisions[0] != held.decisions[1]
