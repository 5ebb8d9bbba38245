"""Words as people type them: commands and codes read the same with any end punctuation, quotes,
full-width or invisible spaces and separators; WeChat's placeholders for stickers and blank texts
are answered and never stored. Readers table-driven, then scenarios through /wechat."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import select

from bot.store.engine import session
from bot.store.models import Answer, ReportItem
from bot.texts import Texts
from handlers.answers import code_of, normalise
from handlers.base import Incoming, asked_for
from handlers.dialogue import Command, command_of
from handlers.unreadable import is_blank, is_placeholder
from tests.fixtures_forms import Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()
ME = "oLiaisonZezhou"
STICKER = "【收到不支持的消息类型，暂无法显示】"
NOW = datetime(2023, 6, 20)


@pytest.mark.parametrize(("typed", "command"), [
    ("帮助", "help"), ("帮助。", "help"), ("帮助？", "help"), ("帮助?", "help"), ("帮助!", "help"), ("帮助~", "help"),
    ("帮助…", "help"), ("帮助，", "help"), ("帮助,", "help"), ("帮助.", "help"), ("帮助～～", "help"),
    ("　帮助　", "help"), ("\u200b帮助\u200b", "help"), ("“帮助”", "help"), ("「帮助」", "help"), ("菜单", "help"),
    ("HELP", "help"), ("?", "help"), ("？", "help"), ("取消！！", "cancel"), ("退出。", "cancel"),
    ("提交；", "submit"), ("确认：", "confirm"), ("查看\u3000", "show"), ("跳过～", "skip"), ("返回…", "back"),
    # tried after the fixes: a command copied with the brackets a notice prints it in, marks repeated
    ("【帮助】", "help"), ("[帮助]", "help"), ("(帮助)", "help"), ("（帮助）", "help"), ("<帮助>", "help"),
    ("《帮助》", "help"), ("【取消】。", "cancel"), ("“【提交】”", "submit"), ("帮助!!!", "help"), ("帮助。。", "help"),
    ("\u200e跳过\u200f", "skip"), ("帮助？？", "help"),
])
def test_a_walk_command_reads_the_same_with_any_end_punctuation_spaces_and_quotes(typed: str, command: str) -> None:
    assert command_of(typed) == Command(command)


@pytest.mark.parametrize(("typed", "number"), [("修改 3", 3), ("修改3。", 3), ("改第３项！", 3), ("修改　12？", 12)])
def test_edit_n_reads_the_same_with_end_punctuation_and_full_width(typed: str, number: int) -> None:
    assert command_of(typed) == Command("edit", number)


@pytest.mark.parametrize("typed", ["帮助我", "三场", "12.5", "3~5", "-5", "约 50", "取 消x", "(0356)2056819", "【帮助",
                                   "[]", "()", ".5", "。5"])
def test_inner_marks_are_kept_so_answers_are_not_commands_and_keep_their_meaning(typed: str) -> None:
    assert command_of(typed) is None
    assert normalise(typed) == typed


@pytest.mark.parametrize("typed", ["登记。", "登记！", " 注册？", "“联络员登记”", "登记~", "登记\u3000", "登记！！",
                                   "【登记】", "[注册]"])
def test_an_opening_word_is_read_as_a_walk_command_is(typed: str) -> None:
    assert asked_for(Incoming("o", "text", NOW, text=typed), {"登记", "注册", "联络员登记"}, "REGISTER")


@pytest.mark.parametrize("typed", [
    "QTJHXSFE", "qtjhxsfe", "QTJH-XSFE", "qtjh-xsfe", "QTJH XSFE", "QTJH　XSFE", "ＱＴＪＨ－ＸＳＦＥ", "QTJH—XSFE",
    "QTJH–XSFE", "QTJH_XSFE", "QT JH-XS FE", "QTJH.XSFE", "QTJH·XSFE", "qtjhxsfe。", "“QTJHXSFE”", " QTJH-XSFE！",
    "\u200bQTJHXSFE",
    # tried after the fixes
    "qtjh_xsfe", "ＱＴＪＨ_ＸＳＦＥ", "qtjh\txsfe", "【QTJHXSFE】", "[qtjh-xsfe]", "QTJH　XSFE。", "q t j h x s f e",
    "\u200eQTJH-XSFE",
])
def test_a_code_reads_the_same_with_case_spaces_dashes_and_punctuation(typed: str) -> None:
    assert code_of(typed) == "QTJHXSFE"


@pytest.mark.parametrize("typed", [
    "【收到不支持的消息类型，暂无法显示】", "[收到不支持的消息类型,暂时无法显示]", "[收到不支持的消息类型，暂无法显示]",
    "收到不支持的消息类型，暂无法显示", "[Unsupported Message]", "[unsupported message]",
    "暂不支持此消息类型，请在企业微信中查看", "当前微信版本不支持展示该内容，请升级至最新版本",
    "[动画表情]", "[表情]", "[GIF表情]", "【动画表情】", "[微笑]", "[强][强]", "[OK]", "/::D", "/::)/::P", "👍", "😊😊",
    "👍🏻", " [微笑] ",
    # tried after the fixes: what a chat list shows for other content, newer emoticons, an English phone
    "[图片]", "[语音]", "[Sticker]", "[动画表情]", "[视频]", "[Animated Sticker]", "[Voice Call]", "[666]",
    "[捂脸][捂脸]", "[Photo]", "😂😂😂",
])
def test_wechats_placeholders_and_emoticons_alone_are_recognised(typed: str) -> None:
    assert is_placeholder(typed) and not is_blank(typed)


@pytest.mark.parametrize("typed", [
    "三场", "是", "✓", "√", "×", "好的👍", "照片暂无法显示，稍后补发", "开展了表情包设计比赛", "[1]", "帮助", "?",
    "12.5", "https://example.org/drill", "这是我们的[图片]", "开展了[微笑]宣讲3场", "[3]", "[2023]",
])
def test_a_text_with_something_typed_is_no_placeholder(typed: str) -> None:
    assert not is_placeholder(typed) and not is_blank(typed)


@pytest.mark.parametrize("typed", ["", " ", "　　", "\n\t", "\u200b", "\u200b\u200c\u200d\ufeff", "\u3164", "\u2800",
                                   " \u3000\u200b\n",
                                   # tried after the fixes: direction marks and other format characters
                                   "\t", "\n\n", "\u200e", "\u200f", "\u2061\u200b", "\u180e", "\u00a0\u2003",
                                   "\u202f", "\u2028", "\u3000\u200d"])
def test_spaces_line_breaks_and_invisible_characters_alone_are_blank(typed: str) -> None:
    assert is_blank(typed)


def report_items(jincheng: Campaign) -> list[ReportItem]:
    with session(jincheng.engine) as db:
        return list(db.exec(select(ReportItem)))


def stored_answers(jincheng: Campaign) -> list[Answer]:
    with session(jincheng.engine) as db:
        return list(db.exec(select(Answer)))


def test_during_registration_help_with_punctuation_is_help_and_a_code_with_a_dash_is_found(jincheng: Campaign) -> None:
    code = jincheng.codes["泽州县商务局"]
    jincheng.say(ME, "登记")
    for typed in ("帮助。", "帮助？", "“帮助”", "【帮助】", "帮助！！", "[帮助]", "（帮助）"):
        assert jincheng.say(ME, typed) == TEXTS.render("register_help", step="code", choices=0), typed
    assert "没有找到加入码" in jincheng.say(ME, "ABCD-EFGH")
    started = jincheng.say(ME, f"{code[:4].lower()}-{code[4:].lower()}。")
    assert "泽州县商务局" in started and "（1/7）姓名" in started


@pytest.mark.parametrize("typed", ["{a}-{b}", "{a} {b}", "{a}　{b}", "{a}—{b}！", "“{a}{b}”", "{a}_{b}", "【{a}{b}】",
                                   "{a}\t{b}", "{a}－{b}。", "\u200e{a} - {b}"])
def test_a_join_code_typed_with_a_separator_or_quotes_registers(jincheng: Campaign, typed: str) -> None:
    code = jincheng.codes["泽州县商务局"]
    jincheng.say(ME, "登记")
    assert "（1/7）姓名" in jincheng.say(ME, typed.format(a=code[:4], b=code[4:].lower()))


def test_help_at_registrations_last_step_says_what_it_waits_for(jincheng: Campaign) -> None:
    jincheng.say(ME, "登记")
    jincheng.say(ME, jincheng.codes["泽州县商务局"])
    for text in ("王小明", "2056819", "13812345678", "跳过", "跳过", "wang@163.com", "泽州路1号", "确认"):
        jincheng.say(ME, text)
    assert jincheng.say(ME, "帮助！") == TEXTS.render("register_help", step="opt_in", choices=0)
    assert "登记完成" in jincheng.say(ME, "是。")


def test_a_sticker_in_the_weeks_report_is_not_stored_and_the_liaison_is_told_what_to_send(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    jincheng.say(ME, "周报")
    for typed in (STICKER, "[动画表情]", "[微笑]", "[图片]", "[Animated Sticker]", "[Voice Call]", "[666]", "[Sticker]"):
        reply = jincheng.say(ME, typed)
        assert reply == TEXTS.render("unreadable_text", blank=False, report="周报", collecting=True, dialogue=True)
        assert "读不到表情" in reply and "文字、图片、语音、视频或链接" in reply
    assert report_items(jincheng) == []
    assert "第 1 项" in jincheng.say(ME, "6月16日开展安全宣传咨询日活动。")
    assert [i.text for i in report_items(jincheng)] == ["6月16日开展安全宣传咨询日活动。"]


def test_a_blank_text_in_the_weeks_report_or_a_要情_is_not_stored(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    jincheng.say(ME, "周报")
    for typed in (" ", "　　", "\u200b", "\n", "\t", "\u200e", "\u2061\u200b", "\u00a0\n\u3000"):
        reply = jincheng.say(ME, typed)
        assert reply == TEXTS.render("unreadable_text", blank=True, report="周报", collecting=True, dialogue=True)
        assert "空白" in reply
    jincheng.say(ME, "取消")
    jincheng.say(ME, "要情")
    assert "要情请发送" in jincheng.say(ME, "\u3000")
    assert report_items(jincheng) == []
    assert jincheng.say(ME, "完成") == TEXTS.render("report_empty", featured=True)


def test_a_sticker_or_blank_in_a_walk_is_no_answer_and_the_question_stays(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    jincheng.say(ME, "填报")
    asked = jincheng.conversation(ME)
    before = len(stored_answers(jincheng))
    for typed in (STICKER, "👍", "[强]", "　", "\u200b", "[语音]", "\u200f", "\t\n", "[捂脸][捂脸]"):
        reply = jincheng.say(ME, typed)
        assert "没有保存" in reply and "请按上面的提示接着回复" in reply
        assert jincheng.conversation(ME) == asked
    assert len(stored_answers(jincheng)) == before


def test_a_sticker_at_the_join_code_is_not_taken_for_a_code(jincheng: Campaign) -> None:
    jincheng.say(ME, "登记")
    reply = jincheng.say(ME, STICKER)
    assert "没有找到加入码" not in reply and "读不到表情" in reply
    assert "（1/7）姓名" in jincheng.say(ME, jincheng.codes["泽州县商务局"])


def test_a_sticker_or_blank_outside_a_dialogue_is_answered_as_such(jincheng: Campaign) -> None:
    assert jincheng.say(ME, STICKER) == TEXTS.render("unreadable_text", blank=False, report="周报", collecting=False,
                                                     dialogue=False)
    assert "空白" in jincheng.say(ME, "\u3000")


def test_help_after_登记_as_a_registered_liaison_is_the_usual_help_and_leaves_the_code_step(jincheng: Campaign) -> None:
    jincheng.register(ME, "泽州县商务局")
    usual = jincheng.say(ME, "帮助")
    jincheng.say(ME, "登记")
    assert jincheng.say(ME, "帮助。") == usual
    conversation = jincheng.conversation(ME)
    assert conversation is None or conversation.flow == ""
