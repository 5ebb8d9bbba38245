"""WeChat never hears ``success`` for a message nobody will answer: not before the message is stored
(issue 19, item 6: WeChat does not send a message again after a 200), and not for the retry of a
message whose worker was killed after claiming it (item 7; a young claim left by another worker:
tests/test_gateway_concurrency.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.store.engine import session
from bot.store.models import InboundMessage, InboundStatus
from bot.store.sqlite_writer import WriterQueue
from bot.store.writers import PERSON_LOCK_NAMESPACE
from bot.texts import Texts
from simulator.wechat_side import WeChatSide
from tests.conftest import free_port, wait_until_served
from tests.fixtures_fake import APP_ID, APP_SECRET, ServedFake
from tests.fixtures_gateway import StartBot
from tests.test_weekly_report import eventually

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


def test_a_message_whose_worker_was_killed_after_the_claim_is_handled_by_the_retry(
        database_url: str, engine: sa.Engine, fake_wechat: ServedFake, tmp_path: Path) -> None:
    """`safetybot serve` is SIGKILLed after claiming a message and before answering it (issue 19,
    item 7); WeChat's retry reaches the restarted bot and is answered, not told ``success``."""
    if not database_url.startswith("postgresql"):
        pytest.skip("holds the person's PostgreSQL advisory lock to stop the handling between claim and write; "
                    "on SQLite that lock is the single writer, which would stop the claim too")
    env = {
        "PATH": os.environ.get("PATH", ""), "WECHAT_TOKEN": "safetybottest", "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": APP_SECRET, "ADMIN_TOKEN": "test-admin-token-0123456789",
        "WECHAT_API_BASE_URL": fake_wechat.base_url, "DATABASE_URL": database_url,
        "MEDIA_DIR": str(tmp_path / "media"), "PORT": str(free_port()), "WEB_WORKERS": "1", "RUN_WORKER": "no",
        "LOG_LEVEL": "WARNING",
    }
    base_url = f"http://127.0.0.1:{env['PORT']}"
    command = [sys.executable, "-m", "bot.cli", "--env-file", os.devnull, "serve"]
    side = WeChatSide(httpx.Client(base_url=base_url, timeout=30), token="safetybottest", app_id=APP_ID)
    xml = side.message_xml("oKilled", "text", msg_id=880001, Content="帮助")
    first = subprocess.Popen(command, env=env)
    try:
        wait_until_served(first, base_url)
        with engine.connect() as holder, ThreadPoolExecutor(1) as pool:
            holder.execute(sa.text("SELECT pg_advisory_xact_lock(:namespace, hashtext('oKilled'))"),
                           {"namespace": PERSON_LOCK_NAMESPACE})
            in_flight = pool.submit(side.deliver, xml)
            assert eventually(lambda: [m.status for m in _inbound(engine)] == [InboundStatus.CLAIMED])
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            with pytest.raises(httpx.HTTPError):
                in_flight.result(timeout=10)
            holder.rollback()
    finally:
        if first.poll() is None:
            first.kill()
    restarted = subprocess.Popen(command, env=env)
    try:
        wait_until_served(restarted, base_url)
        retry = side.deliver(xml)
        assert retry.status_code == 200 and retry.content == TEXTS.render("help")
    finally:
        restarted.terminate()
        restarted.wait(timeout=30)
        side.client.close()
    [stored] = _inbound(engine)
    assert (stored.status, stored.deliveries) == (InboundStatus.ANSWERED, 2)


def _inbound(engine: sa.Engine) -> list[InboundMessage]:
    with session(engine) as db:
        return list(db.exec(select(InboundMessage)).all())
