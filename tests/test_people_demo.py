"""The demo (``make run``) prints a staff and a coordinator code a newcomer can use with ``safetybot chat``."""

from __future__ import annotations

from datetime import timedelta

from bot.texts import Texts
from simulator.demo import demo_codes, describe_codes
from tests.fixtures_forms import SLUG, Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()


def test_the_demo_prints_codes_that_make_staff_and_a_coordinator_and_fresh_ones_once_used(jincheng: Campaign) -> None:
    now = jincheng.clock.now
    codes = demo_codes(jincheng.engine, now)
    assert [(c.campaign, c.role) for c in codes] == [(SLUG, "staff"), (SLUG, "coordinator")]
    printed = describe_codes(codes)
    assert "safetybot chat --as o_staff_demo" in printed and all(c.code in printed for c in codes)
    # Run again: the same codes while nobody has used them.
    assert demo_codes(jincheng.engine, now + timedelta(hours=1)) == codes
    staff, coordinator = codes
    jincheng.say("o_staff_demo", "登记")
    assert jincheng.say("o_staff_demo", staff.code) == TEXTS.render("staff_registered", role="staff", left_unit="")
    jincheng.say("o_coordinator_demo", "登记")
    assert jincheng.say("o_coordinator_demo", coordinator.code) == TEXTS.render(
        "staff_registered", role="coordinator", left_unit="")
    again = demo_codes(jincheng.engine, now + timedelta(hours=2))
    assert [c.role for c in again] == ["staff", "coordinator"]
    assert not {c.code for c in again} & {c.code for c in codes}
