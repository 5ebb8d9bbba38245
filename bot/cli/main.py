"""The ``safetybot`` command: serve the bot (``serve``, the web role; ``worker``, the worker role) and
administer it (the simulator adds fake-wechat, demo, chat)."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from typing import Callable

from bot.cli import (
    campaign as campaign_commands, export as export_commands, notice as notice_commands, people as people_commands,
    reminders as reminder_commands,
)
from bot.config import ConfigError, Settings, configure_logging, load_settings


def settings_for(args: argparse.Namespace) -> Settings:
    """The settings a command runs with (``--env-file``, then the environment), logging set up by them."""
    settings = load_settings(args.env_file)
    configure_logging(settings)
    return settings


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.store.engine import upgrade

    settings = settings_for(args)
    upgrade(settings.database_url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app import serve

    serve(settings_for(args), args.env_file)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from bot.worker import run_worker

    run_worker(settings_for(args), quiet=args.quiet_hours)
    return 0


def cmd_token_refresh(args: argparse.Namespace) -> int:
    from bot.store.engine import make_engine
    from bot.wechat.client import wechat_api

    if not args.force:
        print("safetybot: `token refresh` needs --force: WeChat allows 20 forced refreshes a day, "
              "and every other process loses its token at once", file=sys.stderr)
        return 2
    settings = settings_for(args)
    engine = make_engine(settings.database_url)
    try:
        wechat_api(settings, engine).force_refresh_token()
    finally:
        engine.dispose()
    print("a new access token is stored for every process")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="safetybot", description=__doc__)
    parser.add_argument("--env-file", default=".env", help="settings file read before the environment (default .env)")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="apply the migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)

    commands.add_parser("serve", help="the web role: the WeChat callback and the admin API (uvicorn; "
                                      "see WEB_WORKERS and RUN_WORKER)").set_defaults(func=cmd_serve)
    # `scheduler` was this command's name while it ran only the reminder scheduler.
    worker = commands.add_parser("worker", aliases=["scheduler"],
                                 help="the worker role: reminder scheduler, outbox, announcements and media fetcher "
                                      "(beside a web-only `serve`)")
    worker.add_argument("--quiet-hours", **reminder_commands.QUIET_HOURS_OPTION)
    worker.set_defaults(func=cmd_worker)

    campaign_commands.register(commands)
    reminder_commands.register(commands)
    notice_commands.register(commands)
    export_commands.register(commands)
    people_commands.register(commands)
    # Tools installed beside the product (the fake WeChat, the chat client, the demo) add their
    # commands through this entry-point group; the product itself never imports them.
    for plugin in entry_points(group="safetybot.commands"):
        plugin.load()(commands)

    token = commands.add_parser("token", help="the shared access token").add_subparsers(dest="token_command", required=True)
    refresh = token.add_parser("refresh", help="force a new access token (admin; 20 a day)")
    refresh.add_argument("--force", action="store_true")
    refresh.set_defaults(func=cmd_token_refresh)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"safetybot: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
