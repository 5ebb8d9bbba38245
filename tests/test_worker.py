"""The worker role: however many processes run it on one database, each note goes out once and
one of them runs the reminder scheduler, the next taking over when it stops."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

from bot.config import Settings
from bot.outbound.outbox import note_staff
from bot.store.engine import make_engine, read_engine
from bot.store.models import Campaign, Delivery, Person, Role, table_of, utcnow
from bot.texts import Texts
from bot.wechat.client import WeChatAPI
from bot.wechat.token_store import build_token_store
from bot.worker import Worker
from tests.conftest import make_settings
from tests.fixtures_fake import ServedFake
from tests.test_weekly_report import eventually

STAFF = [f"oStaff{n:02d}" for n in range(12)]


@contextlib.contextmanager
def worker_process(settings: Settings) -> Iterator[Worker]:
    """The worker role as a process of its own would run it: its own engines and WeChat client."""
    engine = make_engine(settings.database_url)
    reads = read_engine(engine)
    worker = Worker(settings, engine, reads, WeChatAPI(settings, build_token_store(settings, engine)), Texts())
    try:
        with worker.running():
            yield worker
    finally:
        if reads is not engine:
            reads.dispose()
        engine.dispose()


def queue_staff_notes(engine: sa.Engine, texts: list[str]) -> None:
    """Twelve staff members who wrote a minute ago, and each note queued to all of them, as a
    handling would queue it."""
    now = utcnow()
    with engine.begin() as conn:
        campaign_id = conn.execute(sa.insert(table_of(Campaign)).values(
            slug="worker-test", name="工作进程测试", year=2023, definition={}, loaded_at=now)).inserted_primary_key[0]
        conn.execute(sa.insert(Person.__table__), [dict(openid=openid, name="", role=Role.STAFF.value, following=True,
                                                        campaign_id=campaign_id, last_message_at=now, created_at=now)
                                                   for openid in STAFF])
        for n, text in enumerate(texts):
            note_staff(conn, campaign_id, f"worker-test-{n}", text, now)


def statuses(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(Delivery.__table__.c.status)).scalars())


def test_two_worker_processes_send_each_note_once(tmp_path: Path, database_url: str, engine: sa.Engine,
                                                   fake_wechat: ServedFake) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=database_url, WECHAT_API_BASE_URL=fake_wechat.base_url)
    for openid in STAFF:
        fake_wechat.fake.user_wrote(openid)
    texts = ["泽州县商务局申请更换联络员", "高平市商务局报来要情", "阳城县商务局的图片未能取回"]
    with worker_process(settings), worker_process(settings):
        queue_staff_notes(engine, texts)
        assert eventually(lambda: statuses(engine) == ["sent"] * 36, timeout=30)
    for openid in STAFF:
        assert sorted(p.payload["text"]["content"] for p in fake_wechat.fake.pushes(openid)) == sorted(texts)


def test_one_worker_runs_the_scheduler_and_another_takes_over_when_it_stops(
        tmp_path: Path, database_url: str, fake_wechat: ServedFake) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=database_url, WECHAT_API_BASE_URL=fake_wechat.base_url)
    with contextlib.ExitStack() as first_process:
        first = first_process.enter_context(worker_process(settings))
        assert eventually(lambda: first.scheduler.running)
        with worker_process(settings) as second:
            assert second.scheduler.tend() is False  # standing by: the first holds the lease
            first_process.close()  # stopping, the first gives the lease up
            assert second.scheduler.tend() is True and second.scheduler.running
