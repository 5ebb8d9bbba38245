"""``典型案例``: the activity-record table (附件3 in 晋城 2023: 活动内容, 时间, 刊登媒体, 媒体链接,
备注) of the unit's current monthly period, walked cell by cell with the generic form engine.

Any campaign deadline that collects a ``table`` form is filled this way; the month is the first
period still to come (the last one once all have passed: late answers are still taken). Every
cell is stored as it is answered, so a restart or a retry loses nothing, and coming back resumes
at the first empty cell. The question names the pre-printed row it belongs to; at a row's first
cell one word (无, 跳过, 未开展 …) leaves an unused row blank. An activity's day typed without its
year takes the year of the period the table reports on, and a day outside that period is stored
only once the liaison confirms it. The summary (查看, the review) shows each cell cut short, so the
whole table fits one message.

A picture field (附件3's 相关活动的图片, "sent along with this table") is asked last: the liaison
sends any number of pictures and replies 完成. Each picture is a report item of the table's
submission, fetched from WeChat like a weekly report's, and the field holds how many came; a
picture sent at another point of the walk is taken too, the question asked stays.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.campaigns.format import CampaignDefinition, FieldType, FormDefinition, FormKind, TableRow
from handlers.answers import NONE_WORDS, Accepted, ReportingPeriod, means_none, normalise, parse_date, yes_or_no
from handlers.base import Context, DialogueState, Incoming, Outcome, asked_for
from handlers.changes import SaveAnswers, SubmitForm, Value
from handlers.dialogue import (
    REVIEW, Command, Line, Move, Walk, advance, command_of, continues, describe, label_of, locked_after_due, pending_of,
    question, react, with_pending,
)
from handlers.report_changes import AddReportItem

FLOW = "records"
KEYWORDS = {"典型案例", "活动记录", "报送典型案例", "活动情况"}
MENU_KEY = "RECORDS"
TEMPLATES = ("records_needs_registration", "records_no_table", "records_start", "records_row", "records_summary",
             "records_review", "records_submitted", "records_cancelled", "table_locked", "records_picture_received",
             "records_pictures_none_yet", "records_pictures_not_taken", "records_date_outside",
             "records_date_not_kept")
# Words that end the pictures (the walk's own commands, 跳过 among them, work as everywhere).
PICTURES_DONE = frozenset({"完成", "好了", "发完了", "发完", "就这些"})
# At a row's first cell, words saying the row's activity did not take place: the row's empty cells
# are all left blank at once (the first cell, its 时间, is what a held activity always has).
ROW_UNUSED = NONE_WORDS | {"跳过", "空", "未开展", "没开展", "没有开展", "未举办", "没举办", "无活动", "无此活动", "本行无",
                           "整行跳过", "跳过本行"}
# How wide an answer the summary shows: a row's four cells share a line, and five rows filled to the
# brim must still fit one message (WeChat cuts a text at 2,048 bytes); 修改 N shows a cell whole.
ROW_CELL_COLUMNS = 24
HEADER_CELL_COLUMNS = 40


def is_records(incoming: Incoming, state: DialogueState) -> bool:
    """``典型案例`` typed, or the menu's button."""
    return asked_for(incoming, KEYWORDS, MENU_KEY)


def is_recording(incoming: Incoming, state: DialogueState) -> bool:
    """A text or a picture while the table walk is open."""
    return continues(incoming, state, FLOW) or (state.flow == FLOW and incoming.kind == "image")


@dataclass(frozen=True)
class Sheet:
    """The table a unit fills now: which deadline period, the days it reports on, and the walk."""

    unit_id: int
    deadline_id: int
    period: str
    due_at: datetime
    status: str
    today: date
    covers_from: date | None
    covers_until: date | None
    definition: CampaignDefinition
    walk: Walk
    pictures: int

    def state(self, step: str, pending: tuple[Value, ...] = ()) -> DialogueState:
        data = {"deadline_id": self.deadline_id, "period": self.period}
        return DialogueState(FLOW, step, with_pending(data, pending))

    def save(self, values: tuple[Value, ...]) -> SaveAnswers:
        return SaveAnswers(self.unit_id, self.deadline_id, self.period, self.due_at, values)

    def locked(self, now: datetime) -> bool:
        """Submitted, past its due time, and the campaign takes no late changes."""
        return locked_after_due(self.definition, self.status, self.due_at, now)

    def with_walk(self, walk: Walk) -> "Sheet":
        return Sheet(self.unit_id, self.deadline_id, self.period, self.due_at, self.status, self.today,
                     self.covers_from, self.covers_until, self.definition, walk, self.pictures)

    def covered(self) -> ReportingPeriod | None:
        """The days the table reports on (May for June's table), if the deadline says."""
        if self.covers_from is None or self.covers_until is None:
            return None
        return ReportingPeriod(self.covers_from, self.covers_until)

    def picture_field(self) -> str | None:
        """The answer key of the table's picture field, if it has one."""
        return next((f.answer_key for f in self.walk.fields if f.type is FieldType.PICTURES), None)


def table_form(definition: CampaignDefinition, key: str) -> FormDefinition | None:
    """The form ``key`` if it is a table of pre-printed rows."""
    form = next((f for f in definition.forms if f.key == key), None)
    return form if form is not None and form.kind is FormKind.TABLE else None


def _sheet(ctx: Context, unit_id: int, deadline_id: int | None = None, period: str | None = None) -> Sheet | None:
    unit = ctx.stored.unit(unit_id)
    definition = ctx.stored.definition(unit.campaign_id)
    candidates = [p for p in ctx.stored.periods(unit.campaign_id) if table_form(definition, p.collects)]
    if deadline_id is not None:
        candidates = [p for p in candidates if (p.deadline_id, p.period) == (deadline_id, period)]
    if not candidates:
        return None
    due = next((p for p in candidates if p.due_at >= ctx.now), candidates[-1])
    form = table_form(definition, due.collects)
    assert form is not None
    occurrence = next(o for o in definition.deadline(due.key).occurrences() if o.period_key == due.period)
    submission = ctx.stored.submission(unit.id, due.deadline_id, due.period)
    answers = ctx.stored.answers(submission.id) if submission else {}
    values = {key: Value(key, a.text, a.number, a.approximate) for key, a in answers.items()}
    items = ctx.stored.report_items(submission.id) if submission else []
    return Sheet(unit.id, due.deadline_id, due.period, due.due_at, submission.status if submission else "draft",
                 ctx.now.astimezone(definition.timezone).date(), occurrence.covers_from, occurrence.covers_until,
                 definition, Walk.of(form, values, pictures=True), sum(1 for i in items if i.kind == "image"))


def _prefill(sheet: Sheet, ctx: Context) -> tuple[Value, ...]:
    """Header fields the bot knows (填报单位, 联系人, 填报日期), where still empty."""
    known = {FieldType.UNIT_NAME: ctx.stored.unit(sheet.unit_id).name, FieldType.PERSON_NAME: ctx.facts.name,
             FieldType.DATE: sheet.today.isoformat()}
    return tuple(Value(f.answer_key, known[f.type]) for f in sheet.walk.form.fields
                 if f in sheet.walk.fields and f.answer_key not in sheet.walk.answers and known.get(f.type))


def open_records(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Open this month's table and ask the first empty cell (or show it whole when all are filled)."""
    if ctx.facts.unit_id is None:
        return Outcome(replies=(ctx.texts.render("records_needs_registration"),))
    sheet = _sheet(ctx, ctx.facts.unit_id)
    if sheet is None:
        return Outcome(replies=(ctx.texts.render("records_no_table"),))
    if sheet.locked(ctx.now):
        return _locked(sheet, ctx)
    prefilled = _prefill(sheet, ctx)
    sheet = sheet.with_walk(sheet.walk.with_values(prefilled))
    step = sheet.walk.next_open() or REVIEW
    intro = ctx.texts.render(
        "records_start", title=sheet.walk.form.title, due_at=sheet.due_at.astimezone(sheet.definition.timezone),
        covers_from=sheet.covers_from, covers_until=sheet.covers_until, late=ctx.now > sheet.due_at,
        submitted=sheet.status == "submitted", answered=len(sheet.walk.answers), total=len(sheet.walk.fields))
    changes = (sheet.save(prefilled),) if prefilled else ()
    return Outcome(replies=(_join(intro, _next(sheet, step, ctx)),), state=sheet.state(step), changes=changes)


def continue_records(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """One message inside the walk: an answer to the cell asked, or a walk command."""
    unit_id = ctx.facts.unit_id
    sheet = None if unit_id is None else _sheet(ctx, unit_id, state.data.get("deadline_id"), state.data.get("period"))
    if sheet is None:
        return Outcome(replies=(ctx.texts.render("records_no_table"),), state=DialogueState())
    if sheet.locked(ctx.now):
        return _locked(sheet, ctx)
    if incoming.kind == "image":
        return _picture(sheet, state.step, incoming, ctx)
    if _asks_pictures(sheet, state.step) and command_of(incoming.text) is None:
        return _outcome(sheet, state.step, _pictures_answer(sheet, state.step, incoming.text, ctx), ctx)
    if command_of(incoming.text) == Command("show"):
        # The engine's summary groups by statistics item; a table reads better row by row. The
        # review is the summary already: shown once.
        shown = _next(sheet, state.step, ctx) if state.step == REVIEW else _join(
            _summary(sheet, ctx), _next(sheet, state.step, ctx))
        return Outcome(replies=(shown,), state=sheet.state(state.step))
    return _outcome(sheet, state.step, _cell_move(sheet, state.step, incoming.text, pending_of(state), ctx), ctx)


def _cell_move(sheet: Sheet, step: str, text: str, pending: tuple[Value, ...], ctx: Context) -> Move:
    """What ``text`` does at ``step``: the table's own readings of a row first (a whole row left
    blank at once, a day checked against the period reported on), else the engine's."""
    row_date = _is_row_date(sheet, step)
    agreed = yes_or_no(text) if pending and row_date else None
    if agreed is not None:
        return advance(sheet.walk, pending) if agreed else Move(
            ask=step, notes=(ctx.texts.render("records_date_not_kept"),))
    if _starts_row(sheet, step) and normalise(text) in ROW_UNUSED:
        row = sheet.walk.form.row_of(step)
        empty = [f.answer_key for f in sheet.walk.fields
                 if sheet.walk.form.row_of(f.answer_key) == row and f.answer_key not in sheet.walk.answers]
        # The asked cell too when it held an answer (修改 N led here); other answers of the row
        # stay: nothing typed earlier is lost to one word.
        return advance(sheet.walk, tuple(Value(key, None) for key in dict.fromkeys([step, *empty])))
    if row_date and command_of(text) is None:
        return _row_date(sheet, step, text, ctx)
    return react(sheet.walk, step, text, pending, ctx, sheet.today, sheet.definition.implausible_above)


def _is_row_date(sheet: Sheet, step: str) -> bool:
    """Whether ``step`` is the day of a row's activity (not the header's 填报日期)."""
    return (step != REVIEW and sheet.walk.field(step).type is FieldType.DATE
            and sheet.walk.form.row_of(step) is not None)


def _starts_row(sheet: Sheet, step: str) -> bool:
    """Whether ``step`` is the first cell the walk asks of a pre-printed row."""
    if step == REVIEW or (row := sheet.walk.form.row_of(step)) is None:
        return False
    return next(f.answer_key for f in sheet.walk.fields if sheet.walk.form.row_of(f.answer_key) == row) == step


def _row_date(sheet: Sheet, step: str, text: str, ctx: Context) -> Move:
    """The day of a row's activity: its year the reported period's, and a day outside that period
    held until the liaison confirms it (as an implausible number is)."""
    period = sheet.covered()
    parsed = parse_date(text, sheet.today, period)
    if not isinstance(parsed, Accepted):
        return Move(retry=ctx.texts.render(parsed.template, field=sheet.walk.field(step), given=text))
    value = Value(step, parsed.value)
    if parsed.implausible and period is not None:
        asked = ctx.texts.render("records_date_outside", given=normalise(text), day=date.fromisoformat(parsed.value),
                                 first=period.first, last=period.last)
        return Move(retry=asked, pending=(value,))
    return advance(sheet.walk, (value,))


def _asks_pictures(sheet: Sheet, step: str) -> bool:
    return step != REVIEW and sheet.walk.field(step).type is FieldType.PICTURES


def _picture(sheet: Sheet, step: str, incoming: Incoming, ctx: Context) -> Outcome:
    """A picture: kept with the table (its count answered at once, so a restart loses nothing),
    then the question of ``step`` again; refused when the table has no picture field."""
    key = sheet.picture_field()
    if key is None:
        return Outcome(replies=(_join(ctx.texts.render("records_pictures_not_taken"), _next(sheet, step, ctx)),),
                       state=sheet.state(step))
    count = sheet.pictures + 1
    item = AddReportItem(sheet.unit_id, sheet.deadline_id, sheet.period, kind="image",
                         media_id=incoming.fields.get("media_id"), media_kind="image")
    values = (Value(key, f"{count}张", count),)
    sheet = sheet.with_walk(sheet.walk.with_values(values))
    received = ctx.texts.render("records_picture_received", number=count, asked=step == key)
    # At the picture question the liaison goes on sending; elsewhere the walk goes on where it was.
    reply = received if step == key else _join(received, _next(sheet, step, ctx))
    return Outcome(replies=(reply,), state=sheet.state(step), changes=(item, sheet.save(values)))


def _pictures_answer(sheet: Sheet, step: str, text: str, ctx: Context) -> Move:
    """A text at the picture question: 完成 moves on once a picture came, 无 leaves it blank."""
    if normalise(text) in PICTURES_DONE:
        if not sheet.pictures:
            return Move(retry=ctx.texts.render("records_pictures_none_yet"))
        return advance(sheet.walk, (Value(step, f"{sheet.pictures}张", sheet.pictures),))
    if means_none(text) and not sheet.walk.field(step).required:
        return advance(sheet.walk, (Value(step, None),))
    return Move(retry=ctx.texts.render("invalid_pictures", field=sheet.walk.field(step), given=text))


def _locked(sheet: Sheet, ctx: Context) -> Outcome:
    """The submitted table as it stands, with why it can no longer change."""
    return Outcome(replies=(ctx.texts.render("table_locked", title=sheet.walk.form.title, table=_summary(sheet, ctx)),),
                   state=DialogueState())


def _outcome(sheet: Sheet, step: str, move: Move, ctx: Context) -> Outcome:
    """Turn the engine's move into the reply, the stored cells and the next state."""
    if move.cancelled:
        return Outcome(replies=(ctx.texts.render("records_cancelled", answered=len(sheet.walk.answers)),),
                       state=DialogueState())
    if move.retry is not None:
        return Outcome(replies=(move.retry,), state=sheet.state(step, move.pending))
    changes: tuple[Any, ...] = (sheet.save(move.values),) if move.values else ()
    sheet = sheet.with_walk(sheet.walk.with_values(move.values))
    if move.confirmed:
        reply = ctx.texts.render("records_submitted", title=sheet.walk.form.title, late=ctx.now > sheet.due_at,
                                 again=sheet.status == "submitted")
        submit = SubmitForm(sheet.unit_id, sheet.deadline_id, sheet.period, sheet.due_at)
        return Outcome(replies=(reply,), state=DialogueState(), changes=changes + (submit,))
    next_step = REVIEW if move.review or move.ask is None else move.ask
    return Outcome(replies=(_join(*move.notes, _next(sheet, next_step, ctx)),), state=sheet.state(next_step),
                   changes=changes)


def _next(sheet: Sheet, step: str, ctx: Context) -> str:
    """The review at the end, else the question for ``step`` under the row it belongs to."""
    if step == REVIEW:
        return ctx.texts.render("records_review", table=_summary(sheet, ctx), submitted=sheet.status == "submitted")
    row = sheet.walk.form.row_of(step)
    heading = ctx.texts.render("records_row", row=row, row_label=sheet.walk.form.row_label,
                               first=_starts_row(sheet, step)) if row else ""
    return _join(heading, question(sheet.walk, step, ctx))


@dataclass(frozen=True)
class RowLines:
    """The summary lines of one pre-printed row (``row`` None for the header fields)."""

    row: TableRow | None
    lines: tuple[Line, ...]


def _summary(sheet: Sheet, ctx: Context) -> str:
    """The table as filled so far, row by row, each answer cut short (:func:`_brief`)."""
    walk = sheet.walk
    rows: list[RowLines] = []
    for number, f in enumerate(walk.fields, 1):
        row = walk.form.row_of(f.answer_key)
        shown = None if f.answer_key not in walk.answers else describe(f, walk.answers[f.answer_key])
        if shown is not None:
            shown = _brief(shown, ROW_CELL_COLUMNS if row else HEADER_CELL_COLUMNS)
        line = Line(number, label_of(f), shown)
        if rows and rows[-1].row == row:
            rows[-1] = RowLines(row, rows[-1].lines + (line,))
        else:
            rows.append(RowLines(row, (line,)))
    return ctx.texts.render("records_summary", title=walk.form.title, rows=rows)


def _brief(text: str, columns: int) -> str:
    """``text`` as wide as ``columns`` at most (a Chinese character takes two, a Latin letter or a
    digit one), cut with "…" where it is longer."""
    if sum(map(_columns, text)) <= columns:
        return text
    kept, width = [], _columns("…")
    for char in text:
        width += _columns(char)
        if width > columns:
            break
        kept.append(char)
    return "".join(kept) + "…"


def _columns(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def _join(*texts: str) -> str:
    # One reply, not several: pushed messages are rationed (wechat-rules A1).
    return "\n\n".join(t for t in texts if t)
