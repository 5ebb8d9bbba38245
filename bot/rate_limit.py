"""A per-person rate limit (``MESSAGES_PER_MINUTE``), counted in the database every web worker shares.

One person sending hundreds of messages in a burst would hold the handler threads and the writer
while everyone else waits (issue 19: p50 9 → 14 ms on SQLite, 19 → 37 ms on PostgreSQL). A
person's first counted message opens their minute; once they are over the limit, the first
message over it is answered with ``rate_limited`` and the rest of that minute ``success``. Each
of them is still stored raw in the inbound log with status ``limited``: nothing is lost, nothing
of it is handled, and the next minute is answered as usual.

The count is taken in the claim's own transaction (:meth:`RateLimit.admit`), by an upsert of the
person's one ``rate_window`` row. The claim is where a new message is told from WeChat's retry of
one already stored, so a retry is never counted twice; PostgreSQL's upsert locks the row and
SQLite has one writer, so the count is exact across web workers, and it costs no round trip of
its own. Not Redis: a count outside the claim's transaction could count a message whose claim
then failed (and WeChat's retry of it again), and a Redis outage would decide who is answered.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from bot.config import Settings
from bot.store.engine import Prepared
from bot.store.models import InboundMessage, InboundStatus, RateWindow, UTCDateTime, table_of
from bot.store.sql import insert_on_conflict
from bot.texts import Texts
from bot.wechat.callback import INTERACTION_EVENTS, USER_MESSAGE_KINDS, Message, text_reply_xml
from handlers.base import Incoming

log = logging.getLogger("safetybot.rate_limit")

TEMPLATES = ("rate_limited",)
WINDOW = timedelta(minutes=1)

# Events a person makes by a click or a scan, asking the bot for a reply. Not counted, and never
# limited: following and unfollowing (the bot must know whether it may write to the person), and
# what WeChat reports on its own (LOCATION every few seconds, VIEW after a menu link opened,
# TEMPLATESENDJOBFINISH about the bot's own sends), which asks for nothing.
COUNTED_EVENTS = INTERACTION_EVENTS - {"subscribe"}


def counts(incoming: Incoming) -> bool:
    """Whether ``incoming`` counts toward its sender's limit: a message they sent (any kind WeChat
    knows) or a click or scan of theirs; other events and unknown kinds never do."""
    return incoming.kind in USER_MESSAGE_KINDS or (incoming.kind == "event" and incoming.event in COUNTED_EVENTS)


class RateLimit:
    """Counts each person's messages per minute and marks those over ``settings.messages_per_minute``.

    Built at start-up, which fails (LookupError) if ``messages/rate_limited.j2`` is missing; the
    reply is rendered once, here.
    """

    def __init__(self, settings: Settings, dialect: sa.Dialect, texts: Texts):
        texts.check(TEMPLATES)
        self.per_minute = settings.messages_per_minute
        self._reply = texts.render("rate_limited", per_minute=self.per_minute)
        windows = table_of(RateWindow)
        start = insert_on_conflict(dialect, windows).values(
            openid=sa.bindparam("openid"), started_at=sa.bindparam("now"), messages=1)
        # Both sides of each CASE read the row as it was before this update (SQL's rule, on both databases).
        passed = windows.c.started_at <= sa.bindparam("minute_ago", type_=UTCDateTime())
        self._count = Prepared(start.on_conflict_do_update(index_elements=["openid"], set_={
            "messages": sa.case((passed, 1), else_=windows.c.messages + 1),
            "started_at": sa.case((passed, start.excluded.started_at), else_=windows.c.started_at),
        }).returning(windows.c.messages), dialect)
        inbound = table_of(InboundMessage)
        self._limit = Prepared(
            sa.update(inbound).where(inbound.c.id == sa.bindparam("inbound_id"))
            .values(status=InboundStatus.LIMITED, reply=sa.bindparam("reply"), answered_at=sa.bindparam("answered_at")),
            dialect,
        )

    def admit(self, conn: sa.Connection, message: Message, inbound_id: int, now: datetime) -> tuple[InboundStatus, str | None]:
        """Count a newly claimed message (never a retry: the caller knows) toward its sender's
        minute, in the claim's transaction on ``conn``. Returns the claim's status and stored reply
        XML: ``(CLAIMED, None)`` to handle it, or ``(LIMITED, reply)`` where ``reply`` is the polite
        reply for the first message over the limit and None (``success``) for the rest; a limited
        row is written so here. ``now`` is aware."""
        incoming = message.incoming
        if not self.per_minute or not counts(incoming):
            return InboundStatus.CLAIMED, None
        sent = self._count.one(conn, {"openid": incoming.openid, "now": now, "minute_ago": now - WINDOW}).messages
        if sent <= self.per_minute:
            return InboundStatus.CLAIMED, None
        reply = None
        if sent == self.per_minute + 1:
            log.warning("%s sent over %d messages within a minute: stored, not handled, until the minute passes",
                        incoming.openid, self.per_minute)
            reply = text_reply_xml(incoming.openid, message.account, self._reply, int(now.timestamp()))
        self._limit.count(conn, {"inbound_id": inbound_id, "reply": reply, "answered_at": now})
        return InboundStatus.LIMITED, reply
