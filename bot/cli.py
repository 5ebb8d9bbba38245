"""The ``safetybot`` command: serve the bot, run the fake WeChat, chat, and administer."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from bot import campaign_commands, reminder_commands
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


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app import serve

    serve(_settings(args))
    return 0


def cmd_fake_wechat(args: argparse.Namespace) -> int:
    from bot.fake_wechat import FakeWeChat, serve

    settings = _settings(args)
    fake = FakeWeChat(settings.wechat_app_id, settings.wechat_app_secret)
    serve(fake, args.host, args.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import DemoSetupError, run_demo

    try:
        run_demo(_settings(args), fake_port=args.fake_port)
    except DemoSetupError as exc:
        print(f"safetybot: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.chat import run_chat

    return run_chat(_settings(args), openid=args.openid, bot_url=args.url)


def cmd_token_refresh(args: argparse.Namespace) -> int:
    from bot.db import make_engine
    from bot.token_store import build_token_store
    from bot.wechat_client import WeChatAPI

    if not args.force:
        print("safetybot: `token refresh` needs --force: WeChat allows 20 forced refreshes a day, "
              "and every other process loses its token at once", file=sys.stderr)
        return 2
    settings = _settings(args)
    engine = make_engine(settings.database_url)
    try:
        WeChatAPI(settings, build_token_store(settings, engine)).force_refresh_token()
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

    commands.add_parser("serve", help="serve the WeChat callback (uvicorn)").set_defaults(func=cmd_serve)

    fake = commands.add_parser("fake-wechat", help="serve the local fake WeChat API")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8081)
    fake.set_defaults(func=cmd_fake_wechat)

    demo = commands.add_parser("demo", help="the fake WeChat and the bot together, with a demo campaign")
    demo.add_argument("--fake-port", type=int, default=8081)
    demo.set_defaults(func=cmd_demo)

    chat = commands.add_parser("chat", help="talk to a served bot as a WeChat user")
    chat.add_argument("--as", dest="openid", required=True, help="the OpenID to speak as")
    chat.add_argument("--url", default=None, help="the bot's base URL (default: from HOST and PORT)")
    chat.set_defaults(func=cmd_chat)

    campaign_commands.register(commands)
    reminder_commands.register(commands)

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
