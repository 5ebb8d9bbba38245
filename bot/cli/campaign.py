"""``safetybot campaign check|load|list|schema`` and ``safetybot units import|export``: operator tooling.

:func:`register` adds these sub-commands to the ``safetybot`` parser. Output is for office
staff at a terminal, not for WeChat users, so it is printed here rather than templated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot.campaigns.format import DefinitionError, Problem, check_file, load_definition
from bot.campaigns.schema import json_schema
from bot.campaigns.store import LoadRefused, list_campaigns, load_into_db
from bot.cli.database import with_database
from bot.campaigns.units import ImportRefused, export_units, import_units


def _print_problems(path: str, problems: list[Problem]) -> None:
    for problem in problems:
        at = f":{problem.line}" if problem.line else ""
        where = f" {problem.where}:" if problem.where else ""
        print(f"{path}{at}:{where} {problem.message}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    """Check campaign files; print every problem with its place; non-zero if any."""
    failed = 0
    for path in args.files:
        problems = check_file(path)
        if problems:
            _print_problems(path, problems)
            print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
            failed += 1
        else:
            definition = load_definition(path)
            print(f"{path}: ok ({definition.slug}: {len(definition.forms)} forms, "
                  f"{len(definition.deadlines)} deadlines)")
    return 1 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of campaign files (or write it to ``--output``), for editors that check
    a file as it is typed (docs/campaign-format.md, "Checking as you type")."""
    text = json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{args.output}: the JSON Schema of campaign files")
    else:
        sys.stdout.write(text)
    return 0


@with_database
def cmd_load(args: argparse.Namespace, engine: sa.Engine) -> int:
    """Load (or reload) a campaign file into the database, optionally for another year."""
    try:
        definition = load_definition(args.file, year=args.year)
    except DefinitionError as exc:
        _print_problems(args.file, exc.problems)
        return 1
    try:
        result = load_into_db(engine, definition, force=args.force)
    except LoadRefused as exc:
        print(f"{exc.slug}: not loaded, it would drop answers units already gave:", file=sys.stderr)
        for loss in exc.losses:
            print(f"  - {loss.message}", file=sys.stderr)
        print("Put the fields back, or run again with --force to delete those answers.", file=sys.stderr)
        return 1
    print(f"{result.slug}: {'loaded' if result.created else 'updated'}")
    for change in result.changes if not result.created else ():
        print(f"  - {change}")
    if not result.created and not result.changes:
        print("  (nothing changed)")
    return 0


@with_database
def cmd_list(args: argparse.Namespace, engine: sa.Engine) -> int:
    """Show the loaded campaigns with their next deadline."""
    summaries = list_campaigns(engine)
    if not summaries:
        print("no campaign loaded; use `safetybot campaign load FILE`")
    for s in summaries:
        if s.next_due_at is None:
            upcoming = "no deadline ahead"
        else:
            due = s.next_due_at.astimezone(ZoneInfo(s.timezone)).strftime("%Y-%m-%d %H:%M")
            upcoming = f"next: {s.next_deadline} by {due}"
        print(f"{s.slug}  {s.name}  ({s.issuer}, {s.units} units)  {upcoming}")
    return 0


def _campaign_slug(engine: sa.Engine, given: str | None) -> str | None:
    """The campaign named on the command line, or the only one loaded."""
    if given:
        return given
    slugs = [s.slug for s in list_campaigns(engine)]
    if len(slugs) == 1:
        return slugs[0]
    print("name the campaign with --campaign; loaded: " + (", ".join(slugs) or "none"), file=sys.stderr)
    return None


@with_database
def cmd_units_import(args: argparse.Namespace, engine: sa.Engine) -> int:
    """Import units from CSV or xlsx; report every bad row and store nothing if there is one."""
    try:
        slug = _campaign_slug(engine, args.campaign)
        if slug is None:
            return 1
        result = import_units(engine, slug, args.file)
    except ImportRefused as exc:
        for problem in exc.problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        print(f"{args.file}: nothing imported; fix the rows above and import again", file=sys.stderr)
        return 1
    except (LookupError, OSError, ValueError) as exc:
        print(f"safetybot: {exc}", file=sys.stderr)
        return 1
    print(f"{slug}: {result.added} units added, {result.updated} updated, {result.unchanged} unchanged")
    return 0


@with_database
def cmd_units_export(args: argparse.Namespace, engine: sa.Engine) -> int:
    """Write the units and their join codes (CSV or xlsx, or CSV to the terminal)."""
    try:
        slug = _campaign_slug(engine, args.campaign)
        if slug is None:
            return 1
        count = export_units(engine, slug, args.output, sys.stdout)
    except LookupError as exc:
        print(f"safetybot: {exc}", file=sys.stderr)
        return 1
    if args.output:
        print(f"{slug}: {count} units written to {args.output}")
    return 0


def register(commands: Any) -> None:
    """Add ``campaign`` and ``units`` to the sub-parsers of the ``safetybot`` command."""
    campaign = commands.add_parser("campaign", help="campaign definition files").add_subparsers(
        dest="campaign_command", required=True)
    check = campaign.add_parser("check", help="check campaign files and print every problem")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=cmd_check)
    load = campaign.add_parser("load", help="load or update a campaign file in the database")
    load.add_argument("file", metavar="FILE")
    load.add_argument("--year", type=int, help="run the campaign in this year instead of the file's")
    load.add_argument("--force", action="store_true", help="delete answers to fields the file no longer has")
    load.set_defaults(func=cmd_load)
    campaign.add_parser("list", help="loaded campaigns and their next deadline").set_defaults(func=cmd_list)
    schema = campaign.add_parser("schema", help="print the JSON Schema of campaign files, for editors")
    schema.add_argument("--output", metavar="FILE", help="write it to FILE instead")
    schema.set_defaults(func=cmd_schema)

    units = commands.add_parser("units", help="units taking part and their join codes").add_subparsers(
        dest="units_command", required=True)
    imports = units.add_parser("import", help="import units from CSV or xlsx (单位名称, 分组, 联络员手机)")
    imports.add_argument("file", metavar="FILE")
    imports.add_argument("--campaign", help="campaign slug (default: the only one loaded)")
    imports.set_defaults(func=cmd_units_import)
    exports = units.add_parser("export", help="write units and join codes for staff to hand over")
    exports.add_argument("--campaign", help="campaign slug (default: the only one loaded)")
    exports.add_argument("--output", help="file to write (.csv or .xlsx); default: CSV to the terminal")
    exports.set_defaults(func=cmd_units_export)
