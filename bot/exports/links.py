"""The signed, expiring address of a campaign's Excel file (``导出``): a coordinator's phone cannot
send the admin API's bearer token, so the link itself says which campaign and until when
(:mod:`bot.links`, purpose ``export``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Settings
from bot.links import sign, verify

PURPOSE = "export"
# The promise: a link from 导出 opens the file for a day.
LIFETIME = timedelta(hours=24)
PATH = "/files/export/{token}.xlsx"


@dataclass(frozen=True)
class ExportLinks:
    """Makes and reads export links under one key; ``base`` is where the bot is reached
    (:attr:`Settings.page_base`, no trailing slash)."""

    base: str
    key: bytes

    @classmethod
    def of(cls, settings: Settings) -> "ExportLinks":
        """The links of the bot these settings describe."""
        return cls(settings.page_base, settings.link_key)

    def url(self, campaign_id: int, expires_at: datetime) -> str:
        """The full address of campaign ``campaign_id``'s file, good until ``expires_at`` (aware)."""
        return self.base + PATH.format(token=sign(self.key, PURPOSE, str(campaign_id), expires_at))

    def campaign_of(self, token: str, now: datetime) -> int:
        """The campaign id ``token`` opens at ``now``; :class:`bot.links.BadLink` if it opens nothing."""
        return int(verify(self.key, PURPOSE, token, now))
