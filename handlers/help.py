"""``帮助``: what the person can do now, given their role and the deadlines still open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.campaigns.format import CampaignDefinition, DeadlineKind, FormKind
from handlers.base import Context, DialogueState, Incoming, Outcome, asked_for

KEYWORDS = {"帮助", "help", "?", "？", "菜单"}
MENU_KEY = "HELP"
TEMPLATES = ("help", "help_liaison", "help_staff", "help_requested")
# Left in the idle dialogue state by a request to become a unit's liaison (handlers/registration.py),
# so that only those who asked look up whether their request still waits.
REQUESTED = "liaison_requested"


@dataclass(frozen=True)
class Owed:
    """One deadline as help lists it: its next due time and whether the unit has filed it.
    ``by_email`` marks what cannot be sent in chat (a document such as 活动方案): help says where the
    notice asks for it instead, and knows nothing of whether it was sent."""

    title: str
    due_at: datetime
    done: bool
    overdue: bool
    by_email: bool = False


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
        # Someone whose 申请 waits for staff hears so first: help alone would tell them to 登记 again.
        asked = [r.unit_name for r in ctx.stored.requests(openid=incoming.openid)] if state.data.get(REQUESTED) else []
        waiting = [ctx.texts.render("help_requested", units=asked)] if asked else []
        return Outcome(replies=("\n".join([*waiting, ctx.texts.render("help")]),))
    unit = ctx.stored.unit(ctx.facts.unit_id)
    definition = ctx.stored.definition(unit.campaign_id)
    owed = _owed(ctx, unit.id, definition, unit.campaign_id)
    kinds = {d.key: d.kind for d in definition.deadlines}
    collects = {d.key: definition.form(d.collects).kind for d in definition.deadlines}
    return Outcome(replies=(ctx.texts.render(
        "help_liaison", unit=unit.name, owed=owed, zone=definition.timezone,
        statistics=FormKind.STATISTICS in collects.values(), weekly=DeadlineKind.WEEKLY in kinds.values(),
        records=FormKind.TABLE in collects.values(), email=definition.contact.email,
    ),))


def _owed(ctx: Context, unit_id: int, definition: CampaignDefinition, campaign_id: int) -> list[Owed]:
    """Each deadline's next period (or its last, when all have passed and it is still unfiled).
    A deadline for documents only (sent by e-mail as the notice asks) is listed until it is due."""
    by_deadline: dict[int, list] = {}
    for period in ctx.stored.periods(campaign_id):
        by_deadline.setdefault(period.deadline_id, []).append(period)
    by_email = {form.key for form in definition.forms if form.documents_only}
    found = []
    for periods in by_deadline.values():
        period = next((p for p in periods if p.due_at >= ctx.now), periods[-1])
        overdue = period.due_at < ctx.now
        if period.collects in by_email:
            if not overdue:
                found.append(Owed(period.title, period.due_at, False, False, by_email=True))
            continue
        submission = ctx.stored.submission(unit_id, period.deadline_id, period.period)
        done = submission is not None and submission.status == "submitted"
        if not (overdue and done):
            found.append(Owed(period.title, period.due_at, done, overdue))
    return sorted(found, key=lambda o: o.due_at)
