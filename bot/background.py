"""Work a bot process does beside answering WeChat: a step repeated in a thread of its own for as
long as a ``with`` block runs — the worker role's outbox, media fetcher and scheduler lease
(:mod:`bot.worker`), and the web role's SQLite checkpoints."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Callable, Iterator

log = logging.getLogger(__name__)


def _repeat(step: Callable[[], object], name: str, stop: threading.Event, every: float) -> None:
    while not stop.is_set():
        try:
            step()
        except Exception:
            # A database or network hiccup must not end the loop: the next pass tries again.
            log.exception("%s: the pass failed; trying again in %.2f s", name, every)
        stop.wait(every)


@contextlib.contextmanager
def repeating(step: Callable[[], object], name: str, every: float) -> Iterator[None]:
    """Run ``step`` every ``every`` seconds in a daemon thread named ``name`` while the ``with``
    block runs; on leaving, the pass under way finishes and the thread is joined."""
    stop = threading.Event()
    thread = threading.Thread(target=_repeat, args=(step, name, stop, every), name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
