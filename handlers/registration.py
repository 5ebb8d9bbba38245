"""``登记``: becoming a unit's liaison (join code → the campaign's liaison table → 确认 → reminders
opt-in), and ``修改资料``: changing those details later.

The answers stay in the dialogue state until 确认, so nothing half-typed reaches the office; the
opt-in to deadline reminders is asked explicitly and stored with its time (wechat-rules R5).
取消 keeps what was typed as a draft in the person's (idle) dialogue state, and the next 登记 goes
on from it; 重新登记 starts again from the join code.

Without a join code, a person may pick the unit from a numbered list of the campaigns with open
registration (``[registration] open``), narrowed by a part of its name; the table then waits as
a request until staff approve it (``handlers/staff.py``). Someone taking over a unit that has a
liaison fills the table the same way and waits for staff too. A campaign's ``[staff]`` code or a
one-time invitation (``safetybot people invite``), sent instead of a join code, makes the sender
staff or a coordinator of that campaign. A used or expired invitation is refused and says which.

A registered liaison who sends 登记 may still send a staff code or invitation: the office invited
them, so they become staff and the unit is left without a liaison; the reply says so and the
office is told, so the unit gets a new liaison. Staff made before staff belonged to a campaign
send their campaign's code again the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.campaigns.format import FieldType, FormDefinition
from handlers.answers import code_of, normalise, yes_or_no
from handlers import help
from handlers.base import Context, DialogueState, Incoming, Outcome, asked_for
from handlers.changes import (
    BecomeStaff, ClaimUnit, RedeemInvitation, RenamePerson, RequestLiaison, SaveAnswers, StaffNote, SubmitForm, Value,
)
from handlers.dialogue import (
    REVIEW, Move, Walk, command_of, pending_of, question, react, state_values, stored_values, summary, with_pending,
)
from handlers.ports import DuePeriod, Holder
from handlers.roles import LIAISON, allowed

FLOW = "registration"
DETAILS_FLOW = "details"
# 重新登记 starts again from the join code, leaving a kept draft aside.
RESTART = "重新登记"
KEYWORDS = {"登记", "注册", "联络员登记", RESTART}
# In an idle state's data: the liaison table a person left with 取消 (unit_id, mode, answers),
# taken up again by the next 登记. It stays with the person's dialogue state because nothing
# of it may reach the unit before 确认 (and staff's approval, for a picked or held unit).
DRAFT = "registration_draft"
DETAILS_KEYWORDS = {"修改资料", "我的资料"}
MENU_KEY = "REGISTER"
DETAILS_MENU_KEY = "DETAILS"
CODE, REPLACE, OPT_IN = "code", "replace", "opt_in"
REPLACE_WORDS = {"申请", "申请更换", "是"}
# How a registration ends: the unit claimed at once (a join code), or a request staff decide
# (a unit picked from an open campaign's list, or one that has a liaison already).
JOIN, PICK, REPLACE_MODE = "join", "pick", "replace"
# At most this many units are listed to pick from; more ask for a part of the name first.
LIST_LIMIT = 10
# In the code step's data: only a staff code or an invitation is taken (the sender is a liaison already,
# or staff whose campaign is not known).
OFFICE_ONLY = "office_only"
TEMPLATES = ("register_ask_code", "register_already", "invalid_join_code", "unit_taken", "replace_waiting",
             "replacement_requested", "register_start", "register_review", "register_opt_in", "invalid_opt_in",
             "registered", "register_cancelled", "details_review", "details_saved", "details_cancelled",
             "register_pending", "register_units", "register_no_unit", "register_too_many", "staff_registered",
             "staff_note_request", "register_office_code", "register_not_office_code", "invitation_used",
             "invitation_expired", "staff_note_liaison_left", "register_resumed", "register_help")



def is_register(incoming: Incoming, state: DialogueState) -> bool:
    """``登记`` typed, or the menu's 登记 button."""
    return asked_for(incoming, KEYWORDS, MENU_KEY)


def is_details(incoming: Incoming, state: DialogueState) -> bool:
    """``修改资料`` typed, or the menu's button."""
    return asked_for(incoming, DETAILS_KEYWORDS, DETAILS_MENU_KEY)


def is_registering(incoming: Incoming, state: DialogueState) -> bool:
    """A text while registration or 修改资料 is open."""
    return state.flow in (FLOW, DETAILS_FLOW) and incoming.kind == "text"


@dataclass(frozen=True)
class Liaison:
    """The registration context of one unit: its campaign's liaison form and where answers go."""

    unit_id: int
    unit_name: str
    form: FormDefinition | None
    deadline: DuePeriod | None  # the deadline collecting the form, if one does
    today: date
    limit: int  # the campaign's implausible number

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

    def store(self, values: dict[str, Value], on_behalf_of: str = "") -> tuple[Any, ...]:
        """The changes that file the liaison table as the unit's submission (``on_behalf_of`` the
        liaison when staff approve it)."""
        if self.deadline is None:
            return ()
        d = self.deadline
        return (SaveAnswers(self.unit_id, d.deadline_id, d.period, d.due_at, tuple(values.values()), on_behalf_of),
                SubmitForm(self.unit_id, d.deadline_id, d.period, d.due_at, on_behalf_of))


def liaison_of(ctx: Context, unit_id: int) -> Liaison:
    """The registration context of the unit ``unit_id``."""
    unit = ctx.stored.unit(unit_id)
    definition = ctx.stored.definition(unit.campaign_id)
    form = definition.liaison_form()
    deadline = next((p for p in ctx.stored.periods(unit.campaign_id) if form and p.collects == form.key), None)
    return Liaison(unit.id, unit.name, form, deadline, ctx.now.astimezone(definition.timezone).date(),
                   definition.implausible_above)


def _state(flow: str, step: str, unit_id: int, values: dict[str, Value], pending: tuple[Value, ...] = (),
           mode: str = JOIN) -> DialogueState:
    data = {"unit_id": unit_id, "answers": state_values(values), "mode": mode}
    return DialogueState(flow, step, with_pending(data, pending))


def _join(*texts: str) -> str:
    # One reply: each pushed extra message spends one of WeChat's five per 48 hours.
    return "\n\n".join(t for t in texts if t)


def start_registration(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Ask for the unit's join code (or, where registration is open, list the units to pick from),
    unless the person is registered already or waits for staff."""
    if ctx.facts.unit_id is not None:
        # Only a staff code or an invitation can follow: a liaison changes units through staff.
        unit = ctx.stored.unit(ctx.facts.unit_id)
        return Outcome(replies=(ctx.texts.render("register_already", unit=unit.name),),
                       state=DialogueState(FLOW, CODE, {OFFICE_ONLY: True}))
    if ctx.facts.is_staff and ctx.facts.campaign_id is None:
        return Outcome(replies=(ctx.texts.render("register_office_code", role=ctx.facts.role),),
                       state=DialogueState(FLOW, CODE, {OFFICE_ONLY: True}))
    if ctx.facts.is_staff:
        # Staff stay staff: a unit's join code must not turn them into a liaison.
        return Outcome(replies=(ctx.texts.render("staff_registered", role=ctx.facts.role),), state=DialogueState())
    waiting = ctx.stored.requests(openid=incoming.openid)
    if waiting:
        return Outcome(replies=(ctx.texts.render("register_pending", unit=waiting[-1].unit_name),),
                       state=DialogueState())
    draft = _draft_of(state)
    if draft is not None and normalise(incoming.text) != RESTART:
        return _resume(draft, ctx)
    units = ctx.stored.open_units()
    shown = units if len(units) <= LIST_LIMIT else []
    reply = ctx.texts.render("register_ask_code", open=bool(units), units=[u.name for u in shown])
    return Outcome(replies=(reply,), state=DialogueState(FLOW, CODE, {"choices": [u.id for u in shown]}))


def continue_registration(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """One message inside registration or 修改资料."""
    if state.flow == DETAILS_FLOW:
        return _continue_details(incoming, state, ctx)
    command = command_of(incoming.text)
    if command is not None and command.name == "cancel":
        return _cancelled(state, ctx)
    if command is not None and command.name == "help" and state.step in (CODE, REPLACE, OPT_IN):
        return _step_help(incoming, state, ctx)
    if state.step == CODE:
        return _join_code(incoming, state, ctx)
    liaison = liaison_of(ctx, state.data["unit_id"])
    values = stored_values(state.data.get("answers", {}))
    mode = state.data.get("mode", JOIN)
    if state.step == REPLACE:
        return _replacement(incoming.text, liaison, values, mode, ctx)
    if state.step == OPT_IN:
        return _opt_in(incoming, liaison, values, mode, ctx)
    walk = liaison.walk(values)
    assert walk is not None
    pending = pending_of(state)
    move = react(walk, state.step, incoming.text, pending, ctx, liaison.today, liaison.limit)
    return _walked(FLOW, liaison, walk, state.step, move, ctx, mode)


def _draft_of(state: DialogueState) -> dict[str, Any] | None:
    """The liaison table a person was filling: the walk still open (登记 typed in it), or the
    draft 取消 kept; None when there is none."""
    if state.flow == FLOW and "unit_id" in state.data:
        return {key: state.data[key] for key in ("unit_id", "answers", "mode") if key in state.data}
    draft = state.data.get(DRAFT) if not state.flow else None
    return dict(draft) if draft else None


def _cancelled(state: DialogueState, ctx: Context) -> Outcome:
    """取消 in registration: the answers typed so far are kept as a draft for the next 登记 (the
    unit name, which the join code gave, is not counted as typed)."""
    draft = _draft_of(state)
    if draft is None:
        return Outcome(replies=(ctx.texts.render("register_cancelled", kept=0),), state=DialogueState())
    liaison = liaison_of(ctx, draft["unit_id"])
    typed = [key for key in draft.get("answers", {}) if key not in liaison.prefilled()]
    if not typed:
        return Outcome(replies=(ctx.texts.render("register_cancelled", kept=0),), state=DialogueState())
    return Outcome(replies=(ctx.texts.render("register_cancelled", kept=len(typed), unit=liaison.unit_name),),
                   state=DialogueState(data={DRAFT: draft}))


def _resume(draft: dict[str, Any], ctx: Context) -> Outcome:
    """登记 with a draft: the same unit's table again, at its first unanswered field (or its review),
    unless someone registered for the unit meanwhile."""
    liaison = liaison_of(ctx, draft["unit_id"])
    values = stored_values(draft.get("answers", {}))
    mode = draft.get("mode", JOIN)
    holder = ctx.stored.holder(liaison.unit_id)
    if holder is not None and mode != REPLACE_MODE:
        return _taken(liaison, holder.name, values, ctx)
    intro = ctx.texts.render("register_resumed", unit=liaison.unit_name, restart=RESTART)
    walk = liaison.walk(values)
    first = walk.next_open() if walk else None
    if walk is not None and first is None:
        return _walked(FLOW, liaison, walk, REVIEW, Move(review=True, notes=(intro,)), ctx, mode)
    return _begin(liaison, ctx, mode, values, intro)


def _step_help(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """帮助 where no walk question is asked: what this step of registration waits for. Where only an
    office code was awaited (the sender is registered or staff already), the usual 帮助 instead."""
    if state.data.get(OFFICE_ONLY):
        return Outcome(replies=help.show_help(incoming, state, ctx).replies, state=DialogueState())
    return Outcome(replies=(ctx.texts.render("register_help", step=state.step,
                                             choices=len(state.data.get("choices", ()))),))


def _join_code(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """A staff code, an invitation, a join code, or (where registration is open) a list number or
    part of a name."""
    text, typed = incoming.text, code_of(incoming.text)
    code = ctx.stored.staff_role(typed)
    if code is not None:
        return _become_staff(incoming, code.role, BecomeStaff(code.role, code.campaign_id), ctx)
    invitation = ctx.stored.invitation(typed)
    if invitation is not None:
        if invitation.used:
            return Outcome(replies=(ctx.texts.render("invitation_used"),))
        if invitation.expires_at <= ctx.now:
            zone = ctx.stored.definition(invitation.campaign_id).timezone
            return Outcome(replies=(ctx.texts.render("invitation_expired",
                                                     expired_at=invitation.expires_at.astimezone(zone)),))
        return _become_staff(incoming, invitation.role,
                             RedeemInvitation(invitation.id, invitation.role, invitation.campaign_id), ctx)
    if state.data.get(OFFICE_ONLY):
        return Outcome(replies=(ctx.texts.render("register_not_office_code", given=text.strip(),
                                                 staff=ctx.facts.is_staff),), state=DialogueState())
    unit = ctx.stored.unit_by_join_code(typed)
    if unit is not None:
        return _chosen(unit.id, JOIN, ctx)
    word = normalise(text)
    choices = state.data.get("choices", [])
    if word.isdigit() and 1 <= int(word) <= len(choices):
        return _chosen(choices[int(word) - 1], PICK, ctx)
    units = ctx.stored.open_units(word) if ctx.stored.open_units() else None
    if units is None or (not units and _looks_like_code(typed)):
        return Outcome(replies=(ctx.texts.render("invalid_join_code", given=text.strip()),))
    if not units:
        return Outcome(replies=(ctx.texts.render("register_no_unit", given=text.strip()),))
    if len(units) > LIST_LIMIT:
        return Outcome(replies=(ctx.texts.render("register_too_many", given=text.strip(), count=len(units)),))
    return Outcome(replies=(ctx.texts.render("register_units", units=[u.name for u in units]),),
                   state=DialogueState(FLOW, CODE, {"choices": [u.id for u in units]}))


def _become_staff(incoming: Incoming, role: str, change: BecomeStaff | RedeemInvitation, ctx: Context) -> Outcome:
    """The sender becomes staff or a coordinator (``change`` writes it); a liaison gives up their
    unit, is told so, and the office hears that the unit has no liaison now."""
    changes: tuple[Any, ...] = (change,)
    left = ctx.stored.unit(ctx.facts.unit_id).name if ctx.facts.unit_id is not None else ""
    if ctx.facts.unit_id is not None:
        topic = f"liaison_left:{ctx.facts.unit_id}:{incoming.openid}:{int(incoming.created_at.timestamp())}"
        changes += (StaffNote(ctx.facts.unit_id, topic, ctx.texts.render("staff_note_liaison_left", unit=left, person=ctx.facts.name,
                                                      role=role)),)
    return Outcome(replies=(ctx.texts.render("staff_registered", role=role, left_unit=left),), state=DialogueState(),
                   changes=changes)


def _looks_like_code(word: str) -> bool:
    # Join codes are Latin letters and digits; unit names are Chinese, so a mistyped code is told so.
    return word.isascii() and word.isalnum() and len(word) >= 6


def _chosen(unit_id: int, mode: str, ctx: Context) -> Outcome:
    """The unit is known: its liaison table, or who holds it."""
    liaison = liaison_of(ctx, unit_id)
    holder = ctx.stored.holder(unit_id)
    if holder is not None:
        return _taken(liaison, holder.name, liaison.prefilled(), ctx)
    title = liaison.form.title if liaison.form else ""
    intro = ctx.texts.render("register_start", unit=liaison.unit_name, form=title, picked=mode == PICK)
    return _begin(liaison, ctx, mode, liaison.prefilled(), intro)


def _taken(liaison: Liaison, holder: str, values: dict[str, Value], ctx: Context) -> Outcome:
    return Outcome(replies=(ctx.texts.render("unit_taken", unit=liaison.unit_name, holder=holder),),
                   state=_state(FLOW, REPLACE, liaison.unit_id, values, mode=REPLACE_MODE))


def _replacement(text: str, liaison: Liaison, values: dict[str, Value], mode: str, ctx: Context) -> Outcome:
    """申请: fill (or keep) the liaison table, then the request goes to staff."""
    if normalise(text) not in REPLACE_WORDS:
        return Outcome(replies=(ctx.texts.render("replace_waiting"),))
    return _begin(liaison, ctx, mode, values or liaison.prefilled())


def _begin(liaison: Liaison, ctx: Context, mode: str, values: dict[str, Value], *intro: str) -> Outcome:
    """The first unanswered question of the liaison table (the unit name is known already)."""
    walk = liaison.walk(values)
    first = walk.next_open() if walk else None
    if walk is None or first is None:
        return Outcome(replies=(_join(*intro, ctx.texts.render("register_opt_in")),),
                       state=_state(FLOW, OPT_IN, liaison.unit_id, values, mode=mode))
    return Outcome(replies=(_join(*intro, question(walk, first, ctx)),),
                   state=_state(FLOW, first, liaison.unit_id, values, mode=mode))


def _walked(flow: str, liaison: Liaison, walk: Walk, step: str, move: Move, ctx: Context,
            mode: str = JOIN) -> Outcome:
    """Turn the engine's move into the reply and the next state; answers stay in the state."""
    if move.cancelled:  # only 修改资料's: registration takes 取消 before its walk (see _cancelled)
        return Outcome(replies=(ctx.texts.render("details_cancelled"),), state=DialogueState())
    values = dict(walk.with_values(move.values).answers)
    if move.retry is not None:
        return Outcome(replies=(move.retry,), state=_state(flow, step, liaison.unit_id, values, move.pending, mode))
    if move.confirmed:
        if flow == DETAILS_FLOW:
            return _save_details(liaison, values, ctx)
        return Outcome(replies=(ctx.texts.render("register_opt_in"),),
                       state=_state(flow, OPT_IN, liaison.unit_id, values, mode=mode))
    walk = walk.with_values(move.values)
    if move.review or move.ask is None:
        review = ctx.texts.render("details_review" if flow == DETAILS_FLOW else "register_review",
                                  summary=summary(walk, ctx), unit=liaison.unit_name)
        return Outcome(replies=(_join(*move.notes, review),),
                       state=_state(flow, REVIEW, liaison.unit_id, values, mode=mode))
    return Outcome(replies=(_join(*move.notes, question(walk, move.ask, ctx)),),
                   state=_state(flow, move.ask, liaison.unit_id, values, mode=mode))


def _opt_in(incoming: Incoming, liaison: Liaison, values: dict[str, Value], mode: str, ctx: Context) -> Outcome:
    """The last step: reminders yes or no, then the unit is claimed and the table filed, or the
    request goes to staff."""
    holder = ctx.stored.holder(liaison.unit_id)
    if mode == JOIN and holder is not None:  # someone registered for the unit while this person was typing
        return _taken(liaison, holder.name, values, ctx)
    agreed = yes_or_no(incoming.text)
    if agreed is None:
        return Outcome(replies=(ctx.texts.render("invalid_opt_in"),))
    if mode != JOIN:
        return _request(incoming, liaison, values, agreed, holder, ctx)
    claim = ClaimUnit(liaison.unit_id, liaison.name_in(values), agreed)
    reply = ctx.texts.render("registered", unit=liaison.unit_name, reminders=agreed)
    return Outcome(replies=(reply,), state=DialogueState(), changes=(claim,) + liaison.store(values))


def _request(incoming: Incoming, liaison: Liaison, values: dict[str, Value], reminders: bool,
             holder: Holder | None, ctx: Context) -> Outcome:
    """The table waits with a request for staff, who are told at once."""
    kind = "replacement" if holder is not None else "registration"
    name = liaison.name_in(values)
    request = RequestLiaison(liaison.unit_id, holder.openid if holder else "", kind, name, reminders,
                             tuple(values.values()))
    note = StaffNote(liaison.unit_id, f"request:{liaison.unit_id}:{incoming.openid}:{int(incoming.created_at.timestamp())}",
                     ctx.texts.render("staff_note_request", kind=kind, unit=liaison.unit_name, person=name,
                                      holder=holder.name if holder else ""))
    reply = ctx.texts.render("replacement_requested", unit=liaison.unit_name, kind=kind)
    return Outcome(replies=(reply,), state=DialogueState(data={help.REQUESTED: liaison.unit_id}), changes=(request, note))


def start_details(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Show the liaison's stored details, numbered, for 修改 N."""
    refusal = allowed(ctx, "查看和修改联络员资料", roles={LIAISON})
    if refusal is not None:
        return Outcome(replies=(refusal,))
    assert ctx.facts.unit_id is not None  # allowed() lets a liaison through only with a unit
    liaison = liaison_of(ctx, ctx.facts.unit_id)
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
    liaison = liaison_of(ctx, state.data["unit_id"])
    walk = liaison.walk(stored_values(state.data.get("answers", {})))
    assert walk is not None
    pending = pending_of(state)
    move = react(walk, state.step, incoming.text, pending, ctx, liaison.today, liaison.limit)
    return _walked(DETAILS_FLOW, liaison, walk, state.step, move, ctx)


def _save_details(liaison: Liaison, values: dict[str, Value], ctx: Context) -> Outcome:
    """File the changed answers (kept as revisions) and the name, if it changed."""
    before = _stored_details(liaison, ctx)
    changed = {k: v for k, v in values.items() if before.get(k) != v}
    changes: tuple[Any, ...] = liaison.store(changed) if changed else ()
    name = liaison.name_in(values)
    if name and name != ctx.facts.name:
        changes += (RenamePerson(name),)
    return Outcome(replies=(ctx.texts.render("details_saved", changed=len(changed)),), state=DialogueState(),
                   changes=changes)
