"""Who may use a command: the one check every office command makes before it reads or decides
anything (issue 17: every command checks the sender's role and campaign).

Staff and coordinators work on one campaign (``PersonFacts.campaign_id``); an office command
shows and changes only that campaign's data, so after :func:`allowed` said yes the handler scopes
its reads with ``ctx.facts.campaign_id``. Someone made staff before staff belonged to a campaign
has none, and is asked to send their campaign's staff code or invitation again.
"""

from __future__ import annotations

from typing import Collection

from handlers.base import Context

LIAISON, STAFF, COORDINATOR = "liaison", "staff", "coordinator"
# Every office command (待审批/批准/驳回, 通知, 进度, 合计, 未报, 单位, 导出) is for both.
OFFICE = frozenset({STAFF, COORDINATOR})
TEMPLATES = ("role_refused", "role_no_campaign")


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
