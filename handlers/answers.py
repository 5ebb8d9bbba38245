"""Reading what a person typed into a form field: numbers as people write them, yes/no, phones,
e-mail, names, dates, links and text.

Parsers are pure and return either :class:`Accepted` (what to store) or :class:`Rejected` (the
name of the template that explains what was wrong), like a Rasa slot validator: they never
store anything themselves.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Callable

import cn2an

from bot.campaigns.format import DEFAULT_IMPLAUSIBLE_ABOVE, Field, FieldType

# Above this a count is probably a typo (an extra zero, a phone number in the wrong field): the
# person is asked to confirm it rather than refused. A campaign may set its own
# ([answers] implausible_above); this is the default.
IMPLAUSIBLE_ABOVE = DEFAULT_IMPLAUSIBLE_ABOVE

# The largest count stored. Answer.number is a BIGINT (PostgreSQL and SQLite alike hold up to
# 2^63 - 1), and 合计 sums one field over every unit in SQL, where SQLite's sum() raises on
# overflow: 10^15 is far above any real count yet leaves room for 9,000 units' sums. It is also
# below 2^53, so a count cn2an reads as a float ("1.5万") is exact. Past it, no confirmation helps.
MAX_COUNT = 10**15
# A string of Chinese numerals longer than this is a huge number or none at all; cn2an is not asked
# (it reads 5,000 numerals digit by digit into an int() that refuses over 4,300 digits).
LONGEST_NUMERAL = 40

# Measure words people add after a number ("三场", "120人次") though the question names the unit.
MEASURE_WORDS = ("场/次", "人次", "条次", "场", "次", "篇", "个", "部", "人", "条", "项", "家", "处", "期", "份", "名",
                 "起", "位", "轮")
# Measure words that count the same things: "120人" answers a 人次 blank, "3次" a 场 blank. A word
# outside these groups counts only itself, except 个, which may count anything but people.
MEASURE_GROUPS = (frozenset({"人", "人次", "名", "位"}), frozenset({"场", "次", "场/次", "期", "轮"}),
                  frozenset({"条", "条次"}))
PEOPLE = MEASURE_GROUPS[0]
# 十来场 (ten or so) and 10万+ (as WeChat shows an article's reads) are estimates too.
APPROXIMATE_WORDS = ("大约", "大概", "约", "近", "左右", "余", "多", "来", "+")
# Words that come before the number they qualify ("约 50"); the others come after it ("50 余人").
LEADING_ESTIMATE_WORDS = ("大约", "大概", "约", "近")
# Ranges: "3-5", "3~5", "3到5", "三至五", "2或3" (a full-width dash or tilde is ASCII after NFKC).
RANGE_SIGNS = ("-", "~", "〜", "—", "–", "到", "至", "或者", "或")
RANGE = re.compile(r"(.+?)\s*(?:-|~|〜|—|–|到|至|或者|或)\s*(.+)")
# Two neighbouring numerals said together are a guess between them, as people say 两三场 (2 or
# 3), 一两个, 五六十人 (50 to 60), 一千二三百; 三五 (three to five) is said the same way. Any other
# run of numerals is read digit by digit (一二〇 is 120, 一九 is 19), and so is a pair followed by
# another digit (一二〇, 一二三): a range's pair is the last digits said, before only 十/百/千/万/亿.
NEIGHBOURS = {"一两": ("一", "两"), "三五": ("三", "五")} | {
    a + b: (a, b) for a, b in zip("一二三四五六七八", "二三四五六七八九")} | {"两三": ("两", "三")}
# The pair is often written with a 顿号 (五、六场, 三、四十人), which elsewhere separates answers.
LISTED_NEIGHBOURS = re.compile("|".join(f"{a}、{b}" for a, b in NEIGHBOURS.values()))
# 几 after a numeral is its last digit, any of 1 to 9 (十几场 is 11 to 19, 二十几 21 to 29); a
# leading 几 (几十, 几个) says too little to offer a lower end, and stays no number.
SOME = "几"
# A character no one types, standing for a 顿号 that is no separator while a line is split.
HELD = "\ue000"
# Letters people use for 万 and 千 after digits (2w, 3k, 1.5W).
LATIN_MULTIPLIERS = re.compile(r"(?<=\d)([wWkK])(?![A-Za-z])")
# Digits grouped by thousands with commas or spaces: "1,200", "1 200", "12 000 000".
GROUPED = re.compile(r"\d{1,3}(?:([, ])\d{3})(?:\1\d{3})*(?:\.\d+)?")
# A comma or space between digits that a group of exactly three follows ("12,000万"); any other
# ("1,20", "5 0") leaves the text no number.
THOUSANDS_SEPARATOR = re.compile(r"(?<=\d)[, ](?=\d{3}(?!\d))")
MULTIPLIERS = "十百千万亿"
MULTIPLIER_SIZES = (("亿", 10**8), ("万", 10**4), ("千", 1000), ("百", 100), ("十", 10))
ARABIC_SCALED = re.compile(r"\d[\d.十百千万亿]*")
NUMERAL = re.compile(r"[\d.零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟点]+")
YES = {"是", "有", "✓", "✔", "√", "对", "yes", "y", "是的", "有的", "1"}
# What people write in a table's blank when they have nothing to put there: 0 for a count, the
# field left blank where the field is optional (传真: 无). A slash or a dash is how printed tables
# mark an empty cell.
NONE_WORDS = frozenset({"无", "没有", "暂无", "没", "无此项", "不填", "不涉及", "/", "-", "—", "——"})
NO = {"否", "没有", "无", "不是", "没", "✗", "✘", "×", "x", "no", "n", "0"}

CHINESE_NAME = re.compile(r"[\u4e00-\u9fff]+(?:[·•][\u4e00-\u9fff]+)*")
MOBILE = re.compile(r"1[3-9]\d{9}")
# Area code 0xx or 0xxx, a 7- or 8-digit number, an optional extension (转 / - / ext / #).
LANDLINE = re.compile(r"(?:\(?0\d{2,3}\)?-?)?[2-9]\d{6,7}(?:(?:转|-|ext\.?|#)\d{1,6})?")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
WECHAT_ID = re.compile(r"[A-Za-z][-_A-Za-z0-9]{5,19}")
URL = re.compile(r"https?://[^\s/$.?#][^\s]*", re.IGNORECASE)
# A year of two digits is this century's ("23.11.8"); eight digits are a day too (20231108).
FULL_DATE = re.compile(r"(\d{4}|\d{2})[-./年](\d{1,2})[-./月](\d{1,2})[日号]?|(\d{4})(\d{2})(\d{2})")
MONTH_DAY = re.compile(r"(\d{1,2})[-./月](\d{1,2})[日号]?")
# Days people name relative to today, as days before it.
DAYS_AGO = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2}
# Parts of a day people add after it ("11月8日下午"): the day is the same.
DAY_PARTS = ("上午", "下午", "中午", "晚上", "早上", "全天", "当天", "晚")
# Months and days in Chinese numerals (十一月八日, 二〇二三年六月八日) are read as digits.
DATE_NUMERALS = re.compile(r"[〇零一二两三四五六七八九十]+")
# Item answers are split on spaces and 、；. Commas (a full-width one is ASCII after NFKC) separate
# answers too, except as a thousands separator between digits ("1,200" is one number).
PARTS = re.compile(r"[\s、；;]+|(?<!\d),|,(?!\d{3}(?!\d))")
# Characters phones put in text that show as nothing: every format character (Unicode category
# Cf: zero-width spaces and joiners, the word joiner, the byte-order mark, soft hyphen, the
# direction marks \u200e and \u200f, the Mongolian vowel separator, the invisible operators), and
# these fillers used to send a "blank" (Hangul fillers, as NFKC leaves them, and the blank Braille
# pattern).
FILLERS = "\u115f\u1160\u3164\uffa0\u2800"
# What people end a word with, after NFKC (so ，！？～；： are among them): a command, code or answer
# reads the same without it. A range ("3~5") or a decimal ("12.5") keeps its inner mark.
END_MARKS = " 。.,，、!?~;:…⋯'\"“”‘’」』"
# At the start only a stray full stop or exclamation and opening quotes are dropped (回复“取消”
# is copied with its quotes): "-5" stays negative.
LEADING_MARKS = " 。.!'\"“‘「『"
# Brackets around the whole word, as notices print a command (回复【帮助】) and people copy it: an
# opening bracket alone is kept ("(0356)2056819" is a phone number).
WRAPPING = {"[": "]", "【": "】", "(": ")", "<": ">", "《": "》", "〈": "〉", "〔": "〕", "{": "}"}
# What people type between the groups of a code: spaces, dashes of every width, dots, underscores.
CODE_SEPARATORS = re.compile(r"[\s\-_.·•‐‑‒–—―−/]+")
TEXT_LIMITS = {FieldType.SHORT_TEXT: 50, FieldType.TEXT: 200, FieldType.NOTE: 200, FieldType.ADDRESS: 100,
               FieldType.JOB_TITLE: 30, FieldType.UNIT_NAME: 100, FieldType.LONG_TEXT: 2000}


@dataclass(frozen=True)
class Accepted:
    """A good answer: the text to store and show, the number for counts, and whether it was
    given as an estimate ("约50"). ``implausible`` asks the walk to confirm before storing."""

    value: str
    number: int | None = None
    approximate: bool = False
    implausible: bool = False
    # A range given ("两三场", "3-5"): its upper end. ``number`` is then its lower end, kept as an
    # estimate only if the person agrees; the walk asks for one number first.
    up_to: int | None = None


@dataclass(frozen=True)
class Rejected:
    """A wrong answer; ``template`` names the message that says what to send instead."""

    template: str


Parsed = Accepted | Rejected


def normalise(text: str) -> str:
    """``text`` as every command, code and answer reader reads it: full-width digits, letters,
    spaces and punctuation as ASCII (３ → 3, ！ → !), invisible characters gone, and surrounding
    spaces and end punctuation (。，！？~… and the like) gone: "帮助。", "　取消！" and "提交~~" are
    the commands. Text that is nothing but punctuation is kept as typed ("?" asks for help)."""
    word = visible(text)
    bare = word.lstrip(LEADING_MARKS)
    point = len(word) - len(bare) - 1
    if bare[:1].isdigit() and point >= 0 and word[point] in ".。":
        bare = word[point] + bare  # ".5" is a decimal (0.5), not a 5 after a stray full stop
    bare = bare.rstrip(END_MARKS)
    if len(bare) > 2 and WRAPPING.get(bare[0]) == bare[-1]:
        bare = bare[1:-1].strip().lstrip(LEADING_MARKS).rstrip(END_MARKS)
    return bare or word


def visible(text: str) -> str:
    """``text`` as a phone shows it, in compatibility form (NFKC): invisible characters and
    surrounding spaces gone; "" for a text that shows as nothing."""
    shown = unicodedata.normalize("NFKC", text)
    return "".join(c for c in shown if c not in FILLERS and unicodedata.category(c) != "Cf").strip()


def code_of(text: str) -> str:
    """A join code, staff code or invitation as typed, in the stored form (letters and digits,
    upper case): "qtjh-xsfe", "QTJH XSFE" and "ＱＴＪＨ—ＸＳＦＥ。" are all "QTJHXSFE". Codes are
    letters and digits only (``bot.campaigns.values.CODE_PATTERN``), so a separator is never part
    of one."""
    return CODE_SEPARATORS.sub("", normalise(text)).upper()


def parse_count(text: str, unit: str = "", limit: int = IMPLAUSIBLE_ABOVE) -> Parsed:
    """A whole number 0 to :data:`MAX_COUNT` as people write it: 3, ３, 三, 三场, 一百二十人次,
    1,200, 约50, 约 50, 1万, 1.5万, 2千5. A range (两三场, 3-5场, 三到五) is accepted with its lower
    end as ``number`` and its upper end as ``up_to``, for the walk to ask which.

    Rejected templates: ``invalid_negative``, ``invalid_whole_number`` (12.5, 三场半),
    ``invalid_too_large`` (past :data:`MAX_COUNT`), ``invalid_count`` (anything else)."""
    raw = _decimal_points(normalise(text))
    if raw in NONE_WORDS:
        return Accepted("0", 0)
    raw = LATIN_MULTIPLIERS.sub(lambda m: "万" if m[1] in "wW" else "千", LISTED_NEIGHBOURS.sub(_unlisted, raw))
    raw, approximate = _without_estimate(_without_measure(raw, unit))
    raw = _without_measure(raw, unit)
    if raw.startswith(("-", "负", "−")):
        return Rejected("invalid_negative")
    if raw.endswith("半") and isinstance(_number(_without_measure(raw[:-1], unit)), int):
        return Rejected("invalid_whole_number")
    span = _range(raw, unit)
    if isinstance(span, tuple):
        low, high = span
        if low != high:
            return Accepted(str(low), low, True, implausible=low > limit, up_to=high)
        number: int | Rejected = low
    else:
        number = span if isinstance(span, Rejected) else _number(raw)
    if isinstance(number, Rejected):
        return number
    return Accepted(str(number), number, approximate, implausible=number > limit)


def _decimal_points(raw: str) -> str:
    """``raw`` with a decimal point as a Chinese keyboard types it read as one: "12。5" (a full
    stop between digits) is 12.5, ".5" is 0.5, so neither is taken for a whole number or no number."""
    return re.sub(r"^[.。](?=\d)", "0.", re.sub(r"(?<=\d)。(?=\d)", ".", raw))


def _unlisted(pair: re.Match[str]) -> str:
    return pair[0].replace("、", "")


def _range(raw: str, unit: str) -> tuple[int, int] | Rejected | None:
    """The two ends of a range ("3-5", "三到五", "两三", "五六十"), lowest first; a Rejected when an
    end is past :data:`MAX_COUNT`; None when ``raw`` is not a range."""
    written = RANGE.fullmatch(raw)
    if written:
        first, last = _without_measure(written[1], unit), written[2]
        # "1-2万" is 1万 to 2万: a bare first end takes the last end's 万/千
        scale = re.search(f"[{MULTIPLIERS}]+$", last)
        if scale and not any(c in MULTIPLIERS for c in first):
            first += scale[0]
        ends: tuple[str, str] | None = (first, last)
    else:
        ends = _neighbours(raw) or _some(raw)
    if ends is None:
        return None
    low, high = _number(ends[0]), _number(ends[1])
    if isinstance(low, int) and isinstance(high, int):
        return min(low, high), max(low, high)
    too_large = Rejected("invalid_too_large")
    return too_large if too_large in (low, high) else None


def _neighbours(raw: str) -> tuple[str, str] | None:
    """The two numbers a pair of neighbouring numerals says ("五六十" → 五十, 六十), or None."""
    for i in range(len(raw) - 1):
        pair = NEIGHBOURS.get(raw[i:i + 2])
        before, after = raw[:i], raw[i + 2:]
        if pair and (not before or before[-1] in MULTIPLIERS) and all(c in MULTIPLIERS for c in after):
            return before + pair[0] + after, before + pair[1] + after
    return None


def _some(raw: str) -> tuple[str, str] | None:
    """The two ends a 几 after a numeral says ("十几" → 十一, 十九; "一百几十" → 一百一十, 一百九十), or None."""
    if raw.count(SOME) != 1 or raw.startswith(SOME):
        return None
    return raw.replace(SOME, "一"), raw.replace(SOME, "九")


def _without_estimate(raw: str) -> tuple[str, bool]:
    """``raw`` without 约/大约/左右/余/多, and whether one was there ("约50人", "50余人", "50人左右")."""
    for word in APPROXIMATE_WORDS:
        if raw.startswith(word) or raw.endswith(word):
            return raw.removeprefix(word).removesuffix(word).strip(), True
    return raw, False


def _without_measure(raw: str, unit: str) -> str:
    word = _measure(raw, unit)
    return raw[: -len(word)].strip() if word else raw


def _measure(raw: str, unit: str = "") -> str:
    """The measure word ``raw`` ends with ("3场" → "场"), "" if none."""
    return next((w for w in ((unit,) if unit else ()) + MEASURE_WORDS if raw.endswith(w) and len(raw) > len(w)), "")


def _number(raw: str) -> int | Rejected:
    """One whole number in Arabic digits, Chinese numerals or both (1万2千), 0 to :data:`MAX_COUNT`."""
    digits = THOUSANDS_SEPARATOR.sub("", raw)
    if not NUMERAL.fullmatch(digits):
        return Rejected("invalid_count")
    value: Decimal | None
    if ARABIC_SCALED.fullmatch(digits):
        # Decimal, not cn2an: cn2an drops what a digit string says below 1 (1.23456万 → 12345).
        if sum(c in MULTIPLIERS for c in digits) > len(MULTIPLIERS):
            return Rejected("invalid_too_large")
        value = _scaled(digits)
    elif len(digits) > LONGEST_NUMERAL:
        return Rejected("invalid_too_large")
    else:
        try:
            value = Decimal(str(cn2an.cn2an(digits, "smart")))
        except (ValueError, KeyError, IndexError):
            value = None
    if value is None:
        return Rejected("invalid_count")
    if value > MAX_COUNT:
        return Rejected("invalid_too_large")
    if value != value.to_integral_value():
        return Rejected("invalid_whole_number")
    return int(value)


def _scaled(raw: str) -> Decimal | None:
    """Arabic digits with 亿/万/千/百/十 as people write them: 1万 → 10000, 1.5万 → 15000, 1万2千 →
    12000, and a last lone digit one place down (2千5 → 2500, 3万5 → 35000). None if malformed."""
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        return Decimal(raw)
    for word, size in MULTIPLIER_SIZES:
        head, found, tail = raw.rpartition(word)
        if not found:
            continue
        left = _scaled(head)
        if left is None:
            return None
        if re.fullmatch(r"\d", tail) and size > 10:
            return left * size + Decimal(tail) * size / 10
        right = _scaled(tail) if tail else Decimal(0)
        return None if right is None or right >= size else left * size + right
    return None


def measure_fits(text: str, unit: str, strictly: bool = False) -> bool:
    """Whether the measure word a count answer ends with, if any, counts what ``unit`` counts:
    "3场" fits 场 and 场/次, "120人" fits 人次, "3场" does not fit 人 nor "3篇" 场. A blank without a
    unit takes any. 个 counts anything but people unless ``strictly`` (then only 个)."""
    raw = normalise(text)
    word = _measure(raw) or _measure(_without_estimate(raw)[0])
    if not word or not unit or word == unit:
        return True
    if "个" in (word, unit) and not strictly:
        return word not in PEOPLE and unit not in PEOPLE
    return any(word in group and unit in group for group in MEASURE_GROUPS)


def parse_yes_no(text: str) -> Parsed:
    """是/有/✓ or 否/没有/无."""
    answer = yes_or_no(text)
    if answer is None:
        return Rejected("invalid_yes_no")
    return Accepted("是" if answer else "否")


def yes_or_no(text: str) -> bool | None:
    """True for a yes (是, 有, ✓, …), False for a no (否, 没有, …), None for anything else."""
    word = normalise(text).lower()
    if word in YES:
        return True
    if word in NO:
        return False
    return None


def parse_person_name(text: str) -> Parsed:
    """A Chinese name, 2 to 20 characters (a middle dot allowed, as in 阿依古丽·买买提)."""
    name = normalise(text).replace(" ", "")
    if 2 <= len(name) <= 20 and CHINESE_NAME.fullmatch(name):
        return Accepted(name)
    return Rejected("invalid_person_name")


def _digits_only(text: str) -> str:
    return re.sub(r"[\s]", "", normalise(text))


def parse_mobile(text: str) -> Parsed:
    """An 11-digit mainland mobile number starting 13–19; spaces, dashes and +86 are dropped."""
    number = re.sub(r"[\s-]", "", normalise(text)).removeprefix("+86").removeprefix("86")
    return Accepted(number) if MOBILE.fullmatch(number) else Rejected("invalid_mobile")


def _landline(text: str, template: str) -> Parsed:
    number = _digits_only(text).replace("（", "(").replace("）", ")").replace("—", "-")
    return Accepted(number) if LANDLINE.fullmatch(number) else Rejected(template)


def parse_office_phone(text: str) -> Parsed:
    """An office number, with or without area code and extension: 0356-2056819, 2056819转8012."""
    return _landline(text, "invalid_office_phone")


def parse_fax(text: str) -> Parsed:
    """A fax number, written like an office number."""
    return _landline(text, "invalid_fax")


def parse_phone(text: str) -> Parsed:
    """Any phone number: a mobile or an office number."""
    mobile = parse_mobile(text)
    if isinstance(mobile, Accepted):
        return mobile
    landline = _landline(text, "invalid_phone")
    return landline


def parse_email(text: str) -> Parsed:
    """An e-mail address such as jcswjzsk@163.com."""
    address = _digits_only(text)
    return Accepted(address) if EMAIL.fullmatch(address) else Rejected("invalid_email")


def parse_wechat_id(text: str) -> Parsed:
    """A WeChat ID: 6–20 letters, digits, - and _, starting with a letter (old IDs may be a mobile)."""
    handle = _digits_only(text)
    if WECHAT_ID.fullmatch(handle) or MOBILE.fullmatch(handle):
        return Accepted(handle)
    return Rejected("invalid_wechat_id")


def parse_url(text: str) -> Parsed:
    """A web link starting with http:// or https://."""
    link = normalise(text)
    return Accepted(link) if URL.fullmatch(link) else Rejected("invalid_url")


@dataclass(frozen=True)
class ReportingPeriod:
    """The days a table reports on, both ends included (May's activities: 2023-05-01 to 2023-05-31)."""

    first: date
    last: date

    def __contains__(self, day: date) -> bool:
        return self.first <= day <= self.last

    def nearest(self, month: int, day: int) -> date:
        """``month``/``day`` in the year that puts it in the period or nearest to it (a period
        running from December into January takes 12月28日 and 1月3日 on either side of the new year).

        Raises ValueError for a day no such year has (6月31日)."""
        days = []
        for year in range(self.first.year - 1, self.last.year + 2):
            try:
                days.append(date(year, month, day))
            except ValueError:
                continue  # 2月29日 exists in leap years only
        if not days:
            raise ValueError(f"no {month}-{day} in any year")
        return min(days, key=lambda d: max((self.first - d).days, (d - self.last).days, 0))


def parse_date(text: str, today: date, period: ReportingPeriod | None = None) -> Parsed:
    """A day: 2023-06-20, 2023年6月20日, 23.6.20, 20230620, 6月20日, 六月二十日, 6.20, 6/20, 6月20号,
    6月20日下午, 今天, 昨天.

    A day given without its year is in the year of ``period`` (the one nearest it), else of
    ``today``; with a ``period``, a day outside it is accepted as ``implausible``, to be confirmed."""
    raw = DATE_NUMERALS.sub(_digits_of, normalise(text))
    for part in DAY_PARTS:
        raw = raw.removesuffix(part).rstrip()
    full = FULL_DATE.fullmatch(raw)
    month_day = MONTH_DAY.fullmatch(raw)
    try:
        if raw in DAYS_AGO:
            day = today - timedelta(days=DAYS_AGO[raw])
        elif full:
            year, month, day_of_month = (full[1], full[2], full[3]) if full[1] else (full[4], full[5], full[6])
            day = date(int(year) + (2000 if len(year) == 2 else 0), int(month), int(day_of_month))
        elif month_day and period is not None:
            day = period.nearest(int(month_day[1]), int(month_day[2]))
        elif month_day:
            day = date(today.year, int(month_day[1]), int(month_day[2]))
        else:
            return Rejected("invalid_date")
    except ValueError:
        return Rejected("invalid_date")
    return Accepted(day.isoformat(), implausible=period is not None and day not in period)


def _digits_of(numeral: re.Match[str]) -> str:
    number = _number(numeral[0])
    return numeral[0] if isinstance(number, Rejected) else str(number)


def parse_text(text: str, limit: int, template: str) -> Parsed:
    """Free text of at most ``limit`` characters."""
    value = text.strip()
    if not value or len(value) > limit:
        return Rejected(template)
    return Accepted(value)


def parse(field: Field, text: str, today: date, limit: int = IMPLAUSIBLE_ABOVE) -> Parsed:
    """Read ``text`` as an answer to ``field``."""
    simple: dict[FieldType, Callable[[str], Parsed]] = {
        FieldType.YES_NO: parse_yes_no,
        FieldType.PERSON_NAME: parse_person_name,
        FieldType.MOBILE: parse_mobile,
        FieldType.OFFICE_PHONE: parse_office_phone,
        FieldType.FAX: parse_fax,
        FieldType.PHONE: parse_phone,
        FieldType.EMAIL: parse_email,
        FieldType.WECHAT_ID: parse_wechat_id,
        FieldType.URL: parse_url,
    }
    if field.type is FieldType.COUNT:
        return parse_count(text, field.unit, limit)
    if field.type is FieldType.DATE:
        return parse_date(text, today)
    if field.type in simple:
        return simple[field.type](text)
    return parse_text(text, TEXT_LIMITS.get(field.type, 200), f"invalid_{field.type.value}")


def means_none(text: str) -> bool:
    """Whether ``text`` says there is nothing to put in the field (无, 没有, 暂无 …)."""
    return normalise(text) in NONE_WORDS


def split_item_line(text: str) -> list[str]:
    """The answers of a line that fills several fields at once ("3场 120人次"), in order.

    A space inside one answer does not split it: "约 50", "3 场", "50 余人", "3 ~ 5" are one answer
    each: the words around a number join it (a full-width space is a space after NFKC), and so
    is "五、六场", a range."""
    parts: list[str] = []
    # A 顿号 inside a range (五、六场) is held aside while the line is split on the others.
    held = LISTED_NEIGHBOURS.sub(lambda pair: pair[0].replace("、", HELD), normalise(text))
    for part in (p.replace(HELD, "、") for p in PARTS.split(held) if p):
        joins = part.startswith(RANGE_SIGNS) or _follows_number(part)
        if parts and (joins or parts[-1].endswith(RANGE_SIGNS) or parts[-1] in LEADING_ESTIMATE_WORDS):
            parts[-1] += part
        else:
            parts.append(part)
    return parts


def _follows_number(part: str) -> bool:
    """Whether ``part`` is only words said after a number: a measure word, 余/多, 左右, 万/千."""
    if part in MULTIPLIERS:
        return True
    rest = part
    for words in (("余", "多"), MEASURE_WORDS, ("左右",)):
        rest = next((rest.removeprefix(w) for w in words if rest.startswith(w)), rest)
    return not rest


# Field types a chat walk can ask; pictures, video and documents come as media or by upload.
ASKABLE = tuple(t for t in FieldType if t not in (FieldType.PICTURES, FieldType.VIDEO, FieldType.DOCUMENT))
