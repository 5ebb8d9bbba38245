"""The campaign file as pydantic models: one model per table of the TOML file, checking its own settings.

A campaign file (``campaigns/*.toml``, described in ``docs/campaign-format.md``) is validated by
:class:`CampaignFile`. Settings are typed strictly (TOML's types, no coercion) and unknown ones are
refused. Rules that look across sections (the form a deadline collects, the year a date must lie
in) read a :class:`FileIndex` of the raw file, given as the validation context, so that one broken
section does not hide the problems of another. A rule in our words raises
:class:`~bot.campaigns.values.Wrong`; pydantic's own errors are worded by ``bot.campaigns.problems``.
:func:`json_schema` gives the JSON Schema that editors check a file with as it is typed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Mapping, Sequence, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import InitErrorDetails, core_schema

from bot.campaigns.values import (
    CAMPAIGN_KEY_PATTERN,
    CODE_PATTERN,
    DAY,
    DAY_OF_MONTH,
    KEY_DAY,
    KEY_PATTERN,
    LOCAL_DATETIME,
    OFFSET,
    SCHEMA_VERSION,
    TEMPLATE_FIELD_PATTERN,
    TIME_OF_DAY,
    WEEKDAY,
    Covers,
    DeadlineKind,
    FieldType,
    FormKind,
    LatePolicy,
    NoticeVariable,
    TemplateVariable,
    Wrong,
)

Key = Annotated[str, StringConstraints(min_length=1, pattern=KEY_PATTERN)]
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
Number = Annotated[int | None, Field(ge=1, le=99)]
Choice = Strict(False)  # an enum is read from its value, which strict mode alone refuses


@dataclass(frozen=True)
class FileIndex:
    """What rules across sections check against, read from the raw file before it is validated.

    Read leniently: a section that is itself broken gets its own problems, and here only
    contributes what can be made out of it.
    """

    year: int | None = None  # the year the file's dates are in, when it is a valid one
    forms: frozenset[str] = frozenset()
    statistics_forms: frozenset[str] = frozenset()
    has_liaison_form: bool = False
    schedules: frozenset[str] = frozenset()
    unit_groups: tuple[str, ...] = ()
    unit_codes: frozenset[str] = frozenset()  # upper-case

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> "FileIndex":
        """The index of parsed TOML ``data``."""
        def tables(name: str) -> list[dict[str, Any]]:
            found = data.get(name)
            return [entry for entry in found if isinstance(entry, dict)] if isinstance(found, list) else []

        campaign = data.get("campaign")
        year = campaign.get("year") if isinstance(campaign, dict) else None
        groups = campaign.get("unit_groups") if isinstance(campaign, dict) else None
        schedules = data.get("reminder_schedules")
        forms = tables("forms")
        return cls(
            year=year if type(year) is int and 2000 <= year <= 2100 else None,
            forms=frozenset(form["key"] for form in forms if isinstance(form.get("key"), str) and form["key"]),
            statistics_forms=frozenset(form["key"] for form in forms
                                       if isinstance(form.get("key"), str) and form.get("kind") == "statistics"),
            has_liaison_form=any(form.get("liaison") is True for form in forms),
            schedules=frozenset(n for n, s in schedules.items() if isinstance(s, dict)) if isinstance(schedules, dict)
            else frozenset(),
            unit_groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
            unit_codes=frozenset(u["join_code"].strip().upper() for u in tables("units")
                                 if isinstance(u.get("join_code"), str) and u["join_code"].strip()),
        )


def _index(info: ValidationInfo) -> FileIndex:
    return info.context if isinstance(info.context, FileIndex) else FileIndex()


def _in_year(day: dt.date, info: ValidationInfo) -> None:
    year = _index(info).year
    if year is not None and day.year != year:
        raise Wrong(f"{day.isoformat()} is outside the campaign year {year}")


def _also(handler: ValidatorFunctionWrapHandler, value: Any, found: Sequence[tuple[tuple[int | str, ...], Wrong]]) -> Any:
    """``value`` validated by ``handler``, with the problems ``found`` in it beside handler's own.

    For rules over a whole list (a key given twice), checked on the raw list so that a mistake in
    one entry does not hide them. ``found`` gives each problem's place inside ``value``.
    """
    try:
        result, errors = handler(value), []
    except ValidationError as error:
        errors = [InitErrorDetails(type=e["type"], loc=e["loc"], input=e["input"], ctx=e.get("ctx", {}))
                  for e in error.errors(include_url=False)]
    if not errors and not found:
        return result
    raise ValidationError.from_exception_data("campaign file", errors + [
        InitErrorDetails(type="value_error", loc=loc, input=value, ctx={"error": wrong}) for loc, wrong in found])


def _unique_keys(what: str) -> WrapValidator:
    """Every entry of a list of tables has its own ``key`` (the second of two is reported)."""
    def check(entries: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        seen: set[str] = set()
        found = []
        for index, entry in enumerate(entries if isinstance(entries, list) else ()):
            key = entry.get("key") if isinstance(entry, dict) else None
            if not isinstance(key, str) or not key:
                continue
            if key in seen:
                found.append(((index,), Wrong(f"duplicate {what} key {key!r}; every {what} needs its own key")))
            seen.add(key)
        return _also(handler, entries, found)
    return WrapValidator(check)


class Table(BaseModel):
    """A table of a campaign file: TOML's types without coercion, unknown settings refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, str_strip_whitespace=True)

    @classmethod
    def misplaced(cls, name: str) -> str | None:
        """The sentence for ``name``, a setting of another kind of this table, given here."""
        return None


class Campaign(Table):
    """``[campaign]``: the campaign, its issuer and the year its dates are in."""

    key: Annotated[str, StringConstraints(min_length=1, pattern=CAMPAIGN_KEY_PATTERN)]
    name: str = Field(min_length=1, max_length=200)
    issuer: str = Field(min_length=1, max_length=200)
    year: int = Field(ge=2000, le=2100)
    timezone: str = Field("Asia/Shanghai", max_length=64)
    document: str = Field("", max_length=200)
    theme: str = Field("", max_length=200)
    addressees: str = Field("", max_length=200)
    notice: str = Field("", max_length=200)
    unit_groups: list[str] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name or "Asia/Shanghai")
        except (ZoneInfoNotFoundError, ValueError):
            raise Wrong(f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None
        return name or "Asia/Shanghai"


class Contact(Table):
    """``[contact]``: the coordinating office, as the notice's 联系人 line gives it."""

    person: str = Field(min_length=1, max_length=100)
    phone: str = Field("", max_length=100)
    mobile: str = Field("", max_length=100)
    fax: str = Field("", max_length=100)
    email: str = Field("", max_length=100)
    office: str = Field("", max_length=100)

    @model_validator(mode="after")
    def _reachable(self) -> "Contact":
        if not (self.phone or self.mobile or self.email):
            raise Wrong("give at least one of phone, mobile or email, so units can reach the office")
        return self


class KeyDate(Table):
    """``[[key_dates]]``: a day the notice marks, for broadcasts."""

    date: Annotated[dt.date, KEY_DAY]
    title: str = Field(min_length=1, max_length=200)

    @field_validator("date")
    @classmethod
    def _in_the_year(cls, day: dt.date, info: ValidationInfo) -> dt.date:
        _in_year(day, info)
        return day


class ReminderSchedule(Table):
    """``[reminder_schedules.<name>]``: offsets before the due time, at it, and after it."""

    before: list[Annotated[dt.timedelta, OFFSET]] = []
    at_due: bool = True
    overdue: list[Annotated[dt.timedelta, OFFSET]] = []


class MessageTemplate(Table):
    """``[message_templates.<kind>]``: the WeChat template message for one reminder kind."""

    template_id: str = Field("", max_length=100)
    data: dict[Annotated[str, StringConstraints(pattern=TEMPLATE_FIELD_PATTERN)], TemplateVariable] = {}


class NoticeTemplate(Table):
    """``[message_templates.notice]``: the WeChat template message an announcement (通知) goes by
    outside a person's 48 hours; its link opens the full text."""

    template_id: str = Field("", max_length=100)
    data: dict[Annotated[str, StringConstraints(pattern=TEMPLATE_FIELD_PATTERN)], NoticeVariable] = {}


class MessageTemplates(Table):
    """``[message_templates]``: one template message per reminder kind, and one for announcements."""

    before: MessageTemplate | None = None
    due: MessageTemplate | None = None
    overdue: MessageTemplate | None = None
    notice: NoticeTemplate | None = None


class FormField(Table):
    """A field (or a table's column): one blank of a form, ``label`` （ ） ``unit`` ``suffix``."""

    key: Key
    type: Annotated[FieldType, Choice]
    label: str = Field("", max_length=200)
    unit: str = Field("", max_length=10, validate_default=True)
    suffix: str = Field("", max_length=20)
    # Not stripped: the punctuation is kept as the notice prints it.
    sep: Annotated[str, StringConstraints(strip_whitespace=False, max_length=2)] = ""
    required: bool = True
    prompt: str = Field("", max_length=200)

    @field_validator("unit")
    @classmethod
    def _counts_have_units(cls, unit: str, info: ValidationInfo) -> str:
        kind = info.data.get("type")
        if kind is FieldType.COUNT and not unit:
            raise Wrong("a count needs its unit as the notice prints it (场, 人次, 篇, 个, 次, 部, 人, 条次…)")
        if kind is not None and kind is not FieldType.COUNT and unit:
            raise Wrong(f"only count fields have a unit; this is a {kind.value} field")
        return unit

    @field_validator("sep", mode="wrap")
    @classmethod
    def _punctuation(cls, sep: Any, handler: ValidatorFunctionWrapHandler) -> str:
        try:
            return str(handler(sep))
        except ValidationError:
            raise Wrong("must be the punctuation before the field, such as \"，\" or \"；\"") from None

    @model_validator(mode="after")
    def _labelled(self) -> "FormField":
        # "（ ）人观看" has no words before its blank: a count may go by its unit and suffix alone.
        if not self.label and not (self.type is FieldType.COUNT and self.suffix):
            raise Wrong("label is missing; give the words the notice prints before the blank")
        return self


Fields = Annotated[list[FormField], _unique_keys("field")]


class Item(Table):
    """``[[forms.items]]``: one row (活动项目) of a statistics table, with the fields of its 进展情况 cell."""

    key: Key
    number: Number = None
    title: str = Field(min_length=1, max_length=300)
    requirement: str = Field("", max_length=1000)
    fields: Fields = Field(json_schema_extra={"minItems": 1})

    @field_validator("fields")
    @classmethod
    def _not_empty(cls, fields: list[FormField]) -> list[FormField]:
        if not fields:
            raise Wrong("a statistics item needs at least one field")
        return fields


class Row(Table):
    """A pre-printed row of a table form (序号 and the first column's text)."""

    key: Key
    number: Annotated[int | None, Field(ge=1, le=999)] = None
    label: str = Field(min_length=1, max_length=500)


class Form(Table):
    """``[[forms]]``: what every kind of form has. A form is one of the kinds below, by its ``kind``."""

    key: Key
    kind: FormKind
    title: str = Field(min_length=1, max_length=200)
    annex: str = Field("", max_length=2000)
    note: str = Field("", max_length=2000)
    assumption: str = Field("", max_length=2000)
    fields: Fields = []

    @classmethod
    def misplaced(cls, name: str) -> str | None:
        return {
            "items": "only statistics forms have items", "row_label": "only table forms have row_label",
            "rows": "only table forms have rows", "columns": "only table forms have columns",
            "sums_into": "only record forms (reports) have sums_into",
            "liaison": "only a record form can be the liaison table",
        }.get(name)


class StatisticsForm(Form):
    """A statistics table: header fields, then items each with their fields."""

    kind: Literal[FormKind.STATISTICS]
    items: Annotated[list[Item], _unique_keys("item")]


class TableForm(Form):
    """A table of pre-printed rows, the same columns in each."""

    kind: Literal[FormKind.TABLE]
    row_label: str = Field(min_length=1, max_length=100)
    rows: Annotated[list[Row], _unique_keys("row")]
    columns: Fields


class RecordForm(Form):
    """A list of fields: the liaison table, a weekly report, a plan, a summary."""

    kind: Literal[FormKind.RECORD]
    fields: Fields
    # A weekly report may carry the week's counts of this statistics form (docs/campaign-format.md).
    sums_into: str = Field("", max_length=50)
    liaison: bool = False

    @field_validator("sums_into")
    @classmethod
    def _a_statistics_form(cls, target: str, info: ValidationInfo) -> str:
        statistics = _index(info).statistics_forms
        if target and target not in statistics:
            raise Wrong(f"sums into {target!r}, which is not a statistics form of this file "
                        f"(statistics forms: {', '.join(sorted(statistics)) or 'none'})")
        return target


def _one_liaison_table(forms: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """At most one form says ``liaison = true`` (registration walks that one)."""
    entries = forms if isinstance(forms, list) else []
    marked = [str(f.get("key", "")) for f in entries if isinstance(f, dict) and f.get("liaison") is True]
    found = [((), Wrong(f"only one form can be the liaison table; {', '.join(marked)} all say liaison = true"))]
    return _also(handler, forms, found if len(marked) > 1 else [])


# Listed in the order their settings are documented: a mistake names them in this order.
FormEntry = Annotated[StatisticsForm | TableForm | RecordForm, Discriminator("kind")]


class Deadline(Table):
    """``[[deadlines]]``: what every kind of deadline has. A deadline is one of the kinds below."""

    key: Key
    kind: DeadlineKind
    title: str = Field(min_length=1, max_length=200)
    collects: str = Field(min_length=1, max_length=50)
    reminders: str = Field(min_length=1, max_length=50)
    quote: str = Field("", max_length=1000)
    note: str = Field("", max_length=1000)

    @field_validator("collects")
    @classmethod
    def _a_form_of_the_file(cls, form: str, info: ValidationInfo) -> str:
        forms = _index(info).forms
        if form not in forms:
            raise Wrong(f"collects form {form!r}, which this file does not define "
                        f"(forms: {', '.join(sorted(forms)) or 'none'})")
        return form

    @field_validator("reminders")
    @classmethod
    def _a_schedule_of_the_file(cls, name: str, info: ValidationInfo) -> str:
        schedules = _index(info).schedules
        if name not in schedules:
            raise Wrong(f"unknown reminder schedule {name!r} (reminder_schedules: {', '.join(sorted(schedules)) or 'none'})")
        return name

    @classmethod
    def misplaced(cls, name: str) -> str | None:
        kind = get_args(cls.model_fields["kind"].annotation)[0].value
        own = [f.alias or n for n, f in cls.model_fields.items() if n not in Deadline.model_fields]
        return f"{kind} deadlines do not use {name!r}; they use {', '.join(own)}"


class OnceDeadline(Deadline):
    """Due once, at one date and time."""

    kind: Literal[DeadlineKind.ONCE]
    due: Annotated[dt.datetime, LOCAL_DATETIME]

    @field_validator("due")
    @classmethod
    def _in_the_year(cls, due: dt.datetime, info: ValidationInfo) -> dt.datetime:
        _in_year(due.date(), info)
        return due


class WeeklyDeadline(Deadline):
    """Due every given weekday, at a time, from one date until another."""

    kind: Literal[DeadlineKind.WEEKLY]
    weekday: Annotated[int, WEEKDAY]
    at: Annotated[dt.time, TIME_OF_DAY] = Field(alias="time")
    first_day: Annotated[dt.date, DAY] = Field(alias="from")
    last_day: Annotated[dt.date, DAY] = Field(alias="until")

    @field_validator("first_day")
    @classmethod
    def _starts_in_the_year(cls, first: dt.date, info: ValidationInfo) -> dt.date:
        _in_year(first, info)
        return first

    @field_validator("last_day")
    @classmethod
    def _a_span_with_that_weekday(cls, last: dt.date, info: ValidationInfo) -> dt.date:
        # The span is checked with its end, the last of the settings it needs.
        _in_year(last, info)
        first, weekday = info.data.get("first_day"), info.data.get("weekday")
        if first is None:
            return last
        if first > last:
            raise Wrong(f"{last.isoformat()} comes before from {first.isoformat()}")
        if weekday is not None and not any((first + dt.timedelta(days=n)).weekday() == weekday
                                           for n in range((last - first).days + 1)):
            raise Wrong(f"no {calendar.day_name[weekday]} falls between {first.isoformat()} and {last.isoformat()}, "
                        "so this weekly rule yields no date", at="weekday")
        return last


class MonthlyDeadline(Deadline):
    """Due on a day of each month, from one month until another of the campaign's year."""

    kind: Literal[DeadlineKind.MONTHLY]
    from_month: int = Field(ge=1, le=12)
    until_month: int = Field(ge=1, le=12)
    day: Annotated[int | None, DAY_OF_MONTH] = None
    at: Annotated[dt.time, TIME_OF_DAY] = Field(alias="time")
    covers: Annotated[Covers, Choice] = Covers.THIS_MONTH

    @field_validator("until_month")
    @classmethod
    def _after_the_first(cls, last: int, info: ValidationInfo) -> int:
        first = info.data.get("from_month")
        if first is not None and first > last:
            raise Wrong(f"month {last} comes before from_month {first} (a campaign stays in its year)")
        return last


DeadlineEntry = Annotated[OnceDeadline | WeeklyDeadline | MonthlyDeadline, Discriminator("kind")]


class Slogans(Table):
    """``[slogans]``: slogans printed in an annex, kept for broadcasts."""

    annex: str = Field("", max_length=500)
    title: str = Field(min_length=1, max_length=200)
    note: str = Field("", max_length=500)
    lines: list[str] = Field(min_length=1)

    @field_validator("lines", mode="before")
    @classmethod
    def _some_slogans(cls, lines: Any) -> Any:
        if not isinstance(lines, list) or not lines or not all(isinstance(s, str) and s.strip() for s in lines):
            raise Wrong("must be a non-empty list of slogans in quotes")
        return lines


class Unit(Table):
    """``[[units]]``: a unit taking part; a join code left out is generated when loaded."""

    name: str = Field(min_length=1, max_length=200)
    group: str = Field("", max_length=100)
    join_code: Code = ""

    @field_validator("group")
    @classmethod
    def _a_listed_group(cls, group: str, info: ValidationInfo) -> str:
        groups = _index(info).unit_groups
        if groups and group and group not in groups:
            raise Wrong(f"group {group!r} is not one of unit_groups ({', '.join(groups)})")
        return group


def _units_once(units: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    seen: set[str] = set()
    found = []
    for index, unit in enumerate(units if isinstance(units, list) else ()):
        name = unit.get("name") if isinstance(unit, dict) else None
        if not isinstance(name, str) or not name.strip():
            continue
        if name.strip() in seen:
            found.append(((index, "name"), Wrong(f"unit {name.strip()!r} is listed twice")))
        seen.add(name.strip())
    return _also(handler, units, found)


class Registration(Table):
    """``[registration]``: whether a person without a join code may pick the unit (staff approve)."""

    open: bool = False

    @field_validator("open")
    @classmethod
    def _needs_the_liaison_table(cls, is_open: bool, info: ValidationInfo) -> bool:
        if is_open and not _index(info).has_liaison_form:
            raise Wrong("open registration needs the liaison table: mark its form liaison = true")
        return is_open


class Staff(Table):
    """``[staff]``: the codes that make the sender staff or a coordinator when sent at 登记."""

    join_code: Code = ""
    coordinator_code: Code = ""

    @field_validator("join_code", "coordinator_code")
    @classmethod
    def _not_a_units_code(cls, code: str, info: ValidationInfo) -> str:
        if code and code.upper() in _index(info).unit_codes:
            raise Wrong("is also a unit's join code; staff need a code of their own")
        return code

    @field_validator("coordinator_code")
    @classmethod
    def _not_the_staff_code(cls, code: str, info: ValidationInfo) -> str:
        staff = info.data.get("join_code")
        if staff and staff.upper() == code.upper():
            raise Wrong("must differ from the staff join_code")
        return code


class Answers(Table):
    """``[answers]``: late changes to submitted tables, and the count that asks for confirmation."""

    late: Annotated[LatePolicy, Choice] = LatePolicy.ACCEPT
    implausible_above: Annotated[int | None, Field(ge=1, le=10**12)] = None


class CampaignFile(Table):
    """A campaign file: one notice (通知) and what it asks of the units (docs/campaign-format.md)."""

    schema_version: Literal[1]
    campaign: Campaign
    contact: Contact
    key_dates: list[KeyDate] = []
    reminder_schedules: dict[str, ReminderSchedule]
    message_templates: MessageTemplates = MessageTemplates()
    forms: Annotated[list[FormEntry], _unique_keys("form"), WrapValidator(_one_liaison_table)]
    deadlines: Annotated[list[DeadlineEntry], _unique_keys("deadline")]
    slogans: Slogans | None = None
    units: Annotated[list[Unit], WrapValidator(_units_once)] = []
    registration: Registration = Registration()
    staff: Staff = Staff()
    answers: Answers = Answers()


class _TomlJsonSchema(GenerateJsonSchema):
    """The JSON Schema as an editor checks a TOML file with it.

    TOML has no null: a setting that may be None is one left out, so the schema shows only its
    value's type, and no default of null. A form or deadline is checked against the schema of its
    ``kind`` by ``if``/``then`` rather than pydantic's ``oneOf``, so that an editor names the
    setting at fault instead of "not valid under any of the schemas listed in oneOf".
    """

    def tagged_union_schema(self, schema: core_schema.TaggedUnionSchema) -> JsonSchemaValue:
        tags = {str(tag.value if isinstance(tag, enum.Enum) else tag): choice for tag, choice in schema["choices"].items()}
        return {
            "type": "object", "required": ["kind"], "properties": {"kind": {"enum": list(tags)}},
            "allOf": [{"if": {"properties": {"kind": {"const": tag}}}, "then": self.generate_inner(choice)}
                      for tag, choice in tags.items()],
        }

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        value = self.generate_inner(schema["schema"])
        return value if schema.get("default") is None else super().default_schema(schema)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a campaign file, for editors (taplo's ``#:schema`` directive)."""
    schema = CampaignFile.model_json_schema(schema_generator=_TomlJsonSchema)
    schema["title"] = "safetybot campaign file"
    schema["description"] = f"A campaign file, schema_version {SCHEMA_VERSION}: see docs/campaign-format.md"
    return schema
