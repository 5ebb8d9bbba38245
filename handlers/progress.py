"""What coordinators and staff ask about their campaign's units, in short Chinese: ``进度`` (how far
each open or just-passed deadline is), ``未报`` [事项] (who still owes one, with the liaison's name
and mobile) and ``单位`` 名称 (one unit: its liaison, forms and reports).

Only staff and coordinators of a campaign may ask, and only about that campaign (the one their code
or invitation named); anyone else is told politely who may, and nothing changes. The answers read
through set-based queries (``bot/store/progress.py``), so a campaign of 5,000 units costs a few
queries, not one per unit. Long answers are split to WeChat's limit where replies leave
(``bot/handling.py``); a listing here stays within what one message's window can carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from bot.campaigns.format import CampaignDefinition, DeadlineKind
from handlers.answers import normalise
from handlers.base import Context, DialogueState, Incoming, Outcome
from handlers.ports import DuePeriod, UnitFacts, UnitFiling
from handlers.roles import office_campaign

# What a refusal says the sender may not do (handlers/roles.py).
ASK_ACTION = "查看报送进度和单位情况"
PROGRESS_WORDS = {"进度", "报送进度", "进展"}
MISSING = re.compile(r"(?:未报送?|没报)\s*(?P<what>.*)")
UNIT = re.compile(r"单位\s*(?P<name>.*)")
FLOW, PICK = "progress", "pick"

# A deadline stays in 进度 and 未报 for a week after it passed: the office chases the stragglers then.
JUST_PASSED = timedelta(days=7)
# Names of missing units 进度 shows per deadline before "等 K 个".
SHOWN_MISSING = 8
# Units 单位 lists when a name matches several.
SHOWN_MATCHES = 10
# WeChat lets 5 customer-service messages of 2,048 bytes follow a person's message (wechat-rules
# A1), and a reply over the budget is pushed whole; 未报 lists units within about 5 messages, less
# what packing whole lines into messages may leave unused, so the listing arrives whole.
LISTING_BYTES = 5 * 2048 - 5 * 120

TEMPLATES = ("progress_overview", "progress_missing", "progress_missing_unit",
             "progress_no_deadline", "progress_unit", "progress_units", "progress_no_unit", "progress_ask_unit",
             "progress_by_email")


@dataclass(frozen=True)
class Shown:
    """One deadline period as 进度 shows it: ``due_at`` in the campaign's time zone; ``owing`` how
    many units have not sent it, ``missing`` the first of their names."""

    title: str
    period: str
    due_at: datetime
    passed: bool
    units: int
    submitted: int
    late: int
    owing: int
    missing: tuple[str, ...]


@dataclass(frozen=True)
class PeriodState:
    """One period of a deadline as 单位 shows it for one unit: ``status`` submitted, draft, owing
    (due and not sent) or open (not yet due); times in the campaign's time zone."""

    period: str
    due_at: datetime
    status: str
    submitted_at: datetime | None
    late: bool
    answered: int
    featured: int


@dataclass(frozen=True)
class DeadlineState:
    """One deadline of the campaign for one unit: a one-off has one period; a weekly or monthly
    one lists its periods due so far, the next one and any begun early, how many were ``sent``
    and how many are ``owing`` (due and not sent), and the 要情 among their reports."""

    title: str
    repeating: bool
    periods: tuple[PeriodState, ...]
    sent: int
    owing: int
    featured: int


def is_progress_command(incoming: Incoming, state: DialogueState) -> bool:
    """``进度``, ``未报`` [事项] or ``单位`` [名称]; whether the sender may ask is the handler's to check."""
    if incoming.kind != "text":
        return False
    text = normalise(incoming.text)
    return text in PROGRESS_WORDS or MISSING.fullmatch(text) is not None or UNIT.fullmatch(text) is not None


def answer(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Answer the office's question about its campaign, or refuse anyone else politely."""
    campaign_id = office_campaign(ctx, ASK_ACTION)
    if isinstance(campaign_id, str):
        return Outcome(replies=(campaign_id,))
    text = normalise(incoming.text)
    if text in PROGRESS_WORDS:
        return Outcome(replies=(_overview(ctx, campaign_id),))
    missing = MISSING.fullmatch(text)
    if missing is not None:
        return Outcome(replies=(_missing(ctx, campaign_id, missing["what"].strip()),))
    unit = UNIT.fullmatch(text)
    assert unit is not None, "the matcher let through only the three commands"
    return _unit(ctx, campaign_id, unit["name"].strip(), state)


# --- 进度 --------------------------------------------------------------------------------------


def in_view(periods: Sequence[DuePeriod], now: datetime) -> list[DuePeriod]:
    """The periods the office is working on at ``now``, earliest due first: each passed within the
    last week, and each deadline's next one; when the campaign is over, each deadline's last."""
    upcoming: dict[int, DuePeriod] = {}
    for period in periods:
        if period.due_at >= now and period.deadline_id not in upcoming:
            upcoming[period.deadline_id] = period
    chosen = [p for p in periods if now - JUST_PASSED <= p.due_at < now] + list(upcoming.values())
    if not chosen:
        chosen = list({p.deadline_id: p for p in periods}.values())
    return sorted(chosen, key=lambda p: (p.due_at, p.deadline_id))


def collected(definition: CampaignDefinition, periods: Sequence[DuePeriod]) -> list[DuePeriod]:
    """The periods of what is sent here: a form of documents only goes by e-mail, and nobody
    here knows who sent it (FormDefinition.documents_only)."""
    return [p for p in periods if not definition.form(p.collects).documents_only]


def _overview(ctx: Context, campaign_id: int) -> str:
    definition = ctx.stored.definition(campaign_id)
    periods = in_view(collected(definition, ctx.stored.periods(campaign_id)), ctx.now)
    counted = ctx.stored.progress(campaign_id, [(p.deadline_id, p.period) for p in periods], SHOWN_MISSING)
    shown = [Shown(p.title, p.period, p.due_at.astimezone(definition.timezone), p.due_at < ctx.now, c.units,
                   c.submitted, c.late, c.units - c.submitted, c.missing) for p, c in zip(periods, counted)]
    return ctx.texts.render("progress_overview", campaign=definition.name, periods=shown)


# --- 未报 --------------------------------------------------------------------------------------


def _missing(ctx: Context, campaign_id: int, what: str) -> str:
    definition = ctx.stored.definition(campaign_id)
    periods = ctx.stored.periods(campaign_id)
    chosen = _named_period(definition, periods, what, ctx.now)
    if chosen is None:
        return ctx.texts.render("progress_no_deadline", what=what,
                                titles=[d.title for d in definition.deadlines])
    if definition.form(chosen.collects).documents_only:
        return ctx.texts.render("progress_by_email", title=chosen.title, email=definition.contact.email)
    [counted] = ctx.stored.progress(campaign_id, [(chosen.deadline_id, chosen.period)], 0)
    lines, used = [], 0
    contacts = ctx.stored.missing_contacts(campaign_id, chosen.deadline_id, chosen.period)
    for contact in contacts:
        line = ctx.texts.render("progress_missing_unit", unit=contact)
        used += len(line.encode()) + 1
        if used > LISTING_BYTES:
            break
        lines.append(line)
    others = [p.title for p in in_view(collected(definition, periods), ctx.now) if p.deadline_id != chosen.deadline_id]
    return ctx.texts.render(
        "progress_missing", title=chosen.title, period=chosen.period,
        due_at=chosen.due_at.astimezone(definition.timezone), passed=chosen.due_at < ctx.now,
        units=counted.units, owing=len(contacts), lines=lines, hidden=len(contacts) - len(lines),
        others=list(dict.fromkeys(others)))


def _named_period(definition: CampaignDefinition, periods: Sequence[DuePeriod], what: str,
                  now: datetime) -> DuePeriod | None:
    """The period 未报 asks about: of the deadline named by key or part of its title (or of the
    form it collects, or 周报/月报 for a weekly/monthly one), the one named by its period key if a
    word says it, else the latest passed within the week, else the next; without a name, the
    latest passed within the week of any deadline, else the next due. None if nothing matches."""
    words = what.split()
    named_period = next((w for w in words if any(p.period == w for p in periods)), None)
    name = " ".join(w for w in words if w != named_period)
    candidates = list(periods)
    if name:
        keys = {d.key for d in definition.deadlines if _names(definition, d.key, name)}
        candidates = [p for p in periods if p.key in keys]
    if named_period is not None:
        candidates = [p for p in candidates if p.period == named_period]
    if not candidates:
        return None
    passed = [p for p in candidates if now - JUST_PASSED <= p.due_at < now]
    if passed:
        return passed[-1]
    return next((p for p in candidates if p.due_at >= now), candidates[-1])


def _names(definition: CampaignDefinition, key: str, name: str) -> bool:
    """Whether ``name`` names the deadline ``key``."""
    deadline = definition.deadline(key)
    aliases = {DeadlineKind.WEEKLY: "周报", DeadlineKind.MONTHLY: "月报"}
    return (name.lower() == key.lower() or name in deadline.title or name in definition.form(deadline.collects).title
            or name == aliases.get(deadline.kind))


# --- 单位 --------------------------------------------------------------------------------------


def _unit(ctx: Context, campaign_id: int, name: str, state: DialogueState) -> Outcome:
    if not name:
        return Outcome(replies=(ctx.texts.render("progress_ask_unit"),))
    listed = [int(i) for i in state.data.get("units", [])] if state.flow == FLOW else []
    if name.isdigit() and 1 <= int(name) <= len(listed):
        return _one_unit(ctx, campaign_id, listed[int(name) - 1])
    found = ctx.stored.units_named(campaign_id, name, SHOWN_MATCHES + 1)
    if not found:
        return Outcome(replies=(ctx.texts.render("progress_no_unit", asked=name),))
    if len(found) == 1 or found[0].name == name:
        return _one_unit(ctx, campaign_id, found[0].id)
    shown: list[UnitFacts] = found[:SHOWN_MATCHES]
    reply = ctx.texts.render("progress_units", asked=name, units=[u.name for u in shown],
                             more=len(found) > SHOWN_MATCHES)
    return Outcome(replies=(reply,), state=DialogueState(FLOW, PICK, {"units": [u.id for u in shown]}))


def _one_unit(ctx: Context, campaign_id: int, unit_id: int) -> Outcome:
    definition = ctx.stored.definition(campaign_id)
    contact = ctx.stored.unit_contact(campaign_id, unit_id)
    filings = {(f.deadline_id, f.period): f for f in ctx.stored.unit_filings(unit_id)}
    by_key: dict[str, list[DuePeriod]] = {}
    for period in collected(definition, ctx.stored.periods(campaign_id)):
        by_key.setdefault(period.key, []).append(period)
    deadlines = [_deadline_state(d.kind is not DeadlineKind.ONCE, by_key.get(d.key, []), filings, ctx.now,
                                 definition) for d in definition.deadlines]
    reply = ctx.texts.render("progress_unit", unit=contact, deadlines=[d for d in deadlines if d is not None])
    return Outcome(replies=(reply,), state=DialogueState())


def _deadline_state(repeating: bool, periods: list[DuePeriod], filings: dict[tuple[int, str], UnitFiling],
                    now: datetime, definition: CampaignDefinition) -> DeadlineState | None:
    """The unit's standing on one deadline: a one-off's only period; of a repeating one, the periods
    due so far, the next one and any begun early. None for a deadline without periods."""
    if not periods:
        return None
    zone = definition.timezone
    upcoming = next((p for p in periods if p.due_at >= now), None)
    states = []
    for period in periods:
        filing = filings.get((period.deadline_id, period.period))
        if repeating and filing is None and period.due_at >= now and period is not upcoming:
            continue
        if filing is not None and filing.status == "submitted":
            status = "submitted"
        elif filing is not None:
            status = "draft"
        else:
            status = "owing" if period.due_at < now else "open"
        states.append(PeriodState(
            period.period, period.due_at.astimezone(zone), status,
            filing.submitted_at.astimezone(zone) if filing and filing.submitted_at else None,
            bool(filing and filing.late), filing.answered if filing else 0, filing.featured if filing else 0))
    return DeadlineState(periods[0].title, repeating, tuple(states), sum(s.status == "submitted" for s in states),
                         sum(s.status == "owing" for s in states), sum(s.featured for s in states))
