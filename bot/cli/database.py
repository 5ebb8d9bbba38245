"""What every ``safetybot`` command that works on the database shares: the configured engine,
disposed after the command, and one explanation of a database error.

Output is for office staff at a terminal, so it is printed here rather than templated.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable

import sqlalchemy as sa

from bot.config import load_settings
from bot.store.engine import make_engine

Command = Callable[[argparse.Namespace, sa.Engine], int]


def with_database(command: Command) -> Callable[[argparse.Namespace], int]:
    """Run ``command`` with the configured database, disposed after it. A database error is
    explained here once (most often the migrations have not been applied) and ends it with 1."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        engine = make_engine(load_settings(args.env_file).database_url)
        try:
            return command(args, engine)
        except sa.exc.SQLAlchemyError as exc:
            print(f"safetybot: database error ({type(exc).__name__}); has `safetybot db upgrade` been run? {exc}",
                  file=sys.stderr)
            return 1
        finally:
            engine.dispose()

    return run
