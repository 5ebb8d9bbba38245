"""Weekly numbers add up: counts given with each 周报 pre-fill the final statistics table (填报),
where the liaison only confirms or corrects; the campaign file says which table they add up into."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.campaigns import check_file, load_definition, load_into_db
from bot.store.engine import session
from bot.store.facts import DatabaseFacts
from bot.store.models import Unit
from bot.texts import Texts
from tests.fixtures_forms import CAMPAIGN, Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()
ZEZHOU, GAOPING = "oLiaisonZezhou", "oLiaisonGaoping"


def give_numbers(jincheng: Campaign, openid: str, *answers: str) -> str:
    """A weekly report of one text and the given numbers, from the first count on; the 完成 reply."""
    jincheng.say(openid, "周报")
    jincheng.say(openid, "本周开展宣讲和培训活动。")
    for answer in answers:
        jincheng.say(openid, answer)
    return jincheng.say(openid, "完成")


def test_numbers_given_with_each_weekly_report_pre_fill_the_final_table(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.register(GAOPING, "高平市商务局")
    assert "回复“数字”可填本周活动数字" in jincheng.say(ZEZHOU, "周报")
    asked = jincheng.say(ZEZHOU, "数字")
    assert "共 35 项" in asked and "（1/35）组织开展宣讲活动（ ）场" in asked
    assert "（3/35）" in jincheng.say(ZEZHOU, "2场 40人次")             # a whole clause in one line
    assert "（4/35）" in jincheng.say(ZEZHOU, "约10")
    count = load_definition(CAMPAIGN).form("statistics").field("study.talks")
    assert jincheng.say(ZEZHOU, "很多") == TEXTS.render("invalid_count", field=count, given="很多")
    assert "本周数字已保存（3 项）" in jincheng.say(ZEZHOU, "取消")
    assert "本周数字 3 项" in jincheng.say(ZEZHOU, "完成")

    jincheng.clock.advance(days=7)  # 6-27: the week due 6-28
    assert "本周数字 2 项" in give_numbers(jincheng, ZEZHOU, "数字", "3 60", "取消")
    give_numbers(jincheng, GAOPING, "数字", "100 1000", "取消")   # another unit's numbers stay its own

    zezhou = jincheng.unit_id("泽州县商务局")
    with session(jincheng.engine) as db:
        unit = db.get(Unit, zezhou)
        assert unit is not None
        sums = DatabaseFacts(db.connection()).weekly_sums(zezhou, unit.campaign_id)
    assert sums == {"study.lectures": 5, "study.lectures_people": 100, "study.articles": 10}

    jincheng.clock.advance(days=2)  # 6-29: the statistics table is due 7-01
    opened = jincheng.say(ZEZHOU, "填报")
    assert "已填 7/40 项" in opened and "（8/40）" in opened   # 4 header fields and 3 sums
    shown = jincheng.say(ZEZHOU, "查看")
    assert "5 宣讲活动 5场 · 6 参与 100人次\n7 评论文章或心得体会 10篇\n8 安全生产大家谈 未填" in shown
    assert "（5/40）" in jincheng.say(ZEZHOU, "修改 5")
    jincheng.say(ZEZHOU, "6")                                   # the liaison corrects a sum
    stored = jincheng.answers("泽州县商务局", "statistics")
    assert (stored["study.lectures"].number, stored["study.lectures_people"].number) == (6, 100)
    assert stored["study.articles"].number == 10
    other = jincheng.answers("高平市商务局", "statistics")
    assert other == {}


def test_a_weekly_report_of_numbers_alone_can_be_finished(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.say(ZEZHOU, "周报")
    jincheng.say(ZEZHOU, "数字")
    jincheng.say(ZEZHOU, "1 20")
    done = jincheng.say(ZEZHOU, "完成")                          # 完成 in the middle of the numbers
    assert "已提交" in done and "本周数字 2 项" in done


def test_loading_the_campaign_again_keeps_the_weekly_numbers(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    give_numbers(jincheng, ZEZHOU, "数字", "2 40", "取消")
    load_into_db(jincheng.engine, load_definition(CAMPAIGN))     # no LoadRefused: nothing would be lost
    assert jincheng.answers("泽州县商务局", "weekly")["study.lectures"].number == 2


@pytest.mark.parametrize(("setting", "problem"), [
    ('sums_into = "summary"', "sums into 'summary', which is not a statistics form of this file"),
    ('sums_into = "nothing"', "sums into 'nothing', which is not a statistics form of this file"),
])
def test_sums_into_must_name_a_statistics_form(tmp_path: Path, setting: str, problem: str) -> None:
    broken = tmp_path / "campaign.toml"
    broken.write_text(CAMPAIGN.read_text(encoding="utf-8").replace('sums_into = "statistics"', setting), encoding="utf-8")
    [found] = check_file(broken)
    assert problem in found.message and found.line is not None


def test_only_reports_add_up_into_a_table(tmp_path: Path) -> None:
    text = CAMPAIGN.read_text(encoding="utf-8")
    broken = tmp_path / "campaign.toml"
    broken.write_text(text.replace('row_label = "活动内容"', 'row_label = "活动内容"\nsums_into = "statistics"'),
                      encoding="utf-8")
    [found] = check_file(broken)
    assert "only record forms (reports) have sums_into" in found.message
    assert load_definition(CAMPAIGN).summed_fields("activity_record") == ()
