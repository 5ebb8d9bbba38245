"""The worker role: what the bot sends on its own, beside answering WeChat.

Four parts, each a thread: the reminder scheduler (:mod:`scheduler.service`), the outbox (notes
to staff and to people, :mod:`bot.outbound.outbox`), the announcements' fan-out
(:mod:`bot.outbound.announcements`) and the media fetcher (:mod:`bot.outbound.media`). ``safetybot worker`` runs them as a process of its own (:func:`run_worker`);
the embedded default runs them inside its one web process (``RUN_WORKER``, see
:attr:`bot.config.Settings.web_runs_worker`, and :func:`bot.app.create_app`).

Two processes of this role on one database do no harm: the scheduler runs where the lease is
held and stands by elsewhere, and the outbox and the fetcher take each row with a conditional
UPDATE that only one of them wins; an announcement's recipients are ledger rows unique by key, each
sent by whichever process marks it ``sending`` first.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

import sqlalchemy as sa

from bot.config import Settings
from bot.demo_clock import DemoClock, refuse_demo_clock
from bot.outbound.announcements import ANNOUNCEMENT_TEMPLATES, Announcements
from bot.outbound.delivery import Outbound
from bot.outbound.media import MediaFetcher
from bot.outbound.outbox import Outbox
from bot.store.engine import make_engine, read_engine
from bot.store.models import utcnow
from bot.texts import Texts
from bot.wechat.client import wechat_api
from scheduler.plan import QuietHours
from scheduler.run import Reminders, template_names
from scheduler.service import DemoReminderScheduler, Lease, ReminderScheduler

log = logging.getLogger("safetybot.worker")


def reminder_sender(settings: Settings, engine: sa.Engine, wechat: Outbound, texts: Texts, quiet: QuietHours,
                    progress: Callable[[int, int], None] | None = None) -> Reminders:
    """The reminder sender the settings ask for, sending through ``wechat``; raises
    :class:`LookupError` when ``messages/`` lacks a template it needs."""
    texts.check(template_names())
    # The wait for WeChat's job event is real time even when `reminders run-due --now` replays another moment.
    return Reminders(engine, wechat, texts, template_messages=settings.features.template_messages, quiet=quiet,
                     progress=progress, resend_after=timedelta(seconds=settings.template_event_wait_seconds),
                     real_clock=utcnow)


def announcement_sender(settings: Settings, engine: sa.Engine, wechat: Outbound, texts: Texts,
                        clock: Callable[[], datetime] = utcnow, progress: Callable[[int, int], None] | None = None,
                        reads: sa.Engine | None = None) -> Announcements:
    """The announcements' fan-out the settings ask for, sending through ``wechat`` (looking for work
    on ``reads``); raises :class:`LookupError` when ``messages/`` lacks a template it needs."""
    texts.check(ANNOUNCEMENT_TEMPLATES)
    return Announcements(engine, wechat, texts, template_messages=settings.features.template_messages,
                         page_base=settings.page_base, link_key=settings.link_key, clock=clock, progress=progress,
                         resend_after=timedelta(seconds=settings.template_event_wait_seconds), reads=reads)


class Worker:
    """The four parts of the worker role on one database, started and stopped together.

    ``reads`` is the engine for read-only work (:func:`bot.store.engine.read_engine`); ``wechat`` the
    outbound client (:class:`bot.wechat.client.WeChatAPI`); ``clock`` gives aware now to the outbox and
    the fetcher. The scheduler keeps real time: APScheduler fires its jobs at real moments, and
    ``safetybot reminders run-due --now`` is the way to replay another one. With ``demo`` (a demo
    clock, whose now ``clock`` then gives) the scheduler is :class:`DemoReminderScheduler` on it.
    """

    def __init__(self, settings: Settings, engine: sa.Engine, reads: sa.Engine, wechat: Any, texts: Texts,
                 clock: Callable[[], datetime] = utcnow, quiet: QuietHours | None = None,
                 demo: DemoClock | None = None):
        quiet = quiet if quiet is not None else QuietHours.parse(settings.quiet_hours)
        reminders = reminder_sender(settings, engine, wechat, texts, quiet)
        self.scheduler: ReminderScheduler | DemoReminderScheduler = (
            ReminderScheduler(reminders, engine, lease=Lease(engine)) if demo is None
            else DemoReminderScheduler(reminders, demo.now))
        self.outbox = Outbox(engine, reads, wechat, clock)
        self.announcements = announcement_sender(settings, engine, wechat, texts, clock, reads=reads)
        self.fetcher = MediaFetcher(engine, reads, wechat, settings.media_dir, clock, texts)

    def demo_scheduler(self) -> DemoReminderScheduler:
        """The scheduler of a worker built with a demo clock (what ``/demo/clock`` runs); ValueError otherwise."""
        if not isinstance(self.scheduler, DemoReminderScheduler):
            raise ValueError("this worker keeps real time")
        return self.scheduler

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Run the four parts in threads of this process for the duration of the ``with`` block."""
        with self.scheduler.standing(), self.outbox.running(), self.announcements.running(), self.fetcher.running():
            yield


def run_worker(settings: Settings, quiet: QuietHours | None = None) -> None:
    """``safetybot worker``: the worker role in this process until SIGTERM or SIGINT (Ctrl-C).

    ``quiet`` overrides the ``QUIET_HOURS`` setting. The passes under way finish and the scheduler's
    lease is given up before this returns, so a worker started elsewhere takes over at once.
    Raises :class:`bot.config.ConfigError` when ``DEMO_CLOCK_START`` is set (production keeps real time).
    """
    refuse_demo_clock(settings, "worker")
    engine = make_engine(settings.database_url)
    reads = read_engine(engine)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        worker = Worker(settings, engine, reads, wechat_api(settings, engine), Texts(),
                        quiet=quiet)
        with worker.running():
            log.info("safetybot worker running: reminder scheduler, outbox, announcements, media fetcher")
            stop.wait()
        log.info("safetybot worker stopped")
    finally:
        if reads is not engine:
            reads.dispose()
        engine.dispose()
