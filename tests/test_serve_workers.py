"""`safetybot serve` with two web workers under uvicorn's supervisor on one SQLite file, as WeChat
would hit it, and `safetybot worker` beside them sending what the web workers leave to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.outbound.outbox import note_staff
from bot.store.engine import make_engine, session
from bot.store.models import (
    Campaign, Delivery, InboundMessage, InboundStatus, Person, Role, SchedulerLease, table_of, utcnow,
)
from bot.texts import Texts
from simulator.wechat_side import WeChatSide
from tests.conftest import free_port, wait_until_served
from tests.fixtures_fake import APP_ID, APP_SECRET, ServedFake
from tests.test_weekly_report import eventually

pytestmark = pytest.mark.slow  # starts `safetybot` processes: a few seconds each

TOKEN = "safetybottest"
STAFF = "oStaffWang"


def web_workers(supervisor: int) -> list[int]:
    """The web workers uvicorn's supervisor runs, as Linux's /proc lists its children (the other
    one, if any, is multiprocessing's resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in _cmdline(int(pid))]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""  # ended meanwhile


def _gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


@pytest.fixture
def bot_env(sqlite_url: str, fake_wechat: ServedFake, tmp_path: Path) -> dict[str, str]:
    """The settings of the served bot, as environment: two web workers, the worker role left out."""
    return {
        "PATH": os.environ.get("PATH", ""), "WECHAT_TOKEN": TOKEN, "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": APP_SECRET, "ADMIN_TOKEN": "test-admin-token-0123456789",
        "WECHAT_API_BASE_URL": fake_wechat.base_url, "DATABASE_URL": sqlite_url, "MEDIA_DIR": str(tmp_path / "media"),
        "PORT": str(free_port()), "WEB_WORKERS": "2", "LOG_LEVEL": "WARNING",
    }


def safetybot(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "--env-file", os.devnull, command], env=env)


@pytest.fixture
def served(bot_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`safetybot serve` with two web workers; yields its base URL and the supervising process."""
    process = safetybot("serve", bot_env)
    base_url = f"http://127.0.0.1:{bot_env['PORT']}"
    workers: list[int] = []
    try:
        # The socket is bound before the workers start, so wait for both, then for an answer.
        wait_until_served(process, base_url, ready=lambda: len(web_workers(process.pid)) >= 2)
        workers = web_workers(process.pid)
        assert len(workers) == 2
        yield base_url, process
    finally:
        workers = web_workers(process.pid) if process.poll() is None else workers
        process.terminate()
        process.wait(timeout=60)
    # Stopping the supervisor stops its workers: nothing is left serving the port.
    assert all(_gone(pid) for pid in workers)


@pytest.fixture
def served_web_only(bot_env: dict[str, str]) -> Iterator[str]:
    """`safetybot serve` in one process told not to run the worker role (RUN_WORKER=no); yields its URL."""
    process = safetybot("serve", {**bot_env, "WEB_WORKERS": "1", "RUN_WORKER": "no"})
    base_url = f"http://127.0.0.1:{bot_env['PORT']}"
    try:
        wait_until_served(process, base_url)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=60)


def leases(sqlite_url: str) -> int:
    """How many scheduler leases are held: one while a process of the worker role runs."""
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        held = conn.execute(sa.select(sa.func.count()).select_from(SchedulerLease.__table__)).scalar_one()
    engine.dispose()
    return int(held)


def test_retries_spread_over_two_workers_are_handled_once_each(served: tuple[str, subprocess.Popen[bytes]],
                                                               sqlite_url: str) -> None:
    base_url, _ = served
    help_text = Texts().render("help")
    clients = [httpx.Client(base_url=base_url, timeout=30) for _ in range(8)]
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
    # With several web workers, none of them runs the worker role (RUN_WORKER=auto): no scheduler stands.
    assert leases(sqlite_url) == 0


def test_a_killed_web_worker_is_replaced_and_the_bot_keeps_answering(
        served: tuple[str, subprocess.Popen[bytes]]) -> None:
    base_url, supervisor = served
    killed, kept = web_workers(supervisor.pid)
    os.kill(killed, signal.SIGKILL)
    replaced = eventually(lambda: (now := web_workers(supervisor.pid)) and len(now) == 2 and killed not in now and now,
                          timeout=60)
    assert replaced and kept in replaced
    # Each new connection may land on either worker: all of them are answered.
    for n in range(6):
        with httpx.Client(base_url=base_url, timeout=30) as client:
            side = WeChatSide(client, token=TOKEN, app_id=APP_ID)
            assert side.text(f"o_after_kill_{n}", "帮助").content == Texts().render("help")


def _staff_note_queued(sqlite_url: str, text: str) -> Callable[[], Delivery | None]:
    """A staff member who wrote a minute ago, and a note to staff queued as a handling would queue
    it; returns a look at the note's delivery row."""
    engine = make_engine(sqlite_url)
    now = utcnow()
    with engine.begin() as conn:
        campaign_id = conn.execute(sa.insert(table_of(Campaign)).values(
            slug="process-test", name="进程测试", year=2023, definition={}, loaded_at=now)).inserted_primary_key[0]
        conn.execute(sa.insert(Person.__table__).values(openid=STAFF, name="王", role=Role.STAFF.value,
                                                        campaign_id=campaign_id, following=True, last_message_at=now,
                                                        created_at=now))
        note_staff(conn, campaign_id, "process-test", text, now)
    engine.dispose()

    def look() -> Delivery | None:
        reader = make_engine(sqlite_url)
        with session(reader) as db:
            row = db.exec(select(Delivery).where(Delivery.openid == STAFF)).one()
        reader.dispose()
        return row

    return look


def test_the_worker_sends_a_note_a_web_only_bot_leaves_queued(served_web_only: str, bot_env: dict[str, str],
                                                               sqlite_url: str, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.user_wrote(STAFF)
    note = _staff_note_queued(sqlite_url, "泽州县商务局申请更换联络员")
    time.sleep(1.5)  # six passes of an outbox, had the web process one
    assert note().status == "claimed" and fake_wechat.fake.pushes(STAFF) == [] and leases(sqlite_url) == 0

    worker = safetybot("worker", bot_env)
    try:
        sent = eventually(lambda: (row := note()).status == "sent" and row, timeout=60)
        assert sent and sent.channel == "customer_service"
        pushed = fake_wechat.fake.pushes(STAFF)
        assert [p.payload["text"]["content"] for p in pushed] == ["泽州县商务局申请更换联络员"]
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    # Stopping, the worker gave the scheduler's lease up, so another one takes over at once.
    assert leases(sqlite_url) == 0
