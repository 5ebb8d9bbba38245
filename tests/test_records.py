"""典型案例: the 附件3 activity-record table of the month, walked cell by cell through the real
/wechat endpoint with the generic form engine."""

from __future__ import annotations

from datetime import date, datetime, timezone

import sqlalchemy as sa

from bot.campaigns import load_definition
from bot.store.models import MediaFile, ReportItem
from bot.texts import Texts
from tests.fixtures_forms import CAMPAIGN, Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()
ZEZHOU = "oLiaisonZezhou"


def test_a_liaison_fills_the_months_activity_records_row_by_row_and_submits(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    opened = jincheng.say(ZEZHOU, "典型案例")
    # June's table reports May's activities (报送上月典型案例) and is due at the end of June.
    assert "5月1日—5月31日" in opened and "6月30日 23:59" in opened
    assert "（3/25）电话" in opened  # 填报单位, 联系人 and 填报日期 are known already
    first_row = jincheng.say(ZEZHOU, "0356-2056819")
    assert "活动内容 1：党委（党组）学习中心组" in first_row and "（5/25）时间" in first_row
    assert "（6/25）刊登媒体" in jincheng.say(ZEZHOU, "5月20日")
    assert "（7/25）媒体链接" in jincheng.say(ZEZHOU, "晋城日报")
    link = load_definition(CAMPAIGN).form("activity_record").field("r1.link")
    assert jincheng.say(ZEZHOU, "见报纸") == TEXTS.render("invalid_url", field=link, given="见报纸")
    assert "（8/25）备注" in jincheng.say(ZEZHOU, "https://example.org/jcrb/0520")
    second_row = jincheng.say(ZEZHOU, "跳过")
    assert "活动内容 2：开展习近平总书记关于安全生产重要论述宣讲活动" in second_row and "（9/25）时间" in second_row
    shown = jincheng.say(ZEZHOU, "查看")
    assert "5)时间 2023-05-20 6)刊登媒体 晋城日报 7)媒体链接 https://example.org/jcr… 8)备注 空" in shown
    assert "9)时间 未填" in shown
    assert "1) 填报单位（盖章）：泽州县商务局" in shown and "（9/25）时间" in shown
    assert "（6/25）" in jincheng.say(ZEZHOU, "修改 6")
    assert "（9/25）" in jincheng.say(ZEZHOU, "山西日报")
    assert jincheng.say(ZEZHOU, "取消") == TEXTS.render("records_cancelled", answered=8)

    jincheng.restart()
    resumed = jincheng.say(ZEZHOU, "典型案例")
    assert "已填 8/25 项" in resumed and "（9/25）时间" in resumed
    for _ in range(2, 6):  # rows 2 to 5: no such activity, each left blank with one word
        jincheng.say(ZEZHOU, "跳过")
    review = jincheng.say(ZEZHOU, "跳过")
    assert "回复“确认”提交" in review and "24)备注 空" in review and "25) 相关活动的图片：（空）" in review
    assert "已提交" in jincheng.say(ZEZHOU, "确认")

    cells = {k: a.value for k, a in jincheng.answers("泽州县商务局", "typical_cases").items()}
    assert (cells["r1.time"], cells["r1.media"], cells["r1.link"]) == ("2023-05-20", "山西日报", "https://example.org/jcrb/0520")
    assert cells["r1.remark"] is None and cells["r5.time"] is None and cells["pictures"] is None
    [revision] = [r for r in jincheng.revisions() if r.new_value == "山西日报"]
    assert (revision.old_value, revision.changed_by, revision.late) == ("晋城日报", ZEZHOU, False)
    [june] = [s for s in jincheng.submissions("泽州县商务局") if s.period == "2023-06"]
    assert (june.status, june.late, june.submitted_by) == ("submitted", False, ZEZHOU)


def test_each_month_has_its_own_table_and_the_menu_opens_the_same_walk(jincheng: Campaign) -> None:
    assert jincheng.click(ZEZHOU, "RECORDS") == TEXTS.render("records_needs_registration")
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.clock.advance(minutes=1)  # a click in the same second would be WeChat re-sending the first
    assert "（3/25）电话" in jincheng.click(ZEZHOU, "RECORDS")
    jincheng.say(ZEZHOU, "0356-2056819")
    jincheng.say(ZEZHOU, "6月1日")
    jincheng.say(ZEZHOU, "取消")
    jincheng.clock.advance(days=15)  # 7-05: July's table reports June
    july = jincheng.say(ZEZHOU, "典型案例")
    assert "6月1日—6月30日" in july and "7月31日 23:59" in july and "（3/25）电话" in july
    assert sorted(s.period for s in jincheng.submissions("泽州县商务局") if s.period.count("-") == 1) == [
        "2023-06", "2023-07"]


def test_help_names_the_table_and_the_reports_a_liaison_can_send(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    listed = jincheng.say(ZEZHOU, "帮助")
    assert "· 典型案例 ——" in listed and "· 周报 ——" in listed and "· 要情 ——" in listed


def test_after_the_last_month_late_cells_are_still_taken_for_december(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.clock.advance(days=200)  # 2024-01: December's table was due 12-31
    opened = jincheng.say(ZEZHOU, "典型案例")
    assert "12月31日 23:59" in opened and "迟报" in opened


def test_pictures_go_with_the_table_last_and_are_fetched_like_a_reports(jincheng: Campaign) -> None:
    """附件3: "相关活动的图片和此表一同发送" — asked after the rows, any number, then 完成."""
    fake, side = jincheng.bot.fake, jincheng.bot.side
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.say(ZEZHOU, "典型案例")
    jincheng.say(ZEZHOU, "0356-2056819")
    for _ in range(1, 6):  # five rows of activities that did not take place
        asked = jincheng.say(ZEZHOU, "跳过")
    assert "（25/25）相关活动的图片" in asked and "发完回复“完成”" in asked
    assert jincheng.say(ZEZHOU, "好几张") == TEXTS.render(
        "invalid_pictures", field=load_definition(CAMPAIGN).form("activity_record").field("pictures"), given="好几张")
    meeting = fake.add_user_media("image", b"\xff\xd8meeting-photo", "image/jpeg")
    drill = fake.add_user_media("image", b"\xff\xd8drill-photo", "image/jpeg")
    assert side.image(ZEZHOU, meeting).content == TEXTS.render("records_picture_received", number=1, asked=True)
    first = side.image(ZEZHOU, drill, msg_id=99001)
    assert first.content == TEXTS.render("records_picture_received", number=2, asked=True)
    assert side.image(ZEZHOU, drill, msg_id=99001).content == first.content  # WeChat re-sends: counted once
    review = jincheng.say(ZEZHOU, "完成")
    assert "25) 相关活动的图片：2张" in review and "回复“确认”提交" in review
    # One more at the review: taken, and the review shown again with the new count.
    late = fake.add_user_media("image", b"\xff\xd8late-photo", "image/jpeg")
    shown = side.image(ZEZHOU, late).content
    assert shown.startswith(TEXTS.render("records_picture_received", number=3, asked=False))
    assert "25) 相关活动的图片：3张" in shown
    assert "已提交" in jincheng.say(ZEZHOU, "确认")

    assert jincheng.answers("泽州县商务局", "typical_cases")["pictures"].value == "3张"
    with jincheng.engine.connect() as conn:
        kinds = conn.execute(sa.select(ReportItem.__table__.c.kind)).scalars().all()
        media = conn.execute(sa.select(MediaFile.__table__.c.media_id)).scalars().all()
    assert kinds == ["image"] * 3 and sorted(media) == sorted([meeting, drill, late])


def test_the_picture_question_wants_a_picture_before_done_takes_none_and_pictures_sent_early(
        jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.say(ZEZHOU, "典型案例")
    jincheng.say(ZEZHOU, "修改 25")
    assert jincheng.say(ZEZHOU, "完成") == TEXTS.render("records_pictures_none_yet")
    assert "（3/25）电话" in jincheng.say(ZEZHOU, "无")  # left blank; back to the first empty cell
    assert jincheng.answers("泽州县商务局", "typical_cases")["pictures"].value is None
    # A picture sent before it is asked is kept, and the question asked stays.
    early = jincheng.bot.fake.add_user_media("image", b"\xff\xd8early-photo", "image/jpeg")
    reply = jincheng.bot.side.image(ZEZHOU, early).content
    assert reply.startswith(TEXTS.render("records_picture_received", number=1, asked=False)) and "（3/25）电话" in reply
    assert jincheng.answers("泽州县商务局", "typical_cases")["pictures"].value == "1张"


def test_a_table_filled_long_after_takes_the_days_year_from_the_month_it_reports_on(jincheng: Campaign) -> None:
    """Filled in November 2026, December 2023's table (November's activities): 6月8日 is 2023-06-08,
    and being outside November it is stored only once the liaison confirms it."""
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.clock.now = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
    november = {"first": date(2023, 11, 1), "last": date(2023, 11, 30)}
    assert "（报送 2023年11月1日—11月30日 的活动）" in jincheng.say(ZEZHOU, "典型案例")
    assert "（5/25）时间" in jincheng.say(ZEZHOU, "0356-2056819")
    asked = jincheng.say(ZEZHOU, "6月8日")
    assert asked == TEXTS.render("records_date_outside", given="6月8日", day=date(2023, 6, 8), **november)
    assert "2023年6月8日，不在本表报送的 2023年11月1日—11月30日 之内" in asked
    kept_not = jincheng.say(ZEZHOU, "否")
    assert kept_not.startswith(TEXTS.render("records_date_not_kept")) and "（5/25）时间" in kept_not
    assert "r1.time" not in jincheng.answers("泽州县商务局", "typical_cases")
    # Asked again, a new day typed instead of 是 or 否 is read afresh: in November, it is stored.
    assert jincheng.say(ZEZHOU, "6.20") == TEXTS.render(
        "records_date_outside", given="6.20", day=date(2023, 6, 20), **november)
    assert "（6/25）刊登媒体" in jincheng.say(ZEZHOU, "11月8号")
    jincheng.say(ZEZHOU, "修改 9")
    assert "2023年12月2日" in jincheng.say(ZEZHOU, "12.2")
    assert "（10/25）刊登媒体" in jincheng.say(ZEZHOU, "是")  # confirmed: kept as typed
    cells = jincheng.answers("泽州县商务局", "typical_cases")
    assert (cells["r1.time"].value, cells["r2.time"].value) == ("2023-11-08", "2023-12-02")
    assert cells["date"].value == "2026-11-30"  # 填报日期 is the day it is filled


def test_one_word_at_a_rows_first_cell_leaves_an_unused_row_blank(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    opened = jincheng.say(ZEZHOU, "典型案例")
    assert "没有开展的活动，在它的第一格回复“无”或“跳过”，整行留空" in opened
    first_row = jincheng.say(ZEZHOU, "0356-2056819")
    assert "（没有开展这项活动，回复“无”，整行留空）\n\n（5/25）时间" in first_row
    assert "活动内容 2：" in jincheng.say(ZEZHOU, "无") and "（9/25）时间" in jincheng.say(ZEZHOU, "查看")
    assert "（13/25）时间" in jincheng.say(ZEZHOU, "未开展")
    jincheng.say(ZEZHOU, "5月20日")
    # Past a row's first cell 无 is that cell's answer alone (刊登媒体 may be left empty).
    media = jincheng.say(ZEZHOU, "无")
    assert "（15/25）媒体链接" in media and "整行留空" not in media
    cells = {k: a.value for k, a in jincheng.answers("泽州县商务局", "typical_cases").items()}
    assert [cells[f"r{n}.{c}"] for n in (1, 2) for c in ("time", "media", "link", "remark")] == [None] * 8
    assert (cells["r3.time"], cells["r3.media"]) == ("2023-05-20", None) and "r3.link" not in cells
    shown = jincheng.say(ZEZHOU, "查看")
    assert "5)时间 空 6)刊登媒体 空 7)媒体链接 空 8)备注 空" in shown and "15)媒体链接 未填" in shown


def test_days_written_every_way_take_the_periods_year_and_any_empty_cell_mark_leaves_a_row_blank(
        jincheng: Campaign) -> None:
    """Other examples, tried after the fixes: 典型案例 of November 2023 filled in November 2026."""
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.clock.now = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
    november = {"first": date(2023, 11, 1), "last": date(2023, 11, 30)}
    jincheng.say(ZEZHOU, "典型案例")
    assert "（5/25）时间" in jincheng.say(ZEZHOU, "0356-2056819")
    for typed, day in (("2023.6.8", date(2023, 6, 8)), ("六月八日", date(2023, 6, 8)), ("12/2", date(2023, 12, 2)),
                       ("昨天", date(2026, 11, 29))):
        assert jincheng.say(ZEZHOU, typed) == TEXTS.render("records_date_outside", given=typed, day=day, **november)
    assert "（6/25）刊登媒体" in jincheng.say(ZEZHOU, "十一月八日下午")
    assert "（7/25）媒体链接" in jincheng.say(ZEZHOU, "/")                  # an optional cell left empty
    assert "（8/25）备注" in jincheng.say(ZEZHOU, "—")
    assert "（9/25）时间" in jincheng.say(ZEZHOU, "无")
    assert "（13/25）时间" in jincheng.say(ZEZHOU, "没有开展")                # row 2 unused
    assert "（17/25）时间" in jincheng.say(ZEZHOU, "/")                      # row 3 unused
    assert "（18/25）刊登媒体" in jincheng.say(ZEZHOU, "23.11.20")
    jincheng.say(ZEZHOU, "修改 21")
    assert "（22/25）刊登媒体" in jincheng.say(ZEZHOU, "20231130")
    cells = {k: a.value for k, a in jincheng.answers("泽州县商务局", "typical_cases").items()}
    assert (cells["r1.time"], cells["r1.media"], cells["r1.link"], cells["r1.remark"]) == ("2023-11-08", None, None, None)
    assert [cells[f"r{n}.{c}"] for n in (2, 3) for c in ("time", "media", "link", "remark")] == [None] * 8
    assert (cells["r4.time"], cells["r5.time"]) == ("2023-11-20", "2023-11-30")
