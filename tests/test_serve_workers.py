"""`safetybot serve` with several worker processes on one SQLite file, as WeChat would hit it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from sqlmodel import select

from bot.store.engine import make_engine, session
from bot.store.models import InboundMessage, InboundStatus, Person
from bot.texts import Texts
from simulator.wechat_side import WeChatSide
from tests.conftest import free_port
from tests.fixtures_fake import APP_ID, APP_SECRET, ServedFake

TOKEN = "safetybottest"


@pytest.fixture
def served(tmp_path: Path, sqlite_url: str, fake_wechat: ServedFake) -> Iterator[str]:
    """Two `safetybot serve` workers sharing a port and a SQLite file; yields the base URL."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""), "WECHAT_TOKEN": TOKEN, "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": APP_SECRET, "ADMIN_TOKEN": "test-admin-token-0123456789",
        "WECHAT_API_BASE_URL": fake_wechat.base_url, "DATABASE_URL": sqlite_url,
        "PORT": str(port), "WEB_WORKERS": "2", "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "--env-file", os.devnull, "serve"], env=env)
    children: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the bot did not start"
                time.sleep(0.05)
        # Both workers are forked children of the supervising process (Linux's /proc lists them).
        # The socket is bound before the forks, so it may answer before the second one is made.
        while len(children := Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()) < 2:
            assert process.poll() is None and time.monotonic() < deadline, f"workers started: {children}"
            time.sleep(0.05)
        assert len(children) == 2
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
    # Stopping the supervisor stops its workers: nothing is left serving the port.
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_retries_spread_over_two_workers_are_handled_once_each(served: str, sqlite_url: str) -> None:
    help_text = Texts().render("help")
    clients = [httpx.Client(base_url=served, timeout=30) for _ in range(8)]
    sides = [WeChatSide(c, token=TOKEN, app_id=APP_ID) for c in clients]
    messages = [sides[0].message_xml(f"o_worker_{i % 5}", "text", Content="帮助") for i in range(20)]
    barrier = threading.Barrier(8)

    def deliver(n: int) -> list[str | None]:
        # Each of 8 connections delivers every message: 8 deliveries of each, concurrently.
        barrier.wait()
        return [sides[n].deliver(xml).content for xml in messages]

    with ThreadPoolExecutor(8) as pool:
        answers = [a for result in pool.map(deliver, range(8)) for a in result]
    for client in clients:
        client.close()
    # Every delivery got the answer or, while the first was still being handled, "success".
    assert set(answers) <= {help_text, None} and Counter(answers)[help_text] >= 20
    engine = make_engine(sqlite_url)
    with session(engine) as db:
        rows = db.exec(select(InboundMessage)).all()
        people = db.exec(select(Person)).all()
    engine.dispose()
    assert len(rows) == 20
    assert all(row.status is InboundStatus.ANSWERED for row in rows)
    assert sum(row.deliveries for row in rows) == 160
    assert len(people) == 5
