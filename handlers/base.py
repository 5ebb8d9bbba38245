"""The types every handler speaks: what came in, where the person is, and what to do about it.

Handlers are pure: they take an :class:`Incoming` and the person's :class:`DialogueState` and
return an :class:`Outcome`. The gateway and storage apply the outcome (reply, state write);
handlers never touch HTTP, the database or the WeChat API: what they read comes through the
:class:`Context`'s read port (``handlers/ports.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Collection, Mapping

from bot.texts import Texts
from handlers.answers import normalise
from handlers.ports import PersonFacts, StoredFacts


@dataclass(frozen=True)
class Incoming:
    """One message or event from a person, with WeChat's XML field names already translated.

    ``kind`` is WeChat's MsgType (text, image, voice, video, shortvideo, location, link, event);
    ``event`` is the event name for events (subscribe, CLICK, ...), empty otherwise; ``text`` is
    the typed text for text messages and the EventKey for menu events.
    """

    openid: str
    kind: str
    created_at: datetime
    event: str = ""
    text: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DialogueState:
    """Where a person is in a dialogue; an empty ``flow`` means no dialogue is open."""

    flow: str = ""
    step: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What a handler decided: texts to send (the first as the passive reply), the next state, and
    the changes to stored data (values of ``handlers/changes.py``, ``handlers/report_changes.py`` and
    :class:`~handlers.template_job.TemplateJobFinished`; ``bot.app.change_writers`` lists their writers).

    ``state`` is None when the dialogue state stays as it was.
    """

    replies: tuple[str, ...] = ()
    state: DialogueState | None = None
    changes: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Context:
    """Read-only things a handler may consult: the texts, the sender as stored when their message
    was claimed, the current time (aware, UTC) and ``stored``, the stored data
    (:class:`~handlers.ports.StoredFacts`, read on the handling transaction's data)."""

    texts: Texts
    facts: PersonFacts
    now: datetime
    stored: StoredFacts


Handler = Callable[[Incoming, DialogueState, Context], Outcome]
Matcher = Callable[[Incoming, DialogueState], bool]


@dataclass(frozen=True)
class Route:
    """One row of the routing table: a cheap, I/O-free test and the handler it selects."""

    name: str
    matches: Matcher
    handle: Handler
    # The typed words the route answers (as :func:`asked_for` reads them), where it answers words.
    # The opening routes' words are the ones that interrupt a walk (``handlers.OPENERS``); the
    # routing test types every route's words to check that no other opens a dialogue.
    words: Collection[str] = ()


def asked_for(incoming: Incoming, words: Collection[str], menu_key: str) -> bool:
    """Whether the person typed one of ``words`` (read as the walks read commands: surrounding spaces,
    end punctuation, full width and case ignored) or clicked the menu button ``menu_key``: a text
    command and its menu click lead to the same handler."""
    if incoming.kind == "text":
        return normalise(incoming.text).lower() in words
    return incoming.kind == "event" and incoming.event == "CLICK" and incoming.text == menu_key
