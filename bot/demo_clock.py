"""The demo clock: "now" for a demo or a test that shows a campaign in its June, whatever today is.

``safetybot demo`` (and tests) build one :class:`DemoClock` and hand it to every part of the one
process that keeps time: the bot's handlers (``ctx.now``), its pages and worker role, the reminder
scheduler (:class:`scheduler.service.DemoReminderScheduler`) and the fake WeChat, so all of them
agree on "now". It starts at ``DEMO_CLOCK_START``, runs at real speed, and moves forward on request
through ``/demo/clock`` (:class:`DemoClockControl`), which then sends the reminders that fell due.

Production keeps real time: ``safetybot serve`` and ``safetybot worker`` refuse ``DEMO_CLOCK_START``
(:func:`refuse_demo_clock`), and an app built without a demo clock has no ``/demo`` route.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.config import ConfigError, Settings


def refuse_demo_clock(settings: Settings, role: str) -> None:
    """Refuse to start ``role`` (``serve``, ``worker``) with ``DEMO_CLOCK_START`` set.

    Production is every process but ``safetybot demo``: there the bot answers real people through
    WeChat's API and sends reminders when they are due, so it keeps real time. Only the demo (whose
    bot talks to the fake WeChat on this machine) and tests run on a demo clock.
    Raises :class:`ConfigError` naming the variable."""
    if settings.demo_clock_start is not None:
        raise ConfigError("DEMO_CLOCK_START", f"is for `safetybot demo` and tests only; `safetybot {role}` keeps "
                                              "real time: remove it from .env and the environment")


class DemoClock:
    """A clock that reads ``start`` when built, runs at real speed from there, and is moved forward
    (never back) by :meth:`advance` and :meth:`set_time`. Thread-safe; every moment is aware UTC.

    Its methods are those of the fake WeChat's clock, so the fake can keep this one
    (``FakeWeChat(..., clock=demo_clock)``)."""

    def __init__(self, start: datetime, real: Callable[[], float] = time.monotonic):
        if start.tzinfo is None:
            raise ValueError("the demo clock needs an aware start (with its UTC offset)")
        self._real = real
        self._lock = threading.Lock()
        self._start = start.astimezone(timezone.utc)
        self._started = real()

    def now(self) -> datetime:
        """The demo's "now": its start, plus the real time since, plus every move forward."""
        with self._lock:
            return self._start + timedelta(seconds=self._real() - self._started)

    def advance(self, seconds: float) -> datetime:
        """Move the clock ``seconds`` forward; returns the new now. ValueError for a negative move."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._start += timedelta(seconds=seconds)
        return self.now()

    def set_time(self, moment: datetime) -> datetime:
        """Move the clock to ``moment`` (aware, not before now); returns it."""
        if moment.tzinfo is None:
            raise ValueError("moment must be an aware datetime")
        with self._lock:
            now = self._start + timedelta(seconds=self._real() - self._started)
            if moment < now:
                raise ValueError("the clock only moves forward")
            self._start += moment - now
        return moment.astimezone(timezone.utc)


class DueRunner(Protocol):
    """What the control needs of the demo's reminder scheduler."""

    def catch_up(self) -> str:
        """Send what fell due by now; a line saying what was sent."""

    def next_moment(self) -> datetime | None:
        """The next planned reminder or due time after now, if any."""


class DemoClockControl:
    """``/demo/clock``: ``GET`` reads the demo's now and its next planned moment; ``POST`` with a
    JSON body ``{"advance_seconds": 3600}``, ``{"to": "2027-06-07T09:00+08:00"}`` or ``{"to": "next"}``
    (the next reminder or due time) moves the clock, then sends what fell due before answering.

    The body must be JSON (``Content-Type: application/json``, else 415): a page of another site
    can post a form to this machine, but not JSON without the browser asking first, which this
    route never allows. Answers ``{"now", "next", "reminders"}``; 400 ``{"error"}`` for a bad move."""

    def __init__(self, clock: DemoClock, due: DueRunner):
        self.clock = clock
        self.due = due

    def _state(self, **extra: Any) -> dict[str, Any]:
        upcoming = self.due.next_moment()
        return {"now": self.clock.now().isoformat(), "next": upcoming.isoformat() if upcoming else None, **extra}

    async def endpoint(self, request: Request) -> Response:
        """The route's handler (see the class)."""
        if request.method == "GET":
            return JSONResponse(await run_in_threadpool(self._state))
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"error": "send JSON (Content-Type: application/json)"}, status_code=415)
        try:
            body = json.loads(await request.body())
            await run_in_threadpool(self._move, body)
        except (ValueError, TypeError, OverflowError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        sent = await run_in_threadpool(self.due.catch_up)
        return JSONResponse(await run_in_threadpool(self._state, reminders=sent))

    def _move(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise ValueError("give advance_seconds, or to (a moment with its UTC offset, or next)")
        if "advance_seconds" in body:
            self.clock.advance(float(body["advance_seconds"]))
        elif body.get("to") == "next":
            upcoming = self.due.next_moment()
            if upcoming is None:
                raise ValueError("nothing is planned after now")
            # Computed as a step: the clock runs on while the plan is read, so the moment itself may just have passed.
            self.clock.advance(max(0.0, (upcoming - self.clock.now()).total_seconds()))
        elif isinstance(body.get("to"), str):
            self.clock.set_time(datetime.fromisoformat(body["to"]))
        else:
            raise ValueError("give advance_seconds, or to (a moment with its UTC offset, or next)")

    def routes(self) -> list[Route]:
        """The control's one route, for an app built with a demo clock."""
        return [Route("/demo/clock", self.endpoint, methods=["GET", "POST"])]
