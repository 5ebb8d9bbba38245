"""The dashboard's endpoints under ``/dashboard`` (routed in :mod:`bot.app`).

Every page and picture needs a session (:mod:`bot.dashboard.sessions`): without one a page
redirects to the login form (303) and a picture is refused (401). A session of a coordinator sees
only their campaign: another campaign's page, unit or picture is 404, as if it did not exist. The
login and logout forms carry a CSRF token; a post without the right one is refused (403). Pages
are rendered on the server from ``messages/dashboard_*.j2`` (each inside an ``autoescape`` block,
so every value is escaped) and served with a Content-Security-Policy that allows no script and
nothing from elsewhere: only the page's own style, its pictures and its forms.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
from datetime import datetime
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, quote

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.dashboard import reads
from bot.dashboard.chart import totals_chart
from bot.dashboard.sessions import COOKIE, LOGIN_COOKIE, LOGIN_FORM_LIFETIME, SESSION_LIFETIME, Session, Sessions
from bot.exports.workbook import MEDIA_TYPE, export_campaign
from bot.links import BadLink
from bot.texts import Texts

log = logging.getLogger("safetybot.dashboard")
TEMPLATES = ("dashboard_login", "dashboard_home", "dashboard_campaign", "dashboard_unit")
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
                           "base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Every page shows a campaign's people: no shared cache may keep one.
    "Cache-Control": "private, no-store",
}
# A login form is a token and a CSRF token; anything longer is not one.
FORM_BYTES = 4096
STATUS_NAMES = {"owing": "未报", "draft": "草稿", "late": "逾期提交", "submitted": "已提交"}
SORT_NAMES = {"name": "单位", "status": "状态", "liaison": "联络员", "activity": "最近活动", "reminders": "提醒次数"}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class Dashboard:
    """The dashboard's endpoints: reading on ``reads`` (a read-only engine) at ``clock``'s now,
    logging in with ``admin_token`` or a ``后台`` link, pictures from ``media_dir``; cookies are
    ``Secure`` when the request came over https or ``page_base`` is https."""

    def __init__(self, reads_engine: sa.Engine, texts: Texts, sessions: Sessions, admin_token: str, media_dir: Path,
                 page_base: str, clock: Callable[[], datetime]):
        self.reads = reads_engine
        self.texts = texts
        self.sessions = sessions
        self._admin = _digest(admin_token)
        self.media_dir = media_dir
        self.https = page_base.startswith("https://")
        self.clock = clock

    def routes(self) -> list[BaseRoute]:
        """The dashboard's routes, for :mod:`bot.app`'s table."""
        return [
            Route("/dashboard", self.home, methods=["GET"]),
            Route("/dashboard/login", self.login_form, methods=["GET"]),
            Route("/dashboard/login", self.login, methods=["POST"]),
            Route("/dashboard/logout", self.logout, methods=["POST"]),
            Route("/dashboard/enter/{token}", self.enter, methods=["GET"]),
            Route("/dashboard/c/{key}", self.campaign, methods=["GET"]),
            Route("/dashboard/c/{key}/units/{unit_id:int}", self.unit, methods=["GET"]),
            Route("/dashboard/c/{key}/export.xlsx", self.export, methods=["GET"]),
            Route("/dashboard/pictures/{media_id:int}", self.picture, methods=["GET"]),
        ]

    # --- sessions -----------------------------------------------------------------------------

    def _session(self, request: Request) -> Session | None:
        return self.sessions.read(request.cookies.get(COOKIE), self.clock())

    def _secure(self, request: Request) -> bool:
        return self.https or request.url.scheme == "https"

    def _page(self, name: str, status: int = 200, **values: object) -> HTMLResponse:
        return HTMLResponse(self.texts.render(name, **values), status_code=status, headers=HEADERS)

    def _logged_in(self, request: Request, session: Session) -> Response:
        answer = RedirectResponse("/dashboard", status_code=303, headers=HEADERS)
        answer.set_cookie(COOKIE, session.cookie, max_age=int(SESSION_LIFETIME.total_seconds()), path="/dashboard",
                          httponly=True, samesite="lax", secure=self._secure(request))
        answer.delete_cookie(LOGIN_COOKIE, path="/dashboard/login")
        return answer

    def _to_login(self) -> Response:
        return RedirectResponse("/dashboard/login", status_code=303, headers=HEADERS)

    def _login_page(self, request: Request, status: int, refused: bool) -> Response:
        token = self.sessions.login_form(self.clock())
        answer = self._page("dashboard_login", status, csrf=token, refused=refused)
        answer.set_cookie(LOGIN_COOKIE, token, max_age=int(LOGIN_FORM_LIFETIME.total_seconds()),
                          path="/dashboard/login", httponly=True, samesite="strict", secure=self._secure(request))
        return answer

    async def login_form(self, request: Request) -> Response:
        """``GET /dashboard/login``: the form for the admin token (and its CSRF cookie)."""
        return self._login_page(request, 200, refused=False)

    async def login(self, request: Request) -> Response:
        """``POST /dashboard/login``: a session for every campaign when ``token`` is the admin token
        (303 to ``/dashboard``); the form again (403) for another token; 403 without the form's
        CSRF token."""
        form = await _form(request)
        if form is None or not self.sessions.login_form_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf"),
                                                           self.clock()):
            return PlainTextResponse("the form is stale or not this site's: reload the login page", status_code=403,
                                     headers=HEADERS)
        if not hmac.compare_digest(_digest(form.get("token", "")), self._admin):
            log.info("dashboard login refused: not the admin token")
            return self._login_page(request, 403, refused=True)
        return self._logged_in(request, self.sessions.open(None, self.clock()))

    async def enter(self, request: Request) -> Response:
        """``GET /dashboard/enter/{token}``: the ``后台`` link; a session for its campaign, or 403."""
        try:
            campaign_id = self.sessions.campaign_of_link(request.path_params["token"], self.clock())
        except BadLink as refusal:
            log.info("dashboard link refused: %s", refusal)
            return self._login_page(request, 403, refused=True)
        return self._logged_in(request, self.sessions.open(campaign_id, self.clock()))

    async def logout(self, request: Request) -> Response:
        """``POST /dashboard/logout``: forget the session (403 without its CSRF token)."""
        session = self._session(request)
        form = await _form(request)
        if session is None:
            return self._to_login()
        if form is None or not self.sessions.csrf_ok(session, form.get("csrf")):
            return PlainTextResponse("the form is not this site's", status_code=403, headers=HEADERS)
        answer = self._to_login()
        answer.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="lax", secure=self._secure(request))
        return answer

    # --- pages --------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        """``GET /dashboard``: the campaigns the session sees; a coordinator goes straight to theirs."""
        session = self._session(request)
        if session is None:
            return self._to_login()

        def read() -> list[dict[str, object]]:
            with self.reads.connect() as conn:
                return reads.campaigns_seen(conn, session.campaign_id)

        campaigns = await run_in_threadpool(read)
        if session.campaign_id is not None and len(campaigns) == 1:
            return RedirectResponse(f"/dashboard/c/{quote(str(campaigns[0]['key']))}", status_code=303, headers=HEADERS)
        return self._page("dashboard_home", campaigns=campaigns, csrf=self.sessions.csrf(session))

    def _campaign_id(self, conn: sa.Connection, session: Session, key: str) -> int | None:
        """The campaign ``key`` names, if this session sees it."""
        campaign_id = reads.campaign_id_of(conn, key)
        return campaign_id if campaign_id is not None and session.sees(campaign_id) else None

    async def campaign(self, request: Request) -> Response:
        """``GET /dashboard/c/{key}?sort=…``: the campaign's page; 404 for one the session does not see."""
        session = self._session(request)
        if session is None:
            return self._to_login()
        sort = request.query_params.get("sort", "name")

        def read() -> reads.CampaignShown | None:
            with self.reads.connect() as conn:
                campaign_id = self._campaign_id(conn, session, request.path_params["key"])
                return None if campaign_id is None else reads.campaign_shown(conn, campaign_id, self.clock(), sort)

        shown = await run_in_threadpool(read)
        if shown is None:
            return PlainTextResponse("no such campaign", status_code=404, headers=HEADERS)
        return self._page("dashboard_campaign", c=shown, chart=totals_chart(shown.totals), sort=sort,
                          sorts=SORT_NAMES, statuses=STATUS_NAMES, csrf=self.sessions.csrf(session),
                          many=session.campaign_id is None)

    async def unit(self, request: Request) -> Response:
        """``GET /dashboard/c/{key}/units/{unit_id}``: a unit's answers and reports; 404 for a unit
        of a campaign the session does not see."""
        session = self._session(request)
        if session is None:
            return self._to_login()
        key = request.path_params["key"]

        def read() -> reads.UnitShown | None:
            with self.reads.connect() as conn:
                campaign_id = self._campaign_id(conn, session, key)
                if campaign_id is None:
                    return None
                try:
                    return reads.unit_shown(conn, campaign_id, request.path_params["unit_id"], self.clock())
                except LookupError:
                    return None

        shown = await run_in_threadpool(read)
        if shown is None:
            return PlainTextResponse("no such unit", status_code=404, headers=HEADERS)
        return self._page("dashboard_unit", u=shown, key=key, statuses=STATUS_NAMES, csrf=self.sessions.csrf(session))

    async def export(self, request: Request) -> Response:
        """``GET /dashboard/c/{key}/export.xlsx``: the campaign's Excel file, as 导出's link gives it."""
        session = self._session(request)
        if session is None:
            return self._to_login()
        key = request.path_params["key"]

        def write() -> bytes | None:
            target = io.BytesIO()
            with self.reads.connect() as conn:
                campaign_id = self._campaign_id(conn, session, key)
                if campaign_id is None:
                    return None
                export_campaign(conn, campaign_id, self.clock(), target)
            return target.getvalue()

        content = await run_in_threadpool(write)
        if content is None:
            return PlainTextResponse("no such campaign", status_code=404, headers=HEADERS)
        return Response(content, media_type=MEDIA_TYPE, headers={
            "Content-Disposition": f'attachment; filename="{key}.xlsx"', "Cache-Control": "private, no-store"})

    async def picture(self, request: Request) -> Response:
        """``GET /dashboard/pictures/{media_id}``: a report's stored picture; 401 without a session,
        404 for one not in a campaign the session sees."""
        session = self._session(request)
        if session is None:
            return PlainTextResponse("log in at /dashboard/login", status_code=401, headers=HEADERS)

        def read() -> reads.Picture | None:
            with self.reads.connect() as conn:
                return reads.picture(conn, request.path_params["media_id"])

        found = await run_in_threadpool(read)
        root = self.media_dir.resolve()
        path = (root / found.path).resolve() if found is not None else None
        # The stored path is the fetcher's own, but a file outside MEDIA_DIR is never served.
        if found is None or path is None or not session.sees(found.campaign_id) or not path.is_relative_to(root) \
                or not path.is_file():
            return PlainTextResponse("no such picture", status_code=404, headers=HEADERS)
        return FileResponse(path, media_type=found.content_type, headers={
            "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'"})


async def _form(request: Request) -> dict[str, str] | None:
    """A posted ``application/x-www-form-urlencoded`` form's fields (the first value of each); None
    when the body is not such a form or is over ``FORM_BYTES``."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return None
    return {name: values[0] for name, values in fields.items()}
