"""The bot's own small web pages, opened from links it sends: ``/notice/{token}``, the full text of
an announcement (通知) behind a template message's link.

A template message carries only short fields (wechat-rules A2), so its link must show the rest
to whoever holds it, on a phone, without a login: the token is a signed, expiring link
(:mod:`bot.links`, purpose ``notice``, made by :func:`notice_url`), open for 30 days.
An altered, foreign or expired token is refused (403) with the same short page, saying nothing
of why. The page is rendered on the server from ``messages/notice_page.j2``, every value escaped
(the text shows exactly as typed, markup included), and served with a Content-Security-Policy
that allows no script, frame, form or resource from anywhere: only its own inline style.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bot.campaigns import definition_of
from bot.links import BadLink, sign, verify
from bot.store.models import Announcement, Campaign, table_of
from bot.texts import Texts

LINK_PURPOSE = "notice"
# Long enough for a liaison to come back to a notice during a campaign month.
LINK_LIFETIME = timedelta(days=30)
# Nothing may load or run but the page's own inline <style>; the page embeds, posts and frames nothing.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A link is a key to the text: no shared cache may keep the page.
    "Cache-Control": "private, no-store",
}
TEMPLATES = ("notice_page",)
_ANNOUNCEMENT = table_of(Announcement)
_CAMPAIGN = table_of(Campaign)


def notice_url(page_base: str, key: bytes, announcement_id: int, created_at: datetime) -> str:
    """The signed link to an announcement's page (``page_base``: :attr:`bot.config.Settings.page_base`),
    open for ``LINK_LIFETIME`` from ``created_at``."""
    return f"{page_base}/notice/{sign(key, LINK_PURPOSE, str(announcement_id), created_at + LINK_LIFETIME)}"


class Pages:
    """The pages' endpoints, reading on ``reads`` (a read-only engine) and checking links with
    ``link_key`` at ``clock``'s now."""

    def __init__(self, reads: sa.Engine, texts: Texts, link_key: bytes, clock: Callable[[], datetime]):
        self.reads = reads
        self.texts = texts
        self.link_key = link_key
        self.clock = clock

    async def notice(self, request: Request) -> Response:
        """``GET /notice/{token}``: the announcement's full text (200), or the refusal (403)."""
        return await run_in_threadpool(self._notice, request.path_params["token"])

    def _notice(self, token: str) -> Response:
        try:
            announcement_id = int(verify(self.link_key, LINK_PURPOSE, token, self.clock()))
        except (BadLink, ValueError):
            return self._page(403, text=None)
        with self.reads.connect() as conn:
            row = conn.execute(sa.select(_ANNOUNCEMENT.c.text, _ANNOUNCEMENT.c.sender_name, _ANNOUNCEMENT.c.created_at,
                                         _ANNOUNCEMENT.c.campaign_id).where(_ANNOUNCEMENT.c.id == announcement_id)).first()
            campaign = None if row is None else conn.execute(
                sa.select(_CAMPAIGN).where(_CAMPAIGN.c.id == row.campaign_id)).first()
        if row is None or campaign is None:
            return self._page(403, text=None)
        definition = definition_of(Campaign(**campaign._mapping))
        return self._page(200, text=row.text, campaign=definition.name, sender=row.sender_name,
                          sent_at=row.created_at.astimezone(definition.timezone))

    def _page(self, status: int, **values: object) -> Response:
        values.setdefault("campaign", "")
        return HTMLResponse(self.texts.render("notice_page", **values), status_code=status, headers=HEADERS)
