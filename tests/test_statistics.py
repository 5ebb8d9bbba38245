"""The statistics walk (填报) through the real /wechat endpoint: every command, every answer form,
restarts, retries, two units at once, versions after submission and late changes."""

from __future__ import annotations

from datetime import datetime, timezone

from pathlib import Path

from bot.campaigns import Field, load_definition, load_into_db
from bot.texts import Texts
from handlers.dialogue import Blank
from tests.fixtures_forms import CAMPAIGN, Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()
ZEZHOU, GAOPING = "oLiaisonZezhou", "oLiaisonGaoping"


def numbers(jincheng: Campaign, unit: str) -> dict[str, tuple[int | None, bool]]:
    """The unit's stored statistics answers: field → (number, approximate), blanks as (None, False)."""
    return {k: (a.number, a.approximate) for k, a in jincheng.answers(unit, "statistics").items() if "." in k}


def test_a_liaison_walks_the_whole_table_with_every_answer_form_and_command(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局", name="王小明", mobile="13812345678")
    opened = jincheng.say(ZEZHOU, "填报")
    # The header (填报单位, 联系人, 电话, 填报日期) is known already; the walk starts at item 1.
    assert "7月1日 23:59" in opened and "（5/40）组织开展宣讲活动（ ）场" in opened
    assert "组织开展宣讲活动（ ）场，参与（ ）人次" in opened
    assert "参与（ ）人次" in jincheng.say(ZEZHOU, "3")
    assert "发表评论文章或心得体会" in jincheng.say(ZEZHOU, "３")
    jincheng.say(ZEZHOU, "三")                                               # 7 articles
    assert "（10/40）" in jincheng.say(ZEZHOU, "3场 120人次")                  # 8 and 9 in one line
    assert "（11/40）" in jincheng.say(ZEZHOU, "一百二十人次")                 # 10
    quiz_answers = _field("outreach.quiz_answers")
    assert jincheng.say(ZEZHOU, "-5") == TEXTS.render("invalid_negative", field=quiz_answers, given="-5")
    assert jincheng.say(ZEZHOU, "很多") == TEXTS.render("invalid_count", field=quiz_answers, given="很多")
    assert "（12/40）" in jincheng.say(ZEZHOU, "1,200")                        # 11
    assert "（13/40）" in jincheng.say(ZEZHOU, "约50")                         # 12 ≈ 50
    confirm = jincheng.say(ZEZHOU, "200000")                                    # 13: implausible
    assert "200000场" in confirm and "确认无误" in confirm
    assert "（14/40）" in jincheng.say(ZEZHOU, "是")
    assert "（15/40）" in jincheng.say(ZEZHOU, "跳过")                          # 14 left blank
    assert "现填：（空）" in jincheng.say(ZEZHOU, "上一题")
    assert "现填：200000场" in jincheng.say(ZEZHOU, "上一题")
    shown = jincheng.say(ZEZHOU, "查看")
    # Each number with its clause in a few characters, a clause a line: 修改 N needs no counting.
    assert "5 宣讲活动 3场 · 6 参与 3人次\n7 评论文章或心得体会 3篇\n8 安全生产大家谈 3场 · 9 参与 120人次" in shown
    assert "12 逃生演练训练营 约50个" in shown and "2) 联系人：王小明" in shown
    assert "13 安全承诺践诺 200000场 · 14 参与 空\n15 五带头 未填" in shown
    assert "\n2. 大力推动安全宣传“五进”活动\n" in shown    # the title's last phrase, not cut mid-word
    assert "（6/40）" in jincheng.say(ZEZHOU, "修改 6")
    assert "（15/40）" in jincheng.say(ZEZHOU, "80")                 # 6 corrected; on to the first open field
    assert jincheng.say(ZEZHOU, "修改 99").startswith(TEXTS.render("invalid_field_number", total=40))
    assert jincheng.say(ZEZHOU, "取消") == TEXTS.render("fill_cancelled", answered=14)

    resumed = jincheng.say(ZEZHOU, "填报")
    assert "已填 14/40 项" in resumed and "（15/40）" in resumed   # 14 was skipped, 15 is the first open one
    assert "（16/40）" in jincheng.say(ZEZHOU, "三场")                          # 15
    for _ in range(16, 38):
        jincheng.say(ZEZHOU, "1")
    assert "（39/40）" in jincheng.say(ZEZHOU, "安全知识进社区")     # 38 活动名称 is text
    review = jincheng.say(ZEZHOU, "2场/次 30人次")
    assert "回复“确认”提交" in review and "38 活动名称 安全知识进社区 · 39 组织 2场/次 · 40 参与 30人次" in review
    # 14 was skipped: a required field, so the table is not taken until it is filled (无 is 0).
    refused = jincheng.say(ZEZHOU, "确认")
    assert refused.startswith(TEXTS.render("required_blank", fields=[Blank(14, "参与", "0")]))
    assert "14) 参与（没有请填“0”）" in refused
    assert "（14/40）参与（ ）人次" in refused
    assert "回复“确认”提交" in jincheng.say(ZEZHOU, "无")
    assert "已提交" in jincheng.say(ZEZHOU, "确认")

    stored = numbers(jincheng, "泽州县商务局")
    assert stored["study.lectures"] == (3, False) and stored["study.lectures_people"] == (80, False)
    assert stored["study.articles"] == (3, False)
    assert (stored["study.talks"], stored["study.talks_people"]) == ((3, False), (120, False))
    assert stored["outreach.quiz_people"] == (120, False) and stored["outreach.quiz_answers"] == (1200, False)
    assert stored["outreach.camp_videos"] == (50, True)
    assert stored["leaders.pledges"] == (200000, False) and stored["leaders.pledges_people"] == (0, False)
    assert stored["leaders.five_lead_reports"] == (3, False)
    assert (stored["other.times"], stored["other.people"]) == ((2, False), (30, False))
    header = {k: a.value for k, a in jincheng.answers("泽州县商务局", "statistics").items() if "." not in k}
    assert header == {"unit": "泽州县商务局", "contact": "王小明", "phone": "0356-2056819", "date": "2023-06-20"}
    [submission] = [s for s in jincheng.submissions("泽州县商务局") if s.status == "submitted" and s.period == ""
                    and s.submitted_at == jincheng.clock.now and not s.late]
    assert submission.submitted_by == ZEZHOU


def _field(key: str) -> Field:
    return load_definition(CAMPAIGN).form("statistics").field(key)


def test_a_restart_mid_walk_resumes_at_the_right_field(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.say(ZEZHOU, "填报")
    jincheng.say(ZEZHOU, "3")
    jincheng.restart()
    assert "（7/40）" in jincheng.say(ZEZHOU, "120")
    assert numbers(jincheng, "泽州县商务局") == {"study.lectures": (3, False), "study.lectures_people": (120, False)}


def test_a_wechat_retry_mid_walk_does_not_advance_the_walk_twice(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.say(ZEZHOU, "填报")
    xml = jincheng.bot.side.message_xml(ZEZHOU, "text", msg_id=4242, Content="3")
    first, retry = jincheng.bot.side.deliver(xml), jincheng.bot.side.deliver(xml)
    assert first.content == retry.content and "（6/40）" in (first.content or "")
    assert "（7/40）" in jincheng.say(ZEZHOU, "120")
    assert numbers(jincheng, "泽州县商务局") == {"study.lectures": (3, False), "study.lectures_people": (120, False)}


def test_two_liaisons_of_different_units_interleaving_never_mix_answers(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.register(GAOPING, "高平市商务局", name="李华", mobile="13900001111")
    jincheng.say(ZEZHOU, "填报")
    jincheng.say(GAOPING, "填报")
    for mine, theirs in (("1", "10"), ("2", "20"), ("3", "30")):
        jincheng.say(ZEZHOU, mine)
        jincheng.say(GAOPING, theirs)
    assert numbers(jincheng, "泽州县商务局") == {
        "study.lectures": (1, False), "study.lectures_people": (2, False), "study.articles": (3, False)}
    assert numbers(jincheng, "高平市商务局") == {
        "study.lectures": (10, False), "study.lectures_people": (20, False), "study.articles": (30, False)}


def fill_and_submit(jincheng: Campaign, openid: str, first: str = "3") -> None:
    """Open the table, answer its first open field ``first`` and every other 1, and submit."""
    jincheng.say(openid, "填报")
    reply = jincheng.say(openid, first)
    while "回复“确认”提交" not in reply:
        reply = jincheng.say(openid, "1")
    assert "已提交" in jincheng.say(openid, "确认")


def test_submitting_with_a_required_field_blank_names_the_blank_fields(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.say(ZEZHOU, "填报")
    jincheng.say(ZEZHOU, "3")
    refused = jincheng.say(ZEZHOU, "提交")
    assert "还不能提交" in refused and "6) 参与" in refused and "…共 35 项" in refused
    assert "（6/40）参与（ ）人次" in refused
    assert sorted(s.status for s in jincheng.submissions("泽州县商务局") if s.period == "") == ["draft", "submitted"]


def test_changes_after_submission_are_versions_and_after_the_deadline_are_marked_late(jincheng: Campaign) -> None:
    jincheng.register(ZEZHOU, "泽州县商务局")
    fill_and_submit(jincheng, ZEZHOU)

    reopened = jincheng.say(ZEZHOU, "填报")
    assert "本表已提交" in reopened
    jincheng.say(ZEZHOU, "修改 5")
    jincheng.say(ZEZHOU, "4")
    jincheng.clock.now = datetime(2023, 7, 3, 2, 0, tzinfo=timezone.utc)  # after 7-1 23:59
    jincheng.say(ZEZHOU, "修改 5")
    jincheng.say(ZEZHOU, "5")
    assert "回复“确认”提交" in jincheng.say(ZEZHOU, "提交")
    assert "重新提交" in jincheng.say(ZEZHOU, "确认")

    versions = [(r.old_value, r.new_value, r.changed_by, r.late) for r in jincheng.revisions()
                if r.old_value in ("3", "4")]
    assert versions == [("3", "4", ZEZHOU, False), ("4", "5", ZEZHOU, True)]
    [submission] = [s for s in jincheng.submissions("泽州县商务局") if s.submitted_at == jincheng.clock.now]
    assert submission.late


def test_filling_needs_a_registration_first(jincheng: Campaign) -> None:
    assert jincheng.say("oStranger", "填报") == TEXTS.render("fill_needs_registration")
    assert jincheng.click("oStranger", "FILL") == TEXTS.render("fill_needs_registration")


def with_answers_rules(jincheng: Campaign, tmp_path: Path, rules: str) -> None:
    """Load 晋城 again with an [answers] section, as an office would write it into the file."""
    edited = tmp_path / "jincheng-commerce-2023.toml"
    edited.write_text(CAMPAIGN.read_text(encoding="utf-8") + f"\n[answers]\n{rules}\n", encoding="utf-8")
    load_into_db(jincheng.engine, load_definition(edited))


def test_a_campaign_that_locks_late_changes_shows_the_submitted_table_after_the_deadline(
        jincheng: Campaign, tmp_path: Path) -> None:
    with_answers_rules(jincheng, tmp_path, 'late = "lock"')
    jincheng.register(ZEZHOU, "泽州县商务局")
    fill_and_submit(jincheng, ZEZHOU)
    jincheng.say(ZEZHOU, "填报")
    assert "（5/40）" in jincheng.say(ZEZHOU, "修改 5")  # before the deadline changes are still taken
    jincheng.clock.now = datetime(2023, 7, 3, 2, 0, tzinfo=timezone.utc)  # after 7-1 23:59
    locked = jincheng.say(ZEZHOU, "4")
    assert locked.startswith("《晋城市“安全生产月”活动进展情况统计表》已提交，报送时间已过") and "5 宣讲活动 3场" in locked
    assert "不再接受修改" in jincheng.say(ZEZHOU, "填报")
    assert numbers(jincheng, "泽州县商务局")["study.lectures"] == (3, False)
    assert not [r for r in jincheng.revisions() if r.late]


def test_a_campaign_sets_its_own_implausible_number(jincheng: Campaign, tmp_path: Path) -> None:
    with_answers_rules(jincheng, tmp_path, "implausible_above = 500")
    jincheng.register(ZEZHOU, "泽州县商务局")
    jincheng.say(ZEZHOU, "填报")
    assert "（6/40）" in jincheng.say(ZEZHOU, "500")
    confirm = jincheng.say(ZEZHOU, "600")
    assert "600人次" in confirm and "确认无误" in confirm
    assert "（7/40）" in jincheng.say(ZEZHOU, "是")
