"""Files the bot hands out through signed links instead of the admin token: ``GET
/files/export/<token>.xlsx`` serves a campaign's Excel file to whoever holds the link 导出 gave
(:mod:`bot.exports.links`). An altered, misused or expired link gets 403 and a short page saying
how to get a new one; nothing about the campaign is revealed.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime
from typing import Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bot.exports.links import ExportLinks
from bot.exports.workbook import MEDIA_TYPE, export_campaign
from bot.links import BadLink
from bot.store.models import Campaign, table_of
from bot.texts import Texts

log = logging.getLogger("safetybot.downloads")
_CAMPAIGN = table_of(Campaign)
TEMPLATES = ("download_refused",)
# The token is the credential: keep it out of caches and out of the Referer of anything the page links to.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class Downloads:
    """The ``/files`` endpoints; ``reads`` is the read-only engine, ``clock`` the bot's time."""

    def __init__(self, reads: sa.Engine, links: ExportLinks, texts: Texts, clock: Callable[[], datetime]):
        self.reads = reads
        self.links = links
        self.texts = texts
        self.clock = clock

    def _refused(self, status: int) -> Response:
        page = self.texts.render("download_refused")
        return HTMLResponse(page, status_code=status, headers=PRIVATE)

    async def export(self, request: Request) -> Response:
        """The Excel file of the campaign the link names; 403 when the link opens nothing, 404 when
        its campaign is gone."""
        now = self.clock()
        try:
            campaign_id = self.links.campaign_of(request.path_params["token"], now)
        except BadLink as refusal:
            log.info("export link refused: %s", refusal)
            return self._refused(403)

        def write() -> tuple[str, bytes] | None:
            target = io.BytesIO()
            with self.reads.connect() as conn:
                slug = conn.execute(sa.select(_CAMPAIGN.c.slug).where(_CAMPAIGN.c.id == campaign_id)).scalar()
                if slug is None:
                    return None
                export_campaign(conn, campaign_id, now, target)
            return slug, target.getvalue()

        written = await run_in_threadpool(write)
        if written is None:
            return self._refused(404)
        slug, content = written
        return Response(content, media_type=MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="{slug}.xlsx"', **PRIVATE})
