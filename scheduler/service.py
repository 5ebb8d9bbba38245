"""The reminder scheduler: APScheduler with its jobs in the database, run by one process at a time.

Jobs name a module-level function and carry only the moment they were planned for (as PTB's
JobQueue does, but persistent): at run time the function asks the database who still owes, so a
restart loses nothing and a job rebuilt from ``campaigns/`` is the same job. A job missed while the
process was down runs once when it comes back (``coalesce``, no misfire limit); whether each
reminder is still worth sending is decided by :func:`scheduler.run.due_now`, not by APScheduler.

Besides the planned moments, one interval job (:func:`leftovers_job`, every minute) sends what
a crash left behind while it is still useful: rows left ``claimed``, and template messages WeChat
never confirmed (see :meth:`scheduler.run.Reminders.send_leftovers`).

Every process of the worker role (``safetybot worker``, or a web process that runs the role too)
keeps a scheduler standing (:meth:`ReminderScheduler.standing`); a lease row in the database lets
exactly one of them run it, the others stand by and take over when the holder stops renewing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED

from bot.background import repeating
from bot.store.models import SchedulerLease, table_of, utcnow
from bot.store.sql import insert_on_conflict
from scheduler.plan import plan, upcoming
from scheduler.run import Reminders, Tally

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
RENEW_SECONDS = 20
LEFTOVERS_SECONDS = 60
LEFTOVERS_JOB = "leftovers"
# How often a standing scheduler tries for the lease, or (holding it) adds jobs for campaigns loaded meanwhile.
STANDBY_SECONDS = 30

# The process's sender, set by :meth:`ReminderScheduler.start`; jobs are plain functions and find it here.
_running: "ReminderScheduler | None" = None


def run_due_job(planned_for: str) -> None:
    """The one job function: send what is due now (``planned_for`` is only for the log)."""
    service = _running
    if service is None:
        log.warning("job planned for %s ran without a scheduler; skipped", planned_for)
        return
    tally = service.reminders.run_due(service.clock())
    log.info("reminders planned for %s: %s", planned_for, describe(tally))


def leftovers_job() -> None:
    """The interval job: send what a crash left behind (claimed rows, unconfirmed templates)."""
    service = _running
    if service is None:
        return
    tally = service.reminders.send_leftovers(service.clock())
    if tally.sent or tally.failed or tally.defects or tally.in_doubt or tally.stopped:
        log.info("reminders left behind by a crash: %s", describe(tally))


def describe(tally: Tally) -> str:
    """A run's counts in one line (for logs and the command's closing line)."""
    sent = ", ".join(f"{channel} {n}" for channel, n in sorted(tally.sent.items())) or "0"
    held = sum(tally.held.values())
    line = f"sent {sent}; held {held}; skipped {tally.skipped}; failed {tally.failed}; defects {tally.defects}"
    if tally.resent:
        line += f"; {tally.resent} unconfirmed by WeChat and sent again"
    if tally.in_doubt:
        line += f"; {tally.in_doubt} unanswered by WeChat (in doubt, not sent again blindly)"
    return line + (f"; STOPPED: {tally.stopped}" if tally.stopped else "")


class _Scheduler(BackgroundScheduler):
    """APScheduler 3's loop may be in the middle of a pass over due jobs when ``shutdown`` stops the
    executors and job stores, and it makes one more pass after being woken by it; either would
    submit jobs to stopped executors. Passes here hold a lock, and shutdown first pauses under it."""

    def __init__(self, **options: object):
        super().__init__(**options)
        self._pass = threading.Lock()

    def _process_jobs(self) -> float | None:
        with self._pass:
            if self.state == STATE_STOPPED:
                return None
            return super()._process_jobs()  # type: ignore[no-any-return]

    def shutdown(self, wait: bool = True) -> None:
        with self._pass:
            self.pause()
        super().shutdown(wait)


class _JobStore(SQLAlchemyJobStore):
    """The job store on the process's own engine, which outlives the scheduler: APScheduler's
    store disposes its engine on shutdown, which would close the pool the rest of the process
    (the web app, when it runs the worker role too) still uses."""

    def shutdown(self) -> None:
        pass


class Lease:
    """A named lease in the database: whoever holds an unexpired row runs the scheduler."""

    def __init__(self, engine: sa.Engine, name: str = "reminders", holder: str | None = None,
                 seconds: int = LEASE_SECONDS, clock: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.name = name
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.seconds = seconds
        self.clock = clock

    def acquire(self) -> bool:
        """Take or renew the lease; False while another holder's lease is still valid."""
        table = table_of(SchedulerLease)
        now = self.clock()
        until = now + timedelta(seconds=self.seconds)
        with self.engine.begin() as conn:
            conn.execute(insert_on_conflict(conn, table).values(name=self.name, holder=self.holder, expires_at=until)
                         .on_conflict_do_nothing(index_elements=["name"]))
            taken = conn.execute(table.update().where(
                table.c.name == self.name, sa.or_(table.c.holder == self.holder, table.c.expires_at < now))
                .values(holder=self.holder, expires_at=until)).rowcount
        return taken == 1

    def release(self) -> None:
        """Give the lease up at once (on a clean stop) so a standby takes over without waiting."""
        table = table_of(SchedulerLease)
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.name == self.name, table.c.holder == self.holder))


class ReminderScheduler:
    """APScheduler over the persistent job store, started only by the holder of the lease."""

    def __init__(self, reminders: Reminders, engine: sa.Engine, *, clock: Callable[[], datetime] = utcnow,
                 lease: Lease | None = None):
        self.reminders = reminders
        self.engine = engine
        self.clock = clock
        self.lease = lease or Lease(engine)
        self._scheduler: BackgroundScheduler | None = None
        self._renewing = threading.Event()

    @property
    def running(self) -> bool:
        """Whether this process runs the scheduler (holds the lease)."""
        return self._scheduler is not None

    def start(self, paused: bool = False) -> bool:
        """Run the scheduler if the lease is free; False (standing by) otherwise."""
        global _running
        if not self.lease.acquire():
            return False
        scheduler = _Scheduler(
            jobstores={"default": _JobStore(engine=self.engine)},
            # One job at a time: each run sends everything due, so a second in parallel adds nothing.
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone="UTC",
        )
        _running = self
        scheduler.start(paused=True)
        self._scheduler = scheduler
        self.sync_jobs()
        # Added once per start: adding it again on every sync would push its next run back each time.
        scheduler.add_job(leftovers_job, "interval", seconds=LEFTOVERS_SECONDS, id=LEFTOVERS_JOB, replace_existing=True)
        # Cleared for this run: a stop (or a lost lease) set it to end the previous run's renewals.
        self._renewing.clear()
        threading.Thread(target=self._renew, name="scheduler-lease", daemon=True).start()
        if not paused:
            scheduler.resume()
        return True

    def sync_jobs(self) -> int:
        """Add a job for every upcoming planned moment (kept jobs are replaced, not doubled)."""
        assert self._scheduler is not None
        planned = upcoming(plan(self.engine, self.reminders.quiet), self.clock())
        moments = sorted({item.at.astimezone(timezone.utc) for item in planned})
        for moment in moments:
            self._scheduler.add_job(run_due_job, "date", run_date=moment, args=[moment.isoformat()],
                                    id=f"due:{moment.isoformat()}", replace_existing=True)
        return len(moments)

    def jobs(self) -> list[str]:
        """The ids of the stored jobs."""
        assert self._scheduler is not None
        return [job.id for job in self._scheduler.get_jobs()]

    def _renew(self) -> None:
        while not self._renewing.wait(RENEW_SECONDS):
            if not self.lease.acquire():
                log.error("the scheduler lease was taken over; stopping this scheduler")
                self.stop(release=False)
                return

    def tend(self) -> bool:
        """One pass of a standing scheduler: holding the lease, add the jobs of campaigns loaded
        meanwhile; else start if the lease is free. True while this process runs the scheduler."""
        if self.running:
            self.sync_jobs()
            return True
        if self.start():
            return True
        log.info("another process runs the scheduler; standing by")
        return False

    @contextlib.contextmanager
    def standing(self) -> Iterator[None]:
        """Tend the scheduler every ``STANDBY_SECONDS`` in a thread while the ``with`` block runs
        (the worker role's lifetime); on leaving, stop it and give the lease up."""
        try:
            with repeating(self.tend, "reminder-scheduler", STANDBY_SECONDS):
                yield
        finally:
            self.stop()

    def stop(self, release: bool = True) -> None:
        """Stop running jobs (the stored ones stay for the next holder) and give up the lease."""
        global _running
        self._renewing.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if _running is self:
            _running = None
        if release:
            self.lease.release()


# How often (real seconds) the demo's scheduler looks for what its running clock has brought due.
DEMO_TICK_SECONDS = 5.0


class DemoReminderScheduler:
    """The reminder scheduler on a demo clock (:mod:`bot.demo_clock`), for ``safetybot demo`` and tests.

    APScheduler fires its jobs at real moments, which a demo clock that starts in another June and
    jumps forward does not keep. So this one asks :meth:`Reminders.run_due` what is due at the demo's
    now every ``every`` real seconds, and at once when the clock is moved (:meth:`catch_up`); the
    ledger makes every extra look harmless. No lease: the demo clock lives in one process only.
    """

    def __init__(self, reminders: Reminders, clock: Callable[[], datetime], every: float = DEMO_TICK_SECONDS):
        self.reminders = reminders
        self.clock = clock
        self.every = every
        # One pass at a time: the tick and a move of the clock may come together.
        self._pass = threading.Lock()

    def catch_up(self) -> str:
        """Send what is due at the clock's now, and what a crash left; the tally as :func:`describe` words it."""
        with self._pass:
            now = self.clock()
            tally = self.reminders.run_due(now)
            tally.add(self.reminders.send_leftovers(now))
        if tally.sent or tally.failed or tally.defects or tally.in_doubt or tally.stopped:
            log.info("reminders due at the demo's %s: %s", now.isoformat(), describe(tally))
        return describe(tally)

    def next_moment(self) -> datetime | None:
        """The next planned moment (a reminder, a due time, a digest) after the clock's now, if any."""
        now = self.clock()
        return next((item.at for item in plan(self.reminders.engine, self.reminders.quiet) if item.at > now), None)

    @contextlib.contextmanager
    def standing(self) -> Iterator[None]:
        """Look for what is due every ``every`` seconds while the ``with`` block runs (the worker role's lifetime)."""
        with repeating(self.catch_up, "demo-reminder-scheduler", self.every):
            yield
