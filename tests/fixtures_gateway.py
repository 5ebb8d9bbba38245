"""The ``start_bot`` fixture: the real bot app, on either database, played by :class:`WeChatSide`.

Its outbound client is the real :class:`WeChatAPI` talking to the served fake WeChat, so pushed
replies can be read from ``bot.fake.pushes(openid)``.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select
from starlette.exceptions import StarletteDeprecationWarning

import handlers
from bot.app import create_app
from bot.config import Settings
from bot.store.engine import session
from simulator.fake_wechat import BackgroundServer, FakeWeChat
from bot.handling import Dispatch
from bot.store.models import InboundMessage, Person, utcnow
from bot.wechat.client import WeChatAPI
from simulator.wechat_side import TEXT_BYTES, Reply, WeChatSide
from handlers.base import Context, DialogueState, Incoming, Outcome
from tests.conftest import free_port, make_settings
from tests.fixtures_fake import ServedFake

with warnings.catch_warnings():
    # Starlette 1.x would rather drive TestClient with the httpx2 fork; the project pins httpx,
    # which the TestClient still fully supports.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@dataclass
class Bot:
    """A running bot and what a test needs to look at it."""

    side: WeChatSide
    settings: Settings
    engine: sa.Engine
    fake: FakeWeChat

    def inbound(self) -> list[InboundMessage]:
        """The inbound log, oldest first."""
        with session(self.engine) as db:
            return list(db.exec(select(InboundMessage).order_by(InboundMessage.id)).all())

    def person(self, openid: str) -> Person | None:
        """The stored person, if any."""
        with session(self.engine) as db:
            return db.exec(select(Person).where(Person.openid == openid)).one_or_none()

    def pushed_texts(self, openid: str, count: int, timeout: float = 10.0) -> list[str]:
        """Wait until ``count`` texts were pushed to ``openid`` through the fake; return them."""
        deadline = time.monotonic() + timeout
        while True:
            texts = [p.payload["text"]["content"] for p in self.fake.pushes(openid) if p.msgtype == "text"]
            if len(texts) >= count or time.monotonic() > deadline:
                return texts
            time.sleep(0.01)


@dataclass
class RecordingDispatch:
    """The real routing table, recording every call; optionally held at a gate or made to fail.

    Handlers are pure functions handed to the app like Starlette's routes; this one wraps the
    real table so a test can see how often handling ran.
    """

    gate: threading.Event | None = None
    fail: bool = False
    calls: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    def __call__(self, incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
        self.calls.append(incoming.text)
        self.events.append(f"start {incoming.text}")
        self.started.set()
        if self.gate is not None and not self.gate.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        self.events.append(f"end {incoming.text}")
        if self.fail:
            raise RuntimeError("a handler bug")
        return handlers.dispatch(incoming, state, ctx)


class LimitedSide(WeChatSide):
    """WeChat's side that fails the test on a passive text reply WeChat would cut (over 2,048
    bytes): every scenario through ``start_bot`` checks the limit without saying so."""

    def read_reply(self, response: httpx.Response) -> Reply:
        reply = super().read_reply(response)
        assert not reply.over_limit, (
            f"a passive reply of {reply.size:,} bytes, over WeChat's {TEXT_BYTES:,}: {reply.content!r:.300}")
        return reply


StartBot = Callable[..., Bot]


@pytest.fixture
def start_bot(tmp_path: Path, database_url: str, engine: sa.Engine, wechat_api: WeChatAPI,
              fake_wechat: ServedFake) -> Iterator[StartBot]:
    """Start the bot: ``start_bot(aes_key=None, compatible=False, clock=None, dispatch=…, served=False,
    token=None, app_id=None, **settings)``. ``served`` runs it under uvicorn on a free port."""
    with contextlib.ExitStack() as stack:

        def start(*, aes_key: str | None = None, compatible: bool = False, clock: Callable[[], datetime] | None = None,
                  dispatch: Dispatch = handlers.dispatch, served: bool = False, **overrides: str) -> Bot:
            values = {"DATABASE_URL": database_url, "WECHAT_API_BASE_URL": fake_wechat.base_url, **overrides}
            if aes_key:
                values["WECHAT_ENCODING_AES_KEY"] = aes_key
            settings = make_settings(tmp_path, **values)
            app = create_app(settings, engine=engine, wechat=wechat_api, clock=clock, dispatch=dispatch)
            client: Any
            if served:
                base_url = stack.enter_context(BackgroundServer(app, free_port()))
                client = stack.enter_context(httpx.Client(base_url=base_url, timeout=30))
            else:
                client = stack.enter_context(TestClient(app))
            now = clock or utcnow
            side = LimitedSide(client, token=settings.wechat_token, app_id=settings.wechat_app_id, aes_key=aes_key,
                              compatible=compatible, clock=lambda: now().timestamp())
            return Bot(side, settings, engine, fake_wechat.fake)

        yield start
