"""``safetybot export FILE.xlsx --campaign X``: the campaign's Excel file, the same one the admin API
(``GET /api/campaigns/{key}/export.xlsx``) and 导出's link give (``bot/exports/workbook.py``).

:func:`register` adds the command to the ``safetybot`` parser; its output is for office staff at a
terminal, so it is printed here rather than templated.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import sqlalchemy as sa

from bot.cli.database import with_database
from bot.exports.workbook import export_campaign
from bot.store.exports import campaign_id_of
from bot.store.models import utcnow


def cmd_export(args: argparse.Namespace) -> int:
    """Write the workbook of ``--campaign`` to ``FILE``; 1 with a sentence when it cannot."""
    if not args.file.lower().endswith(".xlsx"):
        print(f"safetybot: {args.file} should end in .xlsx (the file is an Excel workbook)", file=sys.stderr)
        return 2
    return _export(args)


@with_database
def _export(args: argparse.Namespace, engine: sa.Engine) -> int:
    try:
        with engine.connect() as conn:
            export_campaign(conn, campaign_id_of(conn, args.campaign), utcnow(), args.file)
    except LookupError as exc:
        print(f"safetybot: {exc.args[0]} (see `safetybot campaign list`)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"safetybot: cannot write {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{args.campaign}: written to {args.file}")
    return 0


def register(commands: Any) -> None:
    """Add ``export`` to the sub-parsers of the ``safetybot`` command."""
    export = commands.add_parser("export", help="the campaign's Excel file: the statistics table summed and per "
                                                "unit, the liaison table, activity records, who submitted")
    export.add_argument("file", metavar="FILE.xlsx")
    export.add_argument("--campaign", required=True, help="the campaign's key, e.g. jincheng-commerce-2023")
    export.set_defaults(func=cmd_export)
