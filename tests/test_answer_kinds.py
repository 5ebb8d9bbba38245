"""Counts as liaisons really type them, through the real /wechat endpoint: what is stored and what
the liaison is told (issue 18, "Numbers": ranges, 1万, spaces, decimals, lines with more numbers
than the clause, measure words of another blank, numbers too large to store)."""

from __future__ import annotations

from bot.campaigns import Field, load_definition
from bot.texts import Texts
from handlers.answers import MAX_COUNT
from tests.fixtures_forms import CAMPAIGN, Campaign, jincheng  # noqa: F401  (fixture)

TEXTS = Texts()
ZEZHOU = "oLiaisonZezhou"
UNIT = "泽州县商务局"
# The statistics walk of 晋城 2023, as 修改 N numbers it: the header is 1-4, item 1 is 5-9
# (宣讲活动（ ）场，参与（ ）人次；文章（ ）篇；大家谈（ ）场，参与（ ）人次), item 2 is 10-12, and item 6
# (咨询日现场活动（ ）场、参与（ ）人次，网络直播（ ）场、网络直播（ ）人观看) is 34-37.


def numbers(jincheng: Campaign) -> dict[str, tuple[int | None, bool]]:
    """The unit's stored statistics counts: field → (number, approximate)."""
    return {k: (a.number, a.approximate) for k, a in jincheng.answers(UNIT, "statistics").items() if "." in k}


def field(key: str) -> Field:
    return load_definition(CAMPAIGN).form("statistics").field(key)


def at_lectures(jincheng: Campaign) -> None:
    """The liaison registered and opened the table: the walk asks field 5 (宣讲活动（ ）场)."""
    jincheng.register(ZEZHOU, UNIT)
    assert "（5/40）" in jincheng.say(ZEZHOU, "填报")


def test_a_range_is_asked_about_and_its_lower_end_kept_only_as_an_estimate(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    asked = jincheng.say(ZEZHOU, "两三场")
    assert asked == TEXTS.render("confirm_range", ranges=[{"given": "两三场", "low": 2, "high": 3, "unit": "场"}],
                                 answers=["约2场"], limit=100_000)
    assert "2到3场" in asked and "约2场" in asked and numbers(jincheng) == {}
    assert "（6/40）" in jincheng.say(ZEZHOU, "3")                       # the exact number, stored as given
    assert "100到150人次" in jincheng.say(ZEZHOU, "100～150人次")
    assert "（7/40）" in jincheng.say(ZEZHOU, "确认")                    # keeps 约100
    assert "3到5篇" in jincheng.say(ZEZHOU, "三到五")
    assert "（8/40）" in jincheng.say(ZEZHOU, "1")                       # "1" is a number here, not a tick
    assert "（9/40）" in jincheng.say(ZEZHOU, "一二〇")                  # digit by digit: 120, no question
    assert numbers(jincheng) == {"study.lectures": (3, False), "study.lectures_people": (100, True),
                                 "study.articles": (1, False), "study.talks": (120, False)}


def test_a_range_in_a_line_holds_the_whole_line_until_the_liaison_decides(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    asked = jincheng.say(ZEZHOU, "一两场 五六十人次")
    assert "1到2场" in asked and "50到60人次" in asked and "约1场，约50人次" in asked
    assert jincheng.say(ZEZHOU, "否") .startswith(TEXTS.render("number_not_confirmed"))
    assert numbers(jincheng) == {}
    jincheng.say(ZEZHOU, "一两场 五六十人次")
    assert "（7/40）" in jincheng.say(ZEZHOU, "是")
    assert numbers(jincheng) == {"study.lectures": (1, True), "study.lectures_people": (50, True)}


def test_arabic_digits_with_wan_and_qian_are_numbers(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    jincheng.say(ZEZHOU, "修改 10")
    assert "（11/40）" in jincheng.say(ZEZHOU, "2千5")
    assert "（12/40）" in jincheng.say(ZEZHOU, "1万人次")
    assert "（13/40）" in jincheng.say(ZEZHOU, "约1.5千个")
    assert numbers(jincheng) == {"outreach.quiz_people": (2500, False), "outreach.quiz_answers": (10000, False),
                                 "outreach.camp_videos": (1500, True)}


def test_a_space_inside_one_answer_keeps_it_one_answer(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    assert "（6/40）" in jincheng.say(ZEZHOU, "约 3")
    assert "（7/40）" in jincheng.say(ZEZHOU, "120\u3000人次")                # a full-width space
    assert "（8/40）" in jincheng.say(ZEZHOU, "3 篇")
    assert "（10/40）" in jincheng.say(ZEZHOU, "约 2 场 80 人次")
    assert numbers(jincheng) == {"study.lectures": (3, True), "study.lectures_people": (120, False),
                                 "study.articles": (3, False), "study.talks": (2, True), "study.talks_people": (80, False)}


def test_a_decimal_count_is_told_a_whole_number_is_needed(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    lectures = field("study.lectures")
    for typed in ("12.5", "三场半", "十二点五"):
        reply = jincheng.say(ZEZHOU, typed)
        assert reply == TEXTS.render("invalid_whole_number", field=lectures, given=typed)
        assert "不是整数" in reply and "不是数字" not in reply
    assert "（6/40）" in jincheng.say(ZEZHOU, "12")
    assert numbers(jincheng) == {"study.lectures": (12, False)}


def test_more_numbers_than_the_clause_has_blanks_are_not_spilled_into_the_next_clause(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    jincheng.say(ZEZHOU, "修改 7")                                           # 文章（ ）篇: one blank
    refused = jincheng.say(ZEZHOU, "五十 二百")
    assert refused == TEXTS.render("invalid_item_line", given=2, fields=1, whole=5, start=5)
    assert "修改 5" in refused and numbers(jincheng) == {}
    jincheng.say(ZEZHOU, "修改 5")                                           # 场，人次: two blanks
    assert "只有2个空" in jincheng.say(ZEZHOU, "3 120 4")
    assert "（10/40）" in jincheng.say(ZEZHOU, "3 120 4 2 80")               # the whole item at its first blank
    assert numbers(jincheng) == {"study.lectures": (3, False), "study.lectures_people": (120, False),
                                 "study.articles": (4, False), "study.talks": (2, False), "study.talks_people": (80, False)}
    jincheng.say(ZEZHOU, "修改 6")
    assert "只有1个空" in jincheng.say(ZEZHOU, "130 5")                       # not the item's first blank
    jincheng.say(ZEZHOU, "修改 35")                                          # item 6 is one clause of four blanks
    assert "（37/40）" in jincheng.say(ZEZHOU, "300、1")
    assert numbers(jincheng)["study.lectures_people"] == (120, False)
    assert numbers(jincheng)["consultation_day.onsite_people"] == (300, False)
    assert numbers(jincheng)["consultation_day.livestreams"] == (1, False)


def test_a_measure_word_of_another_blank_is_asked_about_not_stored_here(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    jincheng.say(ZEZHOU, "修改 37")
    viewers = field("consultation_day.livestream_viewers")
    asked = jincheng.say(ZEZHOU, "3场")
    assert asked == TEXTS.render("invalid_measure", field=viewers, given="3场",
                                 elsewhere=[(34, field("consultation_day.onsite")),
                                            (36, field("consultation_day.livestreams"))])
    assert "第34题" in asked and "第36题" in asked and "网络直播（ ）人观看" in asked
    assert "（38/40）" in jincheng.say(ZEZHOU, "3000人")
    jincheng.say(ZEZHOU, "修改 5")
    assert "第6题" in jincheng.say(ZEZHOU, "120人次")                         # 人次 is the next blank's
    swapped = jincheng.say(ZEZHOU, "120人次 3场")                           # the clause's answers swapped
    assert "“120人次”的单位" in swapped and "第6题" in swapped
    jincheng.say(ZEZHOU, "修改 10")                                          # item 2 counts no 篇
    foreign = jincheng.say(ZEZHOU, "3篇")
    assert foreign == TEXTS.render("invalid_measure", field=field("outreach.quiz_people"), given="3篇", elsewhere=[])
    assert "（11/40）" in jincheng.say(ZEZHOU, "3个人")                      # 人 counts people: it fits
    assert numbers(jincheng) == {"consultation_day.livestream_viewers": (3000, False),
                                 "outreach.quiz_people": (3, False)}


def test_a_count_too_large_to_store_is_refused_even_when_confirmed(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    lectures = field("study.lectures")
    for typed in ("9" * 5000, str(2**63 + 1), str(MAX_COUNT + 1), "两千万亿"):
        reply = jincheng.say(ZEZHOU, typed)
        assert reply == TEXTS.render("invalid_too_large", field=lectures, given=typed, maximum=MAX_COUNT)
        assert len(reply.encode()) < 2048
    assert "不是数字" in jincheng.say(ZEZHOU, "是")                          # nothing was held to confirm
    confirm = jincheng.say(ZEZHOU, "200000")                                 # plausible range: asked, as before
    assert "确认无误" in confirm
    assert "（6/40）" in jincheng.say(ZEZHOU, "是")
    assert numbers(jincheng) == {"study.lectures": (200000, False)}
    assert "不是数字" in jincheng.say(ZEZHOU, "很" * 3000)                   # the reply does not echo it all


def test_edit_with_a_field_number_too_large_for_any_form_is_an_unknown_field(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    unknown = TEXTS.render("invalid_field_number", total=40)
    for number in ("41", str(2**31), str(2**63 + 1), "9" * 5000):
        assert jincheng.say(ZEZHOU, f"修改 {number}").startswith(unknown)
    assert "（7/40）" in jincheng.say(ZEZHOU, "修改 007")


# Other examples of each kind, tried as a new liaison would type them after the fixes.

def test_more_ranges_as_people_say_them_are_asked_about_never_stored_as_one_number(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    asked = jincheng.say(ZEZHOU, "十几场")
    assert "11到19场" in asked and "约11场" in asked and numbers(jincheng) == {}
    assert "（6/40）" in jincheng.say(ZEZHOU, "12")
    assert "20到30人次" in jincheng.say(ZEZHOU, "二三十人次")
    assert "（7/40）" in jincheng.say(ZEZHOU, "确认")
    # a 顿号 between neighbouring numerals is a range at a one-blank clause, not two answers
    assert "5到6篇" in jincheng.say(ZEZHOU, "五、六")
    assert "（8/40）" in jincheng.say(ZEZHOU, "6")
    # ...and at a two-blank clause it is not 5 in one blank and 6 in the next
    asked = jincheng.say(ZEZHOU, "五、六")
    assert "5到6场" in asked and "（9/40）" not in asked
    assert "2到3场" in jincheng.say(ZEZHOU, "2或3场")
    assert "20到30场" in jincheng.say(ZEZHOU, "20至30")
    assert "7到8场" in jincheng.say(ZEZHOU, "七八场")
    assert "（9/40）" in jincheng.say(ZEZHOU, "十来场")                       # "ten or so": an estimate, no range
    assert numbers(jincheng) == {"study.lectures": (12, False), "study.lectures_people": (20, True),
                                 "study.articles": (6, False), "study.talks": (10, True)}


def test_letters_for_wan_and_qian_a_plus_and_digits_grouped_by_spaces_are_numbers(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    jincheng.say(ZEZHOU, "修改 10")
    assert "（11/40）" in jincheng.say(ZEZHOU, "2w")
    assert "（12/40）" in jincheng.say(ZEZHOU, "3K人次")
    assert "（13/40）" in jincheng.say(ZEZHOU, "1 200")                    # one blank: a number grouped by thousands
    jincheng.say(ZEZHOU, "修改 5")
    assert "（7/40）" in jincheng.say(ZEZHOU, "1 200")                     # two blanks: 1场 and 200人次, as the hint shows
    assert "（8/40）" in jincheng.say(ZEZHOU, "约\t5")
    jincheng.say(ZEZHOU, "修改 36")
    assert "（37/40）" in jincheng.say(ZEZHOU, "/")                        # a printed table's empty cell: none
    assert "（38/40）" in jincheng.say(ZEZHOU, "10万+")
    assert numbers(jincheng) == {
        "outreach.quiz_people": (20000, False), "outreach.quiz_answers": (3000, False),
        "outreach.camp_videos": (1200, False), "study.lectures": (1, False), "study.lectures_people": (200, False),
        "study.articles": (5, True), "consultation_day.livestreams": (0, False),
        "consultation_day.livestream_viewers": (100000, True)}


def test_a_decimal_typed_with_a_chinese_full_stop_or_no_leading_zero_needs_a_whole_number(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    lectures = field("study.lectures")
    for typed in ("12。5", ".5", "。5", "约3.5场", "“.5”"):
        assert jincheng.say(ZEZHOU, typed) == TEXTS.render("invalid_whole_number", field=lectures,
                                                           given=typed.strip("“”"))
    assert "“3.5”不是整数" in jincheng.say(ZEZHOU, "３．５")
    assert numbers(jincheng) == {}
    assert "（6/40）" in jincheng.say(ZEZHOU, "3.0场")
    assert numbers(jincheng) == {"study.lectures": (3, False)}


def test_three_numbers_at_a_two_blank_clause_and_lists_that_miscount_are_asked_about(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    jincheng.say(ZEZHOU, "修改 8")                                           # 大家谈（ ）场，参与（ ）人次
    assert jincheng.say(ZEZHOU, "2 80 5") == TEXTS.render("invalid_item_line", given=3, fields=2, whole=5, start=5)
    jincheng.say(ZEZHOU, "修改 34")                                          # item 6: four blanks
    assert "只有4个空" in jincheng.say(ZEZHOU, "1、200、3、500、9")
    assert "（38/40）" in jincheng.say(ZEZHOU, "1、200、3、500")
    jincheng.say(ZEZHOU, "修改 11")                                          # item 2's last blank of its clause
    assert "只有1个空" in jincheng.say(ZEZHOU, "3\n120")
    assert numbers(jincheng) == {"consultation_day.onsite": (1, False), "consultation_day.onsite_people": (200, False),
                                 "consultation_day.livestreams": (3, False),
                                 "consultation_day.livestream_viewers": (500, False)}


def test_measure_words_of_other_kinds_are_asked_about_wherever_they_are_typed(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    jincheng.say(ZEZHOU, "修改 7")                                           # 文章（ ）篇
    assert "第6题" in jincheng.say(ZEZHOU, "5人次") and "第9题" in jincheng.say(ZEZHOU, "5人次")
    assert "第5题" in jincheng.say(ZEZHOU, "5场")
    assert "（8/40）" in jincheng.say(ZEZHOU, "5篇")
    assert "第7题" in jincheng.say(ZEZHOU, "3篇")                             # 大家谈（ ）场
    assert "（9/40）" in jincheng.say(ZEZHOU, "3期")                          # 期 counts sessions, as 场 does
    assert "（10/40）" in jincheng.say(ZEZHOU, "90名")                        # 名 counts people, as 人次 does
    assert numbers(jincheng) == {"study.articles": (5, False), "study.talks": (3, False),
                                 "study.talks_people": (90, False)}


def test_counts_past_what_can_be_stored_are_refused_even_when_the_liaison_insists(jincheng: Campaign) -> None:
    at_lectures(jincheng)
    lectures = field("study.lectures")
    for typed in ("99999999999999999999", "1" + "0" * 30, "99999999999999999999场"):
        assert jincheng.say(ZEZHOU, typed) == TEXTS.render("invalid_too_large", field=lectures, given=typed,
                                                           maximum=MAX_COUNT)
        assert "不是数字" in jincheng.say(ZEZHOU, "是")                        # nothing held, nothing kept
    assert "不是数字" in jincheng.say(ZEZHOU, "1e20")
    assert numbers(jincheng) == {}
