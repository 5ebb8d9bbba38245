"""Following the account: greet and say how to start."""

from handlers.base import Context, DialogueState, Incoming, Outcome


def is_subscribe(incoming: Incoming, state: DialogueState) -> bool:
    return incoming.kind == "event" and incoming.event == "subscribe"


def greet(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Welcome a new follower and name the first command."""
    return Outcome(replies=(ctx.texts.render("greeting"),))
