"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when reachable) and settings.

Every test gets a database of its own, a copy of one migrated once per session.

Area-specific fixtures live in their own ``tests/fixtures_*.py`` modules, listed below.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import shutil
import socket
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import httpx
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


def _admin() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")


def _create_postgres_database(template: str = "template1") -> str:
    """A new PostgreSQL database, a copy of ``template``; its name."""
    name = f"safetybot_test_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    return name


def _drop_postgres_database(name: str) -> None:
    """Drop ``name`` with whatever is still connected to it."""
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextlib.contextmanager
def _postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped at the end; yields its name."""
    if not POSTGRES_UP:
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = _create_postgres_database()
    try:
        yield name
    finally:
        _drop_postgres_database(name)


def _postgres_url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


class PostgresCopies:
    """Copies of a migrated template database, one for each test, never used twice.

    Copying takes PostgreSQL ~0.2 s (seconds on a busy disk), mostly writing and syncing its log;
    dropping one ends the connections a test left open, waits for them to go and forces a
    checkpoint. Both are done on threads of their own: the next copies are made while tests run,
    and each is dropped after its test.
    """

    AHEAD = 2

    def __init__(self, template: str):
        self.template = template
        self._makers = concurrent.futures.ThreadPoolExecutor(self.AHEAD, thread_name_prefix="postgres-copy")
        self._droppers = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="postgres-drop")
        self._ahead = collections.deque(self._makers.submit(_create_postgres_database, template) for _ in range(self.AHEAD))

    def take(self) -> str:
        """The name of a fresh copy (waits for it if it is not made yet); start another."""
        self._ahead.append(self._makers.submit(_create_postgres_database, self.template))
        return self._ahead.popleft().result()

    def give_back(self, name: str) -> None:
        """Drop ``name`` soon, without waiting for it."""
        self._droppers.submit(_drop_postgres_database, name)

    def close(self) -> None:
        """Drop the copies nobody took and wait until every copy is dropped."""
        for made in self._ahead:
            self.give_back(made.result())
        self._makers.shutdown()
        self._droppers.shutdown()


@pytest.fixture(scope="session")
def postgres_copies() -> Iterator[PostgresCopies]:
    """Copies of a PostgreSQL database migrated once for the session.

    Nobody stays connected to the template after the migrations: ``CREATE DATABASE … TEMPLATE``
    needs it idle.
    """
    with _postgres_database() as template:
        upgrade(_postgres_url(template))
        copies = PostgresCopies(template)
        yield copies
        copies.close()


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

    Each is a copy of a database migrated once per session: running the migrations costs ~0.1 s
    (SQLite) and ~0.5 s (PostgreSQL) a test, copying a file milliseconds, and PostgreSQL's
    copies are made ahead (:class:`PostgresCopies`). tests/test_migrations.py runs the migrations.
    """
    if request.param == "sqlite":
        yield _sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
        return
    copies: PostgresCopies = request.getfixturevalue("postgres_copies")
    name = copies.take()
    yield _postgres_url(name)
    copies.give_back(name)


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


def answers_health(base_url: str) -> bool:
    """Whether a served bot at ``base_url`` answers ``/healthz`` with 200 now."""
    try:
        return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_served(process: "subprocess.Popen[bytes]", base_url: str, ready: Callable[[], bool] = lambda: True,
                      seconds: float = 60) -> None:
    """Return once the bot ``process`` started answers ``/healthz`` (and ``ready()`` says yes); fail
    the test if it exits or takes longer than ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (ready() and answers_health(base_url)):
        assert process.poll() is None, f"the bot at {base_url} exited with {process.returncode} before it answered"
        assert time.monotonic() < deadline, f"the bot at {base_url} did not answer within {seconds:.0f} s"
        time.sleep(0.1)


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
