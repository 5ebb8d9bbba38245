"""The demo's replayed 晋城 June (``make run``): liaisons report through the served bot's signed
callback, once per database, and a newcomer who redeems the printed coordinator code sees the
replayed sums in 合计, the draft's unit in 未报 and downloads the 导出 file."""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import httpx
import openpyxl
import pytest
import sqlalchemy as sa

from bot.app import create_app
from bot.config import Settings
from bot.store.engine import make_engine
from bot.store.models import Submission, table_of, utcnow
from simulator.demo import demo_codes, how_to_try, remember_followers, replay_served
from simulator.fake_wechat import BackgroundServer, FakeWeChat, WeChatError
from simulator.june import YANGCHENG, ZEZHOU, typed
from simulator.replay import (
    QINSHUI, REPLAYED, REPLAYED_SUBMIT, DemoCampaign, coming_june, load_demo_campaign, without_liaison,
)
from simulator.wechat_side import WeChatSide
from tests.conftest import free_port, make_settings
from tests.fixtures_fake import ServedFake
from tests.fixtures_forms import CAMPAIGN, UNITS
from tests.test_weekly_report import eventually

NEWCOMER = "o_coordinator_demo"
# The 合计 reply's last line: the whole table has arrived, however many parts it took.
ALL_SHOWN = "回复“导出”获取Excel表格。"


@pytest.fixture
def demo(tmp_path: Path, sqlite_url: str, fake_wechat: ServedFake) -> Iterator[tuple[Settings, sa.Engine]]:
    """The demo's pieces: the bot served on a port of its own (its links point there), beside the fake WeChat."""
    port = free_port()
    settings = make_settings(tmp_path, DATABASE_URL=sqlite_url, WECHAT_API_BASE_URL=fake_wechat.base_url,
                             PORT=str(port))
    engine = make_engine(sqlite_url)
    with BackgroundServer(create_app(settings), port):
        yield settings, engine
    engine.dispose()


def _submitted(engine: sa.Engine) -> int:
    submissions = table_of(Submission)
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(submissions)
                                .where(submissions.c.status == "submitted")).scalar_one())


def _read(side: WeChatSide, fake: ServedFake, text: str, ending: str) -> str:
    """All the newcomer sees after ``text``: the passive reply and the parts pushed after it."""
    fake.fake.user_wrote(NEWCOMER)
    before = len(fake.fake.pushes(NEWCOMER))
    passive = side.text(NEWCOMER, text).content or ""

    def whole() -> str:
        pushed = [p.payload["text"]["content"] for p in fake.fake.pushes(NEWCOMER)[before:] if p.msgtype == "text"]
        seen = "\n".join([passive, *pushed])
        return seen if seen.endswith(ending) else ""
    return eventually(whole)


def test_the_replayed_june_shows_in_合计_未报_and_the_export_and_is_not_replayed_twice(
        demo: tuple[Settings, sa.Engine], fake_wechat: ServedFake) -> None:
    settings, engine = demo
    now = utcnow()
    year = coming_june(now)
    campaign = load_demo_campaign(engine, CAMPAIGN, UNITS, year)
    assert campaign.slug == f"jincheng-commerce-{year}"
    replayed = replay_served(settings, engine, campaign)
    assert replayed.units == tuple(REPLAYED)
    submitted = _submitted(engine)
    # 4 statistics tables, 2 weekly reports and 5 liaison tables.
    assert submitted == len(REPLAYED_SUBMIT) + 2 + len(REPLAYED)

    # A second run on the same database loads the same campaign and replays nothing.
    again = load_demo_campaign(engine, CAMPAIGN, UNITS, year)
    assert again.join_codes == campaign.join_codes
    assert replay_served(settings, engine, again).units == ()
    assert _submitted(engine) == submitted

    assert without_liaison(engine, campaign.slug) == [QINSHUI]
    printed = how_to_try(campaign, demo_codes(engine, now), replayed, [QINSHUI])
    coordinator_line = next(line for line in printed.splitlines() if f"--as {NEWCOMER}" in line)
    match = re.search(r"登记, (\w+);", coordinator_line)
    assert match is not None, printed
    assert f"{QINSHUI}'s join code {campaign.join_codes[QINSHUI]}" in printed

    with httpx.Client(base_url=f"http://127.0.0.1:{settings.port}", timeout=10) as client:
        side = WeChatSide(client, token=settings.wechat_token, app_id=settings.wechat_app_id,
                          aes_key=settings.wechat_encoding_aes_key)
        side.text(NEWCOMER, "登记")
        assert "协调人" in (side.text(NEWCOMER, match.group(1)).content or "")

        totals = _read(side, fake_wechat, "合计", ALL_SHOWN).splitlines()
        assert f"已汇总 {len(REPLAYED_SUBMIT)}/6 个单位提交的统计表；另有 1 个单位填了未提交，未计入。" in totals
        lectures, people = _sums(campaign, "study.lectures"), _sums(campaign, "study.lectures_people")
        assert f"组织开展宣讲活动（{lectures}）场，参与（约{people}）人次" in totals

        missing = side.text(NEWCOMER, "未报 统计表").content or ""
        liaison_of_draft = REPLAYED[YANGCHENG]
        assert f"{YANGCHENG} {liaison_of_draft[1]} {liaison_of_draft[2]}" in missing
        assert f"{QINSHUI} 无联络员" in missing
        assert not any(unit in missing for unit in REPLAYED_SUBMIT)

        link = re.search(r"http://\S+\.xlsx", side.text(NEWCOMER, "导出").content or "")
        assert link is not None and link.group(0).startswith(f"http://{settings.host}:{settings.port}/files/export/")
        download = httpx.get(link.group(0), timeout=10)
    assert download.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(download.content))
    summed = [str(cell.value) for row in workbook["合计"].iter_rows() for cell in row if cell.value]
    assert any(f"组织开展宣讲活动（{lectures}）场" in value for value in summed), summed
    assert {*REPLAYED_SUBMIT, YANGCHENG, QINSHUI} <= set(workbook.sheetnames)


def _sums(campaign: DemoCampaign, key: str) -> int:
    """What the submitting liaisons typed for ``key``, added up (from simulator/june.py, not the bot)."""
    keys = [f.answer_key for item in campaign.statistics.items for f in item.fields]
    return sum(answer.number or 0 for unit in REPLAYED_SUBMIT
               for field_key, answer in zip(keys, typed(campaign.statistics, unit)) if field_key == key)


def test_a_restarted_demos_fake_wechat_knows_the_followers_and_their_windows_from_the_database(
        demo: tuple[Settings, sa.Engine]) -> None:
    settings, engine = demo
    campaign = load_demo_campaign(engine, CAMPAIGN, UNITS, coming_june(utcnow()))
    replay_served(settings, engine, campaign)
    zezhou = REPLAYED[ZEZHOU][0]
    note = {"touser": zezhou, "msgtype": "text", "text": {"content": "请核对联络员信息"}}
    forgetful = FakeWeChat(settings.wechat_app_id, settings.wechat_app_secret)
    with pytest.raises(WeChatError):
        forgetful.send_custom(note)
    restarted = FakeWeChat(settings.wechat_app_id, settings.wechat_app_secret)
    assert remember_followers(restarted, engine) == len(REPLAYED)
    # 泽州's liaison wrote a moment ago: the 48-hour window is open, as the real WeChat would keep it.
    assert restarted.send_custom(note)["errcode"] == 0
    # The window is counted from when they wrote: two days on, it has closed.
    restarted.advance(48 * 3600)
    with pytest.raises(WeChatError) as closed:
        restarted.send_custom(note)
    assert closed.value.errcode == 45015


def test_the_coming_june_is_this_years_until_june_begins() -> None:
    assert coming_june(datetime(2026, 11, 30, tzinfo=timezone.utc)) == 2027
    assert coming_june(datetime(2027, 5, 31, 15, tzinfo=timezone.utc)) == 2027
    assert coming_june(datetime(2027, 6, 1, tzinfo=timezone.utc)) == 2028

