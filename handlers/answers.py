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
from datetime import date
from typing import Callable

import cn2an

from bot.campaigns.format import DEFAULT_IMPLAUSIBLE_ABOVE, Field, FieldType

# Above this a count is probably a typo (an extra zero, a phone number in the wrong field): the
# person is asked to confirm it rather than refused. A campaign may set its own
# ([answers] implausible_above); this is the default.
IMPLAUSIBLE_ABOVE = DEFAULT_IMPLAUSIBLE_ABOVE

# Measure words people add after a number ("三场", "120人次") though the question names the unit.
MEASURE_WORDS = ("场/次", "人次", "条次", "场", "次", "篇", "个", "部", "人", "条", "项", "家", "处", "期", "份", "名", "起")
APPROXIMATE_WORDS = ("大约", "大概", "约", "近", "左右", "余", "多")
YES = {"是", "有", "✓", "✔", "√", "对", "yes", "y", "是的", "有的", "1"}
# What people write in a table's blank when they have nothing to put there: 0 for a count, the
# field left blank where the field is optional (传真: 无).
NONE_WORDS = frozenset({"无", "没有", "暂无", "没", "无此项", "不填"})
NO = {"否", "没有", "无", "不是", "没", "✗", "✘", "×", "x", "no", "n", "0"}

CHINESE_NAME = re.compile(r"[\u4e00-\u9fff]+(?:[·•][\u4e00-\u9fff]+)*")
MOBILE = re.compile(r"1[3-9]\d{9}")
# Area code 0xx or 0xxx, a 7- or 8-digit number, an optional extension (转 / - / ext / #).
LANDLINE = re.compile(r"(?:\(?0\d{2,3}\)?-?)?[2-9]\d{6,7}(?:(?:转|-|ext\.?|#)\d{1,6})?")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
WECHAT_ID = re.compile(r"[A-Za-z][-_A-Za-z0-9]{5,19}")
URL = re.compile(r"https?://[^\s/$.?#][^\s]*", re.IGNORECASE)
FULL_DATE = re.compile(r"(\d{4})[-./年](\d{1,2})[-./月](\d{1,2})日?")
MONTH_DAY = re.compile(r"(\d{1,2})[-./月](\d{1,2})日?")
# Item answers are split on spaces and 、；. Commas (a full-width one is ASCII after NFKC) separate
# answers too, except as a thousands separator between digits ("1,200" is one number).
PARTS = re.compile(r"[\s、；;]+|(?<!\d),|,(?!\d{3}(?!\d))")
# Characters phones put in text that show as nothing: zero-width spaces and joiners, the word
# joiner, the byte-order mark, soft hyphen, and the fillers used to send a "blank" (Hangul fillers,
# as NFKC leaves them, and the blank Braille pattern).
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u115f\u1160\u3164\uffa0\u2800"), None)
# What people end a word with, after NFKC (so ，！？～；： are among them): a command, code or answer
# reads the same without it. A range ("3~5") or a decimal ("12.5") keeps its inner mark.
END_MARKS = " 。.,，、!?~;:…⋯'\"“”‘’」』"
# At the start only a stray full stop or exclamation and opening quotes are dropped (回复“取消”
# is copied with its quotes): "-5" stays negative.
LEADING_MARKS = " 。.!'\"“‘「『"
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
    return word.lstrip(LEADING_MARKS).rstrip(END_MARKS) or word


def visible(text: str) -> str:
    """``text`` as a phone shows it, in compatibility form (NFKC): invisible characters and
    surrounding spaces gone; "" for a text that shows as nothing."""
    return unicodedata.normalize("NFKC", text).translate(INVISIBLE).strip()


def code_of(text: str) -> str:
    """A join code, staff code or invitation as typed, in the stored form (letters and digits,
    upper case): "qtjh-xsfe", "QTJH XSFE" and "ＱＴＪＨ—ＸＳＦＥ。" are all "QTJHXSFE". Codes are
    letters and digits only (``bot.campaigns.values.CODE_PATTERN``), so a separator is never part
    of one."""
    return CODE_SEPARATORS.sub("", normalise(text)).upper()


def parse_count(text: str, unit: str = "", limit: int = IMPLAUSIBLE_ABOVE) -> Parsed:
    """A whole number ≥ 0 as people write it: 3, ３, 三, 三场, 一百二十人次, 1,200, 约50."""
    raw = normalise(text)
    if raw in NONE_WORDS:
        return Accepted("0", 0)
    raw, approximate = _without_estimate(_without_measure(raw, unit))
    raw = _without_measure(raw, unit)
    if raw.startswith(("-", "负", "−")):
        return Rejected("invalid_negative")
    number = _number(raw)
    if number is None:
        return Rejected("invalid_count")
    return Accepted(str(number), number, approximate, implausible=number > limit)


def _without_estimate(raw: str) -> tuple[str, bool]:
    """``raw`` without 约/大约/左右/余/多, and whether one was there ("约50人", "50余人", "50人左右")."""
    for word in APPROXIMATE_WORDS:
        if raw.startswith(word) or raw.endswith(word):
            return raw.removeprefix(word).removesuffix(word).strip(), True
    return raw, False


def _without_measure(raw: str, unit: str) -> str:
    for word in ((unit,) if unit else ()) + MEASURE_WORDS:
        if raw.endswith(word) and len(raw) > len(word):
            return raw[: -len(word)].strip()
    return raw


def _number(raw: str) -> int | None:
    digits = raw.replace(",", "")
    if re.fullmatch(r"\d+", digits):
        return int(digits)
    if not raw or not re.fullmatch(r"[零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟]+", raw):
        return None
    try:
        value = cn2an.cn2an(raw, "smart")
    except (ValueError, KeyError):
        return None
    return int(value) if float(value).is_integer() else None


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


def parse_date(text: str, today: date) -> Parsed:
    """A day: 2023-06-20, 2023年6月20日, 6月20日 or 6.20 (this year), 今天."""
    raw = normalise(text)
    if raw in ("今天", "今日"):
        return Accepted(today.isoformat())
    full = FULL_DATE.fullmatch(raw)
    month_day = MONTH_DAY.fullmatch(raw)
    try:
        if full:
            day = date(int(full[1]), int(full[2]), int(full[3]))
        elif month_day:
            day = date(today.year, int(month_day[1]), int(month_day[2]))
        else:
            return Rejected("invalid_date")
    except ValueError:
        return Rejected("invalid_date")
    return Accepted(day.isoformat())


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
    """The answers of a line that fills several fields at once ("3场 120人次"), in order."""
    return [part for part in PARTS.split(normalise(text)) if part]


# Field types a chat walk can ask; pictures, video and documents come as media or by upload.
ASKABLE = tuple(t for t in FieldType if t not in (FieldType.PICTURES, FieldType.VIDEO, FieldType.DOCUMENT))
