"""The ``fake_wechat`` fixture: the fake WeChat API served over real HTTP on a free port."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pytest

from bot.fake_wechat import BackgroundServer, FakeWeChat, create_fake_app
from tests.conftest import free_port

# The same credentials as ``make_settings`` in conftest.py.
APP_ID = "wx0123456789abcdef"
APP_SECRET = "test-secret-0123456789abcdef0123"


@dataclass(frozen=True)
class ServedFake:
    """A running fake: its state in ``fake``, its address in ``base_url``."""

    fake: FakeWeChat
    base_url: str


@pytest.fixture
def fake_wechat() -> Iterator[ServedFake]:
    """A fresh fake WeChat served by uvicorn on a background thread, stopped after the test."""
    fake = FakeWeChat(APP_ID, APP_SECRET)
    with BackgroundServer(create_fake_app(fake), free_port()) as base_url:
        yield ServedFake(fake, base_url)
