"""The demo's replayed 晋城 June: liaisons of several units register and report through the served
bot's signed callback, as ``safetybot chat`` would, so the office's side has something to show.

The bot keeps real time, so the campaign is loaded for the coming June (its deadlines ahead of
today): every answer is on time and 进度 shows open deadlines. What the liaisons type is
:mod:`simulator.june`'s (the tests replay the same June on a clock of their own):

- 城区, 泽州, 高平 and 陵川 submit the statistics table (附件2), with estimates (约30, 200人次左右);
- 阳城 answers a few fields and leaves a draft;
- 城区 and 泽州 send a weekly report each;
- 沁水 is left without a liaison, for whoever tries the liaison's side.

A liaison already registered in the campaign is not replayed again, so a second run on the same
database adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from bot.campaigns import FormDefinition, load_definition, load_into_db
from bot.campaigns.units import import_units, unit_codes
from bot.store.models import Campaign, Person, Unit, table_of
from simulator.chat import FakeWeChatControl
from simulator.june import (
    CHENGQU, DRAFT, DRAFT_FIELDS, LIAISONS, SUBMITTED, ZEZHOU, answer_lines, typed,
)
from simulator.wechat_side import WeChatSide

LINGCHUAN, QINSHUI = "陵川县商务局", "沁水县商务局"
# The tests' four liaisons and one more, so that most of the six demo units have one.
REPLAYED = {**LIAISONS, LINGCHUAN: ("oLiaisonLingchuan", "刘洋", "13800000005")}
REPLAYED_SUBMIT = (*SUBMITTED, LINGCHUAN)
WEEKLY = {CHENGQU: "本周在城区凤台街道开展安全知识进社区活动，发放宣传资料300余份。",
          ZEZHOU: "本周组织全县商贸企业开展安全生产知识竞赛，12家企业参加。"}
# The campaign's statistics table, the form the liaisons fill.
STATISTICS = "statistics"


class ReplayError(Exception):
    """The bot answered a replayed message otherwise than a liaison expects."""


def coming_june(now: datetime) -> int:
    """The year of the next June that has not begun by ``now`` (UTC): the year whose deadlines,
    from the liaison table's 5-31 to the statistics table's 7-01, all lie ahead."""
    return now.year if now.month < 6 else now.year + 1


@dataclass(frozen=True)
class DemoCampaign:
    """The demo's campaign as loaded: its stored name, its statistics table and its units' join codes."""

    slug: str
    statistics: FormDefinition
    join_codes: dict[str, str]


def load_demo_campaign(engine: sa.Engine, campaign_file: Path, units_file: Path, year: int) -> DemoCampaign:
    """Load ``campaign_file`` for ``year`` and its units from ``units_file`` (both keep what a
    previous run stored). Raises what :func:`load_into_db` and :func:`import_units` raise."""
    definition = load_definition(campaign_file, year=year)
    load_into_db(engine, definition)
    import_units(engine, definition.slug, units_file)
    codes = {name: code for name, _group, code, _mobile in unit_codes(engine, definition.slug)}
    return DemoCampaign(definition.slug, definition.form(STATISTICS), codes)


def registered(engine: sa.Engine, slug: str) -> set[str]:
    """The OpenIDs of the liaisons of campaign ``slug``'s units."""
    people, units, campaigns = table_of(Person), table_of(Unit), table_of(Campaign)
    with engine.connect() as conn:
        return set(conn.execute(
            sa.select(people.c.openid).join(units, units.c.id == people.c.unit_id)
            .join(campaigns, campaigns.c.id == units.c.campaign_id).where(campaigns.c.slug == slug)).scalars())


def without_liaison(engine: sa.Engine, slug: str) -> list[str]:
    """The names of campaign ``slug``'s units nobody is the liaison of yet, by name."""
    people, units, campaigns = table_of(Person), table_of(Unit), table_of(Campaign)
    with engine.connect() as conn:
        return list(conn.execute(
            sa.select(units.c.name).join(campaigns, campaigns.c.id == units.c.campaign_id)
            .where(campaigns.c.slug == slug, ~sa.exists().where(people.c.unit_id == units.c.id))
            .order_by(units.c.name)).scalars())


@dataclass(frozen=True)
class Replayed:
    """What a replay did: the units whose liaisons it registered (none when all were there already)."""

    units: tuple[str, ...]


class LiaisonReplay:
    """Liaisons typing into the bot through the signed callback, and telling the fake WeChat they
    wrote (which opens their 48-hour customer-service window, as the real WeChat does)."""

    def __init__(self, side: WeChatSide, control: FakeWeChatControl):
        self.side = side
        self.control = control

    def say(self, openid: str, text: str, expect: str = "") -> str:
        """The bot's reply to ``text``; raises :class:`ReplayError` when it lacks ``expect``."""
        self.control.user_did(openid, "message")
        reply = self.side.text(openid, text)
        content = reply.content or ""
        if reply.status_code != 200 or expect not in content:
            raise ReplayError(f"{openid} typed {text!r}, expecting {expect!r}; the bot answered "
                              f"{reply.status_code} {content or reply.body!r}")
        return content

    def register(self, openid: str, join_code: str, name: str, mobile: str) -> None:
        """The whole 登记 of a liaison, answered as the tests' liaisons answer it."""
        for text in ("登记", join_code, name, "0356-2056819", mobile, "跳过", "跳过", "jcswj@163.com",
                     "晋城市泽州路1号", "确认"):
            self.say(openid, text)
        self.say(openid, "是", expect="登记完成")

    def fill(self, openid: str, form: FormDefinition, unit: str, fields: int | None, submit: bool) -> None:
        """``填报``: the first ``fields`` answers of the unit's (all by default), then 确认 or 取消."""
        self.say(openid, "填报")
        for line in answer_lines(form, typed(form, unit)[:fields]):
            self.say(openid, line)
        if submit:
            self.say(openid, "确认", expect="已提交")
        else:
            self.say(openid, "取消")

    def weekly(self, openid: str, text: str) -> None:
        """``周报`` with one text, then 完成."""
        self.say(openid, "周报")
        self.say(openid, text)
        self.say(openid, "完成")


def replay_june(engine: sa.Engine, campaign: DemoCampaign, liaisons: LiaisonReplay) -> Replayed:
    """Register and replay every liaison of :data:`REPLAYED` not yet registered in ``campaign``."""
    done = registered(engine, campaign.slug)
    units = [unit for unit, (openid, _name, _mobile) in REPLAYED.items() if openid not in done]
    for unit in units:
        openid, name, mobile = REPLAYED[unit]
        liaisons.register(openid, campaign.join_codes[unit], name, mobile)
        if unit in REPLAYED_SUBMIT:
            liaisons.fill(openid, campaign.statistics, unit, None, submit=True)
        elif unit == DRAFT:
            liaisons.fill(openid, campaign.statistics, unit, DRAFT_FIELDS, submit=False)
        if unit in WEEKLY:
            liaisons.weekly(openid, WEEKLY[unit])
    return Replayed(tuple(units))

