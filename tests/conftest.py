"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when reachable) and settings.

Area-specific fixtures live in their own ``tests/fixtures_*.py`` modules, listed below.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sqlite3
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


@contextlib.contextmanager
def _postgres_database(template: str = "template1") -> Iterator[str]:
    """A new PostgreSQL database, a copy of ``template``; dropped at the end with whatever is
    still connected to it. Yields its name."""
    if not POSTGRES_UP:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"safetybot_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _postgres_url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """The name of a PostgreSQL database migrated once for the session.

    Nobody stays connected to it after the migrations: ``CREATE DATABASE … TEMPLATE`` needs it idle.
    """
    with _postgres_database() as name:
        upgrade(_postgres_url(name))
        yield name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once for the session; the file alone is the whole database."""
    path = tmp_path_factory.mktemp("template") / "safetybot.db"
    upgrade(f"sqlite:///{path}")
    # The last connection to close copies the write-ahead log into the file and removes the log;
    # a copy of the file without its log would lack the newest pages.
    sqlite3.connect(path).close()
    assert not path.with_name(path.name + "-wal").exists(), "the template's write-ahead log is still open"
    return path


def _sqlite_copy(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "safetybot.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of the test's own: SQLite, and PostgreSQL too when it is reachable.

    Each is a copy of a database migrated once per session, which costs milliseconds (SQLite)
    or ~0.2 s (PostgreSQL) where running the migrations costs ~0.1 s and ~0.5 s.
    tests/test_migrations.py runs the migrations themselves.
    """
    if request.param == "sqlite":
        yield _sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
        return
    with _postgres_database(template=request.getfixturevalue("postgres_template")) as name:
        yield _postgres_url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database without any table: SQLite, and PostgreSQL too when it is reachable."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'safetybot.db'}"
        return
    with _postgres_database() as name:
        yield _postgres_url(name)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated, empty SQLite database, for tests that need not run on both databases."""
    return _sqlite_copy(sqlite_template, tmp_path)


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
