"""What the report handlers (周报, 要情) ask storage to write; ``bot/store/reports.py`` writes them.

Finishing a weekly report reuses the form handlers' :class:`~handlers.changes.SubmitForm` and
:class:`~handlers.changes.SaveAnswers`: a report is a submission like any other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AddReportItem:
    """Keep one thing a liaison sent into the unit's report for a deadline period, opening the
    draft submission if needed.

    ``kind`` is what the report shows (text, image, voice, video, link); ``media_kind`` is WeChat's
    MsgType (image, voice, video, shortvideo) when ``media_id`` names media to fetch before WeChat
    deletes it. ``featured`` marks a 要情 item.
    """

    unit_id: int
    deadline_id: int
    period: str
    kind: str
    text: str | None = None
    url: str | None = None
    media_id: str | None = None
    media_kind: str | None = None
    featured: bool = False
