"""``帮助``: what the person can do now."""

from handlers.base import Context, DialogueState, Incoming, Outcome

KEYWORDS = {"帮助", "help", "?", "？", "菜单"}
MENU_KEY = "HELP"


def is_help(incoming: Incoming, state: DialogueState) -> bool:
    if incoming.kind == "text":
        return incoming.text.strip().lower() in KEYWORDS
    return incoming.kind == "event" and incoming.event == "CLICK" and incoming.text == MENU_KEY


def show_help(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """List the commands."""
    return Outcome(replies=(ctx.texts.render("help"),))
