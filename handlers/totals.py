"""``合计`` and ``导出`` for the office: the statistics table summed over all units, laid out like the
notice's own table, and a signed link (24 h) to the Excel file.

Only staff and coordinators of the campaign may use them; anyone else is told who may, and nothing
changes. The sums come from one aggregate query (``ctx.stored.totals``); this module lays them out
in the notice's wording, one clause a line ("组织开展宣讲活动（37）场，参与（1860）人次"), so a long
answer split at WeChat's 2,048 bytes is never cut inside a number. The same layout (:func:`items`)
fills the Excel file's summed sheet (``bot/exports/workbook.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

from bot.campaigns.format import CampaignDefinition, Field, FieldType, FormDefinition, FormKind, StatItem
from handlers.base import Context, DialogueState, Incoming, Outcome, asked_for
from handlers.ports import DuePeriod, FieldTotal, TotalsFacts
from handlers.roles import office_campaign

TOTALS_WORDS = {"合计", "汇总", "统计合计", "合计数"}
TOTALS_MENU_KEY = "TOTALS"
EXPORT_WORDS = {"导出", "导出表格", "导出excel", "下载表格"}
EXPORT_MENU_KEY = "EXPORT"
# The issue's promise for 导出's link.
EXPORT_LINK_HOURS = 24
TEMPLATES = ("totals", "totals_no_table", "export_link")


@dataclass(frozen=True)
class ItemLines:
    """One statistics item as the notice prints it: ``heading`` ("1. 开展…活动") and its clauses,
    each with the values written into the blanks."""

    heading: str
    clauses: tuple[str, ...]


def is_totals(incoming: Incoming, state: DialogueState) -> bool:
    """``合计`` typed, or its menu button."""
    return asked_for(incoming, TOTALS_WORDS, TOTALS_MENU_KEY)


def is_export(incoming: Incoming, state: DialogueState) -> bool:
    """``导出`` typed, or its menu button."""
    return asked_for(incoming, EXPORT_WORDS, EXPORT_MENU_KEY)


def statistics_form(definition: CampaignDefinition) -> FormDefinition | None:
    """The campaign's statistics table (the first form of that kind), if it has one."""
    return next((f for f in definition.forms if f.kind is FormKind.STATISTICS), None)


def summed_period(definition: CampaignDefinition, periods: Sequence[DuePeriod], now: datetime) -> DuePeriod | None:
    """The deadline period whose statistics tables the office sums: the one units fill now (the
    first still to come, as 填报 picks it), else the last one; None without a statistics table."""
    form = statistics_form(definition)
    candidates = [p for p in periods if form is not None and p.collects == form.key]
    if not candidates:
        return None
    return next((p for p in candidates if p.due_at >= now), candidates[-1])


def clause_text(fields: Sequence[Field], shown: Callable[[Field], str]) -> str:
    """A clause as the notice prints it with ``shown(field)`` written into each blank:
    "组织开展宣讲活动（37）场，参与（1860）人次"."""
    parts = [("" if i == 0 else f.sep) + f"{f.label}（{shown(f)}）{f.unit}{f.suffix}" for i, f in enumerate(fields)]
    return "".join(parts)


def clauses(item: StatItem) -> list[tuple[Field, ...]]:
    """The item's fields grouped in its printed clauses, in order."""
    found: list[tuple[Field, ...]] = []
    for f in item.fields:
        clause = item.clause(f.answer_key)
        if clause not in found:
            found.append(clause)
    return found


def heading(item: StatItem) -> str:
    """An item's 活动项目 as printed: "1. 开展…活动" (the number only where the notice numbers it)."""
    return f"{item.number}. {item.title}" if item.number is not None else item.title


def summed_keys(form: FormDefinition) -> frozenset[str]:
    """The answer keys of the table's items: what 合计, the summed sheet and the API show (its
    header lines, 填报单位 or 联系人, are no totals)."""
    return frozenset(f.answer_key for item in form.items for f in item.fields)


def shown_total(f: Field, total: FieldTotal | None) -> str:
    """What goes into a blank of the summed table: the sum ("约37" when an estimate is in it), for
    yes/no fields how many units said 是, for text fields how many units wrote one; "—" when no
    submitted table answered it."""
    if total is None or total.answered == 0:
        return "—"
    if f.type is FieldType.COUNT:
        return "—" if total.total is None else f"{'约' if total.approximate else ''}{total.total}"
    if f.type is FieldType.YES_NO:
        return f"{total.yes}个单位是"
    return f"{total.answered}个单位填写"


def items(form: FormDefinition, totals: TotalsFacts) -> list[ItemLines]:
    """The summed table, item by item, clause by clause, in the notice's wording."""
    def shown(f: Field) -> str:
        return shown_total(f, totals.fields.get(f.answer_key))

    return [ItemLines(heading(item), tuple(clause_text(c, shown) for c in clauses(item))) for item in form.items]


def estimated(form: FormDefinition, totals: TotalsFacts) -> int:
    """How many of the table's sums include an estimate (约/余)."""
    return sum(1 for item in form.items for f in item.fields
               if f.type is FieldType.COUNT and (t := totals.fields.get(f.answer_key)) is not None and t.approximate)


def show_totals(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """The statistics table summed over all units' submitted tables."""
    campaign_id = office_campaign(ctx, "查看统计表合计")
    if isinstance(campaign_id, str):
        return Outcome(replies=(campaign_id,))
    definition = ctx.stored.definition(campaign_id)
    form = statistics_form(definition)
    period = summed_period(definition, ctx.stored.periods(campaign_id), ctx.now)
    if form is None or period is None:
        return Outcome(replies=(ctx.texts.render("totals_no_table", campaign=definition.name),))
    totals = ctx.stored.totals(period.deadline_id, period.period, summed_keys(form))
    return Outcome(replies=(ctx.texts.render(
        "totals", title=form.title, totals=totals, items=items(form, totals),
        estimated=estimated(form, totals)),))


def export_link(incoming: Incoming, state: DialogueState, ctx: Context) -> Outcome:
    """A signed link, good for a day, to the campaign's Excel file."""
    campaign_id = office_campaign(ctx, "导出活动的Excel表格")
    if isinstance(campaign_id, str):
        return Outcome(replies=(campaign_id,))
    definition = ctx.stored.definition(campaign_id)
    expires_at = ctx.now.replace(microsecond=0) + timedelta(hours=EXPORT_LINK_HOURS)
    return Outcome(replies=(ctx.texts.render(
        "export_link", campaign=definition.name, url=ctx.stored.export_link(campaign_id, expires_at),
        expires_at=expires_at.astimezone(definition.timezone), hours=EXPORT_LINK_HOURS),))
