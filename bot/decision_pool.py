"""A worker pool for handlers' decisions: one thread woken for the decisions of one turn of the loop.

Handlers are pure but may be slow (a campaign definition parsed, a long table read), so they run
off the event loop, on ``HANDLER_THREADS`` threads.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from bot.aio import settle

log = logging.getLogger("safetybot.handling")


class DecisionPool:
    """Runs handlers' decisions on the handler threads, many to one wake-up.

    Handing each decision to a thread of its own cost more CPU than deciding: every hand-over woke
    a thread that then took turns with the busy event loop for Python's lock (a third of a served
    bot's CPU at 16 connections). Here the decisions asked for in one turn of the loop wait in one
    queue and one thread is woken for them; it takes them one at a time and hands each outcome back
    as soon as it is decided. A slow decision holds up only itself: one left waiting ``HELP_AFTER``
    seconds without a thread wakes another.
    """

    HELP_AFTER = 0.05

    def __init__(self, pool: ThreadPoolExecutor):
        self._pool = pool
        self._waiting: collections.deque[tuple[Callable[[], Any], asyncio.Future[Any], float]] = collections.deque()
        self._waking = False
        self._watching = False

    def run(self, decide: Callable[[], Any]) -> "asyncio.Future[Any]":
        """``decide()`` on a handler thread; its result or exception comes back in the future."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._waiting.append((decide, done, loop.time()))
        if not self._waking:
            self._waking = True
            loop.call_soon(self._wake, loop)
        return done

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        self._waking = False
        self._pool.submit(self._take_all, loop)
        if not self._watching:
            self._watching = True
            loop.call_later(self.HELP_AFTER, self._watch, loop)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watching = False
        try:
            oldest = self._waiting[0][2]
        except IndexError:  # taken by a thread meanwhile
            return
        if loop.time() - oldest >= self.HELP_AFTER:
            log.info("a decision waited %.0f ms for a handler thread: waking another", self.HELP_AFTER * 1000)
            self._pool.submit(self._take_all, loop)
        self._watching = True
        loop.call_later(self.HELP_AFTER, self._watch, loop)

    def _take_all(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                decide, done, _ = self._waiting.popleft()
            except IndexError:
                return
            try:
                outcome = decide()
            except BaseException as exc:
                _hand_back(loop, done, exception=exc)
            else:
                _hand_back(loop, done, result=outcome)


def _hand_back(loop: asyncio.AbstractEventLoop, done: "asyncio.Future[Any]", **settled: Any) -> None:
    try:
        loop.call_soon_threadsafe(functools.partial(settle, done, **settled))
    except RuntimeError:  # the loop closed: nobody waits for it any more
        pass
