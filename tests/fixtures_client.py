"""The ``wechat_api`` fixture: a :class:`WeChatAPI` talking to the served fake WeChat.

Its back-off waits are recorded in ``backoff_waits`` instead of slept, so tests never wait.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from bot.config import Settings
from bot.store.engine import make_engine
from bot.wechat.token_store import DatabaseTokenStore
from bot.wechat.client import WeChatAPI
from tests.conftest import make_settings
from tests.fixtures_fake import ServedFake


@pytest.fixture
def backoff_waits() -> list[float]:
    """The seconds the client asked to wait between retries, in order."""
    return []


@pytest.fixture
def client_settings(tmp_path: Path, sqlite_url: str, fake_wechat: ServedFake) -> Settings:
    """Settings pointing at the served fake and a migrated SQLite database."""
    return make_settings(tmp_path, WECHAT_API_BASE_URL=fake_wechat.base_url, DATABASE_URL=sqlite_url)


@pytest.fixture
def client_engine(client_settings: Settings) -> Iterator[sa.Engine]:
    """The engine of ``client_settings.database_url``, disposed after the test."""
    engine = make_engine(client_settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def wechat_api(client_settings: Settings, client_engine: sa.Engine, backoff_waits: list[float], fake_wechat: ServedFake) -> WeChatAPI:
    """A client of the fake, its token in the database, its clock the fake's."""
    return WeChatAPI(
        client_settings, DatabaseTokenStore(client_engine), sleep=backoff_waits.append, clock=fake_wechat.fake.now
    )
