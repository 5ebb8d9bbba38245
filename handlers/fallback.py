"""What nothing else claimed: kinds the bot does not use, silent events, and unknown text."""

from handlers.base import Context, DialogueState, Incoming, Outcome

# Events that need no answer: WeChat shows nothing for them, or the person has left.
SILENT_EVENTS = {"unsubscribe", "VIEW", "TEMPLATESENDJOBFINISH", "MASSSENDJOBFINISH", "LOCATION"}


def is_silent_event(incoming: Incoming, state: DialogueState) -> bool:
    return incoming.kind == "event" and incoming.event in SILENT_EVENTS


def stay_silent(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """No reply; the gateway answers WeChat with ``success``."""
    return Outcome()


def is_unused_kind(incoming: Incoming, state: DialogueState) -> bool:
    return incoming.kind not in {"text", "event"}


def explain_unused_kind(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """A short reply naming what the bot understands, instead of an error."""
    return Outcome(replies=(ctx.texts.render("unsupported_kind", kind=incoming.kind),))


def anything(incoming: Incoming, state: DialogueState) -> bool:
    return True


def not_understood(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Text or a menu key no route knows."""
    if incoming.kind == "event":
        return Outcome()
    # Someone not yet registered most likely wants to start: the reply names the first step.
    newcomer = ctx.facts.unit_id is None and not ctx.facts.is_staff
    return Outcome(replies=(ctx.texts.render("not_understood", text=incoming.text, newcomer=newcomer),))
