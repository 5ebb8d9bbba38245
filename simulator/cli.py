"""The simulator's commands, added to ``safetybot`` through the ``safetybot.commands`` entry point:
``fake-wechat``, ``demo`` and ``chat``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.cli import settings_for


def cmd_fake_wechat(args: argparse.Namespace) -> int:
    from simulator.fake_wechat import FakeWeChat, serve

    settings = settings_for(args)
    fake = FakeWeChat(settings.wechat_app_id, settings.wechat_app_secret)
    serve(fake, args.host, args.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.campaigns import DefinitionError, LoadRefused
    from bot.campaigns.units import ImportRefused
    from simulator.demo import DemoSetupError, JuneFiles, run_demo

    if (args.replay_june is None) != (args.units is None):
        print("safetybot: --replay-june and --units go together", file=sys.stderr)
        return 2
    june = None if args.replay_june is None else JuneFiles(args.replay_june, args.units)
    try:
        run_demo(settings_for(args), fake_port=args.fake_port, june=june, program=sys.argv[0])
    except (DemoSetupError, DefinitionError, LoadRefused, ImportRefused, OSError) as exc:
        print(f"safetybot: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from simulator.chat import run_chat

    return run_chat(settings_for(args), openid=args.openid, bot_url=args.url)


def register(commands: Any) -> None:
    """Add the simulator's sub-commands to the ``safetybot`` parser's sub-parsers."""
    fake = commands.add_parser("fake-wechat", help="serve the local fake WeChat API")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8081)
    fake.set_defaults(func=cmd_fake_wechat)

    demo = commands.add_parser("demo", help="the fake WeChat and the bot together, with a demo campaign")
    demo.add_argument("--fake-port", type=int, default=8081)
    demo.add_argument("--replay-june", type=Path, metavar="CAMPAIGN_FILE",
                      help="load this campaign for the coming June and replay liaisons reporting in it")
    demo.add_argument("--units", type=Path, metavar="UNITS_FILE", help="the replayed campaign's units (with --replay-june)")
    demo.set_defaults(func=cmd_demo)

    chat = commands.add_parser("chat", help="talk to a served bot as a WeChat user")
    chat.add_argument("--as", dest="openid", required=True, help="the OpenID to speak as")
    chat.add_argument("--url", default=None, help="the bot's base URL (default: from HOST and PORT)")
    chat.set_defaults(func=cmd_chat)
