"""Who may use a command: the one check every office command makes before it reads or decides
anything (issue 17: every command checks the sender's role and campaign).

Staff and coordinators work on one campaign (``PersonFacts.campaign_id``); an office command
shows and changes only that campaign's data, so after :func:`allowed` said yes the handler scopes
its reads with ``ctx.facts.campaign_id``. Someone made staff before staff belonged to a campaign
has none, and is asked to send their campaign's staff code or invitation again.

A dialogue acts with the authority it was opened with (issue 19): :func:`opened_with` records the
role, unit and campaign in the state of every dialogue, and :func:`lapsed` tells, before any of its
steps runs, that the person no longer holds them (a takeover approved, a role revoked, a unit or
campaign changed), so the dialogue ends with a reply saying so and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Collection

from handlers.base import Context, DialogueState, Outcome
from handlers.ports import PersonFacts

LIAISON, STAFF, COORDINATOR = "liaison", "staff", "coordinator"
# Every office command (待审批/批准/驳回, 通知, 进度, 合计, 未报, 单位, 导出) is for both.
OFFICE = frozenset({STAFF, COORDINATOR})
TEMPLATES = ("role_refused", "role_no_campaign", "dialogue_authority_lapsed")
# The key of a dialogue state's data holding the authority the dialogue was opened with.
AUTHORITY = "opened_as"


def allowed(ctx: Context, action: str, roles: Collection[str] = OFFICE) -> str | None:
    """None when the sender may ``action`` (a verb phrase, e.g. "审批联络员申请"); otherwise the
    polite refusal to reply with, which names who may. The handler then returns that reply alone
    and changes nothing.

    ``roles`` are among liaison, staff and coordinator. A liaison counts only with a unit (someone
    who has not registered is refused); staff and coordinators only with a campaign, and the
    command is then about that campaign, ``ctx.facts.campaign_id`` (never None after a yes).
    """
    facts = ctx.facts
    if facts.role not in roles or (facts.role == LIAISON and facts.unit_id is None):
        return ctx.texts.render("role_refused", action=action, roles=[r for r in (STAFF, COORDINATOR, LIAISON)
                                                                      if r in roles],
                                newcomer=facts.role == LIAISON and facts.unit_id is None)
    if facts.role in OFFICE and facts.campaign_id is None:
        return ctx.texts.render("role_no_campaign", role=facts.role, action=action)
    return None


def office_campaign(ctx: Context, action: str) -> int | str:
    """The campaign an office command (:data:`OFFICE`) is about: the sender's, when they may
    ``action``; otherwise the refusal text of :func:`allowed` to reply with alone."""
    refusal = allowed(ctx, action)
    if refusal is not None:
        return refusal
    assert ctx.facts.campaign_id is not None, "allowed() lets office roles through only with a campaign"
    return ctx.facts.campaign_id


@dataclass(frozen=True)
class Authority:
    """What a person may act as: ``role`` (liaison, staff, coordinator), the unit they are the
    liaison of and the campaign they work on (None where they have none)."""

    role: str
    unit_id: int | None
    campaign_id: int | None

    @classmethod
    def of(cls, facts: PersonFacts) -> "Authority":
        return cls(facts.role, facts.unit_id, facts.campaign_id)


def opened_with(outcome: Outcome, ctx: Context) -> Outcome:
    """``outcome`` with the sender's authority recorded in its state when that leaves a dialogue
    open. The routing table calls it on every outcome: a step runs only while :func:`lapsed` is
    None, so the authority it records is the one the dialogue was opened with."""
    state = outcome.state
    if state is None or not state.flow:
        return outcome
    held = Authority.of(ctx.facts)
    recorded = [held.role, held.unit_id, held.campaign_id]
    return replace(outcome, state=DialogueState(state.flow, state.step, {**state.data, AUTHORITY: recorded}))


def lapsed(state: DialogueState, ctx: Context) -> str | None:
    """None while the sender still holds the authority the open dialogue recorded (or no dialogue
    is open); otherwise the reply that ends it, naming what changed and that this message was
    not saved (an announcement not sent)."""
    recorded = state.data.get(AUTHORITY) if state.flow else None
    if recorded is None:
        # Opened before dialogues recorded their authority (a deploy in mid-dialogue): there is
        # nothing to compare with, and its steps read the role and unit as they did then.
        return None
    was, now = Authority(*recorded), Authority.of(ctx.facts)
    if was == now:
        return None
    return ctx.texts.render("dialogue_authority_lapsed", flow=state.flow, was=_described(was, ctx),
                            now=_described(now, ctx))


@dataclass(frozen=True)
class Described:
    """An authority as ``dialogue_authority_lapsed`` names it: the role, and the name of the unit
    (a liaison's) or of the campaign (the office's), "" where there is none."""

    role: str
    unit: str
    campaign: str


def _described(authority: Authority, ctx: Context) -> Described:
    unit = ctx.stored.unit(authority.unit_id).name if authority.unit_id is not None else ""
    campaign = ""
    if authority.role in OFFICE and authority.campaign_id is not None:  # a liaison's is their unit's
        campaign = ctx.stored.definition(authority.campaign_id).name
    return Described(authority.role, unit, campaign)
