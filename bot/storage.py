"""Where handlers meet the database: a read-only view for deciding, and the writer of their changes.

Handlers stay pure: they read through :class:`StoredFacts` (bound to the handling transaction) and
return :mod:`handlers.changes` values in their ``Outcome``; :func:`apply_changes` writes those in the
same transaction as the person's dialogue state and the answer to WeChat, so a retry, a restart or
another worker never sees one without the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa

from handlers.base import Incoming


class StaleDecision(Exception):
    """A change found the data its handler read has moved on (e.g. another liaison took the unit
    meanwhile); the gateway then lets the handler decide again under the lock."""


class StoredFacts:
    """Read-only queries handlers may make while deciding, on the handling transaction's connection."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn


Writer = Callable[[sa.Connection, Incoming, Any, datetime], None]

# One writer per change type; the handler modules' change types register theirs here.
WRITERS: dict[type, Writer] = {}


def apply_changes(conn: sa.Connection, incoming: Incoming, changes: tuple[Any, ...], now: datetime) -> None:
    """Write every change of an outcome, in order, on ``conn`` (inside the handling transaction)."""
    for change in changes:
        writer = WRITERS.get(type(change))
        if writer is None:
            raise TypeError(f"no writer for the change {type(change).__name__}")
        writer(conn, incoming, change, now)
