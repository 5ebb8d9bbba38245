"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when reachable) and settings.

Area-specific fixtures live in their own ``tests/fixtures_*.py`` modules, listed below.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from bot.config import Settings, settings_from_mapping
from bot.store.engine import make_engine, upgrade

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"

pytest_plugins: list[str] = ["tests.fixtures_fake", "tests.fixtures_client", "tests.fixtures_gateway", "tests.fixtures_cli",
                              "tests.fixtures_reminders"]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


POSTGRES_UP = _reachable("127.0.0.1", 5432)
REDIS_UP = _reachable("127.0.0.1", 6379)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        "PostgreSQL: " + ("tests run against 127.0.0.1:5432" if POSTGRES_UP else "not reachable, its tests are skipped"),
        "Redis: " + ("tests run against 127.0.0.1:6379" if REDIS_UP else "not reachable, its tests are skipped"),
    ]


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    if not POSTGRES_UP:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"safetybot_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: SQLite, and PostgreSQL too when it is reachable."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'safetybot.db'}"
    else:
        url = request.getfixturevalue("postgres_server_url")
        _reset_postgres(url)
    upgrade(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated, empty SQLite database, for tests that need not run on both databases."""
    url = f"sqlite:///{tmp_path / 'safetybot.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(tmp_path: Path, **overrides: str) -> Settings:
    """Settings for a test: demo credentials, the given overrides (names as in config.example.env)."""
    values = {
        "WECHAT_TOKEN": "safetybottest",
        "WECHAT_APP_ID": "wx0123456789abcdef",
        "WECHAT_APP_SECRET": "test-secret-0123456789abcdef0123",
        "ADMIN_TOKEN": "test-admin-token-0123456789",
        "WECHAT_API_BASE_URL": "http://127.0.0.1:9",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'safetybot.db'}",
        "MEDIA_DIR": str(tmp_path / "media"),
    }
    values.update(overrides)
    return settings_from_mapping(values)
