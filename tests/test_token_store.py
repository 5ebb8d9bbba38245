"""One access token for every process: two processes (and many threads) asking at once cause a
single stable_token call, whether the token lives in SQLite, PostgreSQL or Redis."""

from __future__ import annotations

import multiprocessing
import os
import threading
import zlib
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from bot.config import Settings
from bot.store.engine import make_engine
from bot.wechat.token_store import DatabaseTokenStore, RedisTokenStore, build_token_store
from bot.wechat.client import WeChatAPI
from tests.conftest import REDIS_UP, make_settings
from tests.fixtures_fake import APP_ID, ServedFake

# Each stable_token answer takes this long, so the second asker arrives while the first holds the lock.
SLOW_WECHAT_SECONDS = 0.3


def stable_token_calls(served: ServedFake) -> int:
    return sum(1 for call in served.fake.calls if call.path == "/cgi-bin/stable_token")


def token_in_process(settings: Settings, start: Any, answers: Any) -> None:
    """A worker process: its own engine or Redis connection, its own client, one token."""
    engine = make_engine(settings.database_url)
    api = WeChatAPI(settings, build_token_store(settings, engine))
    start.wait()
    answers.put(api.access_token())
    engine.dispose()


def tokens_of_two_processes(settings: Settings) -> list[str]:
    # Forked from a server process started once, which has imported this module (and so the bot)
    # already: each worker starts in milliseconds instead of a second of imports, and still shares
    # nothing with this process or the other worker.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    start = context.Barrier(2)
    answers = context.Queue()
    workers = [context.Process(target=token_in_process, args=(settings, start, answers)) for _ in range(2)]
    for worker in workers:
        worker.start()
    tokens = [answers.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    return tokens


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database (1 to 15) without this app's token in it, one of its own for each pytest-xdist
    worker of this run (``make test`` runs several): tests on one worker run one after another, so
    no two share the token's key. The run's id shifts the numbers, so that two runs at once (two
    checkouts) are unlikely to meet either."""
    if not REDIS_UP:
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    url = f"redis://127.0.0.1:6379/{1 + (zlib.crc32(run.encode()) + worker) % 15}"
    connection = redis.Redis.from_url(url)
    keys = [f"safetybot:access_token:{APP_ID}", f"safetybot:access_token:{APP_ID}:lock"]
    connection.delete(*keys)
    yield url
    connection.delete(*keys)
    connection.close()


def test_two_processes_on_one_database_share_one_token(tmp_path: Path, database_url: str, fake_wechat: ServedFake) -> None:
    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=fake_wechat.base_url, DATABASE_URL=database_url)
    fake_wechat.fake.set_latency(SLOW_WECHAT_SECONDS)

    first, second = tokens_of_two_processes(settings)

    assert first == second
    assert stable_token_calls(fake_wechat) == 1


@pytest.mark.redis
def test_two_processes_on_one_redis_share_one_token(
    tmp_path: Path, sqlite_url: str, redis_url: str, fake_wechat: ServedFake
) -> None:
    settings = make_settings(
        tmp_path, WECHAT_API_BASE_URL=fake_wechat.base_url, DATABASE_URL=sqlite_url, REDIS_URL=redis_url
    )
    fake_wechat.fake.set_latency(SLOW_WECHAT_SECONDS)

    first, second = tokens_of_two_processes(settings)

    assert first == second
    assert stable_token_calls(fake_wechat) == 1


def tokens_of_eight_threads(settings: Settings, make_store: Any) -> set[str]:
    start = threading.Barrier(8)
    tokens: list[str] = []

    def ask() -> None:
        api = WeChatAPI(settings, make_store())
        start.wait()
        tokens.append(api.access_token())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 8
    return set(tokens)


def test_eight_clients_in_threads_renew_once_through_the_database(
    tmp_path: Path, database_url: str, fake_wechat: ServedFake
) -> None:
    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=fake_wechat.base_url, DATABASE_URL=database_url)
    fake_wechat.fake.set_latency(SLOW_WECHAT_SECONDS)
    engine = make_engine(database_url)

    tokens = tokens_of_eight_threads(settings, lambda: DatabaseTokenStore(engine))
    engine.dispose()

    assert len(tokens) == 1
    assert stable_token_calls(fake_wechat) == 1


@pytest.mark.redis
def test_eight_clients_in_threads_renew_once_through_redis(tmp_path: Path, redis_url: str, fake_wechat: ServedFake) -> None:
    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=fake_wechat.base_url)
    fake_wechat.fake.set_latency(SLOW_WECHAT_SECONDS)
    stores: list[RedisTokenStore] = []

    def make_store() -> RedisTokenStore:
        stores.append(RedisTokenStore(redis_url))
        return stores[-1]

    tokens = tokens_of_eight_threads(settings, make_store)
    for store in stores:
        store.close()

    assert len(tokens) == 1
    assert stable_token_calls(fake_wechat) == 1


def test_a_token_renewed_by_one_process_is_read_by_the_next(
    tmp_path: Path, database_url: str, fake_wechat: ServedFake
) -> None:
    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=fake_wechat.base_url, DATABASE_URL=database_url)
    engine = make_engine(database_url)
    earlier = WeChatAPI(settings, DatabaseTokenStore(engine), clock=fake_wechat.fake.now)
    later = WeChatAPI(settings, DatabaseTokenStore(engine), clock=fake_wechat.fake.now)

    earlier.access_token()
    fake_wechat.fake.advance(7200 - 60)
    renewed = earlier.access_token()
    seen_later = later.access_token()
    engine.dispose()

    assert seen_later == renewed
    assert stable_token_calls(fake_wechat) == 2


def test_redis_is_the_store_when_a_redis_url_is_set(tmp_path: Path, redis_url: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    with_redis = build_token_store(make_settings(tmp_path, REDIS_URL=redis_url), engine)
    without = build_token_store(make_settings(tmp_path), engine)

    assert isinstance(with_redis, RedisTokenStore)
    assert isinstance(without, DatabaseTokenStore)
    with_redis.close()
    engine.dispose()
