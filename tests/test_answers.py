"""What a liaison may type into a field, and what is stored: table-driven."""

from __future__ import annotations

from datetime import date

import pytest

from bot.campaigns.format import Field, FieldType
from handlers.answers import (
    MAX_COUNT, Accepted, Rejected, ReportingPeriod, measure_fits, parse, parse_date, split_item_line, yes_or_no,
)

TODAY = date(2023, 6, 20)


def field(kind: FieldType, unit: str = "") -> Field:
    return Field(key="f", answer_key="f", type=kind, label="字段", unit=unit)


@pytest.mark.parametrize(
    ("typed", "number", "approximate"),
    [
        ("3", 3, False), ("３", 3, False), ("三", 3, False), ("三场", 3, False), ("3场", 3, False),
        ("一百二十人次", 120, False), ("120人次", 120, False), ("1,200", 1200, False), ("1，200", 1200, False),
        ("约50", 50, True), ("大约五十人", 50, True), ("50人左右", 50, True), ("50余人", 50, True),
        ("两", 2, False), ("0", 0, False), ("零", 0, False), (" 12 ", 12, False), ("12。", 12, False),
        ("一万二", 12000, False), ("无", 0, False), ("没有", 0, False), ("暂无", 0, False),
        # Arabic digits with 万/千/百, as with Chinese numerals
        ("1万", 10000, False), ("1万人次", 10000, False), ("1.5万", 15000, False), ("3千", 3000, False),
        ("2千5", 2500, False), ("1万2千", 12000, False), ("3万5", 35000, False), ("1千2百", 1200, False), ("0.3万", 3000, False), ("8百5", 850, False),
        ("约1.2万人次", 12000, True), ("3万余人", 30000, True), ("１万", 10000, False), ("12.0", 12, False),
        # spaces (a full-width one too) inside one answer
        ("约 50", 50, True), ("3 场", 3, False), ("约\u300050", 50, True), ("3\u3000场", 3, False),
        ("50 余人", 50, True),
        # numerals read digit by digit stay one number
        ("一二〇", 120, False), ("一九", 19, False), ("二〇二三", 2023, False), ("一二三", 123, False),
        ("一百零五", 105, False), ("九八", 98, False),
        # tried after the fixes as a new liaison would type them
        ("十来场", 10, True), ("二十来人", 20, True), ("30多", 30, True), ("10万+", 100000, True), ("50+", 50, True),
        ("2w", 20000, False), ("2W", 20000, False), ("3K", 3000, False), ("2.5k", 2500, False), ("1.2万人次", 12000, False),
        ("1.5千", 1500, False), ("2万余人", 20000, True), ("三千5", 3500, False), ("5百", 500, False),
        ("约\t50", 50, True), ("约\u3000５０", 50, True), ("1 200", 1200, False), ("12 000", 12000, False), ("1,200.0", 1200, False),
        ("3\t场", 3, False), ("50\n", 50, False), ("３ 场", 3, False), ("约 ５０ 人次", 50, True),
        ("1.", 1, False), ("3.0场", 3, False), ("【3】", 3, False), ("3\u200e", 3, False),
    ],
)
def test_a_count_is_read_as_people_write_it(typed: str, number: int | None, approximate: bool) -> None:
    result = parse(field(FieldType.COUNT, "场"), typed, TODAY)
    if number is None:
        assert isinstance(result, Rejected)
    else:
        assert result == Accepted(str(number), number, approximate)


@pytest.mark.parametrize(("typed", "template"), [
    ("-3", "invalid_negative"), ("负三", "invalid_negative"), ("－5", "invalid_negative"),
    ("很多", "invalid_count"), ("", "invalid_count"), ("abc", "invalid_count"), ("几十", "invalid_count"),
    ("几个", "invalid_count"), ("5 0", "invalid_count"), ("1,2", "invalid_count"), ("1,20", "invalid_count"), ("1,2345", "invalid_count"), ("1e20", "invalid_count"),
    # a count is whole: a decimal is not "not a number"
    ("12.5", "invalid_whole_number"), ("2.5", "invalid_whole_number"), ("三场半", "invalid_whole_number"),
    ("十二点五", "invalid_whole_number"), ("1.23456万", "invalid_whole_number"), ("约12.5人次", "invalid_whole_number"),
    # past what can be stored, however it is written
    ("9" * 5000, "invalid_too_large"), (str(2**63), "invalid_too_large"), (str(2**63 + 1), "invalid_too_large"),
    (str(MAX_COUNT + 1), "invalid_too_large"), ("1" + ",000" * 7, "invalid_too_large"), ("九" * 5000, "invalid_too_large"),
    ("3.5", "invalid_whole_number"), ("３．５", "invalid_whole_number"), ("0.5", "invalid_whole_number"),
    ("12。5", "invalid_whole_number"), (".5", "invalid_whole_number"), ("。5", "invalid_whole_number"), ("。。5", "invalid_whole_number"), ("“.5”", "invalid_whole_number"),
    ("约3.5场", "invalid_whole_number"), ("十点五", "invalid_whole_number"),
    ("99999999999999999999", "invalid_too_large"), ("99999999999999999999人次", "invalid_too_large"),
    ("10000000000000000", "invalid_too_large"), ("１" + "0" * 30, "invalid_too_large"),
    ("两千万亿", "invalid_too_large"), ("2000万亿", "invalid_too_large"), ("一千万亿零一", "invalid_too_large"), ("3-" + "9" * 5000, "invalid_too_large"),
])
def test_a_wrong_count_names_what_was_wrong(typed: str, template: str) -> None:
    assert parse(field(FieldType.COUNT, "场"), typed, TODAY) == Rejected(template)


def test_a_count_above_the_limit_is_accepted_but_flagged_for_confirmation() -> None:
    assert parse(field(FieldType.COUNT, "人次"), "100000", TODAY) == Accepted("100000", 100000)
    assert parse(field(FieldType.COUNT, "人次"), "100001", TODAY) == Accepted("100001", 100001, implausible=True)
    assert parse(field(FieldType.COUNT, "人次"), "600", TODAY, limit=500) == Accepted("600", 600, implausible=True)
    assert parse(field(FieldType.COUNT, "人次"), "20万", TODAY) == Accepted("200000", 200000, implausible=True)
    assert parse(field(FieldType.COUNT, "人次"), "1,200万", TODAY) == Accepted("12000000", 12000000, implausible=True)
    assert parse(field(FieldType.COUNT, "人次"), "2w+", TODAY) == Accepted("20000", 20000, True)
    largest = str(MAX_COUNT)
    assert parse(field(FieldType.COUNT, "人次"), largest, TODAY) == Accepted(largest, MAX_COUNT, implausible=True)


@pytest.mark.parametrize(("typed", "low", "high"), [
    # two neighbouring numerals are a guess between them
    ("两三场", 2, 3), ("三四场", 3, 4), ("一两个", 1, 2), ("二三", 2, 3), ("五六", 5, 6), ("七八人", 7, 8),
    ("八九", 8, 9), ("三五个", 3, 5), ("五六十人", 50, 60), ("二三十", 20, 30), ("两三百人次", 200, 300),
    ("一两万", 10000, 20000), ("十一二", 11, 12), ("二十三四", 23, 24), ("一千二三百", 1200, 1300),
    # a range written with a dash, a tilde or 到/至, in digits or numerals, with or without spaces
    ("3-5场", 3, 5), ("3~5", 3, 5), ("3～5", 3, 5), ("3〜5", 3, 5), ("3—5", 3, 5), ("3－5", 3, 5),
    ("三到五", 3, 5), ("3至5场", 3, 5), ("3 - 5", 3, 5), ("3场-5场", 3, 5), ("约3-5场", 3, 5),
    ("100-200人次", 100, 200), ("1万-2万", 10000, 20000), ("五十到一百", 50, 100), ("5-3", 3, 5),
    ("1-2万", 10000, 20000), ("3到5千人次", 3000, 5000), ("三到五万", 30000, 50000), ("50-100", 50, 100),
    # tried after the fixes: more neighbours, a 顿号 between them, 几 as a last digit, 或
    ("七八个", 7, 8), ("四五场", 4, 5), ("三四十场", 30, 40), ("五六百", 500, 600), ("七八千人", 7000, 8000),
    ("一二十个", 10, 20), ("三五十人", 30, 50), ("20至30人", 20, 30), ("3—5场", 3, 5), ("两到三场", 2, 3),
    ("五、六场", 5, 6), ("三、四十人", 30, 40), ("十几场", 11, 19), ("二十几人", 21, 29), ("一百几十", 110, 190),
    ("2或3场", 2, 3), ("三或者四场", 3, 4), ("1~2", 1, 2), ("3-5个", 3, 5), ("100~200人次", 100, 200),
])
def test_a_range_is_taken_as_its_lower_end_only_as_an_estimate_to_confirm(typed: str, low: int, high: int) -> None:
    assert parse(field(FieldType.COUNT, "场"), typed, TODAY) == Accepted(str(low), low, True, up_to=high)


def test_a_range_above_the_limit_is_flagged_too() -> None:
    result = parse(field(FieldType.COUNT, "人次"), "20万-30万", TODAY)
    assert result == Accepted("200000", 200000, True, implausible=True, up_to=300000)


@pytest.mark.parametrize(("typed", "unit", "fits"), [
    ("3", "场", True), ("3场", "场", True), ("3次", "场", True), ("3场", "场/次", True), ("3期", "次", True),
    ("120人", "人次", True), ("120人次", "人", True), ("120名", "人次", True), ("约50余人", "人次", True),
    ("3个", "场", True), ("3个", "篇", True), ("3起", "个", True), ("3条", "条次", True), ("3篇", "", True),
    ("3场", "人", False), ("3场", "人次", False), ("120人次", "场", False), ("约120人", "场", False),
    ("3篇", "场", False), ("3个", "人", False), ("3家", "场", False), ("50余人", "个", False),
    ("3篇", "人次", False), ("3人次", "场", False), ("5人", "篇", False), ("5场", "篇", False), ("5次", "人次", False),
    ("5份", "篇", False), ("5期", "场", True), ("5名", "人", True), ("500人次", "人", True), ("十来场", "人", False),
])
def test_a_measure_word_must_count_what_the_blank_counts(typed: str, unit: str, fits: bool) -> None:
    assert measure_fits(typed, unit) is fits


def test_strictly_a_measure_word_of_things_fits_only_its_own_blank() -> None:
    assert measure_fits("3篇", "个") and not measure_fits("3篇", "个", strictly=True)
    assert measure_fits("3个", "场") and not measure_fits("3个", "场", strictly=True)
    assert measure_fits("3个", "个", strictly=True) and measure_fits("3次", "场", strictly=True)


@pytest.mark.parametrize(("typed", "value"), [
    ("是", "是"), ("有", "是"), ("✓", "是"), ("√", "是"), ("否", "否"), ("没有", "否"), ("无", "否"),
    ("不是", "否"), ("也许", None),
])
def test_yes_no_fields_take_the_usual_words_and_ticks(typed: str, value: str | None) -> None:
    result = parse(field(FieldType.YES_NO), typed, TODAY)
    assert result == (Accepted(value) if value else Rejected("invalid_yes_no"))
    assert yes_or_no(typed) is (None if value is None else value == "是")


@pytest.mark.parametrize(("kind", "typed", "stored"), [
    (FieldType.MOBILE, "13812345678", "13812345678"),
    (FieldType.MOBILE, "138 1234 5678", "13812345678"),
    (FieldType.MOBILE, "+86 138-1234-5678", "13812345678"),
    (FieldType.MOBILE, "12812345678", None),
    (FieldType.MOBILE, "1381234567", None),
    (FieldType.MOBILE, "138123456789", None),
    (FieldType.OFFICE_PHONE, "0356-2056819", "0356-2056819"),
    (FieldType.OFFICE_PHONE, "（0356）2056819", "(0356)2056819"),
    (FieldType.OFFICE_PHONE, "2056819", "2056819"),
    (FieldType.OFFICE_PHONE, "010-87654321转8012", "010-87654321转8012"),
    (FieldType.OFFICE_PHONE, "0356-2056819-12", "0356-2056819-12"),
    (FieldType.OFFICE_PHONE, "12345", None),
    (FieldType.OFFICE_PHONE, "电话", None),
    (FieldType.FAX, "0356 2056820", "03562056820"),
    (FieldType.FAX, "传真没有", None),
    (FieldType.PHONE, "13812345678", "13812345678"),
    (FieldType.PHONE, "0356-2056819", "0356-2056819"),
    (FieldType.EMAIL, "jcswjzsk@163.com", "jcswjzsk@163.com"),
    (FieldType.EMAIL, "ｊｃ@163.com", "jc@163.com"),
    (FieldType.EMAIL, "jcswjzsk@163", None),
    (FieldType.EMAIL, "jcswjzsk.163.com", None),
    (FieldType.PERSON_NAME, "牛英华", "牛英华"),
    (FieldType.PERSON_NAME, "阿依古丽·买买提", "阿依古丽·买买提"),
    (FieldType.PERSON_NAME, "牛", None),
    (FieldType.PERSON_NAME, "Niu Yinghua", None),
    (FieldType.PERSON_NAME, "牛" * 21, None),
    (FieldType.WECHAT_ID, "wxid_liaison1", "wxid_liaison1"),
    (FieldType.WECHAT_ID, "13812345678", "13812345678"),
    (FieldType.WECHAT_ID, "微信", None),
    (FieldType.URL, "https://mp.weixin.qq.com/s/abc", "https://mp.weixin.qq.com/s/abc"),
    (FieldType.URL, "mp.weixin.qq.com", None),
    (FieldType.DATE, "2023-06-16", "2023-06-16"),
    (FieldType.DATE, "2023年6月16日", "2023-06-16"),
    (FieldType.DATE, "6月16日", "2023-06-16"),
    (FieldType.DATE, "今天", "2023-06-20"),
    (FieldType.DATE, "6月31日", None),
    (FieldType.ADDRESS, "晋城市泽州路1号", "晋城市泽州路1号"),
    (FieldType.SHORT_TEXT, "安全知识进社区", "安全知识进社区"),
    (FieldType.SHORT_TEXT, "字" * 51, None),
])
def test_contact_fields_are_checked_and_tidied(kind: FieldType, typed: str, stored: str | None) -> None:
    result = parse(field(kind), typed, TODAY)
    assert result == (Accepted(stored) if stored else Rejected(f"invalid_{kind.value}"))


@pytest.mark.parametrize(("line", "parts"), [
    ("3场 120人次", ["3场", "120人次"]),
    ("3场，120人次", ["3场", "120人次"]),
    ("三、一百二十", ["三", "一百二十"]),
    ("3,120", ["3,120"]),
    ("3,12", ["3", "12"]),
    ("1,200 50", ["1,200", "50"]),
    ("五十 二百", ["五十", "二百"]),
    ("是 否", ["是", "否"]),
    # words around a number, after a space, belong to it
    ("约 50", ["约50"]), ("3 场", ["3场"]), ("3\u3000场", ["3场"]), ("约\u300050", ["约50"]),
    ("3场 120 人次", ["3场", "120人次"]), ("约 50 人 3 场", ["约50人", "3场"]), ("50 余人", ["50余人"]),
    ("3 ~ 5 场 100", ["3~5场", "100"]), ("1 万", ["1万"]), ("80 人左右", ["80人左右"]),
    # tabs and line breaks split like spaces; a 顿号 between neighbouring numerals is a range, not two answers
    ("3\t120", ["3", "120"]), ("3\n120人次", ["3", "120人次"]), ("五、六场", ["五、六场"]), ("五、六 100", ["五、六", "100"]),
    ("1、200、3、500", ["1", "200", "3", "500"]), ("三、一百二十", ["三", "一百二十"]), ("1 200", ["1", "200"]),
])
def test_a_line_for_a_whole_item_splits_into_its_answers(line: str, parts: list[str]) -> None:
    assert split_item_line(line) == parts


# 典型案例's December table reports November 2023; it may be filled long after (here in 2026).
NOVEMBER_2023 = ReportingPeriod(date(2023, 11, 1), date(2023, 11, 30))
LATE_TODAY = date(2026, 11, 30)


@pytest.mark.parametrize(("typed", "stored", "outside"), [
    ("11月8日", "2023-11-08", False),
    ("11.8", "2023-11-08", False),
    ("11-30", "2023-11-30", False),
    ("11月8号", "2023-11-08", False),
    ("１１月８日", "2023-11-08", False),
    ("2023年11月8日", "2023-11-08", False),
    # The year is the period's, not today's: a day typed without it is never put in 2026.
    ("6月8日", "2023-06-08", True),
    ("6.20", "2023-06-20", True),
    ("12月2日", "2023-12-02", True),
    ("1月3日", "2024-01-03", True),  # nearer November 2023 than January 2023 is
    ("2月29日", "2024-02-29", True),  # the only leap day near the period
    ("2026-06-08", "2026-06-08", True),  # a year typed is kept, and the day questioned
    ("今天", "2026-11-30", True),
    ("昨天", "2026-11-29", True),
    # tried after the fixes: other separators, numerals, a time of day, short and compact years
    ("2023.6.8", "2023-06-08", True), ("6/8", "2023-06-08", True), ("六月八日", "2023-06-08", True),
    ("前天", "2026-11-28", True), ("2023/11/8", "2023-11-08", False), ("11/8", "2023-11-08", False),
    ("十一月八日", "2023-11-08", False), ("十一月八号", "2023-11-08", False), ("11月8", "2023-11-08", False),
    ("2023年11月8号", "2023-11-08", False), ("11．8", "2023-11-08", False), ("2023.11.08", "2023-11-08", False),
    ("11月8日下午", "2023-11-08", False), ("11月8日 上午", "2023-11-08", False), ("20231108", "2023-11-08", False),
    ("23.11.8", "2023-11-08", False), ("二〇二三年十一月八日", "2023-11-08", False), ("十一月三十日", "2023-11-30", False),
])
def test_a_day_without_its_year_takes_the_reporting_periods_and_one_outside_is_flagged(
        typed: str, stored: str, outside: bool) -> None:
    assert parse_date(typed, LATE_TODAY, NOVEMBER_2023) == Accepted(stored, implausible=outside)


def test_a_period_across_the_new_year_puts_each_day_on_its_side() -> None:
    winter = ReportingPeriod(date(2023, 12, 16), date(2024, 1, 15))
    assert parse_date("12月28日", LATE_TODAY, winter) == Accepted("2023-12-28")
    assert parse_date("1月3日", LATE_TODAY, winter) == Accepted("2024-01-03")
    for typed, day in (("12/28", "2023-12-28"), ("1/3", "2024-01-03"), ("一月三日", "2024-01-03"),
                       ("十二月二十八日", "2023-12-28"), ("1.3", "2024-01-03"), ("12月31日晚上", "2023-12-31")):
        assert parse_date(typed, LATE_TODAY, winter) == Accepted(day), typed


@pytest.mark.parametrize("typed", ["6月31日", "13月1日", "2月30日", "11月", "下周", "2023-11", "无", "六月三十一日",
                                   "12345678", "23-11", "十三月一日"])
def test_a_day_no_calendar_has_is_refused_with_or_without_a_period(typed: str) -> None:
    assert parse_date(typed, LATE_TODAY, NOVEMBER_2023) == Rejected("invalid_date")
    assert parse_date(typed, LATE_TODAY) == Rejected("invalid_date")


def test_without_a_period_a_day_takes_todays_year_and_nothing_is_flagged() -> None:
    """填报日期 and other dates outside a table's rows: the day the form is filled."""
    assert parse_date("6月8日", LATE_TODAY) == Accepted("2026-06-08")
    assert parse_date("2023-06-08", LATE_TODAY) == Accepted("2023-06-08")
