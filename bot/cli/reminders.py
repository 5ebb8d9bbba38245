"""``safetybot reminders plan|run-due``: the reminders by hand (``safetybot worker`` runs them on schedule).

:func:`register` adds these sub-commands to the ``safetybot`` parser. The output is for office staff
at a terminal, not for WeChat users, so it is printed here rather than templated.
"""

from __future__ import annotations

import argparse
import sys
import threading
from datetime import datetime
from typing import Any, Callable

import httpx
import sqlalchemy as sa

from bot.config import WECHAT_API_BASE_URL, Settings, load_settings
from bot.store.engine import make_engine
from bot.store.models import utcnow
from bot.texts import Texts
from bot.wechat.client import wechat_api
from bot.worker import reminder_sender
from scheduler.plan import QuietHours, plan, upcoming
from scheduler.run import Reminders
from scheduler.service import describe


def _moment(text: str) -> datetime:
    """An ISO time with its offset (``2023-06-07T17:00+08:00``)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs its offset, e.g. 2023-06-07T17:00+08:00")
    return moment


def _quiet(text: str) -> QuietHours:
    try:
        return QuietHours.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _quiet_of(args: argparse.Namespace, settings: Settings) -> QuietHours:
    """``--quiet-hours`` when given, else the QUIET_HOURS setting."""
    return args.quiet_hours if args.quiet_hours is not None else QuietHours.parse(settings.quiet_hours)


# The --quiet-hours option of the commands that send reminders (here and `safetybot worker`).
QUIET_HOURS_OPTION: dict[str, Any] = {
    "type": _quiet, "default": None,
    "help": "no reminders in these local hours, e.g. 21:00-07:30 or off (default: the QUIET_HOURS setting)"}


def _reminders(settings: Settings, engine: sa.Engine, quiet: QuietHours, clock: Callable[[], datetime],
               progress: Callable[[int, int], None] | None = None) -> Reminders:
    # The client's clock follows --now, so that its view of 48-hour windows agrees with the replay.
    api = wechat_api(settings, engine, clock=clock)
    return reminder_sender(settings, engine, api, Texts(), quiet, progress)


def cmd_plan(args: argparse.Namespace) -> int:
    """Print the upcoming reminders (from ``--now``, default now) as a table."""
    settings = load_settings(args.env_file)
    engine = make_engine(settings.database_url)
    now = args.now or utcnow()
    try:
        rows = upcoming(plan(engine, _quiet_of(args, settings), args.campaign), now)
    finally:
        engine.dispose()
    print(f"{'when':<17} {'campaign':<28} {'deadline':<16} {'period':<11} {'stage':<11} due")
    for item in rows:
        due = item.due_at.astimezone(item.timezone).strftime("%Y-%m-%d %H:%M")
        print(f"{item.local_at:%Y-%m-%d %H:%M} {item.campaign_slug:<28} {item.deadline_key:<16} "
              f"{item.period or '-':<11} {item.label:<11} {due}")
    print(f"{len(rows)} upcoming")
    return 0


class ProgressBar:
    """A one-line progress bar on stderr for long fan-outs."""

    def __init__(self, width: int = 30):
        self.width = width
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            filled = self.width * done // max(total, 1)
            end = "\n" if done >= total else ""
            print(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}", end=end, file=sys.stderr, flush=True)


def _move_fake_clock(settings: Settings, now: datetime) -> None:
    """Bring the fake WeChat's clock to ``now`` so its 48-hour windows agree with ours."""
    if settings.wechat_api_base_url == WECHAT_API_BASE_URL:
        return  # the real WeChat keeps real time
    answer = httpx.post(f"{settings.wechat_api_base_url}/_fake/clock", json={"now": now.isoformat()}, timeout=10)
    if answer.status_code != 200:
        print(f"safetybot: the fake WeChat did not take the time: {answer.text}", file=sys.stderr)


def cmd_run_due(args: argparse.Namespace) -> int:
    """Send what is due at ``--now`` (default now); exit 1 when a quota error stopped the batch."""
    settings = load_settings(args.env_file)
    engine = make_engine(settings.database_url)
    now = args.now or utcnow()
    if args.now:
        _move_fake_clock(settings, now)
    reminders = _reminders(settings, engine, _quiet_of(args, settings), lambda: now, ProgressBar())
    try:
        tally = reminders.run_due(now, args.campaign)
    finally:
        engine.dispose()
    print(describe(tally))
    return 1 if tally.stopped else 0


def register(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``reminders plan|run-due`` to the ``safetybot`` sub-commands."""
    reminders = commands.add_parser("reminders", help="deadline reminders").add_subparsers(
        dest="reminders_command", required=True)
    planned = reminders.add_parser("plan", help="print the upcoming reminders as a table")
    planned.add_argument("--campaign", default=None, help="only this campaign (its slug, e.g. jincheng-commerce-2023)")
    planned.add_argument("--now", type=_moment, default=None, help="list from this time instead of now")
    planned.add_argument("--quiet-hours", **QUIET_HOURS_OPTION)
    planned.set_defaults(func=cmd_plan)

    due = reminders.add_parser("run-due", help="send what is due now (or at --now; the fake WeChat's clock follows)")
    due.add_argument("--campaign", default=None)
    due.add_argument("--now", type=_moment, default=None, help="e.g. 2023-06-07T17:00+08:00")
    due.add_argument("--quiet-hours", **QUIET_HOURS_OPTION)
    due.set_defaults(func=cmd_run_due)
