"""``填报``: the statistics table of the unit's current statistics deadline, field by field.

Every answer is stored as it is given (a draft until 提交 + 确认), so nothing is lost when the
person stops, the bot restarts or WeChat re-delivers a message. Coming back resumes at the first
unanswered field. After submission, changes are kept as revisions; after the due time they are
accepted and marked late, or refused when the campaign locks late changes ([answers] late = "lock").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from bot.campaigns.format import CampaignDefinition, FieldType, FormDefinition, FormKind
from handlers.base import Context, DialogueState, Incoming, Outcome, asked_for
from handlers.changes import SaveAnswers, SubmitForm, Value
from handlers.dialogue import (
    REVIEW, Move, Walk, continues, locked_after_due, pending_of, question, react, summary, with_pending,
)
from handlers.ports import UnitFacts

FLOW = "statistics"
KEYWORDS = {"填报", "填表", "统计表", "填报统计表"}
MENU_KEY = "FILL"
PHONE_TYPES = (FieldType.PHONE, FieldType.MOBILE, FieldType.OFFICE_PHONE)
TEMPLATES = ("fill_needs_registration", "fill_no_table", "fill_start", "fill_review", "fill_submitted",
             "fill_cancelled", "table_locked")


def is_fill(incoming: Incoming, state: DialogueState) -> bool:
    """``填报`` typed, or the menu's 填报 button."""
    return asked_for(incoming, KEYWORDS, MENU_KEY)


def is_walking(incoming: Incoming, state: DialogueState) -> bool:
    """A text while the statistics walk is open."""
    return continues(incoming, state, FLOW)


@dataclass(frozen=True)
class Table:
    """The statistics table a unit fills now: which deadline period, and the walk over it."""

    unit_id: int
    deadline_id: int
    period: str
    due_at: datetime
    status: str
    today: date
    walk: Walk
    limit: int  # the campaign's implausible number
    locked: bool  # submitted, past its due time, and the campaign takes no late changes

    def state(self, step: str, pending: tuple[Value, ...] = ()) -> DialogueState:
        data = {"deadline_id": self.deadline_id, "period": self.period}
        return DialogueState(FLOW, step, with_pending(data, pending))

    def save(self, values: tuple[Value, ...]) -> SaveAnswers:
        return SaveAnswers(self.unit_id, self.deadline_id, self.period, self.due_at, values)


def statistics_form(definition: CampaignDefinition, key: str) -> FormDefinition | None:
    """The form ``key`` if it is a statistics table."""
    form = next((f for f in definition.forms if f.key == key), None)
    return form if form is not None and form.kind is FormKind.STATISTICS else None


def _table(ctx: Context, unit_id: int, deadline_id: int | None = None, period: str | None = None) -> Table | None:
    """The unit's current statistics table: the walk's own period when one is open, else the
    first period still to come of a deadline collecting a statistics form (the last one when all
    have passed: late answers are still taken)."""
    unit = ctx.stored.unit(unit_id)
    definition = ctx.stored.definition(unit.campaign_id)
    candidates = [p for p in ctx.stored.periods(unit.campaign_id) if statistics_form(definition, p.collects)]
    if deadline_id is not None:
        candidates = [p for p in candidates if (p.deadline_id, p.period) == (deadline_id, period)]
    if not candidates:
        return None
    due = next((p for p in candidates if p.due_at >= ctx.now), candidates[-1])
    form = statistics_form(definition, due.collects)
    assert form is not None
    submission = ctx.stored.submission(unit.id, due.deadline_id, due.period)
    answers = ctx.stored.answers(submission.id) if submission else {}
    values = {key: Value(key, a.text, a.number, a.approximate) for key, a in answers.items()}
    today = ctx.now.astimezone(definition.timezone).date()
    status = submission.status if submission else "draft"
    locked = locked_after_due(definition, status, due.due_at, ctx.now)
    return Table(unit.id, due.deadline_id, due.period, due.due_at, status, today, Walk.of(form, values),
                 definition.implausible_above, locked)


def _prefill(table: Table, ctx: Context) -> tuple[Value, ...]:
    """Header fields the bot knows already (填报单位, 联系人, 电话, 填报日期) and the sums of the
    weekly reports' numbers, where still empty."""
    unit = ctx.stored.unit(table.unit_id)
    known = {FieldType.UNIT_NAME: unit.name, FieldType.PERSON_NAME: ctx.facts.name or None,
             FieldType.DATE: table.today.isoformat(), **{t: _liaison_phone(ctx, unit) for t in PHONE_TYPES}}
    header = tuple(Value(f.answer_key, known[f.type]) for f in table.walk.form.fields
                   if f.answer_key not in table.walk.answers and known.get(f.type))
    # Counts the unit gave with its weekly reports (sums_into), added up, for the liaison to confirm.
    sums = ctx.stored.weekly_sums(table.unit_id, unit.campaign_id)
    summed = tuple(Value(f.answer_key, str(sums[f.answer_key]), sums[f.answer_key]) for f in table.walk.fields
                   if f.answer_key in sums and f.answer_key not in table.walk.answers)
    return header + summed


def _liaison_phone(ctx: Context, unit: UnitFacts) -> str | None:
    """The phone number the liaison gave when registering (their liaison-table answers)."""
    for period in ctx.stored.periods(unit.campaign_id):
        submission = ctx.stored.submission(unit.id, period.deadline_id, period.period)
        if submission is None:
            continue
        answers = ctx.stored.answers(submission.id)
        definition = ctx.stored.definition(unit.campaign_id)
        form = next(f for f in definition.forms if f.key == period.collects)
        for f in form.answer_fields():
            if f.type in (FieldType.MOBILE, FieldType.OFFICE_PHONE) and answers.get(f.answer_key):
                return answers[f.answer_key].text
    return None


def open_table(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Open the table and ask the first unanswered field (or show it whole when all are answered)."""
    if ctx.facts.unit_id is None:
        return Outcome(replies=(ctx.texts.render("fill_needs_registration"),))
    table = _table(ctx, ctx.facts.unit_id)
    if table is None:
        return Outcome(replies=(ctx.texts.render("fill_no_table"),))
    if table.locked:
        return _locked(table, ctx)
    prefilled = _prefill(table, ctx)
    walk = table.walk.with_values(prefilled)
    table = replace(table, walk=walk)
    step = walk.next_open() or REVIEW
    intro = ctx.texts.render("fill_start", title=walk.form.title, due_at=table.due_at.astimezone(
        ctx.stored.definition(ctx.stored.unit(table.unit_id).campaign_id).timezone), submitted=table.status == "submitted",
        late=ctx.now > table.due_at, answered=len(walk.answers), total=len(walk.fields))
    changes = (table.save(prefilled),) if prefilled else ()
    return Outcome(replies=(_join(intro, _next(table, walk, step, ctx)),), state=table.state(step), changes=changes)


def continue_table(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """One message inside the walk: an answer or a command."""
    unit_id = ctx.facts.unit_id
    table = None if unit_id is None else _table(ctx, unit_id, state.data.get("deadline_id"), state.data.get("period"))
    if table is None:
        return Outcome(replies=(ctx.texts.render("fill_no_table"),), state=DialogueState())
    if table.locked:
        return _locked(table, ctx)
    pending = pending_of(state)
    move = react(table.walk, state.step, incoming.text, pending, ctx, table.today, table.limit)
    return _outcome(table, state.step, move, ctx)


def _locked(table: Table, ctx: Context) -> Outcome:
    """The submitted table as it stands, with why it can no longer change."""
    return Outcome(replies=(ctx.texts.render("table_locked", title=table.walk.form.title, table=summary(table.walk, ctx)),),
                   state=DialogueState())


def _outcome(table: Table, step: str, move: Move, ctx: Context) -> Outcome:
    """Turn the engine's move into the reply, the stored answers and the next state."""
    if move.cancelled:
        return Outcome(replies=(ctx.texts.render("fill_cancelled", answered=len(table.walk.answers)),),
                       state=DialogueState())
    if move.retry is not None:
        return Outcome(replies=(move.retry,), state=table.state(step, move.pending))
    changes: tuple[Any, ...] = (table.save(move.values),) if move.values else ()
    walk = table.walk.with_values(move.values)
    if move.confirmed:
        submit = SubmitForm(table.unit_id, table.deadline_id, table.period, table.due_at)
        reply = ctx.texts.render("fill_submitted", title=walk.form.title, late=ctx.now > table.due_at,
                                 again=table.status == "submitted")
        return Outcome(replies=(reply,), state=DialogueState(), changes=changes + (submit,))
    next_step = REVIEW if move.review or move.ask is None else move.ask
    return Outcome(replies=(_join(*move.notes, _next(table, walk, next_step, ctx)),),
                   state=table.state(next_step), changes=changes)


def _next(table: Table, walk: Walk, step: str, ctx: Context) -> str:
    if step == REVIEW:
        return ctx.texts.render("fill_review", table=summary(walk, ctx), submitted=table.status == "submitted")
    return question(walk, step, ctx)


def _join(*texts: str) -> str:
    # One reply, not several: every pushed message spends one of the five WeChat allows per
    # 48 hours (wechat-rules A1).
    return "\n\n".join(t for t in texts if t)
