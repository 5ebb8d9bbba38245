"""What staff and coordinators do in the chat: ``待审批`` lists the liaison requests waiting for
them, ``批准 N`` and ``驳回 N`` decide one. Each sees and decides only their own campaign's requests
(``handlers/roles.py`` says who may); a request of another campaign is, to them, no request.

A request is someone taking over a unit that has a liaison, or registering for a unit picked from
an open campaign's list (``handlers/registration.py``). Approving files the liaison table the
requester filled, makes them the unit's liaison and tells them, and tells the liaison they replace;
refusing tells the requester. Those notes go out through ``bot.outbound.outbox`` after the handling commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.campaigns.format import FieldType
from handlers.answers import normalise
from handlers.base import Context, DialogueState, Incoming, Outcome, asked_for
from handlers.changes import AppointLiaison, DecideRequest, PersonNote, Value
from handlers.dialogue import stored_values
from handlers.registration import liaison_of
from handlers.roles import allowed

PENDING_WORDS = {"待审批", "审批", "待审核"}
MENU_KEY = "PENDING"
DECIDE = re.compile(r"(批准|同意|通过|驳回|拒绝|不同意)\s*第?\s*(\d+)\s*[号个项]?")
APPROVE_WORDS = {"批准", "同意", "通过"}
# The largest request number: liaison_replacement.id is an INTEGER.
LARGEST_REQUEST = 2**31 - 1
ACTION = "审批联络员申请"
TEMPLATES = ("staff_pending", "staff_no_request", "staff_already_decided", "staff_decided",
             "request_approved", "request_refused", "liaison_replaced")


@dataclass(frozen=True)
class Shown:
    """One pending request as ``待审批`` lists it."""

    number: int
    kind: str
    unit: str
    name: str
    mobile: str
    holder: str
    requested_at: Any


def is_staff_command(incoming: Incoming, state: DialogueState) -> bool:
    """``待审批`` (or its menu button), ``批准 N`` or ``驳回 N``; whether the sender is staff is the
    handler's to check (matchers see no stored facts)."""
    if asked_for(incoming, PENDING_WORDS, MENU_KEY):
        return True
    return incoming.kind == "text" and DECIDE.fullmatch(normalise(incoming.text)) is not None


def handle(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """List the pending requests of the sender's campaign, or decide one; refused (nothing changed)
    to anyone but that campaign's staff and coordinators."""
    refusal = allowed(ctx, ACTION)
    if refusal is not None:
        return Outcome(replies=(refusal,))
    decision = DECIDE.fullmatch(normalise(incoming.text)) if incoming.kind == "text" else None
    if decision is None:
        return Outcome(replies=(_pending(ctx),), state=DialogueState())
    digits = decision[2].lstrip("0") or "0"
    if len(digits) > len(str(LARGEST_REQUEST)) or int(digits) > LARGEST_REQUEST:
        # Past what the request table's id column holds no request has it; the database is not
        # asked (PostgreSQL refuses the query, SQLite's driver the number).
        return Outcome(replies=(ctx.texts.render("staff_no_request", number=digits),))
    return _decide(int(digits), decision[1] in APPROVE_WORDS, ctx)


def _pending(ctx: Context) -> str:
    shown = []
    for request in ctx.stored.requests(campaign_id=ctx.facts.campaign_id):
        liaison = liaison_of(ctx, request.unit_id)
        fields = liaison.form.fields if liaison.form else ()
        mobile = next((request.answers[f.answer_key][0] or "" for f in fields
                       if f.type is FieldType.MOBILE and f.answer_key in request.answers), "")
        zone = ctx.stored.definition(ctx.stored.unit(request.unit_id).campaign_id).timezone
        shown.append(Shown(request.id, request.kind, request.unit_name, request.name, mobile, request.holder_name,
                           request.requested_at.astimezone(zone)))
    return ctx.texts.render("staff_pending", requests=shown)


def _decide(number: int, approved: bool, ctx: Context) -> Outcome:
    found = ctx.stored.requests(request_id=number, pending=False, campaign_id=ctx.facts.campaign_id)
    if not found:
        return Outcome(replies=(ctx.texts.render("staff_no_request", number=number),))
    request = found[0]
    if request.status != "pending":
        return Outcome(replies=(ctx.texts.render("staff_already_decided", number=number, unit=request.unit_name,
                                                 approved=request.status == "approved"),))
    topic = f"request:{request.id}"
    reply = ctx.texts.render("staff_decided", number=number, unit=request.unit_name, person=request.name,
                             approved=approved)
    if not approved:
        refused = ctx.texts.render("request_refused", unit=request.unit_name, kind=request.kind)
        return Outcome(replies=(reply,), changes=(DecideRequest(request.id, False),
                                                  PersonNote(request.openid, f"{topic}:refused", refused)))
    liaison = liaison_of(ctx, request.unit_id)
    values: dict[str, Value] = stored_values(request.answers)
    changes: tuple[Any, ...] = (DecideRequest(request.id, True),
                                AppointLiaison(request.unit_id, request.openid, request.name, request.reminders))
    changes += liaison.store(values, on_behalf_of=request.openid)
    changes += (PersonNote(request.openid, f"{topic}:approved", ctx.texts.render(
        "request_approved", unit=request.unit_name, reminders=request.reminders)),)
    holder = ctx.stored.holder(request.unit_id)
    if holder is not None and holder.openid != request.openid:
        changes += (PersonNote(holder.openid, f"{topic}:replaced", ctx.texts.render(
            "liaison_replaced", unit=request.unit_name, person=request.name)),)
    return Outcome(replies=(reply,), changes=changes)
