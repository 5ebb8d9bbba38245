"""The demo's replayed 晋城 June: liaisons of several units register and report through the served
bot's signed callback, as ``safetybot chat`` would, so the office's side has something to show.

The demo runs on a demo clock (:mod:`bot.demo_clock`) in the June the campaign is loaded for, so
every answer is on time and 进度 shows open deadlines. What the liaisons type is
:mod:`simulator.june`'s (the tests replay the same June on a clock of their own):

- 城区, 泽州, 高平 and 陵川 submit the statistics table (附件2), with estimates (约30, 200人次左右);
- 阳城 answers a few fields and leaves a draft;
- 城区 and 泽州 send a weekly report each, 城区's with a picture of its drill;
- 沁水 is left without a liaison, for whoever tries the liaison's side.

A liaison already registered in the campaign is not replayed again, so a second run on the same
database adds nothing.
"""

from __future__ import annotations

import struct
import zlib
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
# The unit whose weekly report comes with a picture (:func:`drill_picture`), so its thumbnail has something to show.
PICTURED = CHENGQU
# The campaign's statistics table, the form the liaisons fill.
STATISTICS = "statistics"


def drill_picture(width: int = 240, height: int = 180) -> bytes:
    """A PNG of a yellow warning triangle on a blue sky over green grass: the picture 城区's liaison
    sends with the weekly report (drawn here, so the demo needs no image file)."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # PNG filter: none
        for x in range(width):
            # The triangle's apex at the top centre, its base at 80 % of the height.
            top, base = height * 0.12, height * 0.8
            half = (y - top) / (base - top) * width * 0.35 if top <= y <= base else -1
            inside = abs(x - width / 2) <= half
            edge = inside and (abs(x - width / 2) >= half - 7 or y >= base - 7)
            mark = inside and abs(x - width / 2) <= 5 and (top + 0.3 * (base - top) <= y <= top + 0.7 * (base - top)
                                                          or top + 0.78 * (base - top) <= y <= top + 0.88 * (base - top))
            if edge or mark:
                row += bytes((20, 20, 20))
            elif inside:
                row += bytes((250, 204, 21))
            else:
                row += bytes((120, 180, 235)) if y < height * 0.6 else bytes((90, 160, 80))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows)))
            + chunk(b"IEND", b""))


class ReplayError(Exception):
    """The bot answered a replayed message otherwise than a liaison expects."""


def coming_june(now: datetime) -> int:
    """The year of the next June that has not begun by ``now`` (UTC): the year whose deadlines,
    from the liaison table's 5-31 to the statistics table's 7-01, all lie ahead."""
    return now.year if now.month < 6 else now.year + 1


@dataclass(frozen=True)
class DemoCampaign:
    """The demo's campaign as loaded: its stored slug and name (in its year), its statistics table and
    its units' join codes."""

    slug: str
    name: str
    statistics: FormDefinition
    join_codes: dict[str, str]


def load_demo_campaign(engine: sa.Engine, campaign_file: Path, units_file: Path, year: int) -> DemoCampaign:
    """Load ``campaign_file`` for ``year`` and its units from ``units_file`` (both keep what a
    previous run stored). Raises what :func:`load_into_db` and :func:`import_units` raise."""
    definition = load_definition(campaign_file, year=year)
    load_into_db(engine, definition)
    import_units(engine, definition.slug, units_file)
    codes = {name: code for name, _group, code, _mobile in unit_codes(engine, definition.slug)}
    return DemoCampaign(definition.slug, definition.name, definition.form(STATISTICS), codes)


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

    def weekly(self, openid: str, text: str, picture: bytes | None = None) -> None:
        """``周报`` with one text (and a PNG ``picture`` when given, sent as WeChat sends an image), then 完成."""
        self.say(openid, "周报")
        self.say(openid, text)
        if picture is not None:
            media_id = self.control.add_media("image", picture, "image/png")
            if media_id is None:
                raise ReplayError("the fake WeChat did not take the picture")
            self.control.user_did(openid, "message")
            reply = self.side.image(openid, media_id)
            if reply.status_code != 200 or "图片" not in (reply.content or ""):
                raise ReplayError(f"{openid} sent a picture; the bot answered {reply.status_code} {reply.body!r}")
        self.say(openid, "完成", expect="已提交")


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
            liaisons.weekly(openid, WEEKLY[unit], drill_picture() if unit == PICTURED else None)
    return Replayed(tuple(units))

