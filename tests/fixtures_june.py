"""A replayed 晋城 June for the office's side: liaisons of several units register and fill the
statistics table (附件2) through the chat, estimates and all, on the days they would; a coordinator
and a staff member registered with the campaign's codes.

What the liaisons type is simulator/june.py's (the demo replays the same June); here they type it
on the days they would:

- 城区 submits on 6-20, with estimates ("约30", "50余");
- 泽州 submits on 6-28;
- 高平 submits on 7-02, after the 7-01 deadline (late);
- 阳城 answers a few fields and never submits (a draft the totals leave out);
- 陵川 and 沁水 have no liaison.

Import the fixture into a test module (``from tests.fixtures_june import june``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.campaigns import load_definition, load_into_db
from bot.store.engine import session
from bot.store.models import Deadline, Delivery, Unit
from simulator.june import (  # noqa: F401  (the tests import them from here)
    CHENGQU, DRAFT_FIELDS, GAOPING, LIAISONS, SUBMITTED, YANGCHENG, ZEZHOU, Typed, answer_lines, item_keys, typed,
)
from tests.fixtures_forms import CAMPAIGN, Campaign, jincheng  # noqa: F401  (fixture)
from tests.test_weekly_report import eventually

STAFF_CODE, COORDINATOR_CODE = "STAFF2023JC", "COORD2023JC"
STAFF, COORDINATOR = "oStaffWang", "oCoordinatorNiu"
FORM = load_definition(CAMPAIGN).form("statistics")
# Reminders of the statistics deadline each unit got (the reminders themselves are replayed in
# tests/test_reminders_june.py; here only how many there were matters).
REMINDERS = {GAOPING: 3, YANGCHENG: 4}
TYPED: dict[str, list[Typed]] = {unit: typed(FORM, unit) for unit in LIAISONS}


def entered(unit: str) -> dict[str, Typed]:
    """What the unit's liaison entered, by answer key."""
    return dict(zip(item_keys(FORM), TYPED[unit]))


@dataclass
class June:
    """The replayed campaign, at 2023-07-02 10:00 in 晋城 (after the statistics deadline)."""

    campaign: Campaign

    def say(self, openid: str, text: str) -> str:
        """The passive reply the person sees after typing ``text``."""
        return self.campaign.say(openid, text)

    def read(self, openid: str, text: str, ending: str) -> str:
        """All the person sees after typing ``text`` when the reply ends with ``ending``: the
        passive reply and, for a reply over WeChat's 2,048 bytes, the parts pushed after it."""
        fake = self.campaign.bot.fake
        fake.user_wrote(openid)
        before = len(fake.pushes(openid))
        passive = self.say(openid, text)

        def whole() -> str:
            pushed = [p.payload["text"]["content"] for p in fake.pushes(openid)[before:] if p.msgtype == "text"]
            seen = "\n".join([passive, *pushed])
            return seen if seen.endswith(ending) else ""
        return eventually(whole)

    @property
    def engine(self) -> sa.Engine:
        return self.campaign.engine


def _fill(campaign: Campaign, unit: str, submit: bool, count: int | None = None) -> None:
    openid = LIAISONS[unit][0]
    assert "（5/40）" in campaign.say(openid, "填报")
    for line in answer_lines(FORM, TYPED[unit][:count]):
        campaign.say(openid, line)
    if submit:
        assert "已提交" in campaign.say(openid, "确认")
    else:
        campaign.say(openid, "取消")


def _reminders(campaign: Campaign) -> None:
    with session(campaign.engine) as db:
        deadline = db.exec(select(Deadline).where(Deadline.key == "statistics")).one()
        for unit, count in REMINDERS.items():
            unit_id = db.exec(select(Unit.id).where(Unit.name == unit)).one()
            for stage in range(count):
                db.add(Delivery(key=f"reminder:{LIAISONS[unit][0]}:{deadline.id}::{stage}", openid=LIAISONS[unit][0],
                                kind="reminder", status="sent", unit_id=unit_id, deadline_id=deadline.id,
                                stage=str(stage), channel="customer_service"))
        db.commit()


@pytest.fixture
def june(jincheng: Campaign, tmp_path: Path) -> June:
    """晋城 2023 with its office's codes, replayed through June into the first days of July."""
    edited = tmp_path / "jincheng-commerce-2023.toml"
    edited.write_text(CAMPAIGN.read_text(encoding="utf-8")
                      + f'\n[staff]\njoin_code = "{STAFF_CODE}"\ncoordinator_code = "{COORDINATOR_CODE}"\n',
                      encoding="utf-8")
    load_into_db(jincheng.engine, load_definition(edited))
    for openid, code in ((STAFF, STAFF_CODE), (COORDINATOR, COORDINATOR_CODE)):
        jincheng.say(openid, "登记")
        jincheng.say(openid, code)
    for unit, (openid, name, mobile) in LIAISONS.items():
        jincheng.register(openid, unit, name=name, mobile=mobile)
    _fill(jincheng, CHENGQU, submit=True)                      # 6-20
    jincheng.clock.advance(days=8)                             # 6-28
    _fill(jincheng, ZEZHOU, submit=True)
    _fill(jincheng, YANGCHENG, submit=False, count=DRAFT_FIELDS)
    jincheng.clock.advance(days=4)                             # 7-02, past the 7-01 23:59 deadline
    _fill(jincheng, GAOPING, submit=True)
    _reminders(jincheng)
    return June(jincheng)
