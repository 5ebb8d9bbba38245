"""``通知``: staff and coordinators send an announcement to the liaisons of their campaign, and
``通知 状态`` shows how the latest ones stand.

The dialogue: ``通知`` → the text (and, before or after it, at most one picture) → the audience:
1 all liaisons, 2 the units that still owe a deadline's period, 3 a unit group, 4 named units (a
part of each name; a short numbered list when one part fits several) → a preview counting the
recipients by the channel each would get now (read with the send path's own rules,
:meth:`~handlers.ports.StoredFacts.audience`) → ``确认`` queues it (:class:`SendAnnouncement`; the
worker sends it, ``bot.outbound.announcements``), ``取消`` drops it at any step.

The text is kept and sent exactly as typed: it is only ever a variable of the messages' templates,
never a template itself, so ``{{ 7*7 }}`` arrives as ``{{ 7*7 }}``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from handlers.answers import normalise
from handlers.base import Context, DialogueState, Incoming, Outcome
from handlers.changes import SendAnnouncement
from handlers.ports import Audience
from handlers.roles import office_campaign

FLOW = "announce"
# What a refusal says the sender may not do (handlers/roles.py).
SEND_ACTION = "发送通知"
TEXT, AUDIENCE, DEADLINE, GROUP, UNITS, UNIT_CHOICE, PREVIEW = (
    "text", "audience", "deadline", "group", "units", "unit_choice", "preview")
OPENERS = {"通知", "发通知", "发送通知"}
STATUS_WORDS = {"通知 状态", "通知状态", "通知情况"}
CANCEL_WORDS = {"取消", "退出", "放弃"}
CONFIRM_WORDS = {"确认", "发送", "确定"}
AUDIENCE_CHOICES = {"1": "all", "全部": "all", "2": "owing", "未报": "owing", "3": "group", "分组": "group",
                    "4": "units", "单位": "units"}
# WeChat's limit on a text message (wechat-rules A1): the announcement as a liaison receives it.
TEXT_LIMIT_BYTES = 2048
# A list longer than this does not fit a phone screen: the person is asked to be more specific.
LIST_LIMIT = 10
# Deadlines offered for "units that still owe": those still open and those passed within a week.
JUST_PASSED = timedelta(days=7)
# More units than this are named by the first few and their number.
NAMED_UNITS = 5
_SEPARATORS = re.compile(r"[\s,，、;；]+")
_NUMBERS = re.compile(r"\d+")
TEMPLATES = ("announce_recipients", "announce_start", "announce_ask_text", "announce_image_received", "announce_too_long",
             "announce_audience", "announce_deadlines", "announce_groups", "announce_ask_units", "announce_no_unit",
             "announce_unit_choices", "announce_too_many_units", "announce_pick_number", "announce_nobody",
             "announce_preview", "announce_queued", "announce_cancelled", "announce_status", "announcement_text")


def is_announce_opener(incoming: Incoming, state: DialogueState) -> bool:
    """``通知`` or ``通知 状态`` typed; whether the sender may is the handler's to check."""
    return incoming.kind == "text" and _words(incoming.text) in OPENERS | STATUS_WORDS


def is_announcing(incoming: Incoming, state: DialogueState) -> bool:
    """A message (texts and the one picture; not events) while an announcement is being written."""
    return state.flow == FLOW and incoming.kind != "event"


def _words(text: str) -> str:
    return " ".join(normalise(text).split())


def open_announcement(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Start a new announcement, or show the latest ones (``通知 状态``)."""
    campaign_id = office_campaign(ctx, SEND_ACTION)
    if isinstance(campaign_id, str):
        return Outcome(replies=(campaign_id,))
    if _words(incoming.text) in STATUS_WORDS:
        return Outcome(replies=(ctx.texts.render("announce_status", announcements=ctx.stored.announcements(campaign_id),
                                                 zone=ctx.stored.definition(campaign_id).timezone),))
    return Outcome(replies=(ctx.texts.render("announce_start"),), state=DialogueState(FLOW, TEXT, {}))


def continue_announcement(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """The next step of the announcement being written."""
    campaign_id = office_campaign(ctx, SEND_ACTION)
    if isinstance(campaign_id, str):
        # Staff rights were taken away mid-dialogue: the draft goes, nothing is sent.
        return Outcome(replies=(campaign_id,), state=DialogueState())
    data = dict(state.data)
    if incoming.kind == "text" and _words(incoming.text) in CANCEL_WORDS:
        return Outcome(replies=(ctx.texts.render("announce_cancelled"),), state=DialogueState())
    if incoming.kind == "image" and state.step in (TEXT, AUDIENCE):
        data["image"] = incoming.fields.get("media_id", "")
        step = AUDIENCE if data.get("text") else TEXT
        reply = ctx.texts.render("announce_image_received", has_text=bool(data.get("text")))
        if step == AUDIENCE:
            reply += "\n" + _audience_menu(ctx, campaign_id)
        return Outcome(replies=(reply,), state=DialogueState(FLOW, step, data))
    if incoming.kind != "text":
        return Outcome(replies=(ctx.texts.render("announce_ask_text", step=state.step),))
    text = incoming.text
    if state.step == TEXT:
        return _take_text(text, data, campaign_id, ctx)
    answer = _words(text)
    if state.step == AUDIENCE:
        return _choose_audience(answer, data, campaign_id, ctx)
    if state.step in (DEADLINE, GROUP, UNIT_CHOICE):
        return _pick(state.step, answer, data, campaign_id, ctx)
    if state.step == UNITS:
        return _find_units(answer, data, campaign_id, ctx)
    if answer in CONFIRM_WORDS:
        change = SendAnnouncement(campaign_id, data["text"], data.get("image") or None,
                                  Audience.of_json(data["audience"]))
        return Outcome(replies=(ctx.texts.render("announce_queued"),), state=DialogueState(), changes=(change,))
    return _preview(Audience.of_json(data["audience"]), data, campaign_id, ctx)


def recipient_text(ctx: Context, campaign_id: int, text: str) -> str:
    """The announcement as a liaison receives it by customer-service message."""
    return ctx.texts.render("announcement_text", campaign=ctx.stored.definition(campaign_id).name, text=text)


def _take_text(text: str, data: dict[str, Any], campaign_id: int, ctx: Context) -> Outcome:
    size = len(recipient_text(ctx, campaign_id, text).encode())
    if not text.strip() or size > TEXT_LIMIT_BYTES:
        return Outcome(replies=(ctx.texts.render("announce_too_long", size=size, limit=TEXT_LIMIT_BYTES),))
    data["text"] = text
    return Outcome(replies=(_audience_menu(ctx, campaign_id),), state=DialogueState(FLOW, AUDIENCE, data))


def _audience_menu(ctx: Context, campaign_id: int) -> str:
    return ctx.texts.render("announce_audience", groups=bool(ctx.stored.definition(campaign_id).unit_groups))


def _choose_audience(answer: str, data: dict[str, Any], campaign_id: int, ctx: Context) -> Outcome:
    choice = AUDIENCE_CHOICES.get(answer)
    if choice == "all":
        return _preview(Audience("all"), data, campaign_id, ctx)
    if choice == "owing":
        periods = [p for p in ctx.stored.periods(campaign_id) if p.due_at >= ctx.now - JUST_PASSED][:LIST_LIMIT]
        choices = [[p.key, p.period, p.title] for p in periods]
        reply = ctx.texts.render("announce_deadlines", choices=choices)
        return Outcome(replies=(reply,), state=DialogueState(FLOW, DEADLINE, {**data, "choices": choices})
                       if choices else None)
    if choice == "group":
        groups = list(ctx.stored.definition(campaign_id).unit_groups)
        reply = ctx.texts.render("announce_groups", choices=groups)
        return Outcome(replies=(reply,), state=DialogueState(FLOW, GROUP, {**data, "choices": groups})
                       if groups else None)
    if choice == "units":
        return Outcome(replies=(ctx.texts.render("announce_ask_units"),), state=DialogueState(FLOW, UNITS, data))
    return Outcome(replies=(_audience_menu(ctx, campaign_id),))


def _pick(step: str, answer: str, data: dict[str, Any], campaign_id: int, ctx: Context) -> Outcome:
    """A number (or, for named units, several) from the list just shown."""
    choices: list[Any] = data.get("choices", [])
    picked = [int(n) for n in _NUMBERS.findall(answer)]
    if not picked or any(not 1 <= n <= len(choices) for n in picked) or (step != UNIT_CHOICE and len(picked) > 1):
        return Outcome(replies=(ctx.texts.render("announce_pick_number", count=len(choices)),))
    if step == DEADLINE:
        key, period, _title = choices[picked[0] - 1]
        audience = Audience("owing", deadline=key, period=period)
    elif step == GROUP:
        audience = Audience("group", group=choices[picked[0] - 1])
    else:
        chosen = list(data.get("chosen", [])) + [choices[n - 1][0] for n in picked]
        audience = Audience("units", unit_ids=tuple(dict.fromkeys(chosen)))
    return _preview(audience, data, campaign_id, ctx)


def _find_units(answer: str, data: dict[str, Any], campaign_id: int, ctx: Context) -> Outcome:
    """Each part of the answer names one unit; the parts that fit several are asked back as one list."""
    chosen: list[int] = []
    ambiguous: list[list[Any]] = []
    for fragment in (f for f in _SEPARATORS.split(answer) if f):
        # One more than a list shows: enough to know the name fits too many.
        found = ctx.stored.units_named(campaign_id, fragment, LIST_LIMIT + 1)
        exact = [u for u in found if u.name == fragment]
        if not found:
            return Outcome(replies=(ctx.texts.render("announce_no_unit", fragment=fragment),))
        if len(exact) == 1 or len(found) == 1:
            chosen.append((exact or found)[0].id)
        elif len(found) > LIST_LIMIT:
            return Outcome(replies=(ctx.texts.render("announce_too_many_units", fragment=fragment, limit=LIST_LIMIT),))
        else:
            ambiguous += [[u.id, u.name] for u in found if [u.id, u.name] not in ambiguous]
    if not chosen and not ambiguous:
        return Outcome(replies=(ctx.texts.render("announce_ask_units"),))
    if ambiguous:
        state = DialogueState(FLOW, UNIT_CHOICE, {**data, "chosen": chosen, "choices": ambiguous})
        return Outcome(replies=(ctx.texts.render("announce_unit_choices", choices=ambiguous),), state=state)
    return _preview(Audience("units", unit_ids=tuple(dict.fromkeys(chosen))), data, campaign_id, ctx)


def _describe(audience: Audience, campaign_id: int, ctx: Context) -> str:
    """The audience in the words of the preview and the status."""
    title = ""
    if audience.kind == "owing":
        title = next((p.title for p in ctx.stored.periods(campaign_id)
                      if (p.key, p.period) == (audience.deadline, audience.period)), audience.deadline)
    names = [ctx.stored.unit(u).name for u in audience.unit_ids[:NAMED_UNITS]]
    return ctx.texts.render("announce_recipients", audience=audience, title=title, names=names,
                            count=len(audience.unit_ids))


def _preview(audience: Audience, data: dict[str, Any], campaign_id: int, ctx: Context) -> Outcome:
    counts = ctx.stored.audience(campaign_id, audience, ctx.now)
    kept = {k: v for k, v in data.items() if k in ("text", "image")}
    if counts.recipients == 0:
        reply = ctx.texts.render("announce_nobody", who=_describe(audience, campaign_id, ctx), counts=counts)
        return Outcome(replies=(reply + "\n" + _audience_menu(ctx, campaign_id),),
                       state=DialogueState(FLOW, AUDIENCE, kept))
    reply = ctx.texts.render("announce_preview", who=_describe(audience, campaign_id, ctx), counts=counts,
                             text=data["text"], image=bool(data.get("image")))
    return Outcome(replies=(reply,), state=DialogueState(FLOW, PREVIEW, {**kept, "audience": audience.as_json()}))
