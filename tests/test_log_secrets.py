"""No secret reaches the log: the replayed 晋城 June (tests/fixtures_june.py: join codes, the staff
and coordinator codes, walks, submissions) plus a one-time invitation, an export link and its
download, the admin API and pushed replies, through the served bot in safe mode at DEBUG on each
database; then the whole log is searched for every secret (issue 19).

What counts as a secret, and why:
- ``WECHAT_APP_SECRET``: it buys access tokens; the signed-link key is derived from it.
- ``WECHAT_TOKEN``: whoever has it signs callbacks WeChat never sent.
- ``WECHAT_ENCODING_AES_KEY``: it opens and forges safe-mode messages.
- ``ADMIN_TOKEN``: the admin API's bearer token (totals and the whole workbook).
- every access token the fake WeChat issued: two hours of the account's API.
- the export link's token: for 24 hours it downloads every unit's table.
- the unit join codes, the campaign's staff and coordinator codes and one-time invitations: typed
  at 登记, each makes its sender a liaison, staff or coordinator.
Not secrets: OpenIDs (pseudonyms the log needs to trace a delivery), a callback's signature, nonce
and timestamp (single-use, and the signature cannot be turned back into the token), MsgIds.
"""

from __future__ import annotations

import functools
import logging
import re
import urllib.request
from datetime import timedelta
from typing import Iterator
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from bot.campaigns import load_definition, load_into_db
from bot.campaigns.units import import_units, unit_codes
from bot.store.people import campaign_id, create_invitation
from tests.fixtures_forms import CAMPAIGN, SLUG, UNITS, Campaign, Clock
from tests.fixtures_gateway import AES_KEY, StartBot
from tests.fixtures_june import COORDINATOR, COORDINATOR_CODE, STAFF_CODE, June, june  # noqa: F401  (fixture)
from tests.test_corpus import LogLines, recorded_log

NEWCOMER = "oInvitedStaff"


@pytest.fixture
def debug_log() -> Iterator[LogLines]:
    """Every log record of the test at DEBUG: the bot's, uvicorn's, and its libraries'."""
    with recorded_log(logging.DEBUG) as lines:
        yield lines


@pytest.fixture
def jincheng(start_bot: StartBot, engine: sa.Engine, debug_log: LogLines) -> Campaign:
    """tests/fixtures_forms.py's 晋城 2023, with the bot served by uvicorn in safe mode, logged from its start."""
    load_into_db(engine, load_definition(CAMPAIGN))
    import_units(engine, SLUG, UNITS)
    codes = {name: code for name, _group, code, _mobile in unit_codes(engine, SLUG)}
    return Campaign(functools.partial(start_bot, aes_key=AES_KEY, served=True), engine, Clock(), codes)


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    # urllib, not httpx: httpx logs every URL it fetches, and this test's own requests (as a
    # person's phone or an administrator makes them) are not the bot's log.
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as answer:
        answer.read()
        return int(answer.status)


def test_a_full_june_at_debug_logs_no_secret_and_no_issued_token(june: June, debug_log: LogLines) -> None:
    campaign = june.campaign
    bot, settings = campaign.bot, campaign.bot.settings
    with campaign.engine.begin() as conn:
        found = campaign_id(conn, SLUG)
        assert found is not None
        invitation = create_invitation(conn, "staff", found, campaign.clock() + timedelta(days=7), "test",
                                       campaign.clock())
    campaign.say(NEWCOMER, "登记")
    assert "工作人员" in campaign.say(NEWCOMER, invitation)
    # 合计 is longer than a passive reply may be: its other parts are pushed with an access token.
    assert june.read(COORDINATOR, "合计", "回复“导出”获取Excel表格。")
    [link] = re.findall(r"https?://\S+\.xlsx", june.say(COORDINATOR, "导出"))
    base = str(bot.side.client.base_url)
    assert _get(base + urlsplit(link).path) == 200
    assert _get(f"{base}/api/campaigns/{SLUG}/totals", {"Authorization": f"Bearer {settings.admin_token}"}) == 200

    issued = bot.fake.issued_tokens
    assert issued, "the scenario pushed nothing, so no access token was issued"
    secrets = {
        "WECHAT_APP_SECRET": settings.wechat_app_secret,
        "WECHAT_TOKEN": settings.wechat_token,
        "WECHAT_ENCODING_AES_KEY": AES_KEY,
        "ADMIN_TOKEN": str(settings.admin_token),
        "the signed-link key": settings.link_key.hex(),
        "the export link's token": urlsplit(link).path.removeprefix("/files/export/").removesuffix(".xlsx"),
        "the staff code": STAFF_CODE,
        "the coordinator code": COORDINATOR_CODE,
        "the invitation": invitation,
        **{f"{unit}'s join code": code for unit, code in campaign.codes.items()},
        **{f"access token {n}": token for n, token in enumerate(issued, 1)},
    }
    log = "\n".join(debug_log.lines)
    assert len(debug_log.lines) > 100, "the scenario logged next to nothing: is DEBUG on?"
    leaked = {name: line for name, value in secrets.items()
              for line in debug_log.lines if value.lower() in line.lower()}
    assert not leaked, leaked
    assert "Traceback" not in log
