"""The values a campaign file's settings take: its choices, key patterns, dates, times and offsets.

The choices are enums (a field's ``type``, a form's ``kind`` …) used by the definitions too.
A value our own function reads (a date, a weekday, "3d") is declared with :class:`Read`, which
also says what the setting needs when the value is wrong or missing; a rule in our words
raises :class:`Wrong`. ``bot.campaigns.schema`` builds the file's models from these.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, get_args

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

SCHEMA_VERSION = 1


class FieldType(str, enum.Enum):
    """What a field holds; decides how the bot asks for it and checks the answer."""

    TEXT = "text"
    LONG_TEXT = "long_text"
    SHORT_TEXT = "short_text"
    UNIT_NAME = "unit_name"
    PERSON_NAME = "person_name"
    JOB_TITLE = "job_title"
    MOBILE = "mobile"
    OFFICE_PHONE = "office_phone"
    PHONE = "phone"
    FAX = "fax"
    EMAIL = "email"
    WECHAT_ID = "wechat_id"
    ADDRESS = "address"
    NOTE = "note"
    DATE = "date"
    URL = "url"
    COUNT = "count"
    YES_NO = "yes_no"
    PICTURES = "pictures"
    VIDEO = "video"
    DOCUMENT = "document"


class FormKind(str, enum.Enum):
    """The shape of a form: a list of fields, a statistics table of items, or a table of rows."""

    RECORD = "record"
    STATISTICS = "statistics"
    TABLE = "table"


class DeadlineKind(str, enum.Enum):
    """How often a deadline falls due."""

    ONCE = "once"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class ReminderKind(str, enum.Enum):
    """When a reminder goes out relative to its due time; each kind has its own template message."""

    BEFORE = "before"
    DUE = "due"
    OVERDUE = "overdue"


class LatePolicy(str, enum.Enum):
    """What happens to a change to a submitted table after its due time."""

    ACCEPT = "accept"  # taken and marked late
    LOCK = "lock"  # refused: the table stays as submitted


class Covers(str, enum.Enum):
    """Which days a monthly submission reports on."""

    THIS_MONTH = "this_month"
    PREVIOUS_MONTH = "previous_month"


# How a mistake names each choice: "unknown field type 'cnt'; use one of text, …".
CHOICE_NAMES: Mapping[type[enum.Enum], str] = {
    FieldType: "field type", FormKind: "form kind", DeadlineKind: "deadline kind", ReminderKind: "reminder kind",
    LatePolicy: "late policy", Covers: "covered period",
}

KEY_PATTERN = "^[a-z][a-z0-9_]{0,49}$"
CAMPAIGN_KEY_PATTERN = "^[a-z][a-z0-9-]{0,89}$"
# A join code; empty means "generate one when loaded".
CODE_PATTERN = "^([A-Za-z0-9]{6,32})?$"
# Field kinds of WeChat category templates (wechat-rules A2); a data key is one of these plus digits.
TEMPLATE_FIELD_TYPES = (
    "thing", "time", "date", "phrase", "character_string", "number", "letter", "symbol", "amount",
    "phone_number", "car_number", "name", "const", "enum", "keyword",
)
TEMPLATE_FIELD_PATTERN = f"^({'|'.join(TEMPLATE_FIELD_TYPES)})[0-9]+$"
# The sentence a value that does not match each pattern gets; {value} is the value given.
PATTERN_SENTENCES = {
    KEY_PATTERN: "{value!r} must be lower-case letters, digits and _, starting with a letter",
    CAMPAIGN_KEY_PATTERN: "{value!r} must be lower-case letters, digits and -, starting with a letter",
    CODE_PATTERN: "must be 6 to 32 letters and digits",
    TEMPLATE_FIELD_PATTERN: "is not a WeChat template field name (a type such as thing, time or phrase, then digits)",
}
# The variables a reminder's template-message field may be filled from (see docs/campaign-format.md).
TemplateVariable = Literal["campaign", "deadline", "unit", "due_at", "period", "issuer", "contact_phone"]
TEMPLATE_VARIABLES: tuple[str, ...] = get_args(TemplateVariable)
# The variables an announcement's (通知) template-message field may be filled from: its title (the
# first line of its text), who sent it, when, and the campaign's name and issuer.
NoticeVariable = Literal["title", "sender", "time", "campaign", "issuer"]
NOTICE_VARIABLES: tuple[str, ...] = get_args(NoticeVariable)
WEEKDAYS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
    "周一": 0, "周二": 1, "周三": 2, "周四": 3, "周五": 4, "周六": 5, "周日": 6,
    "星期一": 0, "星期二": 1, "星期三": 2, "星期四": 3, "星期五": 4, "星期六": 5, "星期日": 6,
}
# A reminder's offset from the due time: "3d", "12h", "30m".
OFFSET_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
# An answer above this asks "are you sure?" unless the campaign sets its own ([answers] implausible_above).
DEFAULT_IMPLAUSIBLE_ABOVE = 100_000


class Wrong(ValueError):
    """A mistake in a campaign file, in our words. Raised by a validator, it reaches
    ``bot.campaigns.problems`` inside pydantic's error (``ctx["error"]``).

    ``at`` shows it at a sibling setting instead of the one being checked ("" for the table
    itself): a rule over several settings is checked with the last of them, which may not be the
    one the sentence is about.
    """

    def __init__(self, message: str, at: str | None = None):
        super().__init__(message)
        self.message = message
        self.at = at


@dataclass(frozen=True)
class Read:
    """A setting read by a function of ours (dates, times, offsets, weekdays), as ``Annotated`` metadata.

    ``parse`` gives the value or raises ValueError; ``needs`` is the sentence for a wrong value and
    for a missing one, with ``{raw!r}`` standing for what was given; ``schema`` is its JSON Schema.
    """

    parse: Callable[[Any], Any]
    needs: str
    schema: Mapping[str, Any]

    def sentence(self, raw: Any) -> str:
        return self.needs.format(raw=raw)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(self._validate)

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return dict(self.schema)

    def _validate(self, raw: Any) -> Any:
        try:
            return self.parse(raw)
        except ValueError:
            raise Wrong(self.sentence(raw)) from None


def _date(raw: Any) -> dt.date:
    # A TOML date, or its ISO text: a stored definition keeps its dates as text (see _json_safe).
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        return raw
    if isinstance(raw, str):
        return dt.date.fromisoformat(raw)
    raise ValueError(raw)


def _local_datetime(raw: Any) -> dt.datetime:
    # The campaign's zone applies; a date and time with its own zone or offset is refused.
    value = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value
    raise ValueError(raw)


def _time(raw: Any) -> dt.time:
    if isinstance(raw, dt.time):
        return raw
    if isinstance(raw, str):
        return dt.time.fromisoformat(raw)
    raise ValueError(raw)


def _offset(raw: Any) -> dt.timedelta:
    match = re.fullmatch(r"(\d+)([dhm])", raw) if isinstance(raw, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(raw)
    return dt.timedelta(**{OFFSET_UNITS[match.group(2)]: int(match.group(1))})


def _weekday(raw: Any) -> int:
    if (weekday := WEEKDAYS.get(str(raw).strip().lower())) is None:
        raise ValueError(raw)
    return weekday


def _day(raw: Any) -> int | None:
    """A day of the month, None for "last"."""
    if raw == "last":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 31:
        raise ValueError(raw)
    return raw


_TIME_PATTERN = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
DAY = Read(_date, "needs a date such as 2023-06-01", {"type": "string", "format": "date"})
KEY_DAY = Read(_date, "needs a date such as 2023-06-16", {"type": "string", "format": "date"})
LOCAL_DATETIME = Read(
    _local_datetime, "needs a local date and time such as 2023-06-28T17:00:00 (no time zone)",
    {"type": "string", "pattern": f"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ]{_TIME_PATTERN}$",
     "description": "a local date and time such as 2023-06-28T17:00:00 (no time zone: the campaign's applies)"})
TIME_OF_DAY = Read(_time, "needs a time of day such as 18:00:00",
                   {"type": "string", "pattern": f"^{_TIME_PATTERN}$", "description": "a time of day such as 18:00:00"})
OFFSET = Read(_offset, "offset {raw!r} is not like 3d, 12h or 30m (days, hours, minutes)",
              {"type": "string", "pattern": "^0*[1-9][0-9]*[dhm]$", "description": "3d, 12h or 30m"})
WEEKDAY = Read(_weekday, "unknown weekday {raw!r}; use monday … sunday or 周一 … 周日",
               {"enum": [*WEEKDAYS, *(name.capitalize() for name in WEEKDAYS if name.isascii())]})
DAY_OF_MONTH = Read(_day, "must be \"last\" or a day of the month from 1 to 31, not {raw!r}",
                    {"anyOf": [{"const": "last"}, {"type": "integer", "minimum": 1, "maximum": 31}], "default": "last"})
