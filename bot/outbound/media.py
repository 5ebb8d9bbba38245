"""The media fetcher: every picture, voice note and video sent into a report is downloaded from
WeChat into ``MEDIA_DIR`` at once, because WeChat deletes temporary media after 3 days
(wechat-rules A7, R13).

Report writers leave a ``media_file`` row ``pending``; a fetcher thread of the worker role
(:mod:`bot.worker`) takes due rows one at a time. Taking a row is a conditional
UPDATE that only one process can win, and it leases the row: a process that dies mid-download
leaves it to be taken again when the lease ends. A failed download is retried with a growing
back-off until the file is stored, or marked ``failed`` once WeChat has deleted it.

Files are stored under their SHA-256 (``ab/abcdef….jpg``), so the same picture sent twice is kept
once, and the checksum on the row tells whether a file on disk is still what WeChat sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot.background import repeating
from bot.store.models import Campaign, MediaFile, ReportItem, Submission, Unit, table_of
from bot.outbound.outbox import note_staff
from bot.texts import Texts

log = logging.getLogger("safetybot.media")

_MEDIA = table_of(MediaFile)
# WeChat keeps temporary media 3 days (wechat-rules A7); after that no retry can succeed.
MEDIA_LIFETIME = timedelta(days=3)
# A row still failing after a day needs a person to look (wechat-rules R13): logged as an error.
ALERT_AFTER = timedelta(hours=24)
# Long enough for a 10 MB video over a slow link, short enough that a dead worker's row comes back soon.
LEASE = timedelta(minutes=5)
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
# Rows are written by other transactions; polling is one indexed query, cheap at this rate.
POLL_SECONDS = 0.25
TAKEABLE = ("pending", "fetching")


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed download: 30 s, doubling, at most an hour."""
    # Doubling stops at the cap: a row is retried for 3 days (some 75 attempts), and 30 s doubled
    # 42 times is beyond what a timedelta holds.
    delay = FIRST_BACKOFF
    for _ in range(attempts - 1):
        if delay >= MAX_BACKOFF:
            break
        delay *= 2
    return min(delay, MAX_BACKOFF)


@dataclass(frozen=True)
class Taken:
    """A row this process won: which media, and the attempt number that proves it still owns it."""

    id: int
    media_id: str
    attempts: int
    received_at: datetime


class MediaFetcher:
    """Downloads due ``media_file`` rows with ``wechat.download_media`` into ``media_dir``.

    ``reads`` is the engine for read-only work (:func:`bot.store.engine.read_engine`); ``wechat`` is the
    outbound client (:class:`bot.wechat.client.WeChatAPI`); ``clock`` gives aware now.
    """

    # What it may tell staff; checked when the fetcher is made, not first when media is lost.
    TEMPLATES = ("staff_note_media_lost",)

    def __init__(self, engine: sa.Engine, reads: sa.Engine, wechat: Any, media_dir: Path, clock: Callable[[], datetime],
                 texts: Texts | None = None):
        self.engine = engine
        self.texts = texts or Texts()
        self.texts.check(self.TEMPLATES)
        self.wechat = wechat
        self.media_dir = media_dir
        self.clock = clock
        # Looking for due rows must not take SQLite's write lock several times a second.
        self._reads = reads

    def take(self) -> Taken | None:
        """Claim the oldest due row, or None when no row is due (or others won them all)."""
        now = self.clock()
        due = sa.and_(_MEDIA.c.status.in_(TAKEABLE),
                      sa.or_(_MEDIA.c.next_attempt_at.is_(None), _MEDIA.c.next_attempt_at <= now))
        with self._reads.connect() as reader:
            candidates = reader.execute(sa.select(_MEDIA.c.id, _MEDIA.c.media_id, _MEDIA.c.attempts, _MEDIA.c.received_at)
                                        .where(due).order_by(_MEDIA.c.received_at, _MEDIA.c.id).limit(5)).all()
        if not candidates:
            return None
        with self.engine.begin() as conn:
            for row in candidates:
                # The WHERE repeats the due test: of two processes that saw the same row, one updates it.
                won = conn.execute(sa.update(_MEDIA).where(_MEDIA.c.id == row.id, _MEDIA.c.attempts == row.attempts, due)
                                   .values(status="fetching", attempts=row.attempts + 1, next_attempt_at=now + LEASE))
                if won.rowcount == 1:
                    return Taken(row.id, row.media_id, row.attempts + 1, row.received_at)
        return None

    def fetch(self, taken: Taken) -> bool:
        """Download one taken row and record the outcome; True when the file is stored."""
        try:
            media = self.wechat.download_media(taken.media_id)
            relative, digest = self._store(media.content, media.filename)
        except Exception as exc:  # any failure, WeChat's or the disk's, is retried the same way
            self._failed(taken, f"{type(exc).__name__}: {exc}")
            return False
        with self.engine.begin() as conn:
            conn.execute(sa.update(_MEDIA).where(_MEDIA.c.id == taken.id, _MEDIA.c.attempts == taken.attempts).values(
                status="stored", path=relative, content_type=media.content_type, size=len(media.content),
                sha256=digest, stored_at=self.clock(), last_error=None, next_attempt_at=None))
        return True

    def fetch_due(self) -> int:
        """Fetch every row due now; how many were attempted."""
        attempted = 0
        while (taken := self.take()) is not None:
            self.fetch(taken)
            attempted += 1
        return attempted

    def _store(self, content: bytes, filename: str) -> tuple[str, str]:
        """Write ``content`` under its checksum (atomically: a reader never sees half a file)."""
        digest = hashlib.sha256(content).hexdigest()
        relative = PurePosixPath(digest[:2]) / (digest + PurePosixPath(filename).suffix.lower())
        target = self.media_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        partial.write_bytes(content)
        os.replace(partial, target)
        return str(relative), digest

    def _failed(self, taken: Taken, error: str) -> None:
        now = self.clock()
        age = now - taken.received_at
        gone = age >= MEDIA_LIFETIME
        level = logging.ERROR if age >= ALERT_AFTER else logging.WARNING
        log.log(level, "media %s: download %d failed (%s)%s", taken.id, taken.attempts, error,
                "; WeChat has deleted it, giving up" if gone else f"; retry in {backoff(taken.attempts)}")
        with self.engine.begin() as conn:
            conn.execute(sa.update(_MEDIA).where(_MEDIA.c.id == taken.id, _MEDIA.c.attempts == taken.attempts).values(
                status="failed" if gone else "pending", last_error=error[:500],
                next_attempt_at=None if gone else now + backoff(taken.attempts)))
            if gone:
                self._note_lost(conn, taken, now)

    def _note_lost(self, conn: sa.Connection, taken: Taken, now: datetime) -> None:
        """Staff learn which unit's report lost a file, in the transaction that gives it up."""
        items = table_of(ReportItem)
        submissions = table_of(Submission)
        units = table_of(Unit)
        campaigns = table_of(Campaign)
        row = conn.execute(sa.select(units.c.name, units.c.campaign_id, items.c.kind, items.c.featured, items.c.created_at,
                                     campaigns.c.timezone)
                           .join(campaigns, campaigns.c.id == units.c.campaign_id)
                           .join(submissions, submissions.c.unit_id == units.c.id)
                           .join(items, items.c.submission_id == submissions.c.id)
                           .where(items.c.media_file_id == taken.id).order_by(items.c.id)).first()
        if row is None:
            return
        text = self.texts.render("staff_note_media_lost", unit=row.name, kind=row.kind, featured=row.featured,
                                 received=row.created_at.astimezone(ZoneInfo(row.timezone)))
        note_staff(conn, row.campaign_id, f"media_lost:{taken.id}", text, now)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Run the fetcher in a thread for the duration of the ``with`` block (the worker role's lifetime)."""
        with repeating(self.fetch_due, "media-fetcher", POLL_SECONDS):
            yield
