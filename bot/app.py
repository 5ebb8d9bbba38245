"""The ASGI app: one visible route table (``/wechat``, ``/healthz``), served by uvicorn.

All protocol work is in :mod:`bot.wechat.gateway`; this module only reads requests (with a size limit)
and writes responses, as WeRoBot's framework adapters do for its robot.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
from datetime import datetime
from typing import Any, AsyncIterator, Callable

import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import handlers
from bot.config import Settings
from bot.store.engine import make_engine, ping, read_engine
from bot.store.sqlite_writer import Checkpointer
from bot.handling import Dispatch
from bot.wechat.gateway import Answer, Gateway
from bot.outbound.media import MediaFetcher
from bot.outbound.outbox import Outbox
from bot.store.models import utcnow
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
from handlers.report_changes import AddReportItem
from handlers.template_job import TemplateJobFinished

log = logging.getLogger("safetybot.app")


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
    }


class BodyTooLarge(Exception):
    """The request body is over ``settings.max_body_bytes``."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (without reading on) anything over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
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

    def __init__(self, gateway: Gateway, reads: sa.Engine, max_body_bytes: int):
        self.gateway = gateway
        self.reads = reads
        self.max_body_bytes = max_body_bytes

    async def wechat(self, request: Request) -> Response:
        """``GET``: the console's URL check; ``POST``: a message or event."""
        query = request.query_params
        if request.method == "GET":
            return _response(self.gateway.verify_url(query))
        try:
            body = await read_body(request, self.max_body_bytes)
        except BodyTooLarge:
            log.warning("callback refused (413): body over %d bytes", self.max_body_bytes)
            return PlainTextResponse("payload too large", status_code=413)
        return _response(await self.gateway.receive(query, body))

    async def healthz(self, request: Request) -> Response:
        """Whether the database answers (read-only: a busy SQLite writer does not hold it up)."""
        database = await run_in_threadpool(ping, self.reads)
        return JSONResponse({"database": "ok" if database else "unreachable"}, status_code=200 if database else 503)


def _response(answer: Answer) -> Response:
    background = BackgroundTask(answer.later) if answer.later is not None else None
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type, background=background)


def _outbound_client(settings: Settings, engine: sa.Engine) -> Any:
    from bot.wechat.token_store import build_token_store
    from bot.wechat.client import WeChatAPI

    return WeChatAPI(settings, build_token_store(settings, engine))


def create_app(settings: Settings, *, engine: sa.Engine | None = None, wechat: Any = None, texts: Texts | None = None,
               clock: Callable[[], datetime] | None = None, dispatch: Dispatch = handlers.dispatch) -> Starlette:
    """The bot's ASGI app. Anything not passed in is built from ``settings``."""
    texts = texts or Texts()
    texts.check(handlers.TEMPLATES)
    lacking = settings.features.off()
    if lacking:
        log.info("account kind %s lacks: %s", settings.wechat_account_kind.value, ", ".join(lacking))
    own_engine = engine is None
    engine = engine or make_engine(settings.database_url)
    outbound = wechat or _outbound_client(settings, engine)
    # One engine for every read-only pass in this process: on SQLite it never waits for the writer.
    reads = read_engine(engine)
    # The handlers' routing table decides; the writers' table writes what it decided.
    gateway = Gateway(settings, engine=engine, reads=reads, texts=texts, wechat=outbound, dispatch=dispatch,
                      writers=change_writers(), clock=clock or utcnow)
    endpoints = Endpoints(gateway, reads, settings.max_body_bytes)
    # Every process fetches report media; bot.outbound.media makes sure each file is fetched by one of them.
    fetcher = MediaFetcher(engine, reads, outbound, settings.media_dir, clock or utcnow)
    # Notes to staff and to people staff decided about, sent as soon as their handling commits.
    outbox = Outbox(engine, reads, outbound, clock or utcnow)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("safetybot listening; %s mode", "safe (AES)" if settings.safe_mode else "plaintext")
        with Checkpointer(engine).running(), fetcher.running(), outbox.running():
            yield
        gateway.close()
        if reads is not engine:
            reads.dispose()
        if own_engine:
            engine.dispose()

    routes = [
        Route("/wechat", endpoints.wechat, methods=["GET", "POST"]),
        Route("/healthz", endpoints.healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _serve_on(settings: Settings, listener: socket.socket) -> None:
    config = uvicorn.Config(create_app(settings), log_level=settings.log_level.lower(), access_log=False)
    # Everything built so far (modules, tables, templates) lives as long as the process: out of the
    # garbage collector's sight, its oldest-generation passes take microseconds instead of stalling
    # every request for ~100 ms a few times a minute under load.
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run(sockets=[listener])


def serve(settings: Settings) -> None:
    """Run the bot with uvicorn on ``settings.host``:``settings.port``, in ``settings.web_workers``
    processes that share one listening socket (forked after it is bound, as gunicorn does).

    With several workers this process only supervises: it passes SIGTERM and SIGINT on to the
    workers and, when one of them ends, stops the others, so a service manager sees one unit.
    Each worker builds its own app, engine and clients after the fork; retries, per-person order
    and the access token hold across workers through the database (or Redis).
    """
    listener = socket.create_server((settings.host, settings.port), backlog=2048)
    if settings.web_workers == 1:
        _serve_on(settings, listener)
        return
    workers = [_fork_worker(settings, listener) for _ in range(settings.web_workers)]
    listener.close()

    def pass_on(signum: int, _frame: object) -> None:
        _signal_all(workers, signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    os.wait()
    _signal_all(workers, signal.SIGTERM)
    for pid in workers:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _fork_worker(settings: Settings, listener: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            _serve_on(settings, listener)
        finally:
            os._exit(0)
    return pid


def _signal_all(workers: list[int], signum: int) -> None:
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
