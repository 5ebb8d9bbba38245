"""The admin HTTP API under ``/api``: what the office's own tools read, behind ``ADMIN_TOKEN``.

Every route of the group needs ``Authorization: Bearer <ADMIN_TOKEN>`` (RFC 6750): without it the
answer is 401, with another token 403. :class:`BearerToken` guards the whole group in
:mod:`bot.app`'s route table, so a route added to it cannot forget the check.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.exports.workbook import MEDIA_TYPE, export_campaign
from bot.store.exports import campaign_id_of
from bot.store.facts import DatabaseFacts
from bot.store.models import Campaign, Person, Role, Unit, table_of, utcnow
from handlers.totals import statistics_form, summed_keys, summed_period

_CAMPAIGN, _UNIT, _PERSON = table_of(Campaign), table_of(Unit), table_of(Person)


def _digest(token: str) -> bytes:
    # Compared as digests of equal length, so the time taken tells nothing of the token's length either.
    return hashlib.sha256(token.encode("utf-8")).digest()


class BearerToken:
    """ASGI middleware: pass a request on only when it carries ``Authorization: Bearer <token>``.

    No bearer credential: 401 with ``WWW-Authenticate: Bearer``; another token: 403. The token is
    compared in constant time (:func:`hmac.compare_digest`).
    """

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self._expected = _digest(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scheme, _, credential = Headers(scope=scope).get("authorization", "").partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            refusal: Response = JSONResponse({"error": "send Authorization: Bearer <ADMIN_TOKEN>"}, status_code=401,
                                             headers={"WWW-Authenticate": 'Bearer realm="safetybot"'})
        elif not hmac.compare_digest(_digest(credential), self._expected):
            refusal = JSONResponse({"error": "the token is not this bot's ADMIN_TOKEN"}, status_code=403)
        else:
            await self.app(scope, receive, send)
            return
        await refusal(scope, receive, send)


def campaign_overview(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every loaded campaign, by year and key: ``{"key", "title", "issuer", "year", "timezone",
    "units", "liaisons"}``. ``key`` is what commands take as ``--campaign`` (the file's key and
    year); ``liaisons`` counts the people registered as a liaison of one of its units."""
    units = (sa.select(_UNIT.c.campaign_id, sa.func.count().label("n")).group_by(_UNIT.c.campaign_id).subquery())
    liaisons = (sa.select(_UNIT.c.campaign_id, sa.func.count().label("n"))
                .join(_PERSON, _PERSON.c.unit_id == _UNIT.c.id).where(_PERSON.c.role == Role.LIAISON.value)
                .group_by(_UNIT.c.campaign_id).subquery())
    rows = conn.execute(
        sa.select(_CAMPAIGN.c.slug, _CAMPAIGN.c.name, _CAMPAIGN.c.issuer, _CAMPAIGN.c.year, _CAMPAIGN.c.timezone,
                  sa.func.coalesce(units.c.n, 0).label("units"), sa.func.coalesce(liaisons.c.n, 0).label("liaisons"))
        .outerjoin(units, units.c.campaign_id == _CAMPAIGN.c.id)
        .outerjoin(liaisons, liaisons.c.campaign_id == _CAMPAIGN.c.id)
        .order_by(_CAMPAIGN.c.year, _CAMPAIGN.c.slug))
    return [{"key": r.slug, "title": r.name, "issuer": r.issuer, "year": r.year, "timezone": r.timezone,
             "units": r.units, "liaisons": r.liaisons} for r in rows]


def campaign_totals(conn: sa.Connection, campaign_id: int, now: datetime) -> dict[str, Any]:
    """The campaign's statistics table summed over the units' submitted tables, as 合计 shows it at
    ``now``: ``{"form", "title", "deadline", "period", "units", "submitted", "drafts", "items": [{"key",
    "number", "title", "fields": [{"key", "label", "unit", "type", "total", "approximate", "units",
    "yes", "answered"}]}]}``. ``total`` is None for fields no unit gave a number for; ``units`` per
    field counts the units whose number is in it; ``drafts`` the units whose unsubmitted table is
    left out. Without a statistics table, ``form`` is None and ``items`` empty."""
    facts = DatabaseFacts(conn)
    definition = facts.definition(campaign_id)
    form = statistics_form(definition)
    period = summed_period(definition, facts.periods(campaign_id), now)
    if form is None or period is None:
        return {"form": None, "title": "", "deadline": None, "period": None, "units": 0, "submitted": 0,
                "drafts": 0, "items": []}
    totals = facts.totals(period.deadline_id, period.period, summed_keys(form))
    items = []
    for item in form.items:
        fields = []
        for f in item.fields:
            total = totals.fields.get(f.answer_key)
            fields.append({"key": f.answer_key, "label": f.label or f.prompt, "unit": f.unit, "type": f.type.value,
                           "total": total.total if total else None,
                           "approximate": total.approximate if total else False,
                           "units": total.units if total else 0, "yes": total.yes if total else 0,
                           "answered": total.answered if total else 0})
        items.append({"key": item.key, "number": item.number, "title": item.title, "fields": fields})
    return {"form": form.key, "title": form.title, "deadline": period.key, "period": period.period,
            "units": totals.units, "submitted": totals.submitted, "drafts": totals.drafts, "items": items}


def _no_campaign(key: str) -> Response:
    return JSONResponse({"error": f"no campaign {key!r} is loaded (GET /api/campaigns lists them)"}, status_code=404)


class AdminAPI:
    """The endpoints of the ``/api`` group; ``reads`` is the read-only engine (:func:`bot.store.engine.read_engine`),
    ``clock`` the bot's time (which period 合计 sums depends on it)."""

    def __init__(self, reads: sa.Engine, clock: Callable[[], datetime] = utcnow):
        self.reads = reads
        self.clock = clock

    async def campaigns(self, request: Request) -> Response:
        """``GET /api/campaigns``: ``{"campaigns": [...]}``, as :func:`campaign_overview` gives them."""

        def read() -> list[dict[str, Any]]:
            with self.reads.connect() as conn:
                return campaign_overview(conn)

        return JSONResponse({"campaigns": await run_in_threadpool(read)})

    async def totals(self, request: Request) -> Response:
        """``GET /api/campaigns/{key}/totals``: :func:`campaign_totals` as JSON; 404 for an unknown key."""
        key = request.path_params["key"]

        def read() -> dict[str, Any]:
            with self.reads.connect() as conn:
                return campaign_totals(conn, campaign_id_of(conn, key), self.clock())

        try:
            return JSONResponse({"campaign": key, **await run_in_threadpool(read)})
        except LookupError:
            return _no_campaign(key)

    async def export(self, request: Request) -> Response:
        """``GET /api/campaigns/{key}/export.xlsx``: the campaign's Excel file (bot/exports/workbook.py)."""
        key = request.path_params["key"]

        def write() -> bytes:
            target = io.BytesIO()
            with self.reads.connect() as conn:
                export_campaign(conn, campaign_id_of(conn, key), self.clock(), target)
            return target.getvalue()

        try:
            content = await run_in_threadpool(write)
        except LookupError:
            return _no_campaign(key)
        return Response(content, media_type=MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="{key}.xlsx"'})
