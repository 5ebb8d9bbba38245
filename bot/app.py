"""The ASGI app and the web role: one visible route table (``/wechat``, ``/healthz``, ``/notice/…``,
``/api/...``), served by uvicorn in ``WEB_WORKERS`` processes.

All protocol work is in :mod:`bot.wechat.gateway`; this module only reads requests (with a size limit)
and writes responses, as WeRoBot's framework adapters do for its robot. The admin API's endpoints
and its guard are in :mod:`bot.admin`, the pages the bot's links open in :mod:`bot.pages`; what the
bot sends on its own (reminders, notes, announcements, media) is the worker role, :mod:`bot.worker`,
run inside the web process only when the settings say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from datetime import datetime
from typing import Any, AsyncIterator, Callable

import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

import handlers
from bot.admin import AdminAPI, BearerToken
from bot.dashboard.pages import TEMPLATES as DASHBOARD_TEMPLATES, Dashboard
from bot.dashboard.sessions import Sessions, dashboard_key
from bot.config import ConfigError, Settings, configure_logging, load_shared_settings, share_with_subprocesses
from bot.demo_clock import DemoClock, DemoClockControl, refuse_demo_clock
from bot.downloads import Downloads, TEMPLATES as DOWNLOAD_TEMPLATES
from bot.exports.links import ExportLinks
from bot.handling import Dispatch
from bot.store.engine import make_engine, ping, read_engine
from bot.store.sqlite_writer import Checkpointer
from bot.store.models import utcnow
from bot.outbound.announcements import write_announcement
from bot.pages import TEMPLATES as PAGE_TEMPLATES, Pages
from bot.outbound.delivery import write_template_job
from bot.outbound.outbox import write_person_note, write_staff_note
from bot.store import writers
from bot.store.reports import write_report_item
from bot.store.writers import Writers
from bot.texts import Texts
from handlers.changes import (
    AppointLiaison, BecomeStaff, ClaimUnit, DecideRequest, PersonNote, RenamePerson, RequestLiaison, SaveAnswers,
    StaffNote, SubmitForm,
)
from handlers.changes import SendAnnouncement
from handlers.changes import RedeemInvitation
from handlers.report_changes import AddReportItem
from handlers.template_job import TemplateJobFinished
from bot.wechat.client import wechat_api
from bot.wechat.gateway import Answer, Gateway
from bot.worker import Worker

log = logging.getLogger("safetybot.app")
# On SIGTERM a web worker stops taking connections and lets requests under way finish: WeChat waits
# 5 s for an answer, and a reply pushed after "success" needs a few seconds more.
GRACEFUL_SHUTDOWN_SECONDS = 10


def change_writers() -> Writers:
    """Every change type handlers may return, with its writer ``(conn, incoming, change, now)``, run
    inside the handling transaction (:func:`bot.store.writers.apply_changes`). A test checks that no
    change type is missing."""
    return {
        SaveAnswers: writers.write_answers,
        SubmitForm: writers.write_submit,
        ClaimUnit: writers.write_claim,
        RenamePerson: writers.write_rename,
        RequestLiaison: writers.write_request,
        DecideRequest: writers.write_decision,
        AppointLiaison: writers.write_appointment,
        BecomeStaff: writers.write_staff,
        AddReportItem: write_report_item,
        StaffNote: write_staff_note,
        PersonNote: write_person_note,
        TemplateJobFinished: write_template_job,
        SendAnnouncement: write_announcement,
        RedeemInvitation: writers.write_redemption,
    }


class BodyTooLarge(Exception):
    """The request body is over ``settings.max_body_bytes``."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (without reading on) anything over ``limit`` bytes.

    Raises :class:`BodyTooLarge`, or starlette's ``ClientDisconnect`` when the sender goes away."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks, size = [], 0
    # Content-Length can be absent (chunked) or lie, so count while reading too.
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


class Endpoints:
    """The HTTP side of the gateway and the health check."""

    def __init__(self, gateway: Gateway, reads: sa.Engine, max_body_bytes: int, body_seconds: float,
                 token_state: Callable[[], str], redis: bool):
        self.gateway = gateway
        self.reads = reads
        self.token_state = token_state
        self.redis = redis
        self.max_body_bytes = max_body_bytes
        self.body_seconds = body_seconds

    async def wechat(self, request: Request) -> Response:
        """``GET``: the console's URL check; ``POST``: a message or event.

        A POST's signature is checked before its body is read, and the body must arrive within
        ``body_seconds``: WeChat sends its few hundred bytes at once, so a slow or vanishing body is
        not WeChat's and is a logged line, not a traceback."""
        query = request.query_params
        if request.method == "GET":
            return _response(self.gateway.verify_url(query))
        refused = self.gateway.refusal(query)
        if refused is not None:
            return _response(refused)
        try:
            body = await asyncio.wait_for(read_body(request, self.max_body_bytes), self.body_seconds)
        except BodyTooLarge:
            log.warning("callback refused (413): body over %d bytes", self.max_body_bytes)
            return PlainTextResponse("payload too large", status_code=413)
        except TimeoutError:
            log.warning("callback refused (408): body not received within %.1fs", self.body_seconds)
            return PlainTextResponse("request timeout", status_code=408)
        except ClientDisconnect:
            log.warning("callback dropped: the sender disconnected while its body was read")
            return PlainTextResponse("bad request", status_code=400)
        return _response(await self.gateway.receive(query, body))

    async def healthz(self, request: Request) -> Response:
        """Whether the database answers (read-only: a busy SQLite writer does not hold it up), Redis
        too where ``REDIS_URL`` keeps the access token there, and the token's state
        (:meth:`bot.wechat.token_store.SharedAccessToken.state`). 503 when the database or Redis
        is down: replies can no longer be stored, or nothing can be sent."""
        database = await run_in_threadpool(ping, self.reads)
        token = await run_in_threadpool(self.token_state)
        health = {"database": "ok" if database else "unreachable"}
        if self.redis:
            health["redis"] = "unreachable" if token == "unreadable" else "ok"
        health["access_token"] = token
        healthy = database and "unreachable" not in health.values()
        return JSONResponse(health, status_code=200 if healthy else 503)


def _response(answer: Answer) -> Response:
    background = BackgroundTask(answer.later) if answer.later is not None else None
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type, background=background)


def _admin_token(settings: Settings) -> str:
    if settings.admin_token is None:
        raise ConfigError("ADMIN_TOKEN", "is missing; the admin API (/api) that serve and demo answer needs it "
                                         "(see config.example.env)")
    return settings.admin_token


def create_app(settings: Settings, *, engine: sa.Engine | None = None, wechat: Any = None, texts: Texts | None = None,
               clock: Callable[[], datetime] | None = None, dispatch: Dispatch = handlers.dispatch,
               demo: DemoClock | None = None) -> Starlette:
    """The bot's ASGI app. Anything not passed in is built from ``settings``.

    With ``demo`` (``safetybot demo`` and tests) every part keeps that clock, the worker role runs
    here whatever ``RUN_WORKER`` says (no other process shares the clock) and ``/demo/clock`` moves
    it; without, ``DEMO_CLOCK_START`` is refused (:func:`bot.demo_clock.refuse_demo_clock`).

    Its lifespan checkpoints SQLite's write-ahead log (part of the write path every web process
    shares) and, when :attr:`Settings.web_runs_worker`, runs the worker role (:class:`bot.worker.Worker`)
    in this process too. Raises :class:`ConfigError` without ``ADMIN_TOKEN``, and :class:`LookupError`
    when ``messages/`` lacks a template a route needs.
    """
    admin_token = _admin_token(settings)
    if demo is None:
        refuse_demo_clock(settings, "serve")
    else:
        clock = demo.now
    texts = texts or Texts()
    texts.check(handlers.TEMPLATES)
    texts.check(DOWNLOAD_TEMPLATES)
    lacking = settings.features.off()
    if lacking:
        log.info("account kind %s lacks: %s", settings.wechat_account_kind.value, ", ".join(lacking))
    own_engine = engine is None
    engine = engine or make_engine(settings.database_url)
    # On a demo clock the access token's lifetime is counted as the fake WeChat counts it.
    outbound = wechat or wechat_api(settings, engine, clock=demo.now if demo else utcnow)
    # One engine for every read-only pass in this process: on SQLite it never waits for the writer.
    reads = read_engine(engine)
    # The handlers' routing table decides; the writers' table writes what it decided.
    gateway = Gateway(settings, engine=engine, reads=reads, texts=texts, wechat=outbound, dispatch=dispatch,
                      writers=change_writers(), clock=clock or utcnow)
    # A body still arriving when the reply budget is spent could not be answered in time anyway.
    endpoints = Endpoints(gateway, reads, settings.max_body_bytes, settings.reply_budget_seconds,
                          outbound.token_state, redis=settings.redis_url is not None)
    texts.check(PAGE_TEMPLATES)
    pages = Pages(reads, texts, settings.link_key, clock or utcnow)
    admin = AdminAPI(reads, clock or utcnow)
    downloads = Downloads(reads, ExportLinks.of(settings), texts, clock or utcnow)
    texts.check(DASHBOARD_TEMPLATES)
    dashboard = Dashboard(reads, texts, Sessions(dashboard_key(settings.link_key)), admin_token, settings.media_dir,
                          settings.page_base, clock or utcnow)
    worker = (Worker(settings, engine, reads, outbound, texts, clock or utcnow, demo=demo)
              if settings.web_runs_worker or demo is not None else None)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("safetybot listening; %s mode; %s", "safe (AES)" if settings.safe_mode else "plaintext",
                 "the worker role runs here too" if worker else "web only (`safetybot worker` sends the rest)")
        with Checkpointer(engine).running(), worker.running() if worker else contextlib.nullcontext():
            yield
        gateway.close()
        if wechat is None:
            outbound.close()
        if reads is not engine:
            reads.dispose()
        if own_engine:
            engine.dispose()

    routes = [
        Route("/wechat", endpoints.wechat, methods=["GET", "POST"]),
        # People paste the URL into WeChat's console with a trailing slash, and WeChat follows no redirect.
        Route("/wechat/", endpoints.wechat, methods=["GET", "POST"]),
        Route("/healthz", endpoints.healthz, methods=["GET"]),
        Route("/notice/{token}", pages.notice, methods=["GET"]),
        Route("/files/export/{token}.xlsx", downloads.export, methods=["GET"]),
        Mount("/api", middleware=[Middleware(BearerToken, token=admin_token)], routes=[
            Route("/campaigns", admin.campaigns, methods=["GET"]),
            Route("/campaigns/{key}/totals", admin.totals, methods=["GET"]),
            Route("/campaigns/{key}/export.xlsx", admin.export, methods=["GET"]),
        ]),
        *dashboard.routes(),
    ]
    if demo is not None and worker is not None:
        routes += DemoClockControl(demo, worker.demo_scheduler()).routes()
    return Starlette(routes=routes, lifespan=lifespan)


def _frozen(app: Starlette) -> Starlette:
    # Everything built so far (modules, tables, templates) lives as long as the process: out of the
    # garbage collector's sight, its oldest-generation passes take microseconds instead of stalling
    # every request for ~100 ms a few times a minute under load.
    gc.collect()
    gc.freeze()
    return app


def web_worker_app() -> Starlette:
    """The app factory uvicorn calls in each web worker it starts (``uvicorn --factory
    bot.app:web_worker_app`` works too): the settings the parent read, logging set up by them."""
    settings = load_shared_settings()
    configure_logging(settings)
    return _frozen(create_app(settings))


def serve(settings: Settings, env_file: str | os.PathLike[str] | None = ".env") -> None:
    """The web role: uvicorn on ``settings.host``:``settings.port`` until SIGTERM or SIGINT.

    With one web worker the app runs in this process. With several, this process is uvicorn's
    supervisor (``uvicorn.run(..., workers=N)``): it binds the socket, starts each worker as a fresh
    interpreter that builds its own app, engine and clients from ``env_file`` and the environment
    (:func:`web_worker_app`), replaces a worker that dies, and on SIGTERM stops them all, each
    finishing the requests under way for up to ``GRACEFUL_SHUTDOWN_SECONDS``. Retries, per-person
    order and the access token hold across workers through the database (or Redis).
    """
    _admin_token(settings)  # refused here, once, rather than by each worker as it starts
    refuse_demo_clock(settings, "serve")
    options: dict[str, Any] = dict(host=settings.host, port=settings.port, backlog=2048, access_log=False,
                                   log_level=settings.log_level.lower(),
                                   timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)
    if settings.web_workers == 1:
        uvicorn.run(_frozen(create_app(settings)), **options)
        return
    share_with_subprocesses(env_file)
    uvicorn.run(f"{__name__}:web_worker_app", factory=True, workers=settings.web_workers, **options)
