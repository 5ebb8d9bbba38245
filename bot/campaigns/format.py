"""The campaign definition format: what a notice asks for, as plain dataclasses read from TOML.

A campaign file (``campaigns/*.toml``, described in ``docs/campaign-format.md``) declares the
campaign, its contact, its forms (the notice's annex tables) and its deadlines. This module reads
such a file into a :class:`CampaignDefinition` and reports *every* problem at once, each with
its place in the file, so a staff member can fix a file in one pass.
"""

from __future__ import annotations

import calendar
import enum
import re
import tomllib
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SCHEMA_VERSION = 1

KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,49}")
CAMPAIGN_KEY_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,89}")
OFFSET_PATTERN = re.compile(r"(\d+)([dhm])")
OFFSET_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
# The variables a reminder's template-message field may be filled from (see docs/campaign-format.md).
TEMPLATE_VARIABLES = ("campaign", "deadline", "unit", "due_at", "period", "issuer", "contact_phone")
# Field kinds of WeChat category templates (wechat-rules A2); a data key is one of these plus digits.
TEMPLATE_FIELD_TYPES = (
    "thing", "time", "date", "phrase", "character_string", "number", "letter", "symbol", "amount",
    "phone_number", "car_number", "name", "const", "enum", "keyword",
)
WEEKDAYS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
    "周一": 0, "周二": 1, "周三": 2, "周四": 3, "周五": 4, "周六": 5, "周日": 6,
    "星期一": 0, "星期二": 1, "星期三": 2, "星期四": 3, "星期五": 4, "星期六": 5, "星期日": 6,
}


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


# An answer above this asks "are you sure?" unless the campaign sets its own ([answers] implausible_above).
DEFAULT_IMPLAUSIBLE_ABOVE = 100_000


class Covers(str, enum.Enum):
    """Which days a monthly submission reports on."""

    THIS_MONTH = "this_month"
    PREVIOUS_MONTH = "previous_month"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a campaign file: where (a path and, when found, a line) and what."""

    where: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        at = f"line {self.line}: " if self.line else ""
        return f"{at}{self.where}: {self.message}" if self.where else f"{at}{self.message}"


class DefinitionError(Exception):
    """A campaign file has problems; :attr:`problems` lists all of them."""

    def __init__(self, source: str, problems: Sequence[Problem]):
        super().__init__(f"{source}: " + "; ".join(str(p) for p in problems))
        self.source = source
        self.problems = list(problems)


@dataclass(frozen=True)
class Field:
    """One blank of a form, as the notice prints it: ``label`` （ ） ``unit`` ``suffix``.

    ``answer_key`` is unique within the form and is what ``Answer.field_key`` stores
    (``"lectures"`` for a plain field, ``"study.lectures"`` for a statistics item's field,
    ``"r1.time"`` for a table cell). ``sep`` is the punctuation the notice puts before the
    field inside its item, so a clause can be shown as printed.
    """

    key: str
    answer_key: str
    type: FieldType
    label: str
    unit: str = ""
    suffix: str = ""
    sep: str = ""
    required: bool = True
    prompt: str = ""


@dataclass(frozen=True)
class StatItem:
    """One row (活动项目) of a statistics table, with the fields of its 进展情况 cell."""

    key: str
    number: int | None
    title: str
    requirement: str
    fields: tuple[Field, ...]

    def clause(self, answer_key: str) -> tuple[Field, ...]:
        """The fields printed in the same clause as ``answer_key`` (between two "；").

        "组织开展宣讲活动（ ）场，参与（ ）人次" is one clause: the 参与 blank means little alone.
        """
        clauses: list[list[Field]] = []
        for f in self.fields:
            if not clauses or f.sep in ("", "；", ";", "。"):
                clauses.append([])
            clauses[-1].append(f)
        for fields in clauses:
            if any(f.answer_key == answer_key for f in fields):
                return tuple(fields)
        raise KeyError(answer_key)


@dataclass(frozen=True)
class TableRow:
    """A pre-printed row of a table form (序号 and the first column's text)."""

    key: str
    number: int | None
    label: str


@dataclass(frozen=True)
class FormDefinition:
    """One form a unit fills in: the liaison table, a statistics table, a report, a summary."""

    key: str
    kind: FormKind
    title: str
    annex: str = ""
    note: str = ""
    assumption: str = ""
    fields: tuple[Field, ...] = ()
    items: tuple[StatItem, ...] = ()
    row_label: str = ""
    rows: tuple[TableRow, ...] = ()
    columns: tuple[Field, ...] = ()
    # Record forms only: the statistics form whose counts a liaison may also give with each of these
    # reports (周报); that table is then pre-filled with the sums.
    sums_into: str = ""
    # Record forms only: this is the liaison table registration (登记) walks.
    liaison: bool = False

    def answer_fields(self) -> tuple[Field, ...]:
        """Every field a unit answers, in the order the form asks them (header first)."""
        cells = tuple(
            replace(column, answer_key=f"{row.key}.{column.key}") for row in self.rows for column in self.columns
        )
        return self.fields + tuple(f for item in self.items for f in item.fields) + cells

    def answer_keys(self) -> frozenset[str]:
        """The ``Answer.field_key`` values this form can hold."""
        return frozenset(f.answer_key for f in self.answer_fields())

    def field(self, answer_key: str) -> Field:
        """The field stored under ``answer_key``."""
        for f in self.answer_fields():
            if f.answer_key == answer_key:
                return f
        raise KeyError(answer_key)

    def item_of(self, answer_key: str) -> StatItem | None:
        """The statistics item a field belongs to, None for header and record fields."""
        return next((i for i in self.items if any(f.answer_key == answer_key for f in i.fields)), None)

    def row_of(self, answer_key: str) -> TableRow | None:
        """The table row a cell belongs to, None outside tables."""
        row_key = answer_key.split(".", 1)[0]
        return next((r for r in self.rows if r.key == row_key and "." in answer_key), None)


@dataclass(frozen=True)
class Reminder:
    """One reminder time of one occurrence: its kind, offset from the due time, and the moment."""

    kind: ReminderKind
    offset: timedelta
    at: datetime


@dataclass(frozen=True)
class ReminderSchedule:
    """When to remind about a deadline: offsets before it, at it, and follow-ups after it."""

    key: str
    before: tuple[timedelta, ...] = ()
    at_due: bool = True
    overdue: tuple[timedelta, ...] = ()

    def reminders(self, due_at: datetime) -> list[Reminder]:
        """The reminder times for one occurrence due at ``due_at``, earliest first."""
        times = [Reminder(ReminderKind.BEFORE, -o, due_at - o) for o in self.before]
        if self.at_due:
            times.append(Reminder(ReminderKind.DUE, timedelta(0), due_at))
        times += [Reminder(ReminderKind.OVERDUE, o, due_at + o) for o in self.overdue]
        return sorted(times, key=lambda r: r.at)


@dataclass(frozen=True)
class MessageTemplate:
    """The WeChat template message for one reminder kind: its id and which value fills each field."""

    kind: ReminderKind
    template_id: str
    data: Mapping[str, str]


@dataclass(frozen=True)
class Occurrence:
    """One due time of a deadline: the period key submissions use, the moment, the days covered."""

    period_key: str
    due_at: datetime
    covers_from: date | None = None
    covers_until: date | None = None


def _moved(day: date, year: int) -> date:
    # 2-29 has no twin in most years; the day before is the faithful "end of February".
    if day.month == 2 and day.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return day.replace(year=year)


@dataclass(frozen=True)
class DeadlineDefinition:
    """Something units owe: one form, by one time, or every week or month within a span.

    The dates are those of the file's year; :meth:`occurrences` moves them to another year,
    recomputing weekdays and month ends in that year's calendar.
    """

    key: str
    kind: DeadlineKind
    title: str
    collects: str
    reminders: ReminderSchedule
    timezone: ZoneInfo
    year: int
    quote: str = ""
    note: str = ""
    due: datetime | None = None
    weekday: int | None = None
    at: time | None = None
    first_day: date | None = None
    last_day: date | None = None
    first_month: int | None = None
    last_month: int | None = None
    day: int | None = None
    covers: Covers = Covers.THIS_MONTH

    def occurrences(self, year: int | None = None) -> list[Occurrence]:
        """Every due time of this deadline in ``year`` (default: the campaign's year), in order."""
        year = self.year if year is None else year
        if self.kind is DeadlineKind.ONCE:
            assert self.due is not None
            due = datetime.combine(_moved(self.due.date(), year), self.due.time(), self.timezone)
            return [Occurrence("", due)]
        if self.kind is DeadlineKind.WEEKLY:
            return self._weekly(year)
        return self._monthly(year)

    def _weekly(self, year: int) -> list[Occurrence]:
        assert self.first_day and self.last_day and self.at is not None and self.weekday is not None
        first, last = _moved(self.first_day, year), _moved(self.last_day, year)
        day = first + timedelta(days=(self.weekday - first.weekday()) % 7)
        found = []
        while day <= last:
            # A week's report covers the days since the previous due day, never before the span.
            found.append(Occurrence(day.isoformat(), datetime.combine(day, self.at, self.timezone),
                                    max(first, day - timedelta(days=6)), day))
            day += timedelta(days=7)
        return found

    def _monthly(self, year: int) -> list[Occurrence]:
        assert self.first_month and self.last_month and self.at is not None
        found = []
        for month in range(self.first_month, self.last_month + 1):
            month_end = calendar.monthrange(year, month)[1]
            day = date(year, month, month_end if self.day is None else min(self.day, month_end))
            covered = date(year, month, 1)
            if self.covers is Covers.PREVIOUS_MONTH:
                covered = (covered - timedelta(days=1)).replace(day=1)
            covered_end = covered.replace(day=calendar.monthrange(covered.year, covered.month)[1])
            found.append(Occurrence(f"{year}-{month:02d}", datetime.combine(day, self.at, self.timezone),
                                    covered, covered_end))
        return found

    def rule(self) -> dict[str, Any]:
        """The rule as JSON-safe data, for the ``deadline.rule`` column."""
        values: dict[str, Any] = {
            "quote": self.quote,
            "reminders": {
                "key": self.reminders.key,
                "before": [int(o.total_seconds()) for o in self.reminders.before],
                "at_due": self.reminders.at_due,
                "overdue": [int(o.total_seconds()) for o in self.reminders.overdue],
            },
        }
        if self.kind is DeadlineKind.ONCE:
            assert self.due is not None
            values["due"] = self.occurrences()[0].due_at.isoformat()
        elif self.kind is DeadlineKind.WEEKLY:
            assert self.first_day and self.last_day and self.at is not None
            values.update(weekday=self.weekday, time=self.at.isoformat(),
                          first_day=_moved(self.first_day, self.year).isoformat(),
                          last_day=_moved(self.last_day, self.year).isoformat())
        else:
            assert self.at is not None
            values.update(first_month=self.first_month, last_month=self.last_month, day=self.day or "last",
                          time=self.at.isoformat(), covers=self.covers.value)
        return values


@dataclass(frozen=True)
class Contact:
    """The coordinating office's contact as the notice gives it."""

    person: str
    phone: str = ""
    mobile: str = ""
    fax: str = ""
    email: str = ""
    office: str = ""


@dataclass(frozen=True)
class KeyDate:
    """A day the notice marks (e.g. 6-16 安全宣传咨询日), for broadcasts."""

    day: date
    title: str


@dataclass(frozen=True)
class Slogans:
    """A list of campaign slogans printed in an annex, kept for broadcasts."""

    title: str
    lines: tuple[str, ...]
    annex: str = ""
    note: str = ""


@dataclass(frozen=True)
class UnitEntry:
    """A unit named in the campaign file; a missing join code is generated when loaded."""

    name: str
    group: str = ""
    join_code: str = ""


@dataclass(frozen=True)
class CampaignDefinition:
    """A whole campaign as its file declares it, instantiated for :attr:`year`."""

    key: str
    name: str
    issuer: str
    year: int
    timezone: ZoneInfo
    contact: Contact
    forms: tuple[FormDefinition, ...]
    deadlines: tuple[DeadlineDefinition, ...]
    reminder_schedules: Mapping[str, ReminderSchedule]
    message_templates: Mapping[ReminderKind, MessageTemplate]
    raw: Mapping[str, Any]
    document: str = ""
    theme: str = ""
    addressees: str = ""
    notice: str = ""
    path: str = ""
    unit_groups: tuple[str, ...] = ()
    key_dates: tuple[KeyDate, ...] = ()
    slogans: Slogans | None = None
    units: tuple[UnitEntry, ...] = ()
    # [registration]: open lets a person without a join code pick the unit; staff approve.
    open_registration: bool = False
    # [staff]: the codes that make the sender staff or a coordinator when sent at 登记.
    staff_code: str = ""
    coordinator_code: str = ""
    # [answers]: late changes to submitted tables, and the number that asks for confirmation.
    late: LatePolicy = LatePolicy.ACCEPT
    implausible_above: int = DEFAULT_IMPLAUSIBLE_ABOVE

    @property
    def slug(self) -> str:
        """The stored campaign's unique name: the file's key and the year it runs."""
        return f"{self.key}-{self.year}"

    def liaison_form(self) -> FormDefinition | None:
        """The liaison table (the record form marked ``liaison = true``), if the campaign has one."""
        return next((f for f in self.forms if f.liaison), None)

    def form(self, key: str) -> FormDefinition:
        """The form named ``key``."""
        for form in self.forms:
            if form.key == key:
                return form
        raise KeyError(key)

    def summed_fields(self, form_key: str) -> tuple[Field, ...]:
        """The counts a liaison may give with each report of form ``form_key`` (its ``sums_into``
        statistics form's count fields, stored under their own answer keys), else none."""
        target = self.form(form_key).sums_into
        if not target:
            return ()
        return tuple(f for f in self.form(target).answer_fields() if f.type is FieldType.COUNT)

    def deadline(self, key: str) -> DeadlineDefinition:
        """The deadline named ``key``."""
        for deadline in self.deadlines:
            if deadline.key == key:
                return deadline
        raise KeyError(key)

    def for_year(self, year: int) -> "CampaignDefinition":
        """The same campaign run in ``year``: dates moved, weekly and monthly rules recomputed."""
        return parse_definition(self.raw, self.path, year=year)


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _Place:
    """Where a value sits: a readable path, and regexes that find its line in the file text."""

    label: str = ""
    patterns: tuple[str, ...] = ()

    def key(self, name: str) -> "_Place":
        label = f"{self.label}.{name}" if self.label else name
        # Matches `name =`, `[name]`, `[[x.name]]` and `{ name =` alike.
        return _Place(label, self.patterns + (rf"(^|[\s\[.{{,]){re.escape(name)}\s*[=\].]",))

    def element(self, index: int, key: object) -> "_Place":
        if isinstance(key, str) and key:
            return _Place(f"{self.label}[{key}]", self.patterns + (rf'\bkey\s*=\s*"{re.escape(key)}"',))
        return _Place(f"{self.label}[{index + 1}]", self.patterns)


class _Reader:
    """Collects problems while reading one file's data into definitions."""

    def __init__(self, text: str):
        self.text = text
        self.problems: list[Problem] = []

    def problem(self, place: _Place, message: str) -> None:
        self.problems.append(Problem(place.label, message, self._line(place)))

    def _line(self, place: _Place) -> int | None:
        if not self.text or not place.patterns:
            return None
        position, found = 0, False
        for pattern in place.patterns:
            match = re.compile(pattern, re.M).search(self.text, position)
            if match is None:
                break
            position, found = match.start() + len(match.group(1) if match.groups() else ""), True
        return self.text.count("\n", 0, position) + 1 if found else None

    def table(self, data: Mapping[str, Any], place: _Place, allowed: Iterable[str]) -> None:
        """Report keys a table may not have (most often a typo of an allowed one)."""
        allowed = tuple(allowed)
        for name in data:
            if name not in allowed:
                self.problem(place.key(name), f"unknown setting {name!r}; expected one of {', '.join(allowed)}")

    def text_value(self, data: Mapping[str, Any], name: str, place: _Place, *, required: bool = True,
                   max_length: int = 500) -> str:
        value = data.get(name)
        if value is None:
            if required:
                self.problem(place, f"{name} is missing")
            return ""
        if not isinstance(value, str):
            self.problem(place.key(name), f"must be text in quotes, not {value!r}")
            return ""
        value = value.strip()
        if required and not value:
            self.problem(place.key(name), "must not be empty")
        elif len(value) > max_length:
            self.problem(place.key(name), f"is {len(value)} characters long; at most {max_length} fit")
        return value

    def key_value(self, data: Mapping[str, Any], place: _Place, pattern: re.Pattern[str] = KEY_PATTERN) -> str:
        value = self.text_value(data, "key", place)
        if value and not pattern.fullmatch(value):
            allowed = "-" if pattern is CAMPAIGN_KEY_PATTERN else "_"
            self.problem(place.key("key"),
                         f"{value!r} must be lower-case letters, digits and {allowed}, starting with a letter")
        return value

    def int_value(self, data: Mapping[str, Any], name: str, place: _Place, low: int, high: int,
                  required: bool = True) -> int | None:
        value = data.get(name)
        if value is None:
            if required:
                self.problem(place, f"{name} is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(place.key(name), f"must be a whole number from {low} to {high}, not {value!r}")
            return None
        return value

    def bool_value(self, data: Mapping[str, Any], name: str, place: _Place, default: bool) -> bool:
        value = data.get(name, default)
        if not isinstance(value, bool):
            self.problem(place.key(name), f"must be true or false, not {value!r}")
            return default
        return value

    def list_of(self, data: Mapping[str, Any], name: str, place: _Place, *, required: bool = False) -> list[Any]:
        value = data.get(name)
        if value is None:
            if required:
                self.problem(place, f"{name} is missing")
            return []
        if not isinstance(value, list):
            self.problem(place.key(name), "must be a list")
            return []
        return value

    def tables(self, data: Mapping[str, Any], name: str, place: _Place, *, required: bool = False
               ) -> list[tuple[_Place, Mapping[str, Any]]]:
        """The tables of an array ``name``, each with its place (named by its ``key``)."""
        found = []
        for index, entry in enumerate(self.list_of(data, name, place.key(name), required=required)):
            entry_place = place.key(name).element(index, entry.get("key") if isinstance(entry, dict) else None)
            if not isinstance(entry, dict):
                self.problem(entry_place, "must be a table of settings")
                continue
            found.append((entry_place, entry))
        return found

    def unique(self, keyed: Iterable[tuple[_Place, str]], what: str) -> None:
        """Report a key given twice among siblings."""
        seen: set[str] = set()
        for place, key in keyed:
            if key and key in seen:
                self.problem(place, f"duplicate {what} key {key!r}; every {what} needs its own key")
            seen.add(key)

    def choice(self, data: Mapping[str, Any], name: str, place: _Place, enum_class: type[enum.Enum],
               what: str, default: enum.Enum | None = None) -> Any:
        raw = data.get(name)
        if raw is None and default is not None:
            return default
        known = ", ".join(str(m.value) for m in enum_class)
        if raw is None:
            self.problem(place, f"{name} is missing; use one of {known}")
            return None
        try:
            return enum_class(raw)
        except ValueError:
            self.problem(place.key(name), f"unknown {what} {raw!r}; use one of {known}")
            return None


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is None else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is None else None
    return None


def _as_time(value: Any) -> time | None:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            return None
    return None


def _offset(raw: Any) -> timedelta | None:
    match = OFFSET_PATTERN.fullmatch(raw) if isinstance(raw, str) else None
    if not match:
        return None
    return timedelta(**{OFFSET_UNITS[match.group(2)]: int(match.group(1))})


FIELD_SETTINGS = ("key", "type", "label", "unit", "suffix", "sep", "required", "prompt")


def _field(r: _Reader, data: Mapping[str, Any], place: _Place, prefix: str = "") -> Field | None:
    r.table(data, place, FIELD_SETTINGS)
    key = r.key_value(data, place)
    field_type = r.choice(data, "type", place, FieldType, "field type")
    label = r.text_value(data, "label", place, required=False, max_length=200)
    unit = r.text_value(data, "unit", place, required=False, max_length=10)
    suffix = r.text_value(data, "suffix", place, required=False, max_length=20)
    if field_type is FieldType.COUNT and not unit:
        r.problem(place.key("unit"), "a count needs its unit as the notice prints it (场, 人次, 篇, 个, 次, 部, 人, 条次…)")
    if field_type is not None and field_type is not FieldType.COUNT and unit:
        r.problem(place.key("unit"), f"only count fields have a unit; this is a {field_type.value} field")
    if not label and not (field_type is FieldType.COUNT and suffix):
        r.problem(place, "label is missing; give the words the notice prints before the blank")
    sep = data.get("sep", "")
    if not isinstance(sep, str) or len(sep) > 2:
        r.problem(place.key("sep"), "must be the punctuation before the field, such as \"，\" or \"；\"")
        sep = ""
    required = r.bool_value(data, "required", place, True)
    prompt = r.text_value(data, "prompt", place, required=False, max_length=200)
    if not key or field_type is None:
        return None
    answer_key = f"{prefix}.{key}" if prefix else key
    return Field(key, answer_key, field_type, label, unit, suffix, sep, required, prompt)


def _fields(r: _Reader, data: Mapping[str, Any], name: str, place: _Place, prefix: str = "",
            required: bool = False) -> tuple[Field, ...]:
    entries = r.tables(data, name, place, required=required)
    r.unique(((p, e.get("key", "")) for p, e in entries), "field")
    found = (_field(r, e, p, prefix) for p, e in entries)
    return tuple(f for f in found if f is not None)


def _item(r: _Reader, data: Mapping[str, Any], place: _Place) -> StatItem | None:
    r.table(data, place, ("key", "number", "title", "requirement", "fields"))
    key = r.key_value(data, place)
    number = r.int_value(data, "number", place, 1, 99, required=False)
    title = r.text_value(data, "title", place, max_length=300)
    requirement = r.text_value(data, "requirement", place, required=False, max_length=1000)
    fields = _fields(r, data, "fields", place, prefix=key, required=True)
    if "fields" in data and not data["fields"]:
        r.problem(place.key("fields"), "a statistics item needs at least one field")
    return StatItem(key, number, title, requirement, fields) if key else None


FORM_SETTINGS = ("key", "kind", "title", "annex", "note", "assumption", "fields", "items", "row_label", "rows", "columns",
                 "sums_into", "liaison")


def _form(r: _Reader, data: Mapping[str, Any], place: _Place) -> FormDefinition | None:
    r.table(data, place, FORM_SETTINGS)
    key = r.key_value(data, place)
    kind = r.choice(data, "kind", place, FormKind, "form kind")
    title = r.text_value(data, "title", place, max_length=200)
    texts = {n: r.text_value(data, n, place, required=False, max_length=2000) for n in ("annex", "note", "assumption")}
    fields = _fields(r, data, "fields", place, required=kind is FormKind.RECORD)
    items: tuple[StatItem, ...] = ()
    rows: tuple[TableRow, ...] = ()
    columns: tuple[Field, ...] = ()
    row_label = ""
    if kind is FormKind.STATISTICS:
        entries = r.tables(data, "items", place, required=True)
        r.unique(((p, e.get("key", "")) for p, e in entries), "item")
        items = tuple(i for i in (_item(r, e, p) for p, e in entries) if i is not None)
    if kind is FormKind.TABLE:
        row_label = r.text_value(data, "row_label", place, max_length=100)
        columns = _fields(r, data, "columns", place, required=True)
        entries = r.tables(data, "rows", place, required=True)
        r.unique(((p, e.get("key", "")) for p, e in entries), "row")
        for row_place, entry in entries:
            r.table(entry, row_place, ("key", "number", "label"))
            row_key = r.key_value(entry, row_place)
            row = TableRow(row_key, r.int_value(entry, "number", row_place, 1, 999, required=False),
                           r.text_value(entry, "label", row_place, max_length=500))
            rows += (row,) if row_key else ()
    for name, wrong in (("items", kind is not FormKind.STATISTICS), ("rows", kind is not FormKind.TABLE),
                        ("columns", kind is not FormKind.TABLE)):
        if wrong and kind is not None and name in data:
            r.problem(place.key(name), f"only {'statistics' if name == 'items' else 'table'} forms have {name}")
    sums_into = r.text_value(data, "sums_into", place, required=False, max_length=50)
    if sums_into and kind is not None and kind is not FormKind.RECORD:
        r.problem(place.key("sums_into"), "only record forms (reports) have sums_into")
    liaison = r.bool_value(data, "liaison", place, False)
    if liaison and kind is not None and kind is not FormKind.RECORD:
        r.problem(place.key("liaison"), "only a record form can be the liaison table")
    if not key or kind is None:
        return None
    # Keys have no ".", so "item.field" and "row.column" answer keys never meet a header field's.
    return FormDefinition(key, kind, title, texts["annex"], texts["note"], texts["assumption"],
                          fields, items, row_label, rows, columns, sums_into, liaison)


def _check_sums(r: _Reader, forms: tuple[FormDefinition, ...], entries: list[tuple[_Place, Any]]) -> None:
    """Every ``sums_into`` names a statistics form of the same file."""
    statistics = {f.key for f in forms if f.kind is FormKind.STATISTICS}
    for form, (place, _entry) in zip(forms, entries):
        if form.sums_into and form.sums_into not in statistics:
            known = ", ".join(sorted(statistics)) or "none"
            r.problem(place.key("sums_into"),
                      f"sums into {form.sums_into!r}, which is not a statistics form of this file (statistics forms: {known})")


def _schedule(r: _Reader, key: str, data: Any, place: _Place) -> ReminderSchedule | None:
    if not isinstance(data, dict):
        r.problem(place, "must be a table with before, at_due and overdue")
        return None
    r.table(data, place, ("before", "at_due", "overdue"))
    offsets: dict[str, tuple[timedelta, ...]] = {}
    for name in ("before", "overdue"):
        found = []
        for raw in r.list_of(data, name, place):
            offset = _offset(raw)
            if offset is None or offset <= timedelta(0):
                r.problem(place.key(name), f"offset {raw!r} is not like 3d, 12h or 30m (days, hours, minutes)")
            else:
                found.append(offset)
        offsets[name] = tuple(sorted(set(found), reverse=name == "before"))
    return ReminderSchedule(key, offsets["before"], r.bool_value(data, "at_due", place, True), offsets["overdue"])


def _message_template(r: _Reader, name: str, data: Any, place: _Place) -> MessageTemplate | None:
    try:
        kind = ReminderKind(name)
    except ValueError:
        r.problem(place, f"unknown reminder kind {name!r}; use one of {', '.join(k.value for k in ReminderKind)}")
        return None
    if not isinstance(data, dict):
        r.problem(place, "must be a table with template_id and data")
        return None
    r.table(data, place, ("template_id", "data"))
    template_id = r.text_value(data, "template_id", place, required=False, max_length=100)
    values = data.get("data", {})
    if not isinstance(values, dict):
        r.problem(place.key("data"), "must be a table of template field = value name")
        values = {}
    type_pattern = "|".join(TEMPLATE_FIELD_TYPES)
    for field_name, variable in values.items():
        if not re.fullmatch(rf"({type_pattern})\d+", field_name):
            r.problem(place.key("data").key(field_name),
                      "is not a WeChat template field name (a type such as thing, time or phrase, then digits)")
        if variable not in TEMPLATE_VARIABLES:
            r.problem(place.key("data").key(field_name),
                      f"unknown value {variable!r}; use one of {', '.join(TEMPLATE_VARIABLES)}")
    return MessageTemplate(kind, template_id, dict(values))


DEADLINE_SETTINGS = ("key", "kind", "title", "collects", "reminders", "quote", "note", "due", "weekday", "time",
                     "from", "until", "from_month", "until_month", "day", "covers")


def _deadline(r: _Reader, data: Mapping[str, Any], place: _Place, context: "_Context") -> DeadlineDefinition | None:
    r.table(data, place, DEADLINE_SETTINGS)
    key = r.key_value(data, place)
    kind = r.choice(data, "kind", place, DeadlineKind, "deadline kind")
    title = r.text_value(data, "title", place, max_length=200)
    collects = r.text_value(data, "collects", place, max_length=50)
    if collects and collects not in context.form_keys:
        known = ", ".join(sorted(context.form_keys)) or "none"
        r.problem(place.key("collects"), f"collects form {collects!r}, which this file does not define (forms: {known})")
    schedule_key = r.text_value(data, "reminders", place, max_length=50)
    schedule = context.schedules.get(schedule_key)
    if schedule_key and schedule is None:
        known = ", ".join(sorted(context.schedules)) or "none"
        r.problem(place.key("reminders"), f"unknown reminder schedule {schedule_key!r} (reminder_schedules: {known})")
    quote = r.text_value(data, "quote", place, required=False, max_length=1000)
    note = r.text_value(data, "note", place, required=False, max_length=1000)
    common = dict(key=key, title=title, collects=collects, quote=quote, note=note, timezone=context.timezone,
                  year=context.year)
    parsers: dict[DeadlineKind, Callable[..., dict[str, Any] | None]] = {
        DeadlineKind.ONCE: _once_rule, DeadlineKind.WEEKLY: _weekly_rule, DeadlineKind.MONTHLY: _monthly_rule,
    }
    rule = parsers[kind](r, data, place, context.file_year) if kind is not None else None
    if not key or kind is None or rule is None or schedule is None or not collects:
        return None
    return DeadlineDefinition(kind=kind, reminders=schedule, **common, **rule)


def _in_year(r: _Reader, place: _Place, day: date, year: int) -> bool:
    if day.year != year:
        r.problem(place, f"{day.isoformat()} is outside the campaign year {year}")
        return False
    return True


def _once_rule(r: _Reader, data: Mapping[str, Any], place: _Place, year: int) -> dict[str, Any] | None:
    _only(r, data, place, ("due",), "once")
    due = _as_datetime(data.get("due"))
    if due is None:
        r.problem(place.key("due"), "needs a local date and time such as 2023-06-28T17:00:00 (no time zone)")
        return None
    return {"due": due} if _in_year(r, place.key("due"), due.date(), year) else None


def _weekly_rule(r: _Reader, data: Mapping[str, Any], place: _Place, year: int) -> dict[str, Any] | None:
    _only(r, data, place, ("weekday", "time", "from", "until"), "weekly")
    weekday = WEEKDAYS.get(str(data.get("weekday", "")).strip().lower())
    if weekday is None:
        r.problem(place.key("weekday"), f"unknown weekday {data.get('weekday')!r}; use monday … sunday or 周一 … 周日")
    at = _time_of(r, data, place)
    first, last = _as_date(data.get("from")), _as_date(data.get("until"))
    for name, day in (("from", first), ("until", last)):
        if day is None:
            r.problem(place.key(name), "needs a date such as 2023-06-01")
    if first is None or last is None or weekday is None or at is None:
        return None
    if not (_in_year(r, place.key("from"), first, year) and _in_year(r, place.key("until"), last, year)):
        return None
    if first > last:
        r.problem(place.key("until"), f"{last.isoformat()} comes before from {first.isoformat()}")
        return None
    if not any((first + timedelta(days=n)).weekday() == weekday for n in range((last - first).days + 1)):
        name = calendar.day_name[weekday]
        r.problem(place.key("weekday"), f"no {name} falls between {first.isoformat()} and {last.isoformat()}, "
                                        "so this weekly rule yields no date")
        return None
    return {"weekday": weekday, "at": at, "first_day": first, "last_day": last}


def _monthly_rule(r: _Reader, data: Mapping[str, Any], place: _Place, year: int) -> dict[str, Any] | None:
    _only(r, data, place, ("from_month", "until_month", "day", "time", "covers"), "monthly")
    first = r.int_value(data, "from_month", place, 1, 12)
    last = r.int_value(data, "until_month", place, 1, 12)
    raw_day = data.get("day", "last")
    day = None if raw_day == "last" else raw_day
    if day is not None and (isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31):
        r.problem(place.key("day"), f"must be \"last\" or a day of the month from 1 to 31, not {raw_day!r}")
        return None
    covers = r.choice(data, "covers", place, Covers, "covered period", default=Covers.THIS_MONTH)
    at = _time_of(r, data, place)
    if first is None or last is None or at is None or covers is None:
        return None
    if first > last:
        r.problem(place.key("until_month"), f"month {last} comes before from_month {first} (a campaign stays in its year)")
        return None
    return {"first_month": first, "last_month": last, "day": day, "at": at, "covers": covers}


def _time_of(r: _Reader, data: Mapping[str, Any], place: _Place) -> time | None:
    at = _as_time(data.get("time"))
    if at is None:
        r.problem(place.key("time"), "needs a time of day such as 18:00:00")
    return at


def _only(r: _Reader, data: Mapping[str, Any], place: _Place, allowed: tuple[str, ...], kind: str) -> None:
    for name in ("due", "weekday", "time", "from", "until", "from_month", "until_month", "day", "covers"):
        if name in data and name not in allowed:
            r.problem(place.key(name), f"{kind} deadlines do not use {name!r}; they use {', '.join(allowed)}")


@dataclass(frozen=True)
class _Context:
    """What deadlines are checked against: the forms, schedules, zone and year already read."""

    form_keys: frozenset[str]
    schedules: Mapping[str, ReminderSchedule]
    timezone: ZoneInfo
    year: int
    file_year: int


CAMPAIGN_SETTINGS = ("key", "name", "issuer", "year", "timezone", "document", "theme", "addressees", "notice",
                     "unit_groups")
TOP_SETTINGS = ("schema_version", "campaign", "contact", "key_dates", "reminder_schedules", "message_templates",
                "forms", "deadlines", "slogans", "units", "registration", "staff", "answers")
CODE_PATTERN = re.compile(r"[A-Za-z0-9]{6,32}")


def _section(r: _Reader, data: Mapping[str, Any], name: str, required: bool = True) -> Mapping[str, Any]:
    value = data.get(name)
    if value is None:
        if required:
            r.problem(_Place().key(name), f"the [{name}] section is missing")
        return {}
    if not isinstance(value, dict):
        r.problem(_Place().key(name), f"must be a [{name}] section")
        return {}
    return value


def _timezone(r: _Reader, data: Mapping[str, Any], place: _Place) -> ZoneInfo:
    name = r.text_value(data, "timezone", place, required=False, max_length=64) or "Asia/Shanghai"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem(place.key("timezone"), f"unknown time zone {name!r} (e.g. Asia/Shanghai)")
        return ZoneInfo("Asia/Shanghai")


def _contact(r: _Reader, data: Mapping[str, Any]) -> Contact:
    place = _Place().key("contact")
    names = ("person", "phone", "mobile", "fax", "email", "office")
    r.table(data, place, names)
    values = {n: r.text_value(data, n, place, required=n == "person", max_length=100) for n in names}
    if not (values["phone"] or values["mobile"] or values["email"]):
        r.problem(place, "give at least one of phone, mobile or email, so units can reach the office")
    return Contact(**values)


def _key_dates(r: _Reader, data: Mapping[str, Any], year: int, file_year: int) -> tuple[KeyDate, ...]:
    found = []
    for place, entry in r.tables(data, "key_dates", _Place()):
        r.table(entry, place, ("date", "title"))
        day = _as_date(entry.get("date"))
        title = r.text_value(entry, "title", place, max_length=200)
        if day is None:
            r.problem(place.key("date"), "needs a date such as 2023-06-16")
        elif _in_year(r, place.key("date"), day, file_year):
            found.append(KeyDate(_moved(day, year), title))
    return tuple(found)


def _slogans(r: _Reader, data: Mapping[str, Any]) -> Slogans | None:
    section = _section(r, data, "slogans", required=False)
    if not section:
        return None
    place = _Place().key("slogans")
    r.table(section, place, ("annex", "title", "note", "lines"))
    lines = r.list_of(section, "lines", place, required=True)
    if not lines or not all(isinstance(line, str) and line.strip() for line in lines):
        r.problem(place.key("lines"), "must be a non-empty list of slogans in quotes")
    return Slogans(r.text_value(section, "title", place, max_length=200),
                   tuple(str(line).strip() for line in lines),
                   r.text_value(section, "annex", place, required=False), r.text_value(section, "note", place, required=False))


def _units(r: _Reader, data: Mapping[str, Any], groups: tuple[str, ...]) -> tuple[UnitEntry, ...]:
    entries = r.tables(data, "units", _Place())
    found = []
    seen: set[str] = set()
    for place, entry in entries:
        r.table(entry, place, ("name", "group", "join_code"))
        name = r.text_value(entry, "name", place, max_length=200)
        group = r.text_value(entry, "group", place, required=False, max_length=100)
        code = r.text_value(entry, "join_code", place, required=False, max_length=32)
        if name in seen:
            r.problem(place.key("name"), f"unit {name!r} is listed twice")
        if groups and group and group not in groups:
            r.problem(place.key("group"), f"group {group!r} is not one of unit_groups ({', '.join(groups)})")
        if code and not CODE_PATTERN.fullmatch(code):
            r.problem(place.key("join_code"), "must be 6 to 32 letters and digits")
        seen.add(name)
        found.append(UnitEntry(name, group, code))
    return tuple(found)


@dataclass(frozen=True)
class _Settings:
    open_registration: bool
    staff_code: str
    coordinator_code: str
    late: LatePolicy
    implausible_above: int


def _settings(r: _Reader, data: Mapping[str, Any], forms: tuple[FormDefinition, ...],
              units: tuple[UnitEntry, ...]) -> _Settings:
    """[registration], [staff] and [answers], and the one liaison table they rely on."""
    registration = _section(r, data, "registration", required=False)
    place = _Place().key("registration")
    r.table(registration, place, ("open",))
    open_registration = r.bool_value(registration, "open", place, False)
    staff = _section(r, data, "staff", required=False)
    place = _Place().key("staff")
    r.table(staff, place, ("join_code", "coordinator_code"))
    codes = {n: r.text_value(staff, n, place, required=False, max_length=32) for n in ("join_code", "coordinator_code")}
    unit_codes = {u.join_code.upper() for u in units if u.join_code}
    for name, code in codes.items():
        if code and not CODE_PATTERN.fullmatch(code):
            r.problem(place.key(name), "must be 6 to 32 letters and digits")
        elif code and code.upper() in unit_codes:
            r.problem(place.key(name), "is also a unit's join code; staff need a code of their own")
    if codes["join_code"] and codes["join_code"].upper() == codes["coordinator_code"].upper():
        r.problem(place.key("coordinator_code"), "must differ from the staff join_code")
    answers = _section(r, data, "answers", required=False)
    place = _Place().key("answers")
    r.table(answers, place, ("late", "implausible_above"))
    late = r.choice(answers, "late", place, LatePolicy, "late policy", LatePolicy.ACCEPT)
    limit = r.int_value(answers, "implausible_above", place, 1, 10**12, required=False)
    liaison_forms = [f for f in forms if f.liaison]
    if len(liaison_forms) > 1:
        r.problem(_Place().key("forms"), f"only one form can be the liaison table; "
                                         f"{', '.join(f.key for f in liaison_forms)} all say liaison = true")
    if open_registration and not liaison_forms:
        r.problem(_Place().key("registration").key("open"),
                  "open registration needs the liaison table: mark its form liaison = true")
    return _Settings(open_registration, codes["join_code"].upper(), codes["coordinator_code"].upper(),
                     late or LatePolicy.ACCEPT, limit or DEFAULT_IMPLAUSIBLE_ABOVE)


def parse_definition(data: Mapping[str, Any], source: str = "", *, year: int | None = None,
                     text: str = "") -> CampaignDefinition:
    """Read parsed TOML ``data`` into a definition for ``year`` (default: the file's year).

    Raises :class:`DefinitionError` listing every problem; ``text`` (the file's text) lets the
    problems name their line.
    """
    definition, problems = _read(data, source, year, text)
    if problems or definition is None:
        raise DefinitionError(source, problems)
    return definition


def _read(data: Mapping[str, Any], source: str, year: int | None, text: str
          ) -> tuple[CampaignDefinition | None, list[Problem]]:
    r = _Reader(text)
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        shown = "is missing" if version is None else f"is {version!r}"
        r.problem(_Place().key("schema_version"), f"{shown}; this safetybot reads schema_version = {SCHEMA_VERSION}")
        return None, r.problems
    r.table(data, _Place(), TOP_SETTINGS)
    campaign = _section(r, data, "campaign")
    place = _Place().key("campaign")
    r.table(campaign, place, CAMPAIGN_SETTINGS)
    key = r.key_value(campaign, place, CAMPAIGN_KEY_PATTERN)
    file_year = r.int_value(campaign, "year", place, 2000, 2100) or 2000
    target_year = file_year if year is None else year
    timezone = _timezone(r, campaign, place)
    texts = {n: r.text_value(campaign, n, place, required=n in ("name", "issuer"), max_length=200)
             for n in ("name", "issuer", "document", "theme", "addressees", "notice")}
    groups = tuple(str(g) for g in r.list_of(campaign, "unit_groups", place))
    contact = _contact(r, _section(r, data, "contact"))
    schedules_data = _section(r, data, "reminder_schedules")
    schedules = {}
    for name, entry in schedules_data.items():
        schedule = _schedule(r, name, entry, _Place().key("reminder_schedules").key(name))
        if schedule is not None:
            schedules[name] = schedule
    templates = {}
    for name, entry in _section(r, data, "message_templates", required=False).items():
        template = _message_template(r, name, entry, _Place().key("message_templates").key(name))
        if template is not None:
            templates[template.kind] = template
    form_entries = r.tables(data, "forms", _Place(), required=True)
    r.unique(((p, e.get("key", "")) for p, e in form_entries), "form")
    forms = tuple(f for f in (_form(r, e, p) for p, e in form_entries) if f is not None)
    if len(forms) == len(form_entries):
        _check_sums(r, forms, form_entries)
    context = _Context(frozenset(str(e.get("key", "")) for _, e in form_entries), schedules, timezone,
                       target_year, file_year)
    deadline_entries = r.tables(data, "deadlines", _Place(), required=True)
    r.unique(((p, e.get("key", "")) for p, e in deadline_entries), "deadline")
    deadlines = tuple(d for d in (_deadline(r, e, p, context) for p, e in deadline_entries) if d is not None)
    units = _units(r, data, groups)
    settings = _settings(r, data, forms, units)
    definition = CampaignDefinition(
        key=key, name=texts["name"], issuer=texts["issuer"], year=target_year, timezone=timezone, contact=contact,
        forms=forms, deadlines=deadlines, reminder_schedules=schedules, message_templates=templates,
        raw=_json_safe(data), document=texts["document"], theme=texts["theme"], addressees=texts["addressees"],
        notice=texts["notice"], path=source, unit_groups=groups,
        key_dates=_key_dates(r, data, target_year, file_year), slogans=_slogans(r, data),
        units=units, open_registration=settings.open_registration, staff_code=settings.staff_code,
        coordinator_code=settings.coordinator_code, late=settings.late, implausible_above=settings.implausible_above,
    )
    return (None if r.problems else definition), r.problems


def _json_safe(value: Any) -> Any:
    """TOML's dates and times as ISO text, so the raw definition fits a JSON column."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, (date, time)):
        return value.isoformat()
    return value


def _read_file(path: Path) -> tuple[Mapping[str, Any] | None, str, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, "", [Problem("", f"cannot read the file: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return None, "", [Problem("", "is not UTF-8 text; save it as UTF-8")]
    try:
        return tomllib.loads(text), text, []
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        return None, text, [Problem("", f"not valid TOML: {exc}", int(line.group(1)) if line else None)]


def check_file(path: str | Path) -> list[Problem]:
    """Every problem of the campaign file at ``path``; an empty list means it can be loaded."""
    data, text, problems = _read_file(Path(path))
    if data is None:
        return problems
    return _read(data, str(path), None, text)[1]


def load_definition(path: str | Path, year: int | None = None) -> CampaignDefinition:
    """The campaign file at ``path`` as a definition for ``year`` (default: the file's year).

    Raises :class:`DefinitionError` with every problem when the file is not valid.
    """
    data, text, problems = _read_file(Path(path))
    if data is None:
        raise DefinitionError(str(path), problems)
    return parse_definition(data, str(path), year=year, text=text)
