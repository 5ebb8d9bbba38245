"""The campaign's Excel file, as the office sends it upward: the notice's own statistics table with
the units' sums written into its blanks, the same table for each unit, every unit's numbers in one
sheet, the liaison table (附件1-style), the activity records (附件3-style) and who submitted when.

Sheets, in order:

- ``合计``: the statistics table in the notice's layout (annex, title, its header lines filled with
  the office's own issuer, contact and the day, columns 序号 / 活动项目 / 进展情况), each item's
  clauses in the notice's wording with the sum in the blank ("组织开展宣讲活动（37）场，参与（1860）人次",
  "约" before a sum that includes an estimate);
- one sheet per unit in the same layout with that unit's answers (up to :data:`UNIT_SHEETS_UP_TO`
  units: beyond, a workbook of thousands of tabs is of no use to anyone, and every unit's answers
  are in ``报送情况``);
- the liaison table, the activity records of each table form, and ``报送情况``: each unit's
  status, submitted when, late or not, liaison, reminders sent about the summed deadline, and a
  column per item with the unit's 进展情况 (every unit's table at a glance, however many there are).

Written with openpyxl in write-only mode (rows streamed to the file, not kept as cell objects).
openpyxl's cost is per cell (about 10 µs), so the sheets that grow with the units keep few cells a
unit: 5,000 units × 40 fields write in about 1.5 s of CPU (``benchmarks/aggregate.py``). Every sheet prints on
A4, fitted to the page's width, its column headings repeated on each page.
"""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa
from pathlib import Path
from typing import IO, Any, Callable, Sequence

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

from bot.campaigns.format import Field, FieldType, FormDefinition, StatItem
from bot.store.exports import ExportData, Filled, Given, UnitRow, read_export
from handlers.totals import clauses, clause_text, heading, shown_total, statistics_form

# Above this many units the per-unit sheets are left out (see the module's docstring).
UNIT_SHEETS_UP_TO = 300
MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel's limits on a sheet's name.
SHEET_NAME_LENGTH = 31
NOT_IN_SHEET_NAMES = re.compile(r"[\[\]:*?/\\]")

_THIN = Side(style="thin")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="center")
_CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)
# Centred across the empty cells to its right: the look of a merged title, which write-only sheets lack.
_ACROSS = Alignment(horizontal="centerContinuous", vertical="center")
_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=16)
STATUS_WORDS = {"submitted": "已提交", "draft": "未提交（草稿）", "": "未填报"}


def sheet_names(wanted: Sequence[str]) -> list[str]:
    """Valid, unique sheet names for ``wanted``, in order: no ``[]:*?/\\``, at most 31 characters,
    not blank, unique without regard to case (as Excel compares them)."""
    taken: set[str] = set()
    names = []
    for name in wanted:
        base = NOT_IN_SHEET_NAMES.sub("_", name).strip("' ") or "表"
        candidate, number = base[:SHEET_NAME_LENGTH], 1
        while candidate.lower() in taken:
            number += 1
            suffix = f"({number})"
            candidate = base[:SHEET_NAME_LENGTH - len(suffix)] + suffix
        taken.add(candidate.lower())
        names.append(candidate)
    return names


def _sheet(book: Workbook, name: str, widths: Sequence[float], heading_row: int, landscape: bool = False) -> Any:
    """A new sheet with its column widths (in characters) and A4 page set-up: fitted to the
    width, as many pages long as it takes, ``heading_row`` repeated on each page."""
    ws = book.create_sheet(name)
    for index, width in enumerate(widths):
        ws.column_dimensions[get_column_letter(index + 1)].width = width
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{heading_row}:{heading_row}"
    return ws


def _cell(ws: WriteOnlyWorksheet, value: Any, font: Font | None = None, alignment: Alignment | None = None,
          border: Border | None = None) -> Cell:
    cell = WriteOnlyCell(ws, value)
    if font is not None:
        cell.font = font
    if alignment is not None:
        cell.alignment = alignment
    if border is not None:
        cell.border = border
    return cell


def _title_rows(ws: WriteOnlyWorksheet, form: FormDefinition, width: int) -> None:
    """The annex line and the table's title, centred over ``width`` columns."""
    ws.append([form.annex])
    ws.append([_cell(ws, form.title, _TITLE, _ACROSS)] + [_cell(ws, None, alignment=_ACROSS) for _ in range(width - 1)])


def _headings(ws: WriteOnlyWorksheet, labels: Sequence[str]) -> None:
    ws.append([_cell(ws, label, _BOLD, _CENTRE, _BOX) for label in labels])


def answer_text(f: Field, answer: Given | None) -> str:
    """A unit's answer as a blank of the notice shows it: "约50" for an estimate, "" when blank."""
    if answer is None or answer.text is None:
        return ""
    if f.type is FieldType.COUNT and answer.number is not None:
        return f"{'约' if answer.approximate else ''}{answer.number}"
    return answer.text


def progress(printed: Sequence[tuple[Field, ...]], shown: Callable[[Field], str]) -> str:
    """An item's 进展情况 cell from its ``printed`` clauses (:func:`handlers.totals.clauses`, worked
    out once a table, not once a unit): in the notice's wording, one a line, with their printed
    separators ("…（37）场，参与（1860）人次；\\n发表…（12）篇")."""
    return "".join(((c[0].sep + "\n") if i else "") + clause_text(c, shown) for i, c in enumerate(printed))


# Stands for a blank while an item's text is cut at its blanks; no notice's wording holds it.
_BLANK = "\0"


class ItemText:
    """An item's 进展情况 (:func:`progress`) laid out once a table and filled in once a unit:
    the notice's words are a format string with a ``{}`` for each blank, so a unit's text is one
    ``str.format`` of its answers instead of every clause built anew (35,000 texts for 5,000 units)."""

    def __init__(self, item: StatItem):
        printed = clauses(item)
        self.fields = tuple(f for clause in printed for f in clause)
        words = progress(printed, lambda f: _BLANK).split(_BLANK)
        if len(words) != len(self.fields) + 1:
            raise ValueError(f"item {item.title!r}: its wording holds {_BLANK!r}")
        self.template = "{}".join(w.replace("{", "{{").replace("}", "}}") for w in words)

    def filled(self, answers: dict[str, Given]) -> str:
        """The item's text with a unit's ``answers`` (answer key → Given) in its blanks, as :func:`answer_text` shows them."""
        return self.template.format(*[answer_text(f, answers.get(f.answer_key)) for f in self.fields])


def _statistics_sheet(book: Workbook, name: str, form: FormDefinition, header: Callable[[Field], str],
                      notes: Sequence[str], progresses: Sequence[str]) -> None:
    """The statistics table in the notice's layout: 序号, 活动项目 (活动要求 where the notice has it),
    进展情况 (``progresses``, one an item)."""
    with_requirement = any(item.requirement for item in form.items)
    labels = ["序号", "活动项目"] + (["活动要求"] if with_requirement else []) + ["进展情况"]
    widths = [6, 28] + ([36] if with_requirement else []) + [60]
    ws = _sheet(book, name, widths, heading_row=4 + len(notes), landscape=with_requirement)
    _title_rows(ws, form, len(labels))
    ws.append(["　　".join(f"{f.label}：{header(f)}" for f in form.fields)])
    for note in notes:
        ws.append([note])
    _headings(ws, labels)
    for position, (item, text) in enumerate(zip(form.items, progresses), 1):
        row = [_cell(ws, item.number if item.number is not None else position, alignment=_CENTRE, border=_BOX),
               _cell(ws, item.title, alignment=_WRAP, border=_BOX)]
        if with_requirement:
            row.append(_cell(ws, item.requirement, alignment=_WRAP, border=_BOX))
        row.append(_cell(ws, text, alignment=_WRAP, border=_BOX))
        ws.append(row)


def _office_header(data: ExportData) -> Callable[[Field], str]:
    """The summed sheet's header lines: the office is the 填报单位, its contact the 联系人."""
    contact = data.definition.contact
    today = data.now.astimezone(data.definition.timezone).date().isoformat()
    known = {FieldType.UNIT_NAME: data.definition.issuer, FieldType.PERSON_NAME: contact.person,
             FieldType.DATE: today}
    phone = contact.phone or contact.mobile

    def header(f: Field) -> str:
        return known.get(f.type, phone if f.type in (FieldType.PHONE, FieldType.OFFICE_PHONE, FieldType.MOBILE) else "")

    return header


def _status(filled: Filled | None, data: ExportData) -> str:
    """"已提交 2023-06-28 10:00（逾期）", "未提交（草稿）" or "未填报"."""
    if filled is None:
        return STATUS_WORDS[""]
    if filled.status != "submitted" or filled.submitted_at is None:
        return STATUS_WORDS.get(filled.status, filled.status)
    return f"已提交 {_local(filled.submitted_at, data)}{'（逾期）' if filled.late else ''}"


def _local(moment: datetime, data: ExportData) -> str:
    return moment.astimezone(data.definition.timezone).strftime("%Y-%m-%d %H:%M")


def _unit_sheets(book: Workbook, data: ExportData, form: FormDefinition, names: Sequence[str],
                 progresses: dict[int, list[str]]) -> None:
    blank = [ItemText(item).filled({}) for item in form.items]
    for unit, name in zip(data.units, names):
        filled = data.statistics.get(unit.id)
        answers = filled.answers if filled else {}

        def header(f: Field, answers: dict[str, Given] = answers, unit: UnitRow = unit) -> str:
            return answer_text(f, answers.get(f.answer_key)) or (unit.name if f.type is FieldType.UNIT_NAME else "")

        _statistics_sheet(book, name, form, header, [f"报送情况：{_status(filled, data)}"],
                          progresses.get(unit.id, blank))


def _liaison_sheet(book: Workbook, data: ExportData, name: str) -> None:
    """附件1-style: the liaison form's fields as columns, one row per unit (the registered
    liaison's name where the campaign has no liaison form)."""
    form = data.definition.liaison_form()
    fields = form.fields if form is not None else ()
    labels = ["序号"] + ([f.label for f in fields] if fields else ["单位名称", "联络员"])
    ws = _sheet(book, name, [6] + [16] * (len(labels) - 1), heading_row=3, landscape=len(labels) > 6)
    ws.append([form.annex if form is not None else ""])
    ws.append([form.title if form is not None else f"{data.definition.name}联络员"])
    _headings(ws, labels)
    for position, unit in enumerate(data.units, 1):
        filled = data.liaison.get(unit.id)
        answers = filled.answers if filled else {}
        if fields:
            values = [answer_text(f, answers.get(f.answer_key)) or _known(f, unit) for f in fields]
        else:
            values = [unit.name, unit.liaison]
        ws.append([position] + values)


def _known(f: Field, unit: UnitRow) -> str:
    return {FieldType.UNIT_NAME: unit.name, FieldType.PERSON_NAME: unit.liaison}.get(f.type, "")


def _records_sheet(book: Workbook, data: ExportData, form: FormDefinition, name: str) -> None:
    """附件3-style: the table form's pre-printed rows and columns, for each unit and period it sent."""
    labels = ["填报单位", "期间", "序号", form.row_label or "项目"] + [c.label for c in form.columns]
    ws = _sheet(book, name, [18, 10, 6, 40] + [18] * len(form.columns), heading_row=3, landscape=True)
    ws.append([form.annex])
    ws.append([form.title])
    _headings(ws, labels)
    names = {unit.id: unit.name for unit in data.units}
    for filled in data.records.get(form.key, []):
        for position, row in enumerate(form.rows, 1):
            cells = [answer_text(c, filled.answers.get(f"{row.key}.{c.key}")) for c in form.columns]
            ws.append([names.get(filled.unit_id, ""), filled.period, row.number or position,
                       _cell(ws, row.label, alignment=_WRAP)] + cells)
    if form.note:
        ws.append([form.note])


def _status_sheet(book: Workbook, data: ExportData, form: FormDefinition | None,
                  progresses: dict[int, list[str]]) -> None:
    """Each unit: its liaison, whether and when it submitted the summed table, late or not, the
    reminders sent about it, and (where the campaign has a statistics table) a column per item
    with the unit's 进展情况, so every unit's table is seen at a glance however many there are."""
    items = form.items if form is not None else ()
    ws = _sheet(book, "报送情况", [6, 22, 16, 10, 14, 17, 6, 8] + [36] * len(items), heading_row=2, landscape=True)
    ws.append([f"{data.period.title}（截止 {_local(data.period.due_at, data)}）" if data.period else "报送情况"])
    _headings(ws, ["序号", "单位", "分组", "联络员", "状态", "提交时间", "逾期", "提醒次数"]
              + [heading(item) for item in items])
    for position, unit in enumerate(data.units, 1):
        filled = data.statistics.get(unit.id)
        row: list[Any] = [position, unit.name, unit.group, unit.liaison or "（无）",
                          STATUS_WORDS.get(filled.status, filled.status) if filled else STATUS_WORDS[""]]
        if filled is not None and filled.status == "submitted" and filled.submitted_at is not None:
            row += [_local(filled.submitted_at, data), "是" if filled.late else "否"]
        else:
            row += [None, None]
        row.append(data.reminders.get(unit.id, 0))
        ws.append(row + progresses.get(unit.id, []))


def write_workbook(data: ExportData, target: str | Path | IO[bytes]) -> None:
    """Write the campaign's workbook (see the module's docstring) to a path or a binary file."""
    book = Workbook(write_only=True)
    definition = data.definition
    form = statistics_form(definition)
    table_forms = [f for f in definition.forms if f.key in data.records]
    per_unit = form is not None and len(data.units) <= UNIT_SHEETS_UP_TO
    fixed = ["合计", "联络员表", "报送情况"] + [f"{f.annex or f.key} {f.title}" for f in table_forms]
    names = sheet_names(fixed + ([u.name for u in data.units] if per_unit else []))
    # Each unit's 进展情况, item by item: filled in once for 报送情况 and the unit's own sheet.
    item_texts = [ItemText(item) for item in form.items] if form is not None else []
    progresses = {unit_id: [text.filled(filled.answers) for text in item_texts]
                  for unit_id, filled in data.statistics.items()}
    if form is not None and data.totals is not None:
        totals = data.totals
        notes = [f"汇总 {totals.submitted}/{totals.units} 个单位已提交的统计表"
                 + (f"；{totals.drafts} 个单位未提交的草稿未计入" if totals.drafts else "")
                 + "；带“约”的合计含估计数（约、余）"]
        _statistics_sheet(book, names[0], form, _office_header(data), notes,
                          [progress(clauses(item), lambda f: shown_total(f, totals.fields.get(f.answer_key)))
                           for item in form.items])
    if form is not None and per_unit:
        _unit_sheets(book, data, form, names[len(fixed):], progresses)
    _liaison_sheet(book, data, names[1])
    for table_form, name in zip(table_forms, names[3:len(fixed)]):
        _records_sheet(book, data, table_form, name)
    _status_sheet(book, data, form, progresses)
    book.save(target)


def export_campaign(conn: sa.Connection, campaign_id: int, now: datetime, target: str | Path | IO[bytes]) -> None:
    """Read campaign ``campaign_id`` as it stands at ``now`` and write its workbook to ``target``."""
    write_workbook(read_export(conn, campaign_id, now), target)
