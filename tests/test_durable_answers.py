"""WeChat never hears ``success`` for a message that is not stored yet (issue 19, item 6): it does not
send a message again after a 200. (A retry of a claim whose worker is gone: tests/test_gateway_concurrency.py.)"""

from __future__ import annotations

import contextlib
from typing import Iterator

import sqlalchemy as sa

from bot.store.sqlite_writer import WriterQueue
from bot.store.models import InboundStatus
from bot.texts import Texts
from tests.fixtures_gateway import StartBot

TEXTS = Texts()


@contextlib.contextmanager
def storage_held(engine: sa.Engine) -> Iterator[None]:
    """Another process holds the write lock the claim needs: on SQLite another bot process's
    writer's turn (its own open lock file, as a second web worker has), on PostgreSQL a lock on
    the inbound log."""
    if engine.dialect.name == "sqlite":
        other_process = WriterQueue(engine.url.database or "")
        other_process.acquire()
        try:
            yield
        finally:
            other_process.release()
        return
    with engine.connect() as holder:
        holder.execute(sa.text("LOCK TABLE inbound_message IN EXCLUSIVE MODE"))
        yield
        holder.rollback()


def test_a_message_not_stored_within_the_budget_gets_503_and_its_retry_the_reply(start_bot: StartBot,
                                                                                 engine: sa.Engine) -> None:
    bot = start_bot(REPLY_BUDGET_SECONDS="0.5")
    xml = bot.side.message_xml("oHeld", "text", Content="帮助")
    with storage_held(engine):
        first = bot.side.deliver(xml)
    # Not ``success``: WeChat does not send a message again after a 200.
    assert first.status_code == 503
    retry = bot.side.deliver(xml)
    assert retry.status_code == 200 and retry.content == TEXTS.render("help")
    [stored] = bot.inbound()
    assert (stored.openid, stored.status, stored.deliveries) == ("oHeld", InboundStatus.ANSWERED, 2)
