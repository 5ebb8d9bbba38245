"""The ``safetybot`` command: serve the bot, run the fake WeChat, chat, and administer."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from bot.config import ConfigError, Settings, load_settings

log = logging.getLogger("safetybot")


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.env_file)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    return settings


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.db import upgrade

    settings = _settings(args)
    upgrade(settings.database_url, args.revision)
    print(f"database at revision {args.revision}")
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
