"""Small asyncio helpers the gateway, the handling and the SQLite writer share."""

from __future__ import annotations

import asyncio
from typing import Any


async def finished_within(task: "asyncio.Task[Any]", seconds: float) -> bool:
    """Wait up to ``seconds`` for ``task``, never cancelling it; whether it finished.

    What ``wait_for(shield(task), seconds)`` does, with one future instead of two and no
    exception: this runs for every message.
    """
    if not task.done():
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        timer = loop.call_later(seconds, wake)
        task.add_done_callback(wake)
        try:
            await waiter
        finally:
            timer.cancel()
            task.remove_done_callback(wake)
    return task.done()


def settle(done: "asyncio.Future[Any]", *, result: Any = None, exception: BaseException | None = None) -> None:
    """Give ``done`` its result or exception, unless whoever awaited it has gone (cancelled)."""
    if done.cancelled():
        return
    if exception is not None:
        done.set_exception(exception)
    else:
        done.set_result(result)
