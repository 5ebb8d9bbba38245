"""No text leaves the bot over WeChat's 2,048 bytes: a long reply is split at line boundaries (a
single over-long line between words, never inside a number), the first part is the passive reply
and the rest arrive in order as customer-service messages; pushed replies and notes are split the
same way. Checked on the splitting itself and on what the fake WeChat receives."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from bot.campaigns import load_definition, load_into_db
from bot.store.engine import session
from bot.store.models import Person, Role, Unit
from bot.wechat.client import WeChatAPI
from bot.wechat.long_text import TEXT_BYTES, split_text
from tests.fixtures_forms import CAMPAIGN, Campaign, jincheng  # noqa: F401  (fixture)
from tests.fixtures_fake import ServedFake
from tests.fixtures_gateway import LimitedSide, RecordingDispatch
from tests.test_progress import with_staff_codes
from tests.test_weekly_report import eventually

COORDINATOR, STAFF = "oCoordinator", "oStaffWang"
CROWD = [f"商务所{i:03d}" for i in range(1, 301)]


def _fits(parts: list[str]) -> bool:
    return all(0 < len(part.encode()) <= TEXT_BYTES for part in parts)


def test_a_long_reply_is_split_at_line_boundaries_and_no_part_exceeds_the_limit() -> None:
    lines = [f"{i:03d}. 晋城市某某县商务局 王小明 13812345678" for i in range(200)]
    parts = split_text("\n".join(lines))
    assert len(parts) > 1 and _fits(parts)
    assert [line for part in parts for line in part.split("\n")] == lines
    # Each part is as full as whole lines allow: the next line would not have fitted.
    for part, following in zip(parts, parts[1:]):
        assert len(f"{part}\n{following.split(chr(10))[0]}".encode()) > TEXT_BYTES


def test_a_line_over_the_limit_is_cut_between_words_never_inside_a_number() -> None:
    numbers = " ".join(str(1_000_000 + i * 7) for i in range(600))
    parts = split_text(numbers)
    assert _fits(parts) and " ".join(parts) == numbers
    assert all(re.fullmatch(r"\d{7}( \d{7})*", part) for part in parts)

    # Chinese with numbers and no spaces: cut after punctuation; "1,860" stays one number.
    clauses = "".join(f"组织开展宣讲活动（{37 + i}）场，参与（1,{860 + i}）人次；" for i in range(100))
    parts = split_text(clauses)
    assert _fits(parts) and "".join(parts) == clauses
    assert all(part.endswith(("，", "；")) for part in parts[:-1])

    # No break at all but between Chinese characters: any character boundary keeps the text whole.
    plain = "安全生产人人有责" * 200
    parts = split_text(plain)
    assert _fits(parts) and "".join(parts) == plain

    # A Latin word or a number next to Chinese text is never cut in two, even without spaces.
    mixed = "".join(f"编号ABC{i:06d}已报送" for i in range(300))
    parts = split_text(mixed)
    assert _fits(parts) and "".join(parts) == mixed
    assert sum(len(re.findall(r"ABC\d{6}", part)) for part in parts) == 300
    assert not any(before[-1].isascii() and after[0].isascii() for before, after in zip(parts, parts[1:]))


def test_a_text_within_the_limit_is_left_as_it_is() -> None:
    text = "第一行\n\n  第二行 "
    assert split_text(text) == [text]
    at_the_limit = "安" * (TEXT_BYTES // 3) + "12"
    assert len(at_the_limit.encode()) == TEXT_BYTES and split_text(at_the_limit) == [at_the_limit]


@pytest.fixture
def crowded(jincheng: Campaign, tmp_path: Path) -> Campaign:
    """晋城 2023 with 300 more units (every third with a liaison, named by the units import's
    mobile), and a coordinator and a staff member who have just written."""
    load_into_db(jincheng.engine, load_definition(with_staff_codes(CAMPAIGN, tmp_path, "STAFF2023JC", "COORD2023JC")))
    for openid, code in ((COORDINATOR, "COORD2023JC"), (STAFF, "STAFF2023JC")):
        jincheng.say(openid, "登记")
        jincheng.say(openid, code)
        jincheng.bot.fake.user_wrote(openid)
    campaign_id = jincheng.bot.person(STAFF).campaign_id  # type: ignore[union-attr]
    with session(jincheng.engine) as db:
        units = [Unit(campaign_id=campaign_id, name=name, join_code=f"CROWD{i:04d}",
                      liaison_mobile=f"139{i:08d}" if i % 3 == 0 else "") for i, name in enumerate(CROWD)]
        db.add_all(units)
        db.commit()
        for i, unit in enumerate(units):
            if i % 3 == 0:
                db.add(Person(openid=f"oCrowd{i}", name="张三", role=Role.LIAISON, unit_id=unit.id))
        db.commit()
    return jincheng


def _pushed_until(crowded: Campaign, openid: str, last: str) -> list[str]:
    """The texts pushed to ``openid`` once the one holding ``last`` has arrived."""
    def look() -> list[str]:
        texts = [p.payload["text"]["content"] for p in crowded.bot.fake.pushes(openid) if p.msgtype == "text"]
        return texts if last in "".join(texts) else []
    return eventually(look)


def _crowd_in_order(parts: list[str]) -> list[str]:
    return [line.split(" ")[0] for part in parts for line in part.split("\n") if line.startswith("商务所")]


def test_未报_of_300_units_arrives_whole_and_in_order(crowded: Campaign) -> None:
    passive = crowded.say(COORDINATOR, "未报 统计表")
    pushed = _pushed_until(crowded, COORDINATOR, CROWD[-1])
    parts = [passive, *pushed]
    assert _fits(parts) and len(parts) <= 6  # WeChat lets 5 customer-service messages follow one message
    assert passive.startswith("“报送安全生产月统计表”7月1日 23:59截止，306/306 个单位未报：")
    assert _crowd_in_order(parts) == CROWD
    lines = [line for part in parts for line in part.split("\n")]
    assert "商务所001 张三 13900000000" in lines and "商务所002 无联络员" in lines
    assert "另有" not in "".join(parts)


def test_未报_of_more_units_than_a_window_carries_says_how_many_it_left_out(crowded: Campaign) -> None:
    with session(crowded.engine) as db:
        campaign_id = db.exec(select(Unit)).first().campaign_id  # type: ignore[union-attr]
        db.add_all(Unit(campaign_id=campaign_id, name=f"商务所{i:03d}", join_code=f"MORE{i:04d}", liaison_mobile="")
                   for i in range(301, 701))
        db.commit()
    passive = crowded.say(COORDINATOR, "未报 统计表")
    pushed = _pushed_until(crowded, COORDINATOR, "个单位未列出")
    parts = [passive, *pushed]
    assert _fits(parts) and len(parts) <= 6
    listed = _crowd_in_order(parts)
    assert listed == [f"商务所{i:03d}" for i in range(1, len(listed) + 1)] and len(listed) > 300
    shown = [line for part in parts for line in part.split("\n") if line.endswith(" 无联络员") or " 张三 " in line]
    assert f"……另有 {706 - len(shown)} 个单位未列出，完整名单请回复“导出”。" in parts[-1]


def test_a_long_reply_over_the_budget_is_pushed_whole_in_parts(crowded: Campaign) -> None:
    held = RecordingDispatch(gate=threading.Event())
    crowded.bot = crowded.start_bot(clock=crowded.clock, dispatch=held, REPLY_BUDGET_SECONDS="0.2")
    reply = crowded.bot.side.text(STAFF, "未报 统计表")
    assert (reply.status_code, reply.body) == (200, "success")
    held.gate.set()
    pushed = _pushed_until(crowded, STAFF, CROWD[-1])
    assert pushed and _fits(pushed) and len(pushed) <= 5
    assert pushed[0].startswith("“报送安全生产月统计表”") and _crowd_in_order(pushed) == CROWD


def test_a_customer_service_text_over_the_limit_goes_as_several_messages_in_order(
        wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    """Notes, reminders and pushed replies all leave through ``WeChatAPI.send_text``."""
    fake_wechat.fake.user_wrote(STAFF)
    text = "\n".join(f"【要情】第{i}条：泽州县商务局组织辖区加油站、商场开展应急演练，300人参加。" for i in range(40))
    wechat_api.send_text(STAFF, text)
    sent = [p.payload["text"]["content"] for p in fake_wechat.fake.pushes(STAFF)]
    assert len(sent) > 1 and _fits(sent) and "\n".join(sent) == text


ZEZHOU = "oLiaisonZezhou"
MEDIA = "晋城日报、山西日报、" + "泽州县商务局组织辖区加油站开展应急演练" * 10  # 200 characters, the most a text cell takes
REMARK = "本次活动" + "组织辖区商贸企业负责人集中学习安全生产重要论述并签订承诺书" * 6 + "共计一百二十人参加会后逐一签字"


def test_查看_in_典型案例_after_five_long_rows_is_one_message_each_cell_cut_short(jincheng: Campaign) -> None:
    """The issue's case: three long rows made 查看 one passive reply of 4,474 bytes. Five rows
    filled to the brim now fit one message, and 修改 N still shows a cell whole."""
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.bot.fake.user_wrote(ZEZHOU)  # anything split off the reply could be pushed and seen
    jincheng.say(ZEZHOU, "典型案例")
    jincheng.say(ZEZHOU, "0356-2056819")
    for row in range(1, 6):
        for answer in ("5月20日", MEDIA, f"https://mp.weixin.qq.com/s/{'x' * 200}{row}", REMARK[:200]):
            jincheng.say(ZEZHOU, answer)
    shown = jincheng.bot.side.text(ZEZHOU, "查看")
    assert shown.size <= TEXT_BYTES and jincheng.bot.fake.pushes(ZEZHOU) == []
    lines = (shown.content or "").split("\n")
    assert "6)刊登媒体 晋城日报、山西日报、泽…" in lines[6]
    assert "7)媒体链接 https://mp.weixin.qq.co…" in lines[6] and "8)备注 本次活动组织辖区商贸企…" in lines[6]
    assert "（25/25）相关活动的图片" in lines[-3]
    review = jincheng.bot.side.text(ZEZHOU, "无")
    assert review.size <= TEXT_BYTES and "24)备注 本次活动组织辖区商贸企…" in (review.content or "")
    assert jincheng.say(ZEZHOU, "查看") == review.content  # the review is the table: shown once, not twice
    assert f"现填：{MEDIA}\n" in jincheng.say(ZEZHOU, "修改 6")
    assert jincheng.bot.fake.pushes(ZEZHOU) == []


def test_a_passive_reply_over_the_limit_fails_the_scenario_that_gets_it() -> None:
    """Every scenario through ``start_bot`` reads replies with :class:`LimitedSide`: a bot (here a
    stand-in answering 2,049 bytes) that broke WeChat's limit would fail the test, not pass it."""
    def answering(content: str) -> Starlette:
        async def reply(request: Request) -> Response:
            return Response(f"<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content></xml>",
                            media_type="application/xml")
        return Starlette(routes=[Route("/wechat", reply, methods=["POST"])])

    at_the_limit = "安" * 682 + "12"
    with TestClient(answering(at_the_limit)) as client:
        assert LimitedSide(client, token="t", app_id="wx1").text(ZEZHOU, "查看").content == at_the_limit
    with TestClient(answering(at_the_limit + "3")) as client:
        with pytest.raises(AssertionError, match="a passive reply of 2,049 bytes, over WeChat's 2,048"):
            LimitedSide(client, token="t", app_id="wx1").text(ZEZHOU, "查看")


def test_every_office_command_with_300_units_fits_wechats_limit(crowded: Campaign) -> None:
    """Other examples, tried after the fixes: 帮助, 进度, 合计, 未报 of each deadline, 单位 and 导出,
    for a coordinator and for staff, with 306 units: each passive reply and each pushed part fits."""
    for person in (COORDINATOR, STAFF):
        for command in ("帮助", "菜单", "进度", "合计", "未报", "未报 周报", "未报 典型案例", "单位 商务所", "导出",
                        "通知 状态"):
            reply = crowded.bot.side.text(person, command)
            assert reply.size <= TEXT_BYTES and reply.content, (person, command)
    pushed = [p.payload["text"]["content"] for who in (COORDINATOR, STAFF) for p in crowded.bot.fake.pushes(who)
              if p.msgtype == "text"]
    assert _fits(pushed)


def test_a_statistics_table_filled_with_the_largest_plausible_estimates_reviews_in_one_message(
        jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.bot.fake.user_wrote(ZEZHOU)
    reply = jincheng.say(ZEZHOU, "填报")
    for _ in range(40):
        if "回复“确认”" in reply:
            break
        reply = jincheng.say(ZEZHOU, "约99999")
    assert "40 参与 约99999人次" in reply and jincheng.say(ZEZHOU, "查看") == reply
    assert jincheng.bot.fake.pushes(ZEZHOU) == []                           # nothing had to be split off
    helped = jincheng.say(ZEZHOU, "帮助")                                    # the commands, then the table again
    pushed = _pushed_until(jincheng, ZEZHOU, "回复“确认”提交")
    assert _fits([helped, *pushed]) and "40 参与 约99999人次" in "\n".join([helped, *pushed])
