"""``帮助``: what the person can do now, given their role and the deadlines still open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.campaigns.format import DeadlineKind, FormKind
from handlers.base import Context, DialogueState, Incoming, Outcome, asked_for

KEYWORDS = {"帮助", "help", "?", "？", "菜单"}
MENU_KEY = "HELP"
TEMPLATES = ("help", "help_liaison", "help_staff")


@dataclass(frozen=True)
class Owed:
    """One deadline as help lists it: its next due time and whether the unit has filed it."""

    title: str
    due_at: datetime
    done: bool
    overdue: bool


def is_help(incoming: Incoming, state: DialogueState) -> bool:
    return asked_for(incoming, KEYWORDS, MENU_KEY)


def show_help(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Newcomers learn to register; liaisons see their unit's open deadlines and commands; staff and
    coordinators their commands and how many liaison requests wait for them."""
    if ctx.facts.is_staff:
        # Staff see their own campaign's requests; those made staff before campaigns had none.
        campaign = ctx.facts.campaign_id
        pending = len(ctx.stored.requests(campaign_id=campaign)) if campaign is not None else 0
        return Outcome(replies=(ctx.texts.render("help_staff", role=ctx.facts.role, pending=pending),))
    if ctx.facts.unit_id is None:
        return Outcome(replies=(ctx.texts.render("help"),))
    unit = ctx.stored.unit(ctx.facts.unit_id)
    definition = ctx.stored.definition(unit.campaign_id)
    owed = _owed(ctx, unit.id, unit.campaign_id)
    kinds = {d.key: d.kind for d in definition.deadlines}
    collects = {d.key: definition.form(d.collects).kind for d in definition.deadlines}
    return Outcome(replies=(ctx.texts.render(
        "help_liaison", unit=unit.name, owed=owed, zone=definition.timezone,
        statistics=FormKind.STATISTICS in collects.values(), weekly=DeadlineKind.WEEKLY in kinds.values(),
        records=FormKind.TABLE in collects.values(),
    ),))


def _owed(ctx: Context, unit_id: int, campaign_id: int) -> list[Owed]:
    """Each deadline's next period (or its last, when all have passed and it is still unfiled)."""
    by_deadline: dict[int, list] = {}
    for period in ctx.stored.periods(campaign_id):
        by_deadline.setdefault(period.deadline_id, []).append(period)
    found = []
    for periods in by_deadline.values():
        period = next((p for p in periods if p.due_at >= ctx.now), periods[-1])
        submission = ctx.stored.submission(unit_id, period.deadline_id, period.period)
        done = submission is not None and submission.status == "submitted"
        overdue = period.due_at < ctx.now
        if not (overdue and done):
            found.append(Owed(period.title, period.due_at, done, overdue))
    return sorted(found, key=lambda o: o.due_at)
