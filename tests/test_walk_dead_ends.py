"""Walks without dead ends, through the real /wechat endpoint: registration's 取消 keeps a draft
that 登记 takes up again, the blanks 提交 lists are asked one after another, a text at the review
is never dropped without a word, and questions and summaries print each clause once."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.campaigns import load_definition
from bot.campaigns.format import Field, FieldType, StatItem
from bot.texts import Texts
from handlers.changes import Value
from handlers.dialogue import Walk, none_word, question, react, short_label, short_title, summary
from tests.fixtures_forms import Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()
ME = "oLiaisonZezhou"
CAMPAIGNS = sorted((Path(__file__).parent.parent / "campaigns").glob("*.toml"))
# WeChat refuses or cuts a text message over this many bytes.
WECHAT_TEXT_LIMIT = 2048


def test_a_cancelled_registration_keeps_its_draft_and_the_next_registration_goes_on_from_it(
        jincheng: Campaign) -> None:
    jincheng.say(ME, "登记")
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    jincheng.say(ME, "王小明")
    jincheng.say(ME, "0356-2056819")
    cancelled = jincheng.say(ME, "取消")
    assert cancelled == TEXTS.render("register_cancelled", kept=2, unit="泽州县商务局")
    assert "已保存为草稿" in cancelled
    person = jincheng.bot.person(ME)
    assert person is None or person.unit_id is None          # nothing reaches the unit before 确认
    assert jincheng.answers("泽州县商务局", "liaison") == {}

    resumed = jincheng.say(ME, "登记")
    assert resumed.startswith(TEXTS.render("register_resumed", unit="泽州县商务局", restart="重新登记"))
    assert "（3/7）手机号码" in resumed                           # not the join code, not 姓名 again
    for text in ("13812345678", "跳过", "跳过", "wang@163.com", "泽州路1号"):
        review = jincheng.say(ME, text)
    assert "王小明" in review and "回复“确认”" in review
    assert jincheng.say(ME, "取消") == TEXTS.render("register_cancelled", kept=7, unit="泽州县商务局")

    again = jincheng.say(ME, "登记")                          # every field answered: straight to the review
    assert "王小明" in again and "13812345678" in again and "回复“确认”" in again
    assert "同意接收报送截止提醒" in jincheng.say(ME, "确认")
    assert "登记完成" in jincheng.say(ME, "是")
    answers = jincheng.answers("泽州县商务局", "liaison")
    assert {k: a.value for k, a in answers.items()} == {
        "unit": "泽州县商务局", "name": "王小明", "office_phone": "0356-2056819", "mobile": "13812345678",
        "fax": None, "wechat_id": None, "email": "wang@163.com", "address": "泽州路1号"}


def test_registering_again_from_the_join_code_leaves_the_draft_aside(jincheng: Campaign) -> None:
    jincheng.say(ME, "登记")
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    jincheng.say(ME, "王小明")
    jincheng.say(ME, "取消")
    assert jincheng.say(ME, "重新登记") == TEXTS.render("register_ask_code", open=False, units=[])
    started = jincheng.say(ME, jincheng.codes["高平市商务局"])
    assert "高平市商务局" in started and "（1/7）姓名" in started
    assert jincheng.say(ME, "取消") == TEXTS.render("register_cancelled", kept=0)


def test_typing_登记_in_the_middle_of_registration_goes_on_where_it_was(jincheng: Campaign) -> None:
    jincheng.say(ME, "登记")
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    jincheng.say(ME, "王小明")
    assert "（2/7）办公电话" in jincheng.say(ME, "登记")


def test_a_draft_for_a_unit_someone_registered_for_meanwhile_becomes_a_request(jincheng: Campaign) -> None:
    jincheng.say(ME, "登记")
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    jincheng.say(ME, "李华")
    jincheng.say(ME, "取消")
    jincheng.register("oFaster", "泽州县商务局", name="王小明")
    assert jincheng.say(ME, "登记") == TEXTS.render("unit_taken", unit="泽州县商务局", holder="王小明")
    assert "（2/7）办公电话" in jincheng.say(ME, "申请")         # the draft's name is still there


def test_the_blanks_submission_lists_are_asked_in_turn_then_the_review(jincheng: Campaign) -> None:
    jincheng.say(ME, "登记")
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    for text in ("王小明", "2056819", "跳过", "跳过", "跳过", "跳过"):
        jincheng.say(ME, text)
    review = jincheng.say(ME, "跳过")
    assert "回复“确认”" in review
    refused = jincheng.say(ME, "确认")
    assert "3) 手机号码\n6) 电子邮箱\n7) 通信地址\n" in refused
    assert "没有请填" not in refused                             # 无 is no mobile, e-mail or address
    assert "（3/7）手机号码" in refused
    assert "（6/7）电子邮箱" in jincheng.say(ME, "13812345678")
    assert "（7/7）通信地址" in jincheng.say(ME, "wang@163.com")
    assert "回复“确认”" in jincheng.say(ME, "泽州路1号")
    assert "同意接收报送截止提醒" in jincheng.say(ME, "确认")
    assert "登记完成" in jincheng.say(ME, "是")
    answers = jincheng.answers("泽州县商务局", "liaison")
    assert (answers["mobile"].value, answers["email"].value, answers["address"].value) == (
        "13812345678", "wang@163.com", "泽州路1号")


def test_a_blank_skipped_again_goes_on_to_the_next_listed_one(jincheng: Campaign) -> None:
    jincheng.say(ME, "登记")
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    for text in ("王小明", "2056819", "跳过", "跳过", "跳过", "跳过", "跳过"):
        jincheng.say(ME, text)
    jincheng.say(ME, "提交")
    assert "（6/7）电子邮箱" in jincheng.say(ME, "跳过")
    assert "（7/7）通信地址" in jincheng.say(ME, "wang@163.com")
    refused = jincheng.say(ME, "泽州路1号")
    assert "回复“确认”" in refused
    assert "3) 手机号码\n先填第 3 项" in jincheng.say(ME, "确认")


def _liaison_table_filled_to_its_review(jincheng: Campaign) -> None:
    """登记 with 泽州县商务局's code, every field answered or skipped: the walk waits at its review."""
    jincheng.say(ME, "登记")
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    for text in ("王小明", "2056819", "13812345678", "跳过", "跳过", "wang@163.com", "泽州路1号"):
        jincheng.say(ME, text)


def test_a_text_typed_at_the_review_is_said_not_to_be_stored(jincheng: Campaign) -> None:
    _liaison_table_filled_to_its_review(jincheng)
    waiting = jincheng.say(ME, "li@163.com")
    assert waiting.startswith(TEXTS.render("review_waiting", given="li@163.com"))
    assert "“li@163.com”没有记下" in waiting and "修改 N" in waiting
    jincheng.say(ME, "确认")
    jincheng.say(ME, "是")
    assert jincheng.answers("泽州县商务局", "liaison")["email"].value == "wang@163.com"


def test_show_at_a_review_prints_the_table_once(jincheng: Campaign) -> None:
    _liaison_table_filled_to_its_review(jincheng)
    shown = jincheng.say(ME, "查看")
    assert shown.count("【晋城市“安全生产月”活动联络员表】") == 1 and shown.count("13812345678") == 1
    assert "回复“确认”" in shown


def test_the_statistics_summary_names_each_number_and_show_at_its_review_prints_it_once(
        jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    jincheng.say(ME, "填报")
    reply = jincheng.say(ME, "3场 120人次")
    while "回复“确认”提交" not in reply:
        reply = jincheng.say(ME, "1")
    shown = jincheng.say(ME, "查看")
    assert shown.count("【晋城市“安全生产月”活动进展情况统计表】") == 1
    assert "\n5 宣讲活动 3场 · 6 参与 120人次\n" in shown
    assert "\n6. 组织开展“安全宣传咨询日”活动\n" in shown
    assert "34 安全宣传咨询日 1场 · 35 参与 1人次 · 36 网络直播 1场 · 37 观看 1人\n" in shown
    assert len(shown.encode()) <= WECHAT_TEXT_LIMIT


def test_field_37_is_asked_with_its_clause_once(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    jincheng.say(ME, "填报")
    asked = jincheng.say(ME, "修改 37")
    assert "（37/40）网络直播（ ）人观看\n" in asked and "人观看（ ）" not in asked
    assert "（38/40）" in jincheng.say(ME, "500")
    assert jincheng.answers("泽州县商务局", "statistics")["consultation_day.livestream_viewers"].number == 500


def _walks() -> list[tuple[str, Walk]]:
    return [(f"{path.stem}:{form.key}", Walk.of(form, {})) for path in CAMPAIGNS
            for form in load_definition(path).forms]


CTX = SimpleNamespace(texts=TEXTS)
TODAY = date(2023, 6, 20)


@pytest.mark.parametrize(("name", "walk"), _walks(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_question_of_any_campaign_prints_a_clause_twice(name: str, walk: Walk) -> None:
    for f in walk.fields:
        lines = [line for line in question(walk, f.answer_key, CTX).splitlines() if line]  # type: ignore[arg-type]
        asked = next(line for line in lines if line.startswith(f"（{walk.number(f.answer_key)}/"))
        assert asked.count("（ ）") <= 1, (name, asked)          # one blank asked, printed once
        blank = asked.split("）", 1)[1].removesuffix("（可不填）")
        assert all(line != blank for line in lines), (name, lines)  # a one-blank clause is not repeated
        assert len(lines) == len(set(lines)), (name, lines)


@pytest.mark.parametrize(("name", "walk"), _walks(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_campaign_summary_fully_answered_fits_one_message_with_whole_titles(name: str, walk: Walk) -> None:
    answers = {f.answer_key: Value(f.answer_key, "999999" if f.type.value == "count" else "某某单位安全生产科",
                                   999999 if f.type.value == "count" else None) for f in walk.fields}
    shown = summary(Walk(walk.form, walk.fields, answers), CTX)  # type: ignore[arg-type]
    review = TEXTS.render("fill_review", table=shown, submitted=True)
    assert len(review.encode()) <= WECHAT_TEXT_LIMIT, (name, len(review.encode()))
    for item in walk.form.items:
        title = short_title(item)
        assert f"{title}\n" in shown and (title == item.title or f"，{title}" in item.title), (name, title)


@pytest.mark.parametrize(("name", "walk"), _walks(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_nothing_word_hint_offers_only_what_the_walk_takes_as_nothing(name: str, walk: Walk) -> None:
    for f in walk.fields:
        word = none_word(walk, f, CTX, TODAY, 10_000)  # type: ignore[arg-type]
        if word is not None:
            move = react(walk, f.answer_key, word, (), CTX, TODAY, 10_000)  # type: ignore[arg-type]
            assert move.retry is None and move.values[0].text in (None, "0", "否"), (name, f.answer_key)
        if f.type.value in ("mobile", "email", "person_name", "office_phone", "address"):
            assert word is None, (name, f.answer_key)
        if f.type.value in ("mobile", "email") and f.required:
            assert react(walk, f.answer_key, "无", (), CTX, TODAY, 10_000).retry is not None  # type: ignore[arg-type]
        if f.type.value == "count":
            assert word == "0", (name, f.answer_key)


def test_show_at_the_activity_records_review_prints_the_table_once(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    reply = jincheng.say(ME, "典型案例")
    while "回复“确认”提交" not in reply:
        reply = jincheng.say(ME, "跳过")
    shown = jincheng.say(ME, "查看")
    assert shown.count("1) 填报单位（盖章）：泽州县商务局") == 1 and "回复“确认”提交" in shown


@pytest.mark.parametrize(("label", "unit", "suffix", "short"), [
    ("组织开展宣讲活动", "场", "", "宣讲活动"),
    ("参与", "人次", "", "参与"),
    ("发表评论文章或心得体会", "篇", "", "评论文章或心得体会"),
    ("组织开展“安全生产大家谈”“班前会”“以案说法”等活动", "场", "", "安全生产大家谈"),
    ("参与“人人讲安全，个个会应急”网络知识竞赛", "人", "", "网络知识竞赛"),
    ("安全生产刑衔接(含危险作业罪)等各类典型案例", "个", "", "安全生产刑衔接…"),
    ("农村村庄、城市社区、学校、家庭开展科普知识宣传和情景模拟、实战推演、逃生演练、自救互救等活动", "场", "",
     "农村村庄、城市社区…"),
    ("", "人", "观看", "观看"),
    # tried after the fixes: labels of the other campaigns
    ("对外包外租项目开展大排查", "次", "", "对外包外租项目开展大排查"), ("组织观看典型事故警示教育片", "场", "", "观看典型事故警示教育片"),
    ("本辖区主流媒体曝光典型案例", "个", "", "本辖区主流媒体曝光典…"), ("曝光重大事故隐患和突出问题", "个", "", "曝光重大事故隐患…"),
    ("在区县政府常务会和安全生产工作例会通报", "次", "", "在区县政府常务会…"), ("开展灾害避险逃生、自救互救演练", "场", "", "灾害避险逃生…"),
    ("企业员工举报重大隐患和违法违规行为", "条", "", "企业员工举报重大隐患…"), ("开展“外包外租大排查”活动", "次", "", "外包外租大排查"),
])
def test_a_summary_names_a_field_in_a_few_characters(label: str, unit: str, suffix: str, short: str) -> None:
    assert short_label(Field("f", "i.f", FieldType.COUNT, label, unit, suffix)) == short


@pytest.mark.parametrize(("title", "shown"), [
    ("其他特色活动", "其他特色活动"),
    ("开展习近平总书记关于安全生产重要论述宣贯活动", "开展习近平总书记关于安全生产重要论述宣贯活动"),
    ("充分发挥地域特色，组织开展“安全宣传咨询日”活动", "组织开展“安全宣传咨询日”活动"),
    ("着眼于“人人讲安全、个个会应急”，大力推动安全宣传“五进”活动", "大力推动安全宣传“五进”活动"),
    ("提高认识，“人人讲安全，个个会应急”", "“人人讲安全，个个会应急”"),
])
def test_a_summary_shows_an_item_title_whole_or_by_its_last_phrase(title: str, shown: str) -> None:
    assert short_title(StatItem("i", 1, title, "", ())) == shown


# Other examples of each kind, tried as a new liaison would after the fixes.

def test_registration_cancelled_at_any_step_says_what_it_kept_and_登记_goes_on_from_there(jincheng: Campaign) -> None:
    steps = ["王小明", "0356-2056819", "13812345678", "跳过", "跳过", "wang@163.com", "泽州路1号"]
    asked = ["（1/7）姓名", "（2/7）办公电话", "（3/7）手机号码", "（4/7）传真", "（5/7）微信号", "（6/7）电子邮箱",
             "（7/7）通信地址", "回复“确认”"]
    for kept in range(len(steps) + 1):
        jincheng.say(ME, "重新登记")
        jincheng.say(ME, jincheng.codes["泽州县商务局"])
        for text in steps[:kept]:
            jincheng.say(ME, text)
        cancelled = jincheng.say(ME, "取消")
        if kept:
            assert cancelled == TEXTS.render("register_cancelled", kept=kept, unit="泽州县商务局"), kept
            assert asked[kept] in jincheng.say(ME, "登记")
            jincheng.say(ME, "取消")
        else:
            assert "没有保存" in cancelled
    jincheng.say(ME, "登记")
    assert "同意接收报送截止提醒" in jincheng.say(ME, "确认")
    assert jincheng.say(ME, "取消") == TEXTS.render("register_cancelled", kept=7, unit="泽州县商务局")
    assert jincheng.answers("泽州县商务局", "liaison") == {}
    jincheng.say(ME, "登记")
    jincheng.say(ME, "确认")
    assert "登记完成" in jincheng.say(ME, "是")


def test_修改资料_cancelled_at_any_step_keeps_the_registered_details(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    for steps in ((), ("修改 1",), ("修改 1", "李四"), ("修改 3", "13900000000", "修改 6")):
        jincheng.say(ME, "修改资料")
        for text in steps:
            jincheng.say(ME, text)
        assert jincheng.say(ME, "取消") == TEXTS.render("details_cancelled")
    answers = jincheng.answers("泽州县商务局", "liaison")
    assert (answers["name"].value, answers["mobile"].value) == ("王小明", "13812345678")


def test_a_field_changed_between_the_listed_blanks_goes_on_to_the_next_listed_blank(jincheng: Campaign) -> None:
    jincheng.say(ME, "登记")
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    for text in ("跳过", "2056819", "跳过", "跳过", "跳过", "跳过", "跳过"):
        jincheng.say(ME, text)
    listed = jincheng.say(ME, "提交")
    assert "1) 姓名\n3) 手机号码\n6) 电子邮箱\n7) 通信地址\n" in listed and "（1/7）姓名" in listed
    assert "（3/7）手机号码" in jincheng.say(ME, "王小明")
    assert "（2/7）办公电话" in jincheng.say(ME, "返回")
    assert "（3/7）手机号码" in jincheng.say(ME, "0356-2056819")          # back to the blanks, not the review
    jincheng.say(ME, "修改 6")
    assert "（7/7）通信地址" in jincheng.say(ME, "wang@163.com")
    assert "回复“确认”" in jincheng.say(ME, "跳过")                       # nothing listed after 7: the review
    refused = jincheng.say(ME, "确认")
    assert "3) 手机号码\n7) 通信地址\n" in refused
    jincheng.say(ME, "修改 1")
    assert "（3/7）手机号码" in jincheng.say(ME, "王大明")
    assert "（7/7）通信地址" in jincheng.say(ME, "13812345678")
    assert "回复“确认”" in jincheng.say(ME, "泽州路1号")


def test_a_statistics_blank_gone_back_to_goes_on_to_the_next_unanswered_one(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    jincheng.say(ME, "填报")
    assert "先填第 5 项" in jincheng.say(ME, "提交")
    assert "（6/40）" in jincheng.say(ME, "3")
    assert "（7/40）" in jincheng.say(ME, "跳过")
    assert "（6/40）" in jincheng.say(ME, "上一题")
    assert "（7/40）" in jincheng.say(ME, "120")
    jincheng.say(ME, "修改 9")
    assert "（10/40）" in jincheng.say(ME, "5")
