"""``周报`` and ``要情``: a report made of whatever the liaison sends until ``完成``.

``周报`` opens the report of the current week (the period of the campaign's weekly deadline that
is due next) and takes texts, pictures, voice notes, videos, short videos and links, each stored
as it comes, so nothing is lost if the person stops halfway. ``完成`` submits the week's report
and confirms what was received. ``要情`` takes an important or featured activity the same day in
the same way; its items go into the current week's report marked as 要情, and ``完成`` does not
submit the week for the liaison.

Pictures, voice and video are fetched from WeChat in the background (``bot.outbound.media``); the
confirmation names any that could not be fetched.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.campaigns.format import CampaignDefinition, DeadlineKind, FieldType
from handlers.answers import normalise
from handlers import help
from handlers.base import Context, DialogueState, Incoming, Outcome
from handlers.changes import SaveAnswers, StaffNote, SubmitForm, Value
from handlers.dialogue import Walk, pending_of, question, react, with_pending
from handlers.ports import ItemFacts
from handlers.report_changes import AddReportItem

WEEKLY, FEATURED = "weekly", "featured"
OPENERS = {"周报": WEEKLY, "报送周报": WEEKLY, "要情": FEATURED, "报送要情": FEATURED}
MENU_KEYS = {"WEEKLY": WEEKLY, "FEATURED": FEATURED}
COLLECTING = "collecting"
NUMBER_WORDS = {"数字", "本周数字", "填数字"}
COMMANDS = {"完成": "finish", "好了": "finish", "结束": "finish", "查看": "show", "取消": "cancel", "退出": "cancel",
            **dict.fromkeys(help.KEYWORDS, "help")}
# WeChat's MsgType → what the report calls the item; a short video is a video to the office.
MEDIA_KINDS = {"image": "image", "voice": "voice", "video": "video", "shortvideo": "video"}
TAKEN_KINDS = frozenset({"text", "link", *MEDIA_KINDS})
# The order a summary lists what came in.
KIND_ORDER = ("text", "image", "voice", "video", "link")
TEMPLATES = ("report_needs_registration", "report_no_week", "report_start", "report_received", "report_done",
             "report_empty", "report_cancelled", "report_show", "report_help", "report_kind_not_taken",
             "report_numbers_start", "report_numbers_saved", "staff_note_featured")


def is_report_opener(incoming: Incoming, state: DialogueState) -> bool:
    """``周报`` or ``要情`` typed, or their menu buttons."""
    if incoming.kind == "text":
        return normalise(incoming.text) in OPENERS
    return incoming.kind == "event" and incoming.event == "CLICK" and incoming.text in MENU_KEYS


def is_reporting(incoming: Incoming, state: DialogueState) -> bool:
    """A message (any kind but an event) while a report is open."""
    return state.flow in (WEEKLY, FEATURED) and incoming.kind != "event"


@dataclass(frozen=True)
class Week:
    """The weekly report a message goes into: whose, which deadline period, and the days it covers."""

    unit_id: int
    deadline_id: int
    period: str
    title: str
    due_at: datetime
    covers_from: date | None
    covers_until: date | None
    definition: CampaignDefinition
    collects: str

    def state(self, flow: str, step: str = COLLECTING, pending: tuple[Value, ...] = ()) -> DialogueState:
        """The open report; ``step`` is COLLECTING, or the answer key of the week's number being asked."""
        data = {"deadline_id": self.deadline_id, "period": self.period}
        return DialogueState(flow, step, with_pending(data, pending))

    def save(self, values: tuple[Value, ...]) -> SaveAnswers:
        return SaveAnswers(self.unit_id, self.deadline_id, self.period, self.due_at, values)


def current_week(ctx: Context, unit_id: int, deadline_id: int | None = None, period: str | None = None) -> Week | None:
    """The week the unit's report is for: ``deadline_id``/``period`` when a report is open, else
    the period of the campaign's weekly deadline due next; once the last one has passed, that last
    week while its report was never submitted (taken late, as 帮助 offers), else None."""
    unit = ctx.stored.unit(unit_id)
    definition = ctx.stored.definition(unit.campaign_id)
    weekly = {d.key: d for d in definition.deadlines if d.kind is DeadlineKind.WEEKLY}
    periods = [p for p in ctx.stored.periods(unit.campaign_id) if p.key in weekly]
    if deadline_id is not None:
        periods = [p for p in periods if (p.deadline_id, p.period) == (deadline_id, period)]
    else:
        last = periods[-1:]
        periods = [p for p in periods if p.due_at >= ctx.now]
        if not periods and last:
            submission = ctx.stored.submission(unit.id, last[0].deadline_id, last[0].period)
            periods = last if submission is None or submission.status != "submitted" else []
    if not periods:
        return None
    due = periods[0]
    occurrence = next(o for o in weekly[due.key].occurrences() if o.period_key == due.period)
    return Week(unit.id, due.deadline_id, due.period, due.title, due.due_at, occurrence.covers_from,
                occurrence.covers_until, definition, due.collects)


def open_report(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Open this week's report (周报) or a 要情 and say what to send."""
    flow = OPENERS.get(normalise(incoming.text)) or MENU_KEYS[incoming.text]
    if ctx.facts.unit_id is None:
        return Outcome(replies=(ctx.texts.render("report_needs_registration"),))
    week = current_week(ctx, ctx.facts.unit_id)
    # A 要情 is news of the day: after the last week it has no week to go with.
    if week is None or (flow == FEATURED and ctx.now > week.due_at):
        return Outcome(replies=(ctx.texts.render("report_no_week", featured=flow == FEATURED),))
    items = _items(ctx, week)
    reply = ctx.texts.render(
        "report_start", featured=flow == FEATURED, title=week.title, due_at=_local(week, week.due_at),
        covers_from=week.covers_from, covers_until=week.covers_until, counts=_counts(items),
        submitted=_status(ctx, week) == "submitted", late=ctx.now > week.due_at,
        numbers=flow == WEEKLY and bool(week.definition.summed_fields(week.collects)))
    return Outcome(replies=(reply,), state=week.state(flow))


def continue_report(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """One message inside an open report: an item to keep, or 完成, 查看, 取消, 帮助."""
    unit_id, data = ctx.facts.unit_id, state.data
    week = None if unit_id is None else current_week(ctx, unit_id, data.get("deadline_id"), data.get("period"))
    if week is None:
        return Outcome(replies=(ctx.texts.render("report_no_week", featured=state.flow == FEATURED),),
                       state=DialogueState())
    featured = state.flow == FEATURED
    command = COMMANDS.get(normalise(incoming.text).lower()) if incoming.kind == "text" else None
    if command == "finish":
        return _finish(week, featured, ctx)
    if state.step != COLLECTING and incoming.kind == "text":
        return _number(week, state, incoming.text, ctx)
    if (incoming.kind == "text" and not featured and normalise(incoming.text) in NUMBER_WORDS
            and week.definition.summed_fields(week.collects)):
        return _start_numbers(week, ctx)
    if command == "cancel":
        return Outcome(replies=(ctx.texts.render("report_cancelled", featured=featured,
                                                 counts=_counts(_items(ctx, week))),), state=DialogueState())
    if command == "show":
        return Outcome(replies=(ctx.texts.render("report_show", featured=featured, title=week.title,
                                                 counts=_counts(_items(ctx, week))),), state=week.state(state.flow))
    if command == "help":
        return Outcome(replies=(ctx.texts.render("report_help", featured=featured),), state=week.state(state.flow))
    if incoming.kind not in TAKEN_KINDS:
        return Outcome(replies=(ctx.texts.render("report_kind_not_taken", kind=incoming.kind),),
                       state=week.state(state.flow))
    item = _item(week, incoming, featured)
    received = len(_items(ctx, week)) + 1
    reply = ctx.texts.render("report_received", kind=item.kind, number=received, featured=featured)
    # A picture sent while a number is asked is kept, and the number is still awaited.
    return Outcome(replies=(reply,), state=week.state(state.flow, state.step), changes=(item,))


def _numbers(ctx: Context, week: Week) -> Walk:
    """The week's numbers as a walk over the summed statistics form's count fields."""
    fields = week.definition.summed_fields(week.collects)
    form = week.definition.form(week.definition.form(week.collects).sums_into)
    submission = ctx.stored.submission(week.unit_id, week.deadline_id, week.period)
    answers = ctx.stored.answers(submission.id) if submission else {}
    keys = {f.answer_key for f in fields}
    return Walk(form, fields, {k: Value(k, a.text, a.number, a.approximate) for k, a in answers.items() if k in keys})


def _start_numbers(week: Week, ctx: Context) -> Outcome:
    """数字: ask the week's numbers item by item, from the first not given yet."""
    walk = _numbers(ctx, week)
    key = walk.next_open() or walk.fields[0].answer_key
    intro = ctx.texts.render("report_numbers_start", answered=len(walk.answers), total=len(walk.fields))
    return Outcome(replies=(_join(intro, question(walk, key, ctx)),), state=week.state(WEEKLY, key))


def _number(week: Week, state: DialogueState, text: str, ctx: Context) -> Outcome:
    """An answer or a walk command while the week's numbers are asked; the form engine decides."""
    walk = _numbers(ctx, week)
    pending = pending_of(state)
    move = react(walk, state.step, text, pending, ctx, ctx.now.astimezone(week.definition.timezone).date(),
                 week.definition.implausible_above, require=False)
    if move.retry is not None:
        return Outcome(replies=(move.retry,), state=week.state(WEEKLY, state.step, move.pending))
    changes = (week.save(move.values),) if move.values else ()
    walk = walk.with_values(move.values)
    if move.cancelled or move.review or move.ask is None:
        given = sum(1 for v in walk.answers.values() if v.number is not None)
        saved = ctx.texts.render("report_numbers_saved", given=given)
        return Outcome(replies=(_join(*move.notes, saved),), state=week.state(WEEKLY), changes=changes)
    return Outcome(replies=(_join(*move.notes, question(walk, move.ask, ctx)),), state=week.state(WEEKLY, move.ask),
                   changes=changes)


def _item(week: Week, incoming: Incoming, featured: bool) -> AddReportItem:
    """The report item a message becomes."""
    key = (week.unit_id, week.deadline_id, week.period)
    if incoming.kind == "text":
        return AddReportItem(*key, kind="text", text=incoming.text.strip(), featured=featured)
    if incoming.kind == "link":
        fields = incoming.fields
        title = "\n".join(t for t in (fields.get("title", ""), fields.get("description", "")) if t)
        return AddReportItem(*key, kind="link", text=title or None, url=fields.get("url"), featured=featured)
    # Voice comes with WeChat's speech recognition when the account has it switched on.
    return AddReportItem(*key, kind=MEDIA_KINDS[incoming.kind], text=incoming.fields.get("recognition") or None,
                         media_id=incoming.fields.get("media_id"), media_kind=incoming.kind, featured=featured)


def _finish(week: Week, featured: bool, ctx: Context) -> Outcome:
    """完成: confirm what came in; a weekly report is submitted, its texts kept as the form's text."""
    items = _items(ctx, week)
    mine = [i for i in items if i.featured] if featured else items
    numbers = 0
    if not featured and week.definition.summed_fields(week.collects):
        numbers = sum(1 for v in _numbers(ctx, week).answers.values() if v.number is not None)
    if not mine and not numbers:
        return Outcome(replies=(ctx.texts.render("report_empty", featured=featured),),
                       state=week.state(FEATURED if featured else WEEKLY))
    reply = ctx.texts.render(
        "report_done", featured=featured, title=week.title, counts=_counts(mine),
        unfetched=_counts([i for i in mine if i.media_status == "failed"]),
        fetching=sum(1 for i in mine if i.media_status in ("pending", "fetching")),
        late=not featured and ctx.now > week.due_at, again=_status(ctx, week) == "submitted", numbers=numbers)
    if featured:
        return Outcome(replies=(reply,), state=DialogueState(), changes=(_featured_note(week, mine, ctx),))
    changes: tuple[Any, ...] = (SubmitForm(week.unit_id, week.deadline_id, week.period, week.due_at),)
    text_field = next((f for f in week.definition.form(week.collects).fields
                       if f.type in (FieldType.LONG_TEXT, FieldType.TEXT)), None)
    submission = ctx.stored.submission(week.unit_id, week.deadline_id, week.period)
    texts = ctx.stored.report_texts(submission.id) if submission else []
    if text_field is not None and texts:
        # The form's text field holds the week's texts too, so the table of answers shows the report.
        save = SaveAnswers(week.unit_id, week.deadline_id, week.period, week.due_at,
                           (Value(text_field.answer_key, "\n\n".join(texts)),))
        changes = (save,) + changes
    return Outcome(replies=(reply,), state=DialogueState(), changes=changes)


def _featured_note(week: Week, items: list[ItemFacts], ctx: Context) -> StaffNote:
    """Staff hear of a 要情 when the liaison finishes it: the unit, what came, and its latest text."""
    unit = ctx.stored.unit(week.unit_id)
    submission = ctx.stored.submission(week.unit_id, week.deadline_id, week.period)
    texts = ctx.stored.report_texts(submission.id, featured_only=True) if submission else []
    text = ctx.texts.render("staff_note_featured", unit=unit.name, counts=_counts(items),
                            latest=texts[-1] if texts else "", at=_local(week, ctx.now))
    return StaffNote(week.unit_id, f"featured:{week.unit_id}:{week.period}:{len(items)}:{int(ctx.now.timestamp())}", text)


def _items(ctx: Context, week: Week) -> list[ItemFacts]:
    submission = ctx.stored.submission(week.unit_id, week.deadline_id, week.period)
    return ctx.stored.report_items(submission.id) if submission else []


def _status(ctx: Context, week: Week) -> str:
    submission = ctx.stored.submission(week.unit_id, week.deadline_id, week.period)
    return submission.status if submission else "draft"


def _counts(items: list[ItemFacts]) -> list[tuple[str, int]]:
    """How many items of each kind, in the summary's order, for the templates."""
    found = Counter(i.kind for i in items)
    return [(kind, found[kind]) for kind in KIND_ORDER if found[kind]]


def _local(week: Week, moment: datetime) -> datetime:
    return moment.astimezone(week.definition.timezone)


def _join(*texts: str) -> str:
    # One reply, not several: pushed messages are rationed (wechat-rules A1).
    return "\n\n".join(t for t in texts if t)
