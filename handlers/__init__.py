"""The one routing table: the WeChat callback, menu clicks and text commands all come through it.

Routes are tried in order; the first whose ``matches`` says yes handles the message. Matchers do
no I/O, so choosing a handler is cheap. The words and buttons that open a dialogue (登记, 填报, 周报,
…) come before the dialogue in progress, as PTB's ConversationHandler tries its entry points first
when re-entry is allowed: typed in the middle of a walk they open their own dialogue instead of
being taken as an answer (what the walk stored so far stays). Any other message in a dialogue
reaches the dialogue; commands and words no dialogue takes come last.
"""

from __future__ import annotations

from dataclasses import replace

from handlers import (
    announcements, backstage, dialogue, fallback, greeting, help, progress, records, registration, staff, statistics,
    template_job, totals, unreadable, weekly_report,
)
from handlers import roles
from handlers.answers import normalise
from handlers.base import Context, DialogueState, Incoming, Outcome, Route

# The routes that open a dialogue, with the words each takes (the only list of them: typed in the
# middle of a walk these words interrupt it, because these routes are tried before the walks' steps).
OPENERS: list[Route] = [
    Route("register", registration.is_register, registration.start_registration, registration.KEYWORDS),
    Route("details", registration.is_details, registration.start_details, registration.DETAILS_KEYWORDS),
    Route("fill", statistics.is_fill, statistics.open_table, statistics.KEYWORDS),
    Route("report", weekly_report.is_report_opener, weekly_report.open_report, weekly_report.OPENERS.keys()),
    Route("records", records.is_records, records.open_records, records.KEYWORDS),
    Route("announce", announcements.is_announce_opener, announcements.open_announcement,
          announcements.OPENERS | announcements.STATUS_WORDS),
]

# The routes that take a message inside an open dialogue: each runs only while the sender still
# holds the authority the dialogue was opened with (handlers/roles.py, checked in dispatch).
STEPS: list[Route] = [
    Route("registration_step", registration.is_registering, registration.continue_registration),
    Route("statistics_step", statistics.is_walking, statistics.continue_table),
    Route("report_step", weekly_report.is_reporting, weekly_report.continue_report),
    Route("records_step", records.is_recording, records.continue_records),
    Route("announce_step", announcements.is_announcing, announcements.continue_announcement),
]


def _unreadable(incoming: Incoming, state: DialogueState) -> bool:
    """A placeholder or blank text (:func:`handlers.unreadable.is_unreadable`) that is no command
    typed in an emoticon's brackets: "[帮助]" is 帮助, "[微笑]" a placeholder."""
    return unreadable.is_unreadable(incoming, state) and normalise(incoming.text).lower() not in KNOWN_WORDS


ROUTES: list[Route] = [
    Route("greeting", greeting.is_subscribe, greeting.greet),
    Route("template_job", template_job.is_template_job_finished, template_job.record_job),
    Route("silent_event", fallback.is_silent_event, fallback.stay_silent),
    # A sticker's placeholder or a blank text is never an answer, a report item or a code.
    Route("unreadable", _unreadable, unreadable.explain),
    *OPENERS,
    *STEPS,
    # The office's questions come after the walks' steps: a liaison's answer in a walk is never
    # taken as 单位, 未报 or 合计.
    Route("progress", progress.is_progress_command, progress.answer),
    Route("totals", totals.is_totals, totals.show_totals, totals.TOTALS_WORDS),
    Route("export", totals.is_export, totals.export_link, totals.EXPORT_WORDS),
    Route("backstage", backstage.is_backstage, backstage.backstage_link, backstage.WORDS),
    Route("staff", staff.is_staff_command, staff.handle),
    Route("help", help.is_help, help.show_help, help.KEYWORDS),
    Route("unused_kind", fallback.is_unused_kind, fallback.explain_unused_kind),
    Route("not_understood", fallback.anything, fallback.not_understood),
]

# Every word the bot reads as a command: the routes' and the walks'.
KNOWN_WORDS = frozenset(word for route in ROUTES for word in route.words) | frozenset(dialogue.COMMAND_WORDS)

# Every template a route may render; start-up checks that each exists.
TEMPLATES = (
    ("greeting", "unsupported_kind", "not_understood", "handler_failed")
    + help.TEMPLATES + registration.TEMPLATES + statistics.TEMPLATES + weekly_report.TEMPLATES
    + records.TEMPLATES + staff.TEMPLATES + dialogue.ask_templates()
    + announcements.TEMPLATES
    + totals.TEMPLATES + backstage.TEMPLATES
    + progress.TEMPLATES
    + roles.TEMPLATES
    + unreadable.TEMPLATES + ("dialogue_still_open",)
)


def dispatch(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """Run the first route that matches ``incoming`` in ``state``.

    An opening word that is refused (请先登记, no week to report, not allowed) leaves the dialogue
    in progress open: the reply says so, and how to go on or leave it. A dialogue whose sender no
    longer holds the role, unit or campaign it was opened with ends instead of taking the message,
    and nothing of that message is written; the dialogue a route leaves open records the sender's
    authority (:func:`handlers.roles.opened_with`)."""
    for route in ROUTES:
        if route.matches(incoming, state):
            ended = roles.lapsed(state, ctx) if route in STEPS else None
            if ended is not None:
                return Outcome(replies=(ended,), state=DialogueState())
            outcome = route.handle(incoming, state, ctx)
            if route in OPENERS and state.flow and outcome.state is None and outcome.replies:
                ended = roles.lapsed(state, ctx)
                note = ended or ctx.texts.render("dialogue_still_open", flow=state.flow)
                outcome = replace(outcome, replies=(f"{outcome.replies[0]}\n\n{note}",) + outcome.replies[1:],
                                  state=DialogueState() if ended else None)
            return roles.opened_with(outcome, ctx)
    raise LookupError("the routing table has no catch-all route")
