"""The campaign definition: what a notice asks for, as plain dataclasses read from a campaign file.

A campaign file (``campaigns/*.toml``, described in ``docs/campaign-format.md``) declares the
campaign, its contact, its forms (the notice's annex tables) and its deadlines. This module reads
such a file into a :class:`CampaignDefinition` and reports *every* problem at once, each with
its place in the file, so a staff member can fix a file in one pass. The file is validated by the
pydantic models of ``bot.campaigns.schema``; ``bot.campaigns.problems`` words what they find.
"""

from __future__ import annotations

import calendar
import re
import tomllib
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from bot.campaigns import schema
from bot.campaigns.problems import DefinitionError, Place, Problem, problems_of
from bot.campaigns.values import (
    DEFAULT_IMPLAUSIBLE_ABOVE,
    SCHEMA_VERSION,
    Covers,
    DeadlineKind,
    FieldType,
    FormKind,
    LatePolicy,
    ReminderKind,
)

__all__ = [
    "DEFAULT_IMPLAUSIBLE_ABOVE", "SCHEMA_VERSION", "CampaignDefinition", "Contact", "Covers", "DeadlineDefinition",
    "DeadlineKind", "DefinitionError", "Field", "FieldType", "FormDefinition", "FormKind", "KeyDate", "LatePolicy",
    "MessageTemplate", "Occurrence", "Problem", "Reminder", "ReminderKind", "ReminderSchedule", "Slogans",
    "StatItem", "TableRow", "UnitEntry", "check_file", "load_definition", "parse_definition",
]


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

    @property
    def documents_only(self) -> bool:
        """Whether the form is only documents (活动方案, 总结报告): an official account receives no
        files (wechat-rules A8), so units send it as the notice asks, by e-mail, and the bot never
        knows whether they did."""
        fields = self.answer_fields()
        return bool(fields) and all(f.type is FieldType.DOCUMENT for f in fields)

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
    """The WeChat template message for one reminder kind (or ``notice``, announcements): its id and
    which value fills each field."""

    kind: str
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
    # [message_templates.notice]: the template message announcements (通知) go by; None without one.
    notice_template: MessageTemplate | None = None
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
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        # A file of another version is not read further: its other problems would be guesses.
        shown = "is missing" if version is None else f"is {version!r}"
        place = Place().key("schema_version")
        return None, [Problem(place.label, f"{shown}; this safetybot reads schema_version = {SCHEMA_VERSION}",
                              place.line(text))]
    try:
        file = schema.CampaignFile.model_validate(data, context=schema.FileIndex.of(data))
    except ValidationError as error:
        return None, problems_of(error, data, text)
    return _definition(file, data, source, year), []


def _definition(file: schema.CampaignFile, data: Mapping[str, Any], source: str, year: int | None) -> CampaignDefinition:
    """The definition a valid file declares, for ``year`` (default: the file's)."""
    year = file.campaign.year if year is None else year
    if year != file.campaign.year:
        file = _retitled(file, file.campaign.year, year)
    campaign = file.campaign
    zone = ZoneInfo(campaign.timezone)
    schedules = {name: ReminderSchedule(name, tuple(sorted(set(s.before), reverse=True)), s.at_due,
                                        tuple(sorted(set(s.overdue))))
                 for name, s in file.reminder_schedules.items()}
    slogans = file.slogans
    return CampaignDefinition(
        key=campaign.key, name=campaign.name, issuer=campaign.issuer, year=year, timezone=zone,
        contact=Contact(**file.contact.model_dump()),
        forms=tuple(_form(form) for form in file.forms),
        deadlines=tuple(_deadline(d, schedules[d.reminders], zone, year) for d in file.deadlines),
        reminder_schedules=schedules,
        message_templates={kind: MessageTemplate(kind.value, t.template_id, dict(t.data)) for kind in ReminderKind
                           if (t := getattr(file.message_templates, kind.value)) is not None},
        notice_template=(MessageTemplate("notice", notice.template_id, dict(notice.data))
                         if (notice := file.message_templates.notice) is not None else None),
        raw=_json_safe(data), document=campaign.document, theme=campaign.theme, addressees=campaign.addressees,
        notice=campaign.notice, path=source, unit_groups=tuple(campaign.unit_groups),
        key_dates=tuple(KeyDate(_moved(d.date, year), d.title) for d in file.key_dates),
        slogans=Slogans(slogans.title, tuple(slogans.lines), slogans.annex, slogans.note) if slogans else None,
        # Codes are stored upper case, as the staff codes, since a typed code is read so.
        units=tuple(UnitEntry(u.name, u.group, u.join_code.upper()) for u in file.units),
        open_registration=file.registration.open, staff_code=file.staff.join_code.upper(),
        coordinator_code=file.staff.coordinator_code.upper(), late=file.answers.late,
        implausible_above=file.answers.implausible_above or DEFAULT_IMPLAUSIBLE_ABOVE,
    )


# The texts people read (names, titles, labels, prompts, notes, slogans) in which the file's year moves
# with the campaign: "2023年全市商务系统…" run in 2027 is "2027年…". Keys, codes and template ids are
# not among them, nor units and contact (their names are matched against unit lists and the like).
YEAR_TEXTS = frozenset({"name", "document", "notice", "theme", "addressees", "title", "label", "prompt", "requirement",
                        "annex", "note", "assumption", "quote", "lines"})
YEAR_KEPT = frozenset({"units", "contact"})


def _retitled(model: Any, old: int, new: int) -> Any:
    """``model`` (a validated table of the file, or a list or mapping of them) with the year ``old``
    written as ``new`` in its :data:`YEAR_TEXTS`; other years stay, as "the 2023 table" in a 2024
    campaign names another year's document. Only a whole number is moved: 20230 or 2023-06-01 not."""
    if isinstance(model, list):
        return [_retitled(item, old, new) for item in model]
    if isinstance(model, dict):
        return {key: _retitled(item, old, new) for key, item in model.items()}
    if not isinstance(model, BaseModel):
        return model
    year = re.compile(rf"(?<![0-9]){old}(?![0-9])")
    changed: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name in YEAR_KEPT:
            continue
        if name in YEAR_TEXTS and isinstance(value, str):
            changed[name] = year.sub(str(new), value)
        elif name in YEAR_TEXTS and isinstance(value, list):
            changed[name] = [year.sub(str(new), line) if isinstance(line, str) else line for line in value]
        else:
            changed[name] = _retitled(value, old, new)
    return model.model_copy(update=changed)


def _fields(fields: list[schema.FormField], prefix: str = "") -> tuple[Field, ...]:
    # Keys have no ".", so "item.field" and "row.column" answer keys never meet a header field's.
    return tuple(Field(f.key, f"{prefix}.{f.key}" if prefix else f.key, f.type, f.label, f.unit, f.suffix, f.sep,
                       f.required, f.prompt) for f in fields)


def _form(form: schema.FormEntry) -> FormDefinition:
    common = FormDefinition(form.key, form.kind, form.title, form.annex, form.note, form.assumption, _fields(form.fields))
    if isinstance(form, schema.StatisticsForm):
        return replace(common, items=tuple(StatItem(i.key, i.number, i.title, i.requirement, _fields(i.fields, i.key))
                                           for i in form.items))
    if isinstance(form, schema.TableForm):
        return replace(common, row_label=form.row_label, rows=tuple(TableRow(r.key, r.number, r.label) for r in form.rows),
                       columns=_fields(form.columns))
    return replace(common, sums_into=form.sums_into, liaison=form.liaison)


def _deadline(deadline: schema.DeadlineEntry, reminders: ReminderSchedule, zone: ZoneInfo, year: int
              ) -> DeadlineDefinition:
    common = DeadlineDefinition(deadline.key, deadline.kind, deadline.title, deadline.collects, reminders, zone, year,
                                quote=deadline.quote, note=deadline.note)
    if isinstance(deadline, schema.OnceDeadline):
        return replace(common, due=deadline.due)
    if isinstance(deadline, schema.WeeklyDeadline):
        return replace(common, weekday=deadline.weekday, at=deadline.at, first_day=deadline.first_day,
                       last_day=deadline.last_day)
    return replace(common, first_month=deadline.from_month, last_month=deadline.until_month, day=deadline.day,
                   at=deadline.at, covers=deadline.covers)


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
