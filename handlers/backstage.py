"""``后台`` for coordinators: a signed link, good for an hour, that logs them in to their campaign's
dashboard (``/dashboard``, :mod:`bot.dashboard`) on a phone or a computer without the admin token.

Only a coordinator may have one: the dashboard shows every unit's liaison and mobile, and the
link opens the campaign the coordinator works on and no other. Anyone else is told who may.
"""

from __future__ import annotations

from datetime import timedelta

from handlers.base import Context, DialogueState, Incoming, Outcome, asked_for
from handlers.roles import COORDINATOR, allowed

WORDS = {"后台", "管理后台", "后台链接"}
MENU_KEY = "DASHBOARD"
# A link in a chat is opened at once; one forwarded later should be worth nothing.
LINK_MINUTES = 60
TEMPLATES = ("dashboard_link",)
ACTION = "打开活动的管理后台"


def is_backstage(incoming: Incoming, state: DialogueState) -> bool:
    """``后台`` typed, or its menu button."""
    return asked_for(incoming, WORDS, MENU_KEY)


def backstage_link(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """The coordinator's signed link into their campaign's dashboard, or the refusal."""
    refusal = allowed(ctx, ACTION, roles={COORDINATOR})
    if refusal is not None:
        return Outcome(replies=(refusal,))
    assert ctx.facts.campaign_id is not None, "allowed() lets a coordinator through only with a campaign"
    definition = ctx.stored.definition(ctx.facts.campaign_id)
    expires_at = ctx.now.replace(microsecond=0) + timedelta(minutes=LINK_MINUTES)
    return Outcome(replies=(ctx.texts.render(
        "dashboard_link", campaign=definition.name, url=ctx.stored.dashboard_link(ctx.facts.campaign_id, expires_at),
        expires_at=expires_at.astimezone(definition.timezone), minutes=LINK_MINUTES),))
