"""The ``fake_wechat`` fixture: the fake WeChat API served over real HTTP on a free port."""

from __future__ import annotations

import contextlib
import http.server
import threading
from dataclasses import dataclass
from typing import Any, Iterator

import httpx
import pytest
from starlette.responses import PlainTextResponse

from simulator.fake_wechat import BackgroundServer, FakeWeChat, create_fake_app
from tests.conftest import free_port

# The same credentials as ``make_settings`` in conftest.py.
APP_ID = "wx0123456789abcdef"
APP_SECRET = "test-secret-0123456789abcdef0123"


@dataclass(frozen=True)
class ServedFake:
    """A running fake: its state in ``fake``, its address in ``base_url``."""

    fake: FakeWeChat
    base_url: str


class _CurrentFake:
    """An ASGI app passing each request to the fake of the test now running.

    Between tests there is none: a push still in flight from a finished test (a deferred reply
    sent after its response) is answered 503, as an unreachable WeChat would be.
    """

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self.app or _NO_TEST_RUNNING
        await app(scope, receive, send)


_NO_TEST_RUNNING = PlainTextResponse("no test is running", status_code=503)


@pytest.fixture(scope="session")
def _fake_wechat_server() -> Iterator[tuple[_CurrentFake, str]]:
    # One uvicorn for the whole session: starting and stopping one per test costs 0.2 s each.
    current = _CurrentFake()
    with BackgroundServer(current, free_port()) as base_url:
        yield current, base_url


@pytest.fixture
def fake_wechat(_fake_wechat_server: tuple[_CurrentFake, str]) -> Iterator[ServedFake]:
    """A fresh fake WeChat (empty state, its own clock) served over HTTP by uvicorn."""
    current, base_url = _fake_wechat_server
    fake = FakeWeChat(APP_ID, APP_SECRET)
    current.app = create_fake_app(fake)
    yield ServedFake(fake, base_url)
    current.app = None
    fake.close()


@contextlib.contextmanager
def losing_message_answers(base_url: str) -> Iterator[str]:
    """WeChat at ``base_url`` reached through a network that loses the answer to every message
    send: the request arrives (the fake records it and acts on it), then the connection drops
    before any answer comes back. Other calls (the token) pass through. Yields its URL."""

    class Forward(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = httpx.request(self.command, base_url + self.path, content=body,
                                   headers={"Content-Type": self.headers.get("Content-Type", "")}, timeout=10)
            if "/cgi-bin/message/" in self.path:
                self.close_connection = True  # no status line, nothing: the answer is lost
                return
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = _forward

        def log_message(self, *args: object) -> None:
            pass  # the test's own assertions say what happened

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    # shutdown() waits for the serving loop to look again: every 20 ms, not the default 0.5 s.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
