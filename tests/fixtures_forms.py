"""Fixtures for the form dialogues: the 晋城 2023 campaign loaded with its demo units, a bot on a
clock the test moves, and a liaison who talks to it in plain sentences.

Import the fixtures into a test module (``from tests.fixtures_forms import jincheng``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.campaigns import load_definition, load_into_db
from bot.store.engine import session
from bot.store.models import Answer, AnswerRevision, Conversation, Submission, Unit
from bot.campaigns.units import import_units, unit_codes
from tests.fixtures_gateway import Bot, StartBot

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = ROOT / "campaigns" / "jincheng-commerce-2023.toml"
UNITS = ROOT / "docs" / "examples" / "jincheng-demo-units.csv"
SLUG = "jincheng-commerce-2023"
# 2023-06-20 10:00 in 晋城: the statistics table is due 2023-07-01 23:59.
JUNE_20 = datetime(2023, 6, 20, 2, 0, tzinfo=timezone.utc)


@dataclass
class Clock:
    """The time the bot (and WeChat's timestamps) live in; a test moves it."""

    now: datetime = JUNE_20

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Campaign:
    """The loaded campaign, its units' join codes and the running bot."""

    start_bot: StartBot
    engine: sa.Engine
    clock: Clock
    codes: dict[str, str]
    bot: Bot = field(init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """A new app on the same database, as after a deploy or a crash.

        Without MESSAGES_PER_MINUTE: the clock stands still while people type, so a whole walk
        would fall within one minute (tests/test_rate_limit.py moves its clock)."""
        self.bot = self.start_bot(clock=self.clock, MESSAGES_PER_MINUTE="0")

    def say(self, openid: str, text: str) -> str:
        """What the person sees after typing ``text``."""
        reply = self.bot.side.text(openid, text)
        assert reply.status_code == 200 and reply.content is not None, reply
        return reply.content

    def click(self, openid: str, key: str) -> str:
        reply = self.bot.side.event(openid, "CLICK", key)
        assert reply.content is not None, reply
        return reply.content

    def register(self, openid: str, unit: str, name: str = "王小明", mobile: str = "13812345678") -> None:
        """A whole registration, answered correctly."""
        for text in ("登记", self.codes[unit], name, "0356-2056819", mobile, "跳过", "跳过", "wang@163.com",
                     "晋城市泽州路1号", "确认"):
            self.say(openid, text)
        assert "登记完成" in self.say(openid, "是")

    def unit_id(self, name: str) -> int:
        with session(self.engine) as db:
            unit = db.exec(select(Unit).where(Unit.name == name)).one()
            assert unit.id is not None
            return unit.id

    def submissions(self, unit: str) -> list[Submission]:
        with session(self.engine) as db:
            return list(db.exec(select(Submission).where(Submission.unit_id == self.unit_id(unit))))

    def answers(self, unit: str, deadline_key: str) -> dict[str, Answer]:
        """The unit's stored answers for a deadline, by field key."""
        with session(self.engine) as db:
            rows = db.exec(sa.text(
                "SELECT answer.id FROM answer JOIN submission ON submission.id = answer.submission_id "
                "JOIN deadline ON deadline.id = submission.deadline_id "
                "WHERE submission.unit_id = :unit AND deadline.key = :key"),
                params={"unit": self.unit_id(unit), "key": deadline_key})
            ids = [r[0] for r in rows]
            return {a.field_key: a for a in db.exec(select(Answer).where(Answer.id.in_(ids)))}  # type: ignore[union-attr]

    def revisions(self) -> list[AnswerRevision]:
        with session(self.engine) as db:
            return list(db.exec(select(AnswerRevision).order_by(AnswerRevision.id)))

    def conversation(self, openid: str) -> Conversation | None:
        with session(self.engine) as db:
            return db.get(Conversation, openid)


@pytest.fixture
def jincheng(start_bot: StartBot, engine: sa.Engine) -> Campaign:
    """晋城 2023 loaded with the demo units, and the bot running on 2023-06-20."""
    load_into_db(engine, load_definition(CAMPAIGN))
    import_units(engine, SLUG, UNITS)
    codes = {name: code for name, _group, code, _mobile in unit_codes(engine, SLUG)}
    return Campaign(start_bot, engine, Clock(), codes)
