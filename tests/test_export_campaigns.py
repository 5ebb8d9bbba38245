"""The Excel file of each of the five notices: counts, yes/no answers (大渡口) and free text summed
and shown per unit in each notice's own wording; a notice without a statistics table (荫城) still
gets its liaison table and status sheet."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlmodel import select

from bot.admin import campaign_totals
from bot.campaigns import CampaignDefinition, FieldType, FormKind, load_definition, load_into_db
from bot.exports.workbook import export_campaign
from bot.store.engine import session
from bot.store.models import Answer, Campaign, Deadline, Submission, Unit

CAMPAIGNS = sorted((Path(__file__).resolve().parent.parent / "campaigns").glob("*.toml"))
# What two units answered: (count, estimate?, yes/no, text) each.
ANSWERED = {"甲单位": (2, True, "是", "典型案例甲"), "乙单位": (3, False, "否", "典型案例乙")}


def _fill(engine: sa.Engine, definition: CampaignDefinition) -> None:
    """Two units, each with a submitted statistics table answering every field as :data:`ANSWERED` says."""
    form = next((f for f in definition.forms if f.kind is FormKind.STATISTICS), None)
    with session(engine) as db:
        campaign = db.exec(select(Campaign).where(Campaign.slug == definition.slug)).one()
        deadline = db.exec(select(Deadline).where(Deadline.campaign_id == campaign.id,
                                                  Deadline.collects == (form.key if form else ""))).one_or_none()
        for n, (name, (count, approximate, yes_no, text)) in enumerate(ANSWERED.items()):
            unit = Unit(campaign_id=campaign.id, name=name, join_code=f"{definition.key[:8]}{n}".upper())
            db.add(unit)
            db.flush()
            if form is None or deadline is None:
                continue
            submission = Submission(unit_id=unit.id, deadline_id=deadline.id, status="submitted",
                                    submitted_at=datetime(definition.year, 6, 20, tzinfo=timezone.utc))
            db.add(submission)
            db.flush()
            first_count = True
            for f in form.answer_fields():
                if f.type is FieldType.COUNT:
                    value = Answer(submission_id=submission.id, field_key=f.answer_key, value=str(count), number=count,
                                   approximate=approximate and first_count, updated_by="test")
                    first_count = False
                else:
                    value = Answer(submission_id=submission.id, field_key=f.answer_key, updated_by="test",
                                   value=yes_no if f.type is FieldType.YES_NO else text)
                db.add(value)
        db.commit()


@pytest.mark.parametrize("path", CAMPAIGNS, ids=[p.stem for p in CAMPAIGNS])
def test_every_notice_exports_its_own_table(engine: sa.Engine, path: Path) -> None:
    definition = load_definition(path)
    load_into_db(engine, definition)
    _fill(engine, definition)
    target = io.BytesIO()
    with engine.connect() as conn:
        campaign_id = conn.execute(sa.text("SELECT id FROM campaign")).scalar_one()
        export_campaign(conn, campaign_id, datetime(definition.year, 7, 10, tzinfo=timezone.utc), target)
        summed = campaign_totals(conn, campaign_id, datetime(definition.year, 7, 10, tzinfo=timezone.utc))
    book = load_workbook(io.BytesIO(target.getvalue()))
    form = next((f for f in definition.forms if f.kind is FormKind.STATISTICS), None)
    if form is None:
        assert summed["form"] is None and summed["items"] == []
        assert book.sheetnames == ["联络员表", "报送情况"]
        liaison = definition.liaison_form()
        assert liaison is not None
        headings = [r for r in book["联络员表"].iter_rows(values_only=True)][2]
        assert headings == ("序号", *(f.label for f in liaison.fields))
        return
    assert book.sheetnames[:3] == ["合计", *ANSWERED]
    assert (summed["form"], summed["units"], summed["submitted"], summed["drafts"]) == (form.key, 2, 2, 0)
    for item in summed["items"]:
        for f in item["fields"]:
            if f["type"] == "count":
                assert (f["total"], f["units"]) == (5, 2)
            elif f["type"] == "yes_no":
                assert (f["total"], f["yes"], f["answered"]) == (None, 1, 2)
            else:
                assert (f["total"], f["answered"]) == (None, 2)
    first_count = next(f for f in form.answer_fields() if f.type is FieldType.COUNT)

    def summed(f) -> str:  # type: ignore[no-untyped-def]
        if f.type is FieldType.COUNT:
            return "约5" if f == first_count else "5"
        return "1个单位是" if f.type is FieldType.YES_NO else "2个单位填写"

    def own(unit: str):  # type: ignore[no-untyped-def]
        count, approximate, yes_no, text = ANSWERED[unit]

        def shown(f) -> str:  # type: ignore[no-untyped-def]
            if f.type is FieldType.COUNT:
                return f"约{count}" if approximate and f == first_count else str(count)
            return yes_no if f.type is FieldType.YES_NO else text
        return shown

    for sheet, shown in (("合计", summed), ("甲单位", own("甲单位")), ("乙单位", own("乙单位"))):
        cells = [c for row in book[sheet].iter_rows(values_only=True) for c in row if isinstance(c, str)]
        assert definition.form(form.key).title in cells
        for item in form.items:
            for f in item.fields:
                # Each blank as the notice prints it, with the sum or the unit's answer in it.
                blank = f"{f.label}（{shown(f)}）{f.unit}{f.suffix}"
                assert any(blank in c for c in cells), (sheet, blank)
    status = {r[1]: r for r in book["报送情况"].iter_rows(min_row=3, values_only=True)}
    for unit in ANSWERED:
        cells = [c for c in status[unit][8:] if c]
        assert len(cells) == len(form.items)
        assert all(f"{f.label}（{own(unit)(f)}）" in "".join(cells) for item in form.items for f in item.fields)
