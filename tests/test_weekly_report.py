"""周报 and 要情 through the real /wechat endpoint: every message kind until 完成, retries,
restarts, and what a liaison is told before registering or outside the weekly rhythm."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from sqlmodel import select

from bot.store.engine import session
from bot.store.models import MediaFile, ReportItem, Submission
from bot.texts import Texts
from tests.fixtures_forms import Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()
ZEZHOU, GAOPING = "oLiaisonZezhou", "oLiaisonGaoping"
T = TypeVar("T")


def eventually(look: Callable[[], T], timeout: float = 10.0) -> T:
    """What ``look`` returns once it is truthy (the media fetcher works in the background)."""
    deadline = time.monotonic() + timeout
    while not (found := look()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def items(jincheng: Campaign) -> list[ReportItem]:
    with session(jincheng.engine) as db:
        return list(db.exec(select(ReportItem).order_by(ReportItem.id)))


def media(jincheng: Campaign) -> list[MediaFile]:
    with session(jincheng.engine) as db:
        return list(db.exec(select(MediaFile).order_by(MediaFile.id)))


def weekly(jincheng: Campaign, unit: str) -> list[Submission]:
    return [s for s in jincheng.submissions(unit) if s.period.startswith("2023-06-")]


def test_a_liaison_sends_text_pictures_voice_video_and_a_link_and_finishes_the_weeks_report(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    fake, side = jincheng.bot.fake, jincheng.bot.side
    picture = fake.add_user_media("image", b"\xff\xd8jpeg-of-the-drill", "image/jpeg")
    voice = fake.add_user_media("voice", b"#!AMR-voice", "audio/amr")
    video = fake.add_user_media("video", b"mp4-of-the-drill", "video/mp4")
    clip = fake.add_user_media("shortvideo", b"mp4-short", "video/mp4")

    opened = jincheng.say(ZEZHOU, "周报")
    # 2023-06-20 is a Tuesday: the week due Wednesday 6-21 18:00, covering 6-15 to 6-21.
    assert "6月15日—6月21日" in opened and "6月21日 18:00" in opened
    assert "第 1 项" in jincheng.say(ZEZHOU, "6月16日在泽州广场开展安全宣传咨询日活动，发放资料500份。")
    assert side.image(ZEZHOU, picture).content == TEXTS.render("report_received", kind="image", number=2, featured=False)
    assert "语音" in (side.voice(ZEZHOU, voice, recognition="现场有三百人参加").content or "")
    assert "视频" in (side.video(ZEZHOU, video).content or "")
    assert "第 5 项" in (side.shortvideo(ZEZHOU, clip).content or "")
    assert "链接" in (side.link(ZEZHOU, "泽州县开展应急演练", "晋城日报", "https://example.org/drill").content or "")
    assert "文字 1 条、图片 1 张、语音 1 条、视频 2 个、链接 1 个" in jincheng.say(ZEZHOU, "查看")
    assert "第 7 项" in jincheng.say(ZEZHOU, "另：6月20日组织企业主要负责人安全承诺活动。")

    done = jincheng.say(ZEZHOU, "完成")
    assert "已提交" in done and "文字 2 条、图片 1 张、语音 1 条、视频 2 个、链接 1 个" in done
    assert jincheng.conversation(ZEZHOU).flow == ""  # type: ignore[union-attr]
    [report] = weekly(jincheng, "泽州县商务局")
    assert (report.period, report.status, report.late, report.submitted_by) == ("2023-06-21", "submitted", False, ZEZHOU)
    stored = items(jincheng)
    assert [i.kind for i in stored] == ["text", "image", "voice", "video", "video", "link", "text"]
    assert all(i.submission_id == report.id and not i.featured for i in stored)
    assert stored[2].text == "现场有三百人参加"
    assert (stored[5].text, stored[5].url) == ("泽州县开展应急演练\n晋城日报", "https://example.org/drill")
    text = jincheng.answers("泽州县商务局", "weekly")["text"].value
    assert text is not None and text.startswith("6月16日在泽州广场") and text.endswith("安全承诺活动。")


def test_a_report_needs_a_registered_unit_and_an_open_week(jincheng: Campaign) -> None:
    assert jincheng.say(GAOPING, "周报") == TEXTS.render("report_needs_registration")
    assert jincheng.click(GAOPING, "FEATURED") == TEXTS.render("report_needs_registration")
    jincheng.register(GAOPING, "高平市商务局")
    assert "开始报送" in jincheng.click(GAOPING, "WEEKLY")
    assert jincheng.say(GAOPING, "完成") == TEXTS.render("report_empty", featured=False)
    assert "周报尚未提交" in jincheng.say(GAOPING, "取消")
    jincheng.clock.advance(days=12)  # 7-02: June's last weekly report was due 6-28
    assert jincheng.say(GAOPING, "要情") == TEXTS.render("report_no_week", featured=True)
    # The last week's report was never sent: it is still taken, marked late (帮助 says 仍可补报).
    late = jincheng.say(GAOPING, "周报")
    assert "6月28日 18:00" in late and "迟报" in late
    jincheng.say(GAOPING, "6月27日开展应急演练")
    assert "迟报" in jincheng.say(GAOPING, "完成")
    [last_week] = [s for s in jincheng.submissions("高平市商务局") if s.period == "2023-06-28"]
    assert (last_week.status, last_week.late) == ("submitted", True)
    jincheng.clock.advance(minutes=1)
    assert jincheng.say(GAOPING, "周报") == TEXTS.render("report_no_week", featured=False)


def test_a_featured_activity_goes_into_this_weeks_report_the_same_day_without_submitting_it(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    picture = jincheng.bot.fake.add_user_media("image", b"\xff\xd8featured", "image/jpeg")
    assert "要情" in jincheng.say(ZEZHOU, "要情")
    assert "要情" in jincheng.say(ZEZHOU, "市长带队检查泽州县大型商超消防安全。")
    jincheng.bot.side.image(ZEZHOU, picture)
    done = jincheng.say(ZEZHOU, "完成")
    assert "要情已报送" in done and "文字 1 条、图片 1 张" in done
    [report] = weekly(jincheng, "泽州县商务局")
    assert (report.period, report.status) == ("2023-06-21", "draft")
    assert [(i.kind, i.featured) for i in items(jincheng)] == [("text", True), ("image", True)]
    # The weekly report then shows the 要情 among the week's items and submits them all.
    assert "本周已收到：文字 1 条、图片 1 张" in jincheng.say(ZEZHOU, "周报")
    jincheng.say(ZEZHOU, "本周其他活动")
    assert "文字 2 条、图片 1 张" in jincheng.say(ZEZHOU, "完成")


def test_a_retried_picture_is_kept_once_and_a_restart_keeps_the_open_report(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    picture = jincheng.bot.fake.add_user_media("image", b"\xff\xd8once", "image/jpeg")
    jincheng.say(ZEZHOU, "周报")
    first = jincheng.bot.side.image(ZEZHOU, picture, msg_id=7001)
    again = jincheng.bot.side.image(ZEZHOU, picture, msg_id=7001)  # WeChat re-delivers after 5 s
    assert first.content == again.content and "第 1 项" in (first.content or "")
    jincheng.restart()
    assert "第 2 项" in jincheng.say(ZEZHOU, "演练现场照片如上")
    assert "文字 1 条、图片 1 张" in jincheng.say(ZEZHOU, "完成")
    assert len(items(jincheng)) == 1 + 1 and len(media(jincheng)) == 1


def test_a_location_is_refused_inside_a_report_and_other_commands_still_open_their_dialogues(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.say(ZEZHOU, "周报")
    located = jincheng.bot.side.location(ZEZHOU, 35.49, 112.85, label="泽州县")
    assert located.content == TEXTS.render("report_kind_not_taken", kind="location")
    assert jincheng.say(ZEZHOU, "帮助") == TEXTS.render("report_help", featured=False)
    assert "统计表" in jincheng.say(ZEZHOU, "填报")
    assert jincheng.conversation(ZEZHOU).flow == "statistics"  # type: ignore[union-attr]
    assert items(jincheng) == []


def test_late_reports_are_marked_late(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.say(ZEZHOU, "周报")
    jincheng.say(ZEZHOU, "本周活动情况")
    jincheng.clock.advance(days=1, hours=9)  # 6-21 19:00, an hour after the week was due
    assert "迟报" in jincheng.say(ZEZHOU, "完成")
    [report] = weekly(jincheng, "泽州县商务局")
    assert (report.period, report.status, report.late) == ("2023-06-21", "submitted", True)
