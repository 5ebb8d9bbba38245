"""The generic form engine: walks any campaign form field by field, as the campaign file defines it.

Like a Rasa form, the next question is the first field still unanswered; the engine decides what
one message does to a walk (a :class:`Move`) and never stores anything: the registration and
statistics handlers turn a move into changes and the next :class:`~handlers.base.DialogueState`.
Commands work anywhere in a walk: 跳过, 上一题, 修改 N, 查看, 取消, 提交 (then 确认), 帮助.

跳过 may leave any field blank while walking, but 提交 and 确认 are refused while a required field
is blank: the reply names the blank fields and asks the first, and each answer goes on to the next
blank listed, then to the review. In a table of pre-printed rows a row left wholly blank is an
activity that did not take place, so only partly filled rows must be whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping

from bot.campaigns.format import CampaignDefinition, Field, FieldType, FormDefinition, LatePolicy, StatItem
from handlers.answers import (
    ASKABLE, GROUPED, IMPLAUSIBLE_ABOVE, MAX_COUNT, Rejected, means_none, measure_fits, normalise, parse,
    split_item_line, yes_or_no,
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
    if edit is None:
        return None
    # No form has a million fields: a longer number is as unknown as 99 (and int() of over 4,300
    # digits raises), so it gets the same reply.
    digits = edit[1].lstrip("0")
    return Command("edit", int(digits or "0") if len(digits) <= 6 else 0)


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


def advance(walk: Walk, values: tuple[Value, ...], require: bool = True) -> Move:
    """Store ``values`` and go on to the next unanswered field, or to the review when none is left.

    When every field has been answered or skipped, an answer goes on to the next required blank
    after it before the review: after 提交 listed the blanks (3, 6, 7) and asked 3, the walk asks 6,
    then 7; a field changed in between (上一题, 修改 2) goes on to the blanks after it too, so the
    walk never shows the review while a listed blank after the answer is left unasked. With
    ``require`` False (a walk whose fields may all stay blank) it goes to the review."""
    walk = walk.with_values(values)
    last = values[-1].field_key
    following = walk.next_open(last)
    if following is None and require:
        following = next((f.answer_key for f in blanks(walk) if walk.number(f.answer_key) > walk.number(last)), None)
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
        agreed = _agrees(text)
        if agreed:
            return advance(walk, pending, require)
        if agreed is False:
            return Move(ask=step, notes=(ctx.texts.render("number_not_confirmed"),))
    command = command_of(text)
    if command is not None:
        return _command(walk, step, command, ctx, require, today, limit)
    if step == REVIEW:  # no field is asked: say the text was not taken, and how to change a field
        return _stay(step, ctx.texts.render("review_waiting", given=text.strip()))
    return _answer(walk, walk.field(step), text, ctx, today, limit, require)


def _command(walk: Walk, step: str, command: Command, ctx: Context, require: bool, today: date,
             limit: int) -> Move:
    if command.name == "cancel":
        return Move(cancelled=True)
    if command.name in ("submit", "confirm"):
        missing = blanks(walk) if require else []
        if missing:
            shown = [Blank(walk.number(f.answer_key), label_of(f), none_word(walk, f, ctx, today, limit))
                     for f in missing]
            return Move(ask=missing[0].answer_key, notes=(ctx.texts.render("required_blank", fields=shown),))
        return Move(review=True, confirmed=command.name == "confirm" and step == REVIEW)
    if command.name == "show":
        # At the review the table is on screen again anyway: once is enough.
        return _stay(step) if step == REVIEW else _stay(step, summary(walk, ctx))
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
    return advance(walk, (Value(step, None),), require)


def _agrees(text: str) -> bool | None:
    """Whether a reply to a number held for confirmation keeps it (是, 对, 确认) or drops it (否);
    None for anything else. Digits are a new answer: "1" and "0", which tick-box fields read as
    是 and 否, are numbers to someone asked for an exact count."""
    word = normalise(text)
    if re.fullmatch(r"\d+", word):
        return None
    return True if COMMAND_WORDS.get(word) == "confirm" else yes_or_no(word)


def _answer(walk: Walk, first: Field, text: str, ctx: Context, today: date, limit: int,
            require: bool = True) -> Move:
    """Read an answer to ``first``; several answers in one line fill the blanks after it in its
    clause ("3场 120人次"), or the whole item's blanks when given at the item's first blank."""
    parts = split_item_line(text) if first.type in SPLITTABLE else [text]
    targets = _targets(walk, first, len(parts))
    if targets is None and GROUPED.fullmatch(normalise(text)):
        # "1 200" where the clause has one blank left is a number grouped by thousands; where it
        # has two, it is the two answers the question's hint ("3 120") shows.
        parts, targets = [text], [first]
    if targets is None:
        return Move(retry=_spilling(walk, first, len(parts), ctx))
    values: list[Value] = []
    ranges: list[dict[str, Any]] = []
    implausible = False
    for target, part in zip(targets, parts):
        if not target.required and target.type is not FieldType.COUNT and means_none(part):
            values.append(Value(target.answer_key, None))
            continue
        result = parse(target, part, today, limit)
        if isinstance(result, Rejected):
            return Move(retry=ctx.texts.render(result.template, field=target, given=part, maximum=MAX_COUNT))
        if target.type is FieldType.COUNT and not measure_fits(part, target.unit):
            return Move(retry=_misplaced(walk, target, part, ctx))
        values.append(Value(target.answer_key, result.value, result.number, result.approximate))
        if result.up_to is not None:
            ranges.append({"given": part, "low": result.number, "high": result.up_to, "unit": target.unit})
        implausible = implausible or result.implausible
    shown = [describe(walk.field(v.field_key), v) for v in values]
    if ranges:  # one number is stored; its lower end only if the person agrees, as an estimate
        return Move(retry=ctx.texts.render("confirm_range", ranges=ranges, answers=shown, limit=limit),
                    pending=tuple(values))
    if implausible:
        return Move(retry=ctx.texts.render("confirm_large_number", answers=shown, limit=limit), pending=tuple(values))
    return advance(walk, tuple(values), require)


def _targets(walk: Walk, first: Field, given: int) -> list[Field] | None:
    """The fields ``given`` answers of one line fill, from ``first``: the blanks of its clause from
    ``first`` on, or every blank of its item when given at the item's first blank with one answer
    per blank; None when they fit neither (a number meant for this blank must not silently land
    in the next clause)."""
    if given == 1:
        return [first]
    item = walk.form.item_of(first.answer_key)
    if item is None:
        return None
    asked = [f for f in item.fields if f in walk.fields]
    clause = [f for f in item.clause(first.answer_key) if f in walk.fields]
    rest = clause[clause.index(first):]
    if given <= len(rest):
        return rest[:given]
    if first == asked[0] and given == len(asked):
        return asked
    return None


def _spilling(walk: Walk, first: Field, given: int, ctx: Context) -> str:
    """Why a line with more answers than ``first``'s clause has blanks left was not stored, and how
    to fill several blanks in one line."""
    item = walk.form.item_of(first.answer_key)
    asked = [f for f in item.fields if f in walk.fields] if item else []
    clause = [f for f in item.clause(first.answer_key) if f in walk.fields] if item else [first]
    return ctx.texts.render("invalid_item_line", given=given, fields=len(clause) - clause.index(first),
                            whole=len(asked) if len(asked) > 1 else 0,
                            start=walk.number(asked[0].answer_key) if asked else 0)


def _misplaced(walk: Walk, target: Field, given: str, ctx: Context) -> str:
    """Why a count whose measure word contradicts ``target``'s unit was not stored ("3场" for
    "（ ）人观看"), naming the blanks of the item it may belong to."""
    # Asked rather than moved there: the item may have several blanks of that unit (two 场 in
    # item 6) or that blank may hold an answer already, and a number stored where the person was
    # not looking is the silent misfiling this check exists to stop.
    item = walk.form.item_of(target.answer_key)
    others = [(walk.number(f.answer_key), f) for f in (item.fields if item else ())
              if f in walk.fields and f is not target and f.type is FieldType.COUNT
              and measure_fits(given, f.unit, strictly=True)]
    return ctx.texts.render("invalid_measure", field=target, given=given, elsewhere=others)


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


# The word the required-blank hint offers for "nothing to put here", tried as an answer first.
NONE_WORDS_OFFERED = ("0", "无")


def none_word(walk: Walk, f: Field, ctx: Context, today: date, limit: int) -> str | None:
    """What to write in ``f`` when there is nothing to put there, as the hint after 提交 offers it:
    "0" where the walk takes 0 as a count, "无" where it reads 无 as nothing (an optional field left
    blank, 否 in a yes/no); None where neither is taken as nothing (a mobile, an e-mail, a text
    that would store the word itself). Found by reading each word as the answer it would be, so
    the hint never offers what the walk then refuses."""
    for word in NONE_WORDS_OFFERED:
        move = _answer(walk, f, word, ctx, today, limit)
        if move.retry is not None or len(move.values) != 1:
            continue
        value = move.values[0]
        if (value.number == 0) if word == "0" else value.text != word:
            return word
    return None


@dataclass(frozen=True)
class Blank:
    """A required field still blank, as 提交 lists it: number, label and the word that says
    "nothing" there (:func:`none_word`), if any."""

    number: int
    label: str
    none: str | None


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
    short: str = ""  # the label in a few characters (:func:`short_label`), for an item's lines
    new_clause: bool = True  # the first field of its clause in a statistics item


@dataclass(frozen=True)
class Group:
    """The summary lines of one statistics item (``item`` set) or of the form's own fields."""

    item: StatItem | None
    lines: tuple[Line, ...]
    title: str = ""  # the item's title as the summary shows it (:func:`short_title`)


def groups(walk: Walk) -> list[Group]:
    """The walk's fields with their answers, grouped by item, in order, for the summary templates."""
    found: list[Group] = []
    for number, f in enumerate(walk.fields, 1):
        item = walk.form.item_of(f.answer_key)
        line = Line(number, label_of(f),
                    None if f.answer_key not in walk.answers else describe(f, walk.answers[f.answer_key]),
                    short_label(f), item is None or item.clause(f.answer_key)[0] == f)
        if found and found[-1].item == item:
            found[-1] = Group(item, found[-1].lines + (line,), found[-1].title)
        else:
            found.append(Group(item, (line,), short_title(item) if item else ""))
    return found


def label_of(f: Field) -> str:
    """What to call a field in a summary: its label, or its prompt when the label is empty."""
    return f.label or f.prompt or f.key


# Short labels: at most this many characters; the verbs most labels open with say little.
SHORT_LABEL = 10
# A label at most this long is shown whole: a "…" hiding one or two characters would only cut a
# word ("对外包外租项目开展大排查" is no clearer as "对外包外租项目开展大…").
WHOLE_LABEL = SHORT_LABEL + 2
OPENING_VERBS = ("组织开展", "创新开展", "开展", "组织", "参加", "参与", "发表", "制作")
QUOTED = re.compile(r"“([^”]+)”")
ASIDE = re.compile(r"[(（][^)）]*[)）]")
# Where a label may be cut without splitting a word: after a list item, before 和/或/等.
BREAKS = re.compile(r"[、，,；]|(?=[和或等及与])")


def short_label(f: Field) -> str:
    """A field's label in a few characters, for the summary: "组织开展宣讲活动" → "宣讲活动", a
    quoted name when the label has one ("开展“外包外租大排查”活动" → "外包外租大排查"), the suffix
    for a blank with no label ("（ ）人观看" → "观看"); a long label is cut after a list item or
    before 和/或/等 where it can be, and marked "…"."""
    label = ASIDE.sub("", f.label)
    quoted = QUOTED.search(label)
    if quoted and len(quoted[1]) <= SHORT_LABEL:
        return quoted[1]
    label = QUOTED.sub("", label) if quoted else label
    for verb in OPENING_VERBS:
        if label.startswith(verb) and len(label) > len(verb):
            label = label[len(verb):]
            break
    if not label:
        return f.suffix or label_of(f)
    if len(label) <= WHOLE_LABEL:
        return label
    # A cut leaving fewer than 3 characters names nothing: then cut at the length instead.
    cuts = [m.start() for m in BREAKS.finditer(label, 0, SHORT_LABEL + 1) if m.start() >= 3]
    return label[:cuts[-1] if cuts else SHORT_LABEL] + "…"


# A title up to this long is shown whole; a longer one by its last phrase (between commas
# outside quotes).
SHORT_TITLE = 16
PHRASES = re.compile(r"，(?=[^“”]*(?:“|$))")


def short_title(item: StatItem) -> str:
    """An item's title for the summary: whole when short, else its last phrase, which says what
    was done ("充分发挥地域特色，组织开展“安全宣传咨询日”活动" → "组织开展“安全宣传咨询日”活动");
    never cut inside a phrase."""
    phrases = PHRASES.split(item.title)
    return item.title if len(item.title) <= SHORT_TITLE or len(phrases) == 1 else phrases[-1]


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
                       "invalid_whole_number", "invalid_too_large", "confirm_range", "invalid_measure",
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
