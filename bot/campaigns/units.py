"""The units taking part in a campaign: imported from a spreadsheet, each with a join code.

Staff import a CSV or xlsx list (name, group, optional liaison mobile). Every row is checked
first and nothing is stored unless all rows are good, so a file is never half imported. Each new
unit gets a short random join code that its liaison sends the bot to register; ``export`` writes
the codes out for staff to hand over.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TextIO

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.campaigns.format import DefinitionError, parse_definition
from bot.store.engine import session
from bot.store.models import Campaign, Unit

# No 0/O or 1/I/L: codes are read out over the phone and typed on phones.
JOIN_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
# 31**8 ≈ 8.5e11 codes: guessing one among a few hundred units is hopeless.
JOIN_CODE_LENGTH = 8
MOBILE_PATTERN = re.compile(r"1[3-9]\d{9}")
COLUMNS = {
    "name": ("单位名称", "名称", "单位", "name"),
    "group": ("分组", "类别", "group"),
    "liaison_mobile": ("联络员手机", "手机号码", "手机", "mobile", "liaison_mobile"),
}
EXPORT_HEADER = ("单位名称", "分组", "加入码", "联络员手机")


@dataclass(frozen=True)
class UnitRow:
    """One good row of an import file; ``row`` is its spreadsheet row number (the header is 1)."""

    row: int
    name: str
    group: str = ""
    liaison_mobile: str = ""


@dataclass(frozen=True)
class RowProblem:
    """Why one row of an import file cannot be stored."""

    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


class ImportRefused(Exception):
    """The import file has bad rows; nothing was stored."""

    def __init__(self, problems: Sequence[RowProblem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class ImportResult:
    """How many units an import added, updated and left as they were."""

    added: int
    updated: int
    unchanged: int


def new_join_code(db: Session) -> str:
    """A random join code no unit uses yet."""
    while True:
        code = "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))
        if db.exec(select(Unit.id).where(Unit.join_code == code)).first() is None:
            return code


def _cell(value: Any) -> str:
    # Spreadsheets store a mobile number typed as a number as 13800138000.0.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


def read_table(path: Path) -> list[list[str]]:
    """The cells of a CSV (UTF-8 or GB18030, as Excel saves it) or of the first xlsx sheet."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            return [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            workbook.close()
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError(f"{path} is neither UTF-8 nor GB18030 text")
    return [[_cell(v) for v in row] for row in csv.reader(io.StringIO(text))]


def _columns(header: Sequence[str]) -> dict[str, int]:
    found = {}
    for index, title in enumerate(header):
        for name, titles in COLUMNS.items():
            if title.strip().lower() in titles and name not in found:
                found[name] = index
    return found


def parse_unit_rows(table: Sequence[Sequence[str]], groups: Sequence[str] = ()) -> tuple[list[UnitRow], list[RowProblem]]:
    """Check every row of ``table`` (header first); the good rows and every problem found."""
    if not table:
        return [], [RowProblem(1, "the file is empty; the first row must name the columns (单位名称, 分组, 联络员手机)")]
    columns = _columns(table[0])
    if "name" not in columns:
        return [], [RowProblem(1, "no 单位名称 (or name) column; the first row must name the columns")]
    rows: list[UnitRow] = []
    problems: list[RowProblem] = []
    first_row_of: dict[str, int] = {}
    for number, cells in enumerate(table[1:], start=2):
        values = {name: cells[index].strip() if index < len(cells) else "" for name, index in columns.items()}
        if not any(c.strip() for c in cells):
            continue
        name, group, mobile = values["name"], values.get("group", ""), values.get("liaison_mobile", "")
        row_problems = []
        if not name:
            row_problems.append("the unit name is empty")
        elif len(name) > 200:
            row_problems.append(f"the unit name is {len(name)} characters long; at most 200 fit")
        elif name in first_row_of:
            row_problems.append(f"{name} is already on row {first_row_of[name]}")
        if groups and group and group not in groups:
            row_problems.append(f"group {group!r} is not one of this campaign's groups ({', '.join(groups)})")
        elif len(group) > 100:
            row_problems.append("the group is longer than 100 characters")
        if mobile and not MOBILE_PATTERN.fullmatch(mobile):
            row_problems.append(f"{mobile!r} is not an 11-digit mobile number")
        problems += [RowProblem(number, p) for p in row_problems]
        if not row_problems:
            rows.append(UnitRow(number, name, group, mobile))
        first_row_of.setdefault(name, number)
    return rows, problems


def _campaign(db: Session, slug: str) -> Campaign:
    campaign = db.exec(select(Campaign).where(Campaign.slug == slug)).first()
    if campaign is None:
        raise LookupError(f"no campaign {slug!r} is loaded; see `safetybot campaign list`")
    return campaign


def _groups(campaign: Campaign) -> tuple[str, ...]:
    try:
        return parse_definition(campaign.definition, campaign.slug, year=campaign.year).unit_groups
    except DefinitionError:
        return ()


def import_units(engine: sa.Engine, slug: str, path: str | Path) -> ImportResult:
    """Add the units listed in ``path`` to campaign ``slug``; units already there are updated.

    Raises :class:`ImportRefused` with every bad row (nothing stored), :class:`LookupError` for
    an unknown campaign.
    """
    table = read_table(Path(path))
    with session(engine) as db:
        campaign = _campaign(db, slug)
        assert campaign.id is not None  # read from the database
        rows, problems = parse_unit_rows(table, _groups(campaign))
        if problems:
            raise ImportRefused(problems)
        existing = {u.name: u for u in db.exec(select(Unit).where(Unit.campaign_id == campaign.id))}
        added = updated = 0
        for row in rows:
            unit = existing.get(row.name)
            if unit is None:
                unit = Unit(campaign_id=campaign.id, name=row.name, join_code=new_join_code(db))
                added += 1
            elif (unit.group, unit.liaison_mobile) != (row.group, row.liaison_mobile):
                updated += 1
            else:
                continue
            unit.group, unit.liaison_mobile = row.group, row.liaison_mobile
            db.add(unit)
            db.flush()
        db.commit()
        return ImportResult(added, updated, len(rows) - added - updated)


def unit_codes(engine: sa.Engine, slug: str) -> list[tuple[str, str, str, str]]:
    """(name, group, join code, liaison mobile) of every unit of campaign ``slug``, by group and name."""
    with session(engine) as db:
        campaign = _campaign(db, slug)
        units = db.exec(select(Unit).where(Unit.campaign_id == campaign.id).order_by(col(Unit.group), col(Unit.name)))
        return [(u.name, u.group, u.join_code, u.liaison_mobile) for u in units]


def export_units(engine: sa.Engine, slug: str, path: str | Path | None, stream: TextIO | None = None) -> int:
    """Write campaign ``slug``'s units and join codes to ``path`` (.xlsx or CSV) or ``stream``.

    Returns the number of units written.
    """
    rows = unit_codes(engine, slug)
    if path is not None and Path(path).suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook()
        sheet = workbook.active
        assert sheet is not None
        sheet.append(EXPORT_HEADER)
        for row in rows:
            sheet.append(row)
        workbook.save(path)
        return len(rows)
    if path is not None:
        # utf-8-sig: Excel opens a BOM-marked CSV with Chinese text correctly.
        with open(path, "w", encoding="utf-8-sig", newline="") as handle:
            _write_csv(handle, rows)
    else:
        assert stream is not None
        _write_csv(stream, rows)
    return len(rows)


def _write_csv(handle: TextIO, rows: Sequence[tuple[str, str, str, str]]) -> None:
    writer = csv.writer(handle)
    writer.writerow(EXPORT_HEADER)
    writer.writerows(rows)
