"""Outages under a send: when Redis (the access token's store) or WeChat cannot be reached, a note
or a pushed reply that never left goes back to the queue and goes out once when they are back;
``/healthz`` says which part is down (issue 19, items 5 and 8)."""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from bot.app import create_app
from bot.outbound.outbox import Outbox
from bot.store.engine import read_engine
from bot.store.models import Delivery, InboundMessage, InboundStatus, table_of, utcnow
from bot.texts import Texts
from bot.wechat.client import WeChatAPI
from bot.wechat.token_store import build_token_store
from simulator.wechat_side import WeChatSide
from tests.conftest import free_port, make_settings
from tests.fixtures_fake import ServedFake
from tests.fixtures_gateway import RecordingDispatch
from tests.test_token_store import redis_url  # noqa: F401  (the fixture)
from tests.test_weekly_report import eventually
from tests.test_worker import STAFF, queue_staff_notes

TEXTS = Texts()


class Forwarder:
    """A TCP port that forwards to Redis while ``up``: Redis going away and coming back, for the
    clients that connect through it, without touching the Redis other tests use."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._server: socket.socket | None = None
        self._open: list[socket.socket] = []

    def up(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones, as a stopped Redis does."""
        if self._server is not None:
            # shutdown wakes the accept() blocked in the other thread; close alone would not.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._open.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)


@pytest.fixture
def redis_through(redis_url: str) -> Iterator[tuple[Forwarder, str]]:  # noqa: F811
    """(the forwarder, a REDIS_URL through it), forwarding."""
    database = redis_url.rsplit("/", 1)[1]
    forwarder = Forwarder(("127.0.0.1", 6379))
    forwarder.up()
    yield forwarder, f"redis://127.0.0.1:{forwarder.port}/{database}"
    forwarder.down()


def _rows(engine: sa.Engine) -> list[tuple[str, int | None, str | None]]:
    table = table_of(Delivery)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table.c.status, table.c.errcode, table.c.errmsg)
                                              .order_by(table.c.id))]


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.redis
def test_a_note_that_could_not_get_a_token_while_redis_was_down_goes_out_once_when_it_is_back(
        tmp_path: Path, database_url: str, engine: sa.Engine, fake_wechat: ServedFake,
        redis_through: tuple[Forwarder, str], request: pytest.FixtureRequest) -> None:
    forwarder, url = redis_through
    settings = make_settings(tmp_path, DATABASE_URL=database_url, WECHAT_API_BASE_URL=fake_wechat.base_url,
                             REDIS_URL=url)
    for openid in STAFF:
        fake_wechat.fake.user_wrote(openid)
    clock = Clock()
    api = WeChatAPI(settings, build_token_store(settings, engine), sleep=lambda seconds: None, clock=clock)
    request.addfinalizer(api.close)
    outbox = Outbox(engine, read_engine(engine), api, clock)
    queue_staff_notes(engine, ["高平市商务局报来要情"])
    forwarder.down()

    assert outbox.send_claimed() == 0
    rows = _rows(engine)
    assert [status for status, _, _ in rows] == ["claimed"] * len(STAFF)
    assert "no access token" in (rows[0][2] or "")
    assert fake_wechat.fake.pushes() == []

    forwarder.up()
    assert outbox.send_claimed() == 0  # still within the pause that followed the outage
    clock.now += timedelta(seconds=20)
    assert outbox.send_claimed() == len(STAFF)
    assert [status for status, _, _ in _rows(engine)] == ["sent"] * len(STAFF)
    assert sorted(p.openid for p in fake_wechat.fake.pushes()) == sorted(STAFF)


def test_a_note_that_could_not_connect_to_wechat_stays_queued_and_is_sent_once_wechat_answers(
        tmp_path: Path, database_url: str, engine: sa.Engine, fake_wechat: ServedFake) -> None:
    for openid in STAFF:
        fake_wechat.fake.user_wrote(openid)
    queue_staff_notes(engine, ["阳城县商务局的图片未能取回"])
    clock = Clock()
    closed = make_settings(tmp_path, DATABASE_URL=database_url, WECHAT_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    unreachable = WeChatAPI(closed, build_token_store(closed, engine), sleep=lambda seconds: None, clock=clock)

    assert Outbox(engine, read_engine(engine), unreachable, clock).send_claimed() == 0
    assert [status for status, _, _ in _rows(engine)] == ["claimed"] * len(STAFF)

    # The worker restarted, or WeChat came back: the same rows, sent once each.
    settings = make_settings(tmp_path, DATABASE_URL=database_url, WECHAT_API_BASE_URL=fake_wechat.base_url)
    api = WeChatAPI(settings, build_token_store(settings, engine), sleep=lambda seconds: None, clock=clock)
    assert Outbox(engine, read_engine(engine), api, clock).send_claimed() == len(STAFF)
    assert [status for status, _, _ in _rows(engine)] == ["sent"] * len(STAFF)
    assert sorted(p.openid for p in fake_wechat.fake.pushes()) == sorted(STAFF)


@pytest.mark.redis
def test_health_reports_redis_and_the_access_token(tmp_path: Path, database_url: str, engine: sa.Engine,
                                                   fake_wechat: ServedFake, redis_through: tuple[Forwarder, str]) -> None:
    forwarder, url = redis_through
    settings = make_settings(tmp_path, DATABASE_URL=database_url, WECHAT_API_BASE_URL=fake_wechat.base_url,
                             REDIS_URL=url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"database": "ok", "redis": "ok", "access_token": "none"}
        forwarder.down()
        down = client.get("/healthz")
        assert (down.status_code, down.json()) == (503, {"database": "ok", "redis": "unreachable",
                                                         "access_token": "unreadable"})
        forwarder.up()
        another_process = WeChatAPI(settings, build_token_store(settings, engine))
        another_process.access_token()
        another_process.close()
        assert client.get("/healthz").json() == {"database": "ok", "redis": "ok", "access_token": "fresh"}


def test_a_reply_pushed_while_wechat_is_unreachable_goes_out_once_it_answers(
        tmp_path: Path, database_url: str, engine: sa.Engine, fake_wechat: ServedFake,
        request: pytest.FixtureRequest) -> None:
    """The handler took longer than the budget, so WeChat heard ``success`` and the reply is to be
    pushed; at that moment WeChat's API cannot be reached. The reply waits in the ledger and the
    outbox sends it once WeChat answers again (issue 19, item 5)."""
    where = fake_wechat.base_url.removeprefix("http://").split(":")
    wechat_link = Forwarder((where[0], int(where[1])))
    wechat_link.up()
    request.addfinalizer(wechat_link.down)
    settings = make_settings(tmp_path, DATABASE_URL=database_url, REPLY_BUDGET_SECONDS="0.2",
                             WECHAT_API_BASE_URL=f"http://127.0.0.1:{wechat_link.port}")
    api = WeChatAPI(settings, build_token_store(settings, engine), sleep=lambda seconds: None)
    request.addfinalizer(api.close)
    dispatch = RecordingDispatch(gate=threading.Event())
    fake_wechat.fake.user_wrote("oLate")
    with TestClient(create_app(settings, engine=engine, wechat=api, dispatch=dispatch)) as client:
        side = WeChatSide(client, token=settings.wechat_token, app_id=settings.wechat_app_id)
        assert side.text("oLate", "帮助").body == "success"
        wechat_link.down()
        assert dispatch.gate is not None
        dispatch.gate.set()
        assert eventually(lambda: _rows(engine) and _rows(engine)[0][0] == "claimed" and _rows(engine)[0][1] == -1)
    assert fake_wechat.fake.pushes("oLate") == []

    wechat_link.up()
    later = Clock()
    later.now += timedelta(seconds=11)  # past the time the web process has to push it itself
    assert Outbox(engine, read_engine(engine), api, later).send_claimed() == 1
    assert [p.payload["text"]["content"] for p in fake_wechat.fake.pushes("oLate")] == [TEXTS.render("help")]
    with engine.connect() as conn:
        assert conn.execute(sa.select(table_of(InboundMessage).c.status)).scalar_one() == InboundStatus.ANSWERED
