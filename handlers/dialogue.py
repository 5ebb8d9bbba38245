"""The generic form engine: walks any campaign form field by field, as the campaign file defines it.

Like a Rasa form, the next question is the first field still unanswered; the engine decides what
one message does to a walk (a :class:`Move`) and never stores anything: the registration and
statistics handlers turn a move into changes and the next :class:`~handlers.base.DialogueState`.
Commands work anywhere in a walk: 跳过, 上一题, 修改 N, 查看, 取消, 提交 (then 确认), 帮助.

跳过 may leave any field blank while walking, but 提交 and 确认 are refused while a required field
is blank: the reply names the blank fields and asks the first. In a table of pre-printed rows a row
left wholly blank is an activity that did not take place, so only partly filled rows must be whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping

from bot.campaigns.format import CampaignDefinition, Field, FieldType, FormDefinition, LatePolicy, StatItem
from handlers.answers import (
    ASKABLE, IMPLAUSIBLE_ABOVE, Rejected, means_none, normalise, parse, split_item_line, yes_or_no,
)
from handlers import help
from handlers.base import Context, DialogueState, Incoming
from handlers.changes import Value

REVIEW = "review"
# 帮助's words are the help route's own: typed in a walk they explain the walk.
COMMAND_WORDS = {
    "跳过": "skip", "上一题": "back", "上一个": "back", "返回": "back", "查看": "show", "取消": "cancel",
    "退出": "cancel", "提交": "submit", "确认": "confirm", "确定": "confirm", **dict.fromkeys(help.KEYWORDS, "help"),
}
EDIT = re.compile(r"(?:修改|改)\s*第?\s*(\d+)\s*[项题]?")
# Item answers given in one line need fields that cannot contain spaces themselves.
SPLITTABLE = (FieldType.COUNT, FieldType.YES_NO)


@dataclass(frozen=True)
class Command:
    """A walk command and, for 修改 N, the field number."""

    name: str
    number: int | None = None


def command_of(text: str) -> Command | None:
    """The walk command ``text`` is, if any (read as :func:`~handlers.answers.normalise` reads it,
    without case)."""
    word = normalise(text).lower()
    if word in COMMAND_WORDS:
        return Command(COMMAND_WORDS[word])
    edit = EDIT.fullmatch(word)
    return Command("edit", int(edit[1])) if edit else None


def continues(incoming: Incoming, state: DialogueState, flow: str) -> bool:
    """A text while the walk ``flow`` is open. Words opening a dialogue never get here: their
    routes come first in the routing table (``handlers/__init__.py``)."""
    return state.flow == flow and incoming.kind == "text"


@dataclass(frozen=True)
class Walk:
    """A form being filled: the fields the chat asks, in order, and the answers so far.

    ``answers`` maps an answer key to the stored text, None for a field left blank with 跳过;
    a key that is absent is still unanswered.
    """

    form: FormDefinition
    fields: tuple[Field, ...]
    answers: Mapping[str, Value]

    @classmethod
    def of(cls, form: FormDefinition, answers: Mapping[str, Value], leave_out: tuple[FieldType, ...] = (),
           pictures: bool = False) -> "Walk":
        """The walk over every field of ``form`` the chat can ask, less the types in ``leave_out``.

        With ``pictures`` the form's picture fields are asked too, last: the pictures go with
        the whole table (a handler that takes image messages in its walk asks for this)."""
        fields = tuple(f for f in form.answer_fields() if f.type in ASKABLE and f.type not in leave_out)
        if pictures:
            fields += tuple(f for f in form.answer_fields() if f.type is FieldType.PICTURES)
        return cls(form, fields, answers)

    def number(self, key: str) -> int:
        """The 1-based number of a field, as 修改 N and the summary use it."""
        return next(i for i, f in enumerate(self.fields, 1) if f.answer_key == key)

    def field(self, key: str) -> Field:
        return self.fields[self.number(key) - 1]

    def next_open(self, after: str | None = None) -> str | None:
        """The first unanswered field after ``after`` (or from the start), else the first anywhere."""
        keys = [f.answer_key for f in self.fields if f.answer_key not in self.answers]
        if after is not None:
            later = [k for k in keys if self.number(k) > self.number(after)]
            keys = later or keys
        return keys[0] if keys else None

    def with_values(self, values: tuple[Value, ...]) -> "Walk":
        """This walk with ``values`` answered."""
        return Walk(self.form, self.fields, {**self.answers, **{v.field_key: v for v in values}})


@dataclass(frozen=True)
class Move:
    """What one message does to a walk.

    ``values`` are answers to store; then the walk asks ``ask`` or, with ``review``, shows the
    whole form and waits for 确认. ``notes`` go before the next question. ``retry`` is the
    message for a wrong answer (the question stays). ``pending`` holds an implausible number
    until the person confirms it.
    """

    values: tuple[Value, ...] = ()
    ask: str | None = None
    review: bool = False
    confirmed: bool = False
    cancelled: bool = False
    notes: tuple[str, ...] = ()
    retry: str | None = None
    pending: tuple[Value, ...] = ()


def advance(walk: Walk, values: tuple[Value, ...]) -> Move:
    """Store ``values`` and go on to the next unanswered field, or to the review when none is left."""
    walk = walk.with_values(values)
    following = walk.next_open(values[-1].field_key)
    return Move(values=values, ask=following, review=following is None)


def _stay(step: str, *notes: str) -> Move:
    return Move(ask=None if step == REVIEW else step, review=step == REVIEW, notes=notes)


def react(walk: Walk, step: str, text: str, pending: tuple[Value, ...], ctx: Context, today: date,
          limit: int = IMPLAUSIBLE_ABOVE, require: bool = True) -> Move:
    """What ``text`` does to ``walk`` when the person is at ``step`` (an answer key, or REVIEW).

    ``today`` is the campaign's local date, for answers such as 今天 and 6月16日; ``limit`` the
    number above which a count is confirmed first; ``require`` False lets 提交 pass with required
    fields blank (numbers given along with a weekly report, where any may be left out)."""
    if pending:
        agreed = yes_or_no(text)
        if agreed:
            return advance(walk, pending)
        if agreed is False:
            return Move(ask=step, notes=(ctx.texts.render("number_not_confirmed"),))
    command = command_of(text)
    if command is not None:
        return _command(walk, step, command, ctx, require)
    if step == REVIEW:
        return _stay(step, ctx.texts.render("review_waiting"))
    return _answer(walk, walk.field(step), text, ctx, today, limit)


def _command(walk: Walk, step: str, command: Command, ctx: Context, require: bool) -> Move:
    if command.name == "cancel":
        return Move(cancelled=True)
    if command.name in ("submit", "confirm"):
        missing = blanks(walk) if require else []
        if missing:
            shown = [Line(walk.number(f.answer_key), label_of(f), None) for f in missing]
            return Move(ask=missing[0].answer_key, notes=(ctx.texts.render("required_blank", fields=shown),))
        return Move(review=True, confirmed=command.name == "confirm" and step == REVIEW)
    if command.name == "show":
        return _stay(step, summary(walk, ctx))
    if command.name == "help":
        return _stay(step, ctx.texts.render("walk_help"))
    if command.name == "edit":
        number = command.number or 0
        if not 1 <= number <= len(walk.fields):
            return _stay(step, ctx.texts.render("invalid_field_number", total=len(walk.fields)))
        return Move(ask=walk.fields[number - 1].answer_key)
    if command.name == "back":
        position = len(walk.fields) + 1 if step == REVIEW else walk.number(step)
        if position == 1:
            return _stay(step, ctx.texts.render("walk_at_start"))
        return Move(ask=walk.fields[position - 2].answer_key)
    if step == REVIEW:  # 跳过 with nothing left to skip
        return _stay(step)
    return advance(walk, (Value(step, None),))


def _answer(walk: Walk, first: Field, text: str, ctx: Context, today: date, limit: int) -> Move:
    """Read an answer to ``first``, or to it and the fields after it in its item ("3场 120人次")."""
    parts = split_item_line(text) if first.type in SPLITTABLE else [text]
    item = walk.form.item_of(first.answer_key)
    targets = [first]
    if len(parts) > 1:
        following = [f for f in (item.fields if item else ()) if f in walk.fields]
        targets = following[following.index(first):][:len(parts)]
        if item is None or len(targets) < len(parts):
            return Move(retry=ctx.texts.render("invalid_item_line", given=len(parts), fields=len(targets)))
    values: list[Value] = []
    implausible = False
    for target, part in zip(targets, parts):
        if not target.required and target.type is not FieldType.COUNT and means_none(part):
            values.append(Value(target.answer_key, None))
            continue
        result = parse(target, part, today, limit)
        if isinstance(result, Rejected):
            return Move(retry=ctx.texts.render(result.template, field=target, given=part))
        values.append(Value(target.answer_key, result.value, result.number, result.approximate))
        implausible = implausible or result.implausible
    if implausible:
        shown = [describe(walk.field(v.field_key), v) for v in values]
        return Move(retry=ctx.texts.render("confirm_large_number", answers=shown, limit=limit), pending=tuple(values))
    return advance(walk, tuple(values))


def blanks(walk: Walk) -> list[Field]:
    """The required fields still blank (unanswered or skipped); in a table of pre-printed rows only
    those of rows partly filled."""
    def blank(f: Field) -> bool:
        value = walk.answers.get(f.answer_key)
        return value is None or value.text is None

    found = []
    for f in walk.fields:
        if not f.required or not blank(f):
            continue
        row = walk.form.row_of(f.answer_key)
        if row is not None and all(blank(g) for g in walk.fields if walk.form.row_of(g.answer_key) == row):
            continue
        found.append(f)
    return found


def describe(f: Field, value: Value | None) -> str:
    """An answer as the summary shows it: "约50人次", "是", or "" when blank or unanswered."""
    if value is None or value.text is None:
        return ""
    if f.type is FieldType.COUNT:
        return f"{'约' if value.approximate else ''}{value.text}{f.unit}"
    return value.text


@dataclass(frozen=True)
class Line:
    """One field in a summary: its number, label, and the answer shown (None when not answered
    yet, "" when left blank)."""

    number: int
    label: str
    shown: str | None


@dataclass(frozen=True)
class Group:
    """The summary lines of one statistics item (``item`` set) or of the form's own fields."""

    item: StatItem | None
    lines: tuple[Line, ...]


def groups(walk: Walk) -> list[Group]:
    """The walk's fields with their answers, grouped by item, in order, for the summary templates."""
    found: list[Group] = []
    for number, f in enumerate(walk.fields, 1):
        item = walk.form.item_of(f.answer_key)
        line = Line(number, label_of(f),
                    None if f.answer_key not in walk.answers else describe(f, walk.answers[f.answer_key]))
        if found and found[-1].item == item:
            found[-1] = Group(item, found[-1].lines + (line,))
        else:
            found.append(Group(item, (line,)))
    return found


def label_of(f: Field) -> str:
    """What to call a field in a summary: its label, or its prompt when the label is empty."""
    return f.label or f.prompt or f.key


def summary(walk: Walk, ctx: Context) -> str:
    """The form with every answer so far (查看)."""
    return ctx.texts.render("form_summary", title=walk.form.title, groups=groups(walk))


def question(walk: Walk, key: str, ctx: Context) -> str:
    """The question for field ``key``: its item and clause as the notice prints them, and a hint."""
    f = walk.field(key)
    item = walk.form.item_of(key)
    current = walk.answers.get(key)
    return ctx.texts.render(
        f"ask_{f.type.value}", form=walk.form.title, number=walk.number(key), total=len(walk.fields), field=f,
        label=label_of(f), item=item, clause=item.clause(key) if item else (),
        current=None if key not in walk.answers else describe(f, current),
    )


def ask_templates() -> tuple[str, ...]:
    """Every template the engine may render, for the start-up check."""
    per_type = tuple(f"{kind}_{t.value}" for t in ASKABLE + (FieldType.PICTURES,) for kind in ("ask", "invalid"))
    return per_type + ("invalid_negative", "invalid_item_line", "confirm_large_number", "number_not_confirmed",
                       "review_waiting", "walk_help", "invalid_field_number", "walk_at_start", "form_summary",
                       "required_blank")


def with_pending(data: dict[str, Any], pending: tuple[Value, ...]) -> dict[str, Any]:
    """``data`` for a dialogue state, holding the implausible answers waiting for confirmation."""
    if pending:
        data["pending"] = [[v.field_key, v.text, v.number, v.approximate] for v in pending]
    return data


def pending_of(state: DialogueState) -> tuple[Value, ...]:
    """The answers a state holds for confirmation (see :func:`with_pending`)."""
    return tuple(Value(*entry) for entry in state.data.get("pending", ()))


def locked_after_due(definition: CampaignDefinition, status: str, due_at: datetime, now: datetime) -> bool:
    """Whether a form is closed to changes: submitted, past its due time, and the campaign takes
    no late changes (``[answers] late = "lock"``)."""
    return definition.late is LatePolicy.LOCK and status == "submitted" and now > due_at


def stored_values(data: Mapping[str, Any]) -> dict[str, Value]:
    """Answers kept in a dialogue state (registration keeps them there until 确认)."""
    return {key: Value(key, *entry) for key, entry in data.items()}


def state_values(values: Mapping[str, Value]) -> dict[str, list[Any]]:
    """Answers as JSON for a dialogue state."""
    return {key: [v.text, v.number, v.approximate] for key, v in values.items()}
