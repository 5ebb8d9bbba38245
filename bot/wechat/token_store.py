"""The one access token all processes share, kept in the database or in Redis, renewed under a lock.

WeChat keeps a single valid access token per account: whoever fetches one can invalidate what the
others hold (wechat-rules A6). So every worker reads the same stored token, and renewing it is done
by one process at a time: take the lock, read again (another process may have renewed it while we
waited), fetch only if still needed, write, release.

The store knows nothing about HTTP; :class:`SharedAccessToken` is told how to fetch a token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol

import redis
import sqlalchemy as sa

from bot.config import Settings
from bot.store.engine import is_postgres, read_engine, session
from bot.store.models import AccessToken, utcnow

# WeChat renews a stable token 5 minutes before it expires and keeps both valid meanwhile
# (wechat-rules A6), so a token with less than this left is renewed before use.
REFRESH_MARGIN = timedelta(minutes=5)
# Longer than one stable_token call with its retries; a crashed holder frees the lock after this.
LOCK_SECONDS = 60


@dataclass(frozen=True)
class StoredToken:
    """An access token and when it stops working."""

    token: str
    expires_at: datetime
    fetched_at: datetime

    def fresh_at(self, now: datetime) -> bool:
        """Whether the token is still good for at least :data:`REFRESH_MARGIN` at ``now``."""
        return self.expires_at - now >= REFRESH_MARGIN


Renewal = Callable[[StoredToken | None], StoredToken]


class TokenStoreBusy(Exception):
    """The store's lock could not be taken in time (another process is stuck renewing)."""


class TokenStore(Protocol):
    """Where the shared token lives. ``renew`` runs while the store's lock is held."""

    def read(self, app_id: str) -> StoredToken | None:
        """The stored token of ``app_id``, or ``None`` if there is none yet."""

    def replace(self, app_id: str, renew: Renewal) -> StoredToken:
        """Under the lock: read the current token, pass it to ``renew``, store what it returns
        when that is a different token, and return it."""

    def close(self) -> None:
        """Close the store's own connections."""


class DatabaseTokenStore:
    """The ``access_token`` table. SQLite locks by ``BEGIN IMMEDIATE`` (every transaction of our
    SQLite engine, see bot/store/engine.py); PostgreSQL by a transaction-scoped advisory lock, which works
    even before the row exists (``SELECT ... FOR UPDATE`` would lock nothing then)."""

    def __init__(self, engine: sa.Engine):
        self._engine = engine
        # Reading must not wait for SQLite's writer (a health check, a send with a fresh token).
        self._reads = read_engine(engine)

    def close(self) -> None:
        """Close the reading engine's connections (the writing engine is the caller's)."""
        if self._reads is not self._engine:
            self._reads.dispose()

    def read(self, app_id: str) -> StoredToken | None:
        """The stored token of ``app_id``, or ``None``."""
        with session(self._reads) as db:
            row = db.get(AccessToken, app_id)
            return _from_row(row) if row else None

    def replace(self, app_id: str, renew: Renewal) -> StoredToken:
        """Run ``renew`` on the current token while holding the lock; store a new result."""
        with session(self._engine) as db, db.begin():
            if is_postgres(self._engine):
                db.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"access_token:{app_id}"})
            row = db.get(AccessToken, app_id)
            current = _from_row(row) if row else None
            renewed = renew(current)
            if renewed != current:
                row = row or AccessToken(app_id=app_id, token="")
                row.token, row.expires_at, row.fetched_at = renewed.token, renewed.expires_at, renewed.fetched_at
                db.add(row)
            return renewed


def _from_row(row: AccessToken) -> StoredToken:
    return StoredToken(token=row.token, expires_at=row.expires_at, fetched_at=row.fetched_at)


class RedisTokenStore:
    """A Redis key per AppID, expiring with the token, and a ``SET NX PX`` lock whose release
    deletes the lock only if this holder still owns it (redis-py's :class:`redis.lock.Lock`)."""

    def __init__(self, redis_url: str, *, lock_wait_seconds: float = LOCK_SECONDS):
        self._redis = redis.Redis.from_url(redis_url)
        self._lock_wait_seconds = lock_wait_seconds

    def close(self) -> None:
        """Close the connections to Redis."""
        self._redis.close()

    @staticmethod
    def _key(app_id: str) -> str:
        return f"safetybot:access_token:{app_id}"

    def read(self, app_id: str) -> StoredToken | None:
        """The stored token of ``app_id``, or ``None``."""
        raw = self._redis.get(self._key(app_id))
        if raw is None:
            return None
        value = json.loads(raw)
        return StoredToken(
            token=value["token"],
            expires_at=datetime.fromtimestamp(value["expires_at"], timezone.utc),
            fetched_at=datetime.fromtimestamp(value["fetched_at"], timezone.utc),
        )

    def replace(self, app_id: str, renew: Renewal) -> StoredToken:
        """Run ``renew`` on the current token while holding the lock; store a new result."""
        lock = self._redis.lock(
            self._key(app_id) + ":lock", timeout=LOCK_SECONDS, blocking_timeout=self._lock_wait_seconds
        )
        if not lock.acquire():
            raise TokenStoreBusy(f"another process has held the access-token lock of {app_id} too long")
        try:
            current = self.read(app_id)
            renewed = renew(current)
            if renewed != current:
                self._write(app_id, renewed)
            return renewed
        finally:
            lock.release()

    def _write(self, app_id: str, token: StoredToken) -> None:
        value = {
            "token": token.token,
            "expires_at": token.expires_at.timestamp(),
            "fetched_at": token.fetched_at.timestamp(),
        }
        # Let Redis drop the key when the token dies, so nobody reads a dead token.
        self._redis.set(self._key(app_id), json.dumps(value), pxat=int(token.expires_at.timestamp() * 1000))


def build_token_store(settings: Settings, engine: sa.Engine) -> TokenStore:
    """Redis when ``REDIS_URL`` is set, the database otherwise."""
    if settings.redis_url:
        return RedisTokenStore(settings.redis_url)
    return DatabaseTokenStore(engine)


Fetch = Callable[[bool], StoredToken]


class SharedAccessToken:
    """One process's view of the shared token: a copy in memory, the store behind it.

    ``fetch(force_refresh)`` asks WeChat for a token. It is only called under the store's lock.
    """

    def __init__(self, store: TokenStore, app_id: str, fetch: Fetch, clock: Callable[[], datetime] = utcnow):
        self._store = store
        self._app_id = app_id
        self._fetch = fetch
        self._clock = clock
        # Threads of one process may race to set this; any of their tokens is a good one.
        self._copy: StoredToken | None = None

    def current(self) -> str:
        """A token good for at least 5 more minutes, renewing the shared one if needed."""
        now = self._clock()
        copy = self._copy
        if copy is not None and copy.fresh_at(now):
            return copy.token
        stored = self._store.read(self._app_id)
        if stored is None or not stored.fresh_at(now):
            stored = self._store.replace(self._app_id, self._renew_if_stale)
        return self._keep(stored)

    def close(self) -> None:
        """Close the store's connections."""
        self._store.close()

    def state(self) -> str:
        """The shared token as ``/healthz`` reports it, read from the store: "fresh" (good for at
        least 5 more minutes), "stale" (the next call renews it), "none" (never fetched yet) or
        "unreadable" (the store did not answer: Redis or the database is down)."""
        try:
            stored = self._store.read(self._app_id)
        except Exception:  # redis-py and SQLAlchemy share no base class; the caller only reports it
            return "unreadable"
        if stored is None:
            return "none"
        return "fresh" if stored.fresh_at(self._clock()) else "stale"

    def replace_rejected(self, rejected: str) -> str:
        """WeChat refused ``rejected``: use the stored token if someone already replaced it,
        else fetch one (normal mode, never force) under the lock."""
        stored = self._store.read(self._app_id)
        if stored is None or stored.token == rejected:
            stored = self._store.replace(self._app_id, lambda current: self._renew_if_rejected(current, rejected))
        return self._keep(stored)

    def force_refresh(self) -> str:
        """Invalidate the current token and fetch a new one (20 times a day: admin use only)."""
        return self._keep(self._store.replace(self._app_id, lambda _current: self._fetch(True)))

    def _renew_if_stale(self, current: StoredToken | None) -> StoredToken:
        if current is not None and current.fresh_at(self._clock()):
            return current
        return self._fetch(False)

    def _renew_if_rejected(self, current: StoredToken | None, rejected: str) -> StoredToken:
        if current is not None and current.token != rejected:
            return current
        return self._fetch(False)

    def _keep(self, stored: StoredToken) -> str:
        self._copy = stored
        return stored.token
