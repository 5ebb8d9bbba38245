"""The category-template rules: what each keyword type (``thing``, ``time``, ``name``,
``car_number``…) accepts, and the check of a template send's ``data`` against its template.

Follows WeChat's subscription-message value table, which category templates share
(``/work/shared/wechat-rules.md`` A2), and the 2023-05-04 template rectification. A value that
breaks its type is 47003 ``argument invalid! data.<field>.value invalid``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Callable

from simulator.fake_wechat.errors import WeChatError

_HANZI = "\u3400-\u4dbf\u4e00-\u9fff"
_POINT = re.compile(r"(?:(\d{4})年(\d{1,2})月(\d{1,2})日)?\s*(?:(\d{1,2}):(\d{2}))?")


def _is_hanzi(ch: str) -> bool:
    return "\u3400" <= ch <= "\u4dbf" or "\u4e00" <= ch <= "\u9fff"


def _is_symbol(ch: str) -> bool:
    return not ch.isalnum() and not ch.isspace() and ch.isprintable()


def _time_points(value: str, need_date: bool) -> bool:
    """``15:01`` / ``2019年10月1日 15:01`` (time) or ``2019年10月1日[ 15:01]`` (date), ranges with ``~``."""
    points = value.split("~")
    if len(points) > 2:
        return False
    for point in points:
        match = _POINT.fullmatch(point.strip())
        if match is None or not point.strip():
            return False
        year, month, day, hour, minute = match.groups()
        if (need_date and year is None) or (not need_date and hour is None):
            return False
        if year is not None:
            try:
                date(int(year), int(month), int(day))
            except ValueError:
                return False
        if hour is not None and not (int(hour) < 24 and int(minute) < 60):
            return False
    return True


def _name(value: str) -> bool:
    if any(ch.isdigit() for ch in value):
        return False
    # Chinese and letters mixed count as a Chinese name: 10 characters.
    if any(_is_hanzi(ch) for ch in value):
        return len(value) <= 10
    return len(value) <= 20 and all(ch.isalpha() or _is_symbol(ch) or ch == " " for ch in value)


def _car_number(value: str) -> bool:
    if not 1 <= len(value) <= 8:
        return False
    inner_ok = all(ch.isascii() and ch.isalnum() for ch in value[1:-1])
    ends_ok = all((ch.isascii() and ch.isalnum()) or _is_hanzi(ch) for ch in (value[0], value[-1]))
    return inner_ok and ends_ok


FIELD_RULES: dict[str, Callable[[str], bool]] = {
    "thing": lambda v: len(v) <= 20 and "\n" not in v and "\r" not in v,
    "number": lambda v: len(v) <= 32 and re.fullmatch(r"\d+(\.\d+)?", v) is not None,
    "letter": lambda v: len(v) <= 32 and re.fullmatch(r"[A-Za-z]+", v) is not None,
    "symbol": lambda v: len(v) <= 5 and all(_is_symbol(ch) for ch in v),
    "character_string": lambda v: len(v) <= 32 and all(" " <= ch <= "~" for ch in v),
    "time": lambda v: _time_points(v, need_date=False),
    "date": lambda v: _time_points(v, need_date=True),
    "amount": lambda v: re.fullmatch(r"[¥￥$€£]\d{1,10}(\.\d{1,2})?元?", v) is not None,
    "phone_number": lambda v: len(v) <= 17 and all(ch.isdigit() or _is_symbol(ch) for ch in v),
    "car_number": _car_number,
    "name": _name,
    "phrase": lambda v: len(v) <= 5 and re.fullmatch(f"[{_HANZI}]+", v) is not None,
}




def template_data(fields: dict[str, str], data: Any) -> dict[str, Any]:
    """The data WeChat delivers; 47003 naming the first field that is missing or breaks its type."""
    if not isinstance(data, dict):
        raise WeChatError(47003, "argument invalid! data invalid")
    delivered: dict[str, Any] = {}
    for name, kind in fields.items():
        entry = data.get(name)
        value = entry.get("value") if isinstance(entry, dict) else None
        if kind == "const":
            # Fixed text of the template: WeChat fills it; a value sent for it is an error.
            if entry is not None:
                raise WeChatError(47003, f"argument invalid! data.{name}.value invalid")
            continue
        if not isinstance(value, str) or not value.strip() or not FIELD_RULES[kind](value):
            raise WeChatError(47003, f"argument invalid! data.{name}.value invalid")
        delivered[name] = {"value": value}
    # first/remark, colours and unknown keys are dropped silently since 2023-05-04.
    return delivered

