"""The ``safetybot`` command line: one parser, a module per group of commands."""

from bot.cli.main import build_parser, main, settings_for

__all__ = ["build_parser", "main", "settings_for"]
