"""``登记``: becoming a unit's liaison (join code → the campaign's liaison table → 确认 → reminders
opt-in), and ``修改资料``: changing those details later.

The answers stay in the dialogue state until 确认, so nothing half-typed reaches the office; the
opt-in to deadline reminders is asked explicitly and stored with its time (wechat-rules R5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from bot.campaign_format import CampaignDefinition, FieldType, FormDefinition, FormKind
from handlers.answers import normalise, yes_or_no
from handlers.base import Context, DialogueState, Incoming, Outcome, asked_for
from handlers.changes import ClaimUnit, RenamePerson, RequestReplacement, SaveAnswers, SubmitForm, Value
from handlers.dialogue import (
    REVIEW, Move, Walk, command_of, is_opening_word, question, react, state_values, stored_values, summary,
)

if TYPE_CHECKING:
    from bot.storage import DuePeriod

FLOW = "registration"
DETAILS_FLOW = "details"
KEYWORDS = {"登记", "注册", "联络员登记"}
DETAILS_KEYWORDS = {"修改资料", "我的资料"}
MENU_KEY = "REGISTER"
DETAILS_MENU_KEY = "DETAILS"
CODE, REPLACE, OPT_IN = "code", "replace", "opt_in"
REPLACE_WORDS = {"申请", "申请更换", "是"}
TEMPLATES = ("register_ask_code", "register_already", "invalid_join_code", "unit_taken", "replace_waiting",
             "replacement_requested", "register_start", "register_review", "register_opt_in", "invalid_opt_in",
             "registered", "register_cancelled", "details_review", "details_saved", "details_cancelled")



def is_register(incoming: Incoming, state: DialogueState) -> bool:
    """``登记`` typed, or the menu's 登记 button."""
    return asked_for(incoming, KEYWORDS, MENU_KEY)


def is_details(incoming: Incoming, state: DialogueState) -> bool:
    """``修改资料`` typed, or the menu's button."""
    return asked_for(incoming, DETAILS_KEYWORDS, DETAILS_MENU_KEY)


def is_registering(incoming: Incoming, state: DialogueState) -> bool:
    """A text while registration or 修改资料 is open (other dialogues' opening words excepted)."""
    return state.flow in (FLOW, DETAILS_FLOW) and incoming.kind == "text" and not is_opening_word(incoming.text)


def liaison_form(definition: CampaignDefinition) -> FormDefinition | None:
    """The campaign's liaison table: its record form asking for a mobile number (附件1 联络员表)."""
    return next((f for f in definition.forms if f.kind is FormKind.RECORD
                 and any(field.type is FieldType.MOBILE for field in f.fields)), None)


@dataclass(frozen=True)
class Liaison:
    """The registration context of one unit: its campaign's liaison form and where answers go."""

    unit_id: int
    unit_name: str
    form: FormDefinition | None
    deadline: "DuePeriod | None"  # the deadline collecting the form, if one does
    today: date

    def walk(self, values: dict[str, Value]) -> Walk | None:
        return None if self.form is None else Walk.of(self.form, values, leave_out=(FieldType.UNIT_NAME,))

    def prefilled(self) -> dict[str, Value]:
        """The unit-name fields, which the join code already answered."""
        fields = self.form.fields if self.form else ()
        return {f.answer_key: Value(f.answer_key, self.unit_name) for f in fields if f.type is FieldType.UNIT_NAME}

    def name_in(self, values: dict[str, Value]) -> str:
        """The liaison's name among the answers."""
        fields = self.form.fields if self.form else ()
        return next((values[f.answer_key].text or "" for f in fields
                     if f.type is FieldType.PERSON_NAME and f.answer_key in values), "")

    def store(self, values: dict[str, Value]) -> tuple[Any, ...]:
        """The changes that file the liaison table as the unit's submission."""
        if self.deadline is None:
            return ()
        d = self.deadline
        return (SaveAnswers(self.unit_id, d.deadline_id, d.period, d.due_at, tuple(values.values())),
                SubmitForm(self.unit_id, d.deadline_id, d.period, d.due_at))


def _liaison(ctx: Context, unit_id: int) -> Liaison:
    unit = ctx.stored.unit(unit_id)
    definition = ctx.stored.definition(unit.campaign_id)
    form = liaison_form(definition)
    deadline = next((p for p in ctx.stored.periods(unit.campaign_id) if form and p.collects == form.key), None)
    return Liaison(unit.id, unit.name, form, deadline, ctx.now.astimezone(definition.timezone).date())


def _state(flow: str, step: str, unit_id: int, values: dict[str, Value], pending: tuple[Value, ...] = ()) -> DialogueState:
    data: dict[str, Any] = {"unit_id": unit_id, "answers": state_values(values)}
    if pending:
        data["pending"] = [[v.field_key, v.text, v.number, v.approximate] for v in pending]
    return DialogueState(flow, step, data)


def _join(*texts: str) -> str:
    # One reply: each pushed extra message spends one of WeChat's five per 48 hours.
    return "\n\n".join(t for t in texts if t)


def start_registration(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Ask for the unit's join code, unless the person is registered already."""
    if ctx.facts.get("unit_id") is not None:
        unit = ctx.stored.unit(ctx.facts["unit_id"])
        return Outcome(replies=(ctx.texts.render("register_already", unit=unit.name),), state=DialogueState())
    return Outcome(replies=(ctx.texts.render("register_ask_code"),), state=DialogueState(FLOW, CODE, {}))


def continue_registration(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """One message inside registration or 修改资料."""
    if state.flow == DETAILS_FLOW:
        return _continue_details(incoming, state, ctx)
    command = command_of(incoming.text)
    if command is not None and command.name == "cancel":
        return Outcome(replies=(ctx.texts.render("register_cancelled"),), state=DialogueState())
    if state.step == CODE:
        return _join_code(incoming.text, ctx)
    liaison = _liaison(ctx, state.data["unit_id"])
    if state.step == REPLACE:
        return _replacement(incoming.text, liaison, ctx)
    values = stored_values(state.data.get("answers", {}))
    if state.step == OPT_IN:
        return _opt_in(incoming.text, liaison, values, ctx)
    walk = liaison.walk(values)
    assert walk is not None
    pending = tuple(Value(*entry) for entry in state.data.get("pending", ()))
    move = react(walk, state.step, incoming.text, pending, ctx, liaison.today)
    return _walked(FLOW, liaison, walk, state.step, move, ctx)


def _join_code(text: str, ctx: Context) -> Outcome:
    unit = ctx.stored.unit_by_join_code(normalise(text))
    if unit is None:
        return Outcome(replies=(ctx.texts.render("invalid_join_code", given=text.strip()),))
    holder = ctx.stored.holder(unit.id)
    if holder is not None:
        return _taken(unit.id, unit.name, holder.name, ctx)
    liaison = _liaison(ctx, unit.id)
    title = liaison.form.title if liaison.form else ""
    return _begin(liaison, ctx, ctx.texts.render("register_start", unit=unit.name, form=title))


def _taken(unit_id: int, unit: str, holder: str, ctx: Context) -> Outcome:
    return Outcome(replies=(ctx.texts.render("unit_taken", unit=unit, holder=holder),),
                   state=DialogueState(FLOW, REPLACE, {"unit_id": unit_id}))


def _replacement(text: str, liaison: Liaison, ctx: Context) -> Outcome:
    holder = ctx.stored.holder(liaison.unit_id)
    if normalise(text) not in REPLACE_WORDS:
        return Outcome(replies=(ctx.texts.render("replace_waiting"),))
    if holder is None:  # the unit became free meanwhile: register as usual
        return _begin(liaison, ctx)
    return Outcome(replies=(ctx.texts.render("replacement_requested", unit=liaison.unit_name),),
                   state=DialogueState(), changes=(RequestReplacement(liaison.unit_id, holder.openid),))


def _begin(liaison: Liaison, ctx: Context, *intro: str) -> Outcome:
    """The first question of the liaison table (the unit name is known from the join code)."""
    values = liaison.prefilled()
    walk = liaison.walk(values)
    first = walk.next_open() if walk else None
    if walk is None or first is None:
        return Outcome(replies=(_join(*intro, ctx.texts.render("register_opt_in")),),
                       state=_state(FLOW, OPT_IN, liaison.unit_id, values))
    return Outcome(replies=(_join(*intro, question(walk, first, ctx)),), state=_state(FLOW, first, liaison.unit_id, values))


def _walked(flow: str, liaison: Liaison, walk: Walk, step: str, move: Move, ctx: Context) -> Outcome:
    """Turn the engine's move into the reply and the next state; answers stay in the state."""
    done = "details_cancelled" if flow == DETAILS_FLOW else "register_cancelled"
    if move.cancelled:
        return Outcome(replies=(ctx.texts.render(done),), state=DialogueState())
    values = dict(walk.with_values(move.values).answers)
    if move.retry is not None:
        return Outcome(replies=(move.retry,), state=_state(flow, step, liaison.unit_id, values, move.pending))
    if move.confirmed:
        if flow == DETAILS_FLOW:
            return _save_details(liaison, values, ctx)
        return Outcome(replies=(ctx.texts.render("register_opt_in"),), state=_state(flow, OPT_IN, liaison.unit_id, values))
    walk = walk.with_values(move.values)
    if move.review or move.ask is None:
        review = ctx.texts.render("details_review" if flow == DETAILS_FLOW else "register_review",
                                  summary=summary(walk, ctx), unit=liaison.unit_name)
        return Outcome(replies=(_join(*move.notes, review),), state=_state(flow, REVIEW, liaison.unit_id, values))
    return Outcome(replies=(_join(*move.notes, question(walk, move.ask, ctx)),),
                   state=_state(flow, move.ask, liaison.unit_id, values))


def _opt_in(text: str, liaison: Liaison, values: dict[str, Value], ctx: Context) -> Outcome:
    """The last step: reminders yes or no, then the unit is claimed and the table filed."""
    holder = ctx.stored.holder(liaison.unit_id)
    if holder is not None:  # someone registered for the unit while this person was typing
        return _taken(liaison.unit_id, liaison.unit_name, holder.name, ctx)
    agreed = yes_or_no(text)
    if agreed is None:
        return Outcome(replies=(ctx.texts.render("invalid_opt_in"),))
    claim = ClaimUnit(liaison.unit_id, liaison.name_in(values), agreed)
    reply = ctx.texts.render("registered", unit=liaison.unit_name, reminders=agreed)
    return Outcome(replies=(reply,), state=DialogueState(), changes=(claim,) + liaison.store(values))


def start_details(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Show the liaison's stored details, numbered, for 修改 N."""
    if ctx.facts.get("unit_id") is None:
        return Outcome(replies=(ctx.texts.render("fill_needs_registration"),))
    liaison = _liaison(ctx, ctx.facts["unit_id"])
    values = _stored_details(liaison, ctx)
    walk = liaison.walk(values)
    if walk is None:
        return Outcome(replies=(ctx.texts.render("fill_no_table"),))
    review = ctx.texts.render("details_review", summary=summary(walk, ctx), unit=liaison.unit_name)
    return Outcome(replies=(review,), state=_state(DETAILS_FLOW, REVIEW, liaison.unit_id, values))


def _stored_details(liaison: Liaison, ctx: Context) -> dict[str, Value]:
    d = liaison.deadline
    submission = ctx.stored.submission(liaison.unit_id, d.deadline_id, d.period) if d else None
    answers = ctx.stored.answers(submission.id) if submission else {}
    return {k: Value(k, a.text, a.number, a.approximate) for k, a in answers.items()}


def _continue_details(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    liaison = _liaison(ctx, state.data["unit_id"])
    walk = liaison.walk(stored_values(state.data.get("answers", {})))
    assert walk is not None
    pending = tuple(Value(*entry) for entry in state.data.get("pending", ()))
    move = react(walk, state.step, incoming.text, pending, ctx, liaison.today)
    return _walked(DETAILS_FLOW, liaison, walk, state.step, move, ctx)


def _save_details(liaison: Liaison, values: dict[str, Value], ctx: Context) -> Outcome:
    """File the changed answers (kept as revisions) and the name, if it changed."""
    before = _stored_details(liaison, ctx)
    changed = {k: v for k, v in values.items() if before.get(k) != v}
    changes: tuple[Any, ...] = liaison.store(changed) if changed else ()
    name = liaison.name_in(values)
    if name and name != ctx.facts.get("name"):
        changes += (RenamePerson(name),)
    return Outcome(replies=(ctx.texts.render("details_saved", changed=len(changed)),), state=DialogueState(),
                   changes=changes)
