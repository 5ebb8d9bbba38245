"""The totals' bar chart, laid out on the server: one horizontal bar per summed number, its label
above it and its value at its end, drawn as inline SVG by ``messages/dashboard_campaign.j2``.

Horizontal bars keep long Chinese labels readable on a phone's width; the value is written next to
every bar, so a small number beside a large one (场 beside 人次) is still read, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

WIDTH = 360
ROW = 38
BAR = 14
# Room at the bar's end for its value ("约12345").
VALUE_ROOM = 64


@dataclass(frozen=True)
class Bar:
    """One bar: ``label`` drawn at ``label_y``, a bar from x=0 ``width`` wide at ``bar_y``, and its
    ``value`` ("约37" for an estimate) at ``value_x``."""

    label: str
    value: str
    label_y: int
    bar_y: int
    width: float
    value_x: float


@dataclass(frozen=True)
class Chart:
    """A chart ``width`` × ``height`` in SVG user units, with its bars in order."""

    width: int
    height: int
    bars: tuple[Bar, ...]


def bar_chart(values: Sequence[tuple[str, int, bool]]) -> Chart:
    """The chart of ``values``, each (label, total, approximate), in order; the longest bar is the
    largest total (at least 1 unit wide, so a 0 still shows where its bar would start)."""
    largest = max((v for _, v, _ in values), default=0)
    span = WIDTH - VALUE_ROOM
    bars = []
    for i, (label, value, approximate) in enumerate(values):
        width = max(1.0, span * value / largest) if largest > 0 else 1.0
        top = i * ROW
        bars.append(Bar(label, f"{'约' if approximate else ''}{value}", top + 13, top + 19, round(width, 1),
                        round(width + 4, 1)))
    return Chart(WIDTH, max(ROW, len(values) * ROW), tuple(bars))


def totals_chart(totals: dict[str, Any]) -> Chart:
    """The chart of the numbers in :func:`bot.admin.campaign_totals`' ``items``: every count field
    that has a total, labelled with its item's number and its label and unit."""
    values = []
    for item in totals["items"]:
        for f in item["fields"]:
            if f["type"] == "count" and f["total"] is not None:
                number = f"{item['number']}. " if item["number"] is not None else ""
                values.append((f"{number}{f['label']}（{f['unit']}）" if f["unit"] else f"{number}{f['label']}",
                               int(f["total"]), bool(f["approximate"])))
    return bar_chart(values)
