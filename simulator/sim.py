"""``/sim``: a phone-sized page that plays a WeChat conversation with the official account, for the
demo (``safetybot demo``) only.

Pick a persona (each a fixed demo openid), type, tap the account's menu (read from the fake WeChat,
where the demo created :data:`bot.menu.MENU`) or send a picture: the server side turns each into
the message WeChat would post, signed (and encrypted in safe mode) by
:class:`simulator.wechat_side.WeChatSide`, through the served bot's real ``/wechat``. The persona's
conversation is their messages, the bot's passive replies and everything the fake WeChat delivered
to them (customer-service texts and pictures, template messages with their link), in order.

Routes, all JSON but the page and the pictures:

- ``GET /sim``: the page (``simulator/templates/sim.html.j2``), its one small inline script polling
  ``/sim/feed``; the demo clock is moved by ``/demo/clock`` of the same app;
- ``POST /sim/send`` with ``{"persona", "text"}``, ``{"persona", "click": KEY}`` or
  ``{"persona", "picture": "data:image/png;base64,…"}``: answers ``{"reply": entry or null}``;
  415 unless JSON (a page of another site can post a form here, but not JSON without asking),
  400 for a malformed body, 404 for an unknown persona;
- ``GET /sim/feed?persona=…&since=N``: ``{"entries": [...], "next": M}``, entries from the Nth;
- ``GET /sim/media/{media_id}``: a picture the fake WeChat hosts.

An entry is ``{"from": "me"|"bot"|"note", "kind": "text"|"image"|"template"|"note", "at", ...}``
with ``text``, ``src`` (a picture's URL) or ``fields`` (``[[name, value], ...]``) and ``url``.

The app exists only beside a demo clock (:func:`with_simulator` takes one): production has no
``/sim`` (a test proves it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from functools import partial
from typing import Any, AsyncIterator, Callable, Sequence

import httpx
import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from bot.config import Settings
from bot.demo_clock import DemoClock
from simulator.fake_wechat import FakeWeChat, Push, WeChatError
from simulator.wechat_side import Reply, WeChatSide

# What WeChat lets a person send as a picture: its temporary-media image types, up to 2 MB (wechat-rules A7).
PICTURE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})
PICTURE_BYTES = 2 * 1024 * 1024
# A picture as a data URL is a third larger than the picture; text and clicks are small.
BODY_BYTES = PICTURE_BYTES * 4 // 3 + 1024
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Persona:
    """Someone to play: ``key`` names them in the page's requests, ``openid`` is theirs on WeChat,
    ``hint`` says what to try first (a code to send, for instance)."""

    key: str
    label: str
    openid: str
    hint: str


class BadRequest(Exception):
    """A malformed ``/sim`` request (HTTP 400, or ``status``), with what was wrong."""

    def __init__(self, problem: str, status: int = 400):
        super().__init__(problem)
        self.status = status


class Simulator:
    """The ``/sim`` routes for ``personas``, talking to the bot served at ``bot_url`` as WeChat
    would (``settings``' token, app id and AES key) and reading what ``fake`` delivered. Each
    persona's conversation is kept in memory for as long as the demo runs. Call :meth:`close` when done."""

    def __init__(self, settings: Settings, fake: FakeWeChat, clock: DemoClock, personas: Sequence[Persona],
                 bot_url: str):
        if not personas:
            raise ValueError("the simulator needs at least one persona")
        self.fake = fake
        self.clock = clock
        self.personas = {persona.key: persona for persona in personas}
        self._client = httpx.Client(base_url=bot_url, timeout=30)
        self._side = WeChatSide(self._client, token=settings.wechat_token, app_id=settings.wechat_app_id,
                                aes_key=settings.wechat_encoding_aes_key, clock=lambda: clock.now().timestamp())
        self._lock = threading.Lock()
        self._entries: dict[str, list[dict[str, Any]]] = {key: [] for key in self.personas}
        self._next_push: dict[str, int] = {key: 0 for key in self.personas}
        self._pages = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                         undefined=jinja2.StrictUndefined)

    def close(self) -> None:
        """Close the HTTP client that talks to the bot."""
        self._client.close()

    def routes(self) -> list[Route]:
        """The ``/sim`` routes (see the module)."""
        return [
            Route("/sim", self.page, methods=["GET"]),
            Route("/sim/send", self.send, methods=["POST"]),
            Route("/sim/feed", self.feed, methods=["GET"]),
            Route("/sim/media/{media_id}", self.media, methods=["GET"]),
        ]

    # --- the page --------------------------------------------------------------------------------

    def menu(self) -> list[dict[str, Any]]:
        """The account's menu as the fake WeChat holds it (``[{"name", "sub_button": [...]}]``), or
        none before one was created."""
        try:
            return list(self.fake.get_menu()["menu"]["button"])
        except WeChatError:
            return []

    async def page(self, request: Request) -> Response:
        """``GET /sim``: the conversation page, on ``?persona=`` (else the first persona)."""
        chosen = request.query_params.get("persona", "")
        current = self.personas.get(chosen) or next(iter(self.personas.values()))
        # The one inline script runs by its nonce; nothing else may load, frame or post the page.
        nonce = secrets.token_urlsafe(16)
        html = self._pages.get_template("sim.html.j2").render(
            personas=list(self.personas.values()), current=current, menu=self.menu(), nonce=nonce,
            now=self.clock.now().isoformat())
        policy = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src 'self'; "
                  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        return HTMLResponse(html, headers={"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
                                           "Cache-Control": "no-store"})

    # --- sending ---------------------------------------------------------------------------------

    async def send(self, request: Request) -> Response:
        """``POST /sim/send`` (see the module)."""
        try:
            body = await _json_body(request)
            persona = self._persona(body.get("persona"))
            reply = await run_in_threadpool(self._send, persona, body)
        except BadRequest as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        except httpx.HTTPError as error:
            return JSONResponse({"error": f"the bot did not answer: {error}"}, status_code=502)
        return JSONResponse({"reply": reply})

    def _persona(self, key: Any) -> Persona:
        persona = self.personas.get(key) if isinstance(key, str) else None
        if persona is None:
            raise BadRequest(f"no persona {key!r}; one of {sorted(self.personas)}", 404)
        return persona

    def _send(self, persona: Persona, body: dict[str, Any]) -> dict[str, Any] | None:
        openid = persona.openid
        if isinstance(body.get("text"), str) and body["text"].strip():
            mine = {"from": "me", "kind": "text", "text": body["text"]}
            # As WeChat does, a message opens the person's 48-hour customer-service window first.
            self.fake.user_wrote(openid)
            deliver: Callable[[], Reply] = partial(self._side.text, openid, body["text"])
        elif isinstance(body.get("click"), str) and body["click"]:
            name = self._button_name(body["click"])
            mine = {"from": "note", "kind": "note", "text": f"点击菜单「{name}」"}
            self.fake.user_interacted(openid, "click")
            deliver = partial(self._side.event, openid, "CLICK", body["click"])
        elif isinstance(body.get("picture"), str):
            content, content_type = _picture(body["picture"])
            media_id = self.fake.add_user_media("image", content, content_type)
            mine = {"from": "me", "kind": "image", "src": f"/sim/media/{media_id}"}
            self.fake.user_wrote(openid)
            deliver = partial(self._side.image, openid, media_id)
        else:
            raise BadRequest("give text, click (a menu key) or picture (a data: URL)")
        with self._lock:
            self._take_pushes(persona)
            self._add(persona, mine)
        reply = _reply_entry(deliver())
        if reply is not None:
            with self._lock:
                self._add(persona, reply)
        return reply

    def _button_name(self, key: str) -> str:
        buttons = [sub for top in self.menu() for sub in (top.get("sub_button") or [top])]
        name = next((button["name"] for button in buttons if button.get("key") == key), None)
        if name is None:
            raise BadRequest(f"the menu has no button {key!r}")
        return str(name)

    # --- the conversation ------------------------------------------------------------------------

    async def feed(self, request: Request) -> Response:
        """``GET /sim/feed?persona=…&since=N`` (see the module)."""
        try:
            persona = self._persona(request.query_params.get("persona"))
            since = int(request.query_params.get("since", "0"))
        except BadRequest as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        except ValueError:
            return JSONResponse({"error": "since must be a whole number"}, status_code=400)
        with self._lock:
            self._take_pushes(persona)
            entries = self._entries[persona.key]
            return JSONResponse({"entries": entries[max(since, 0):], "next": len(entries)})

    def _add(self, persona: Persona, entry: dict[str, Any]) -> None:
        self._entries[persona.key].append({**entry, "at": self.clock.now().isoformat()})

    def _take_pushes(self, persona: Persona) -> None:
        # Called under the lock, before each message is added, so what was pushed earlier shows earlier.
        for push in self.fake.pushes(persona.openid):
            if push.index >= self._next_push[persona.key]:
                self._entries[persona.key].append({**_push_entry(push), "at": push.at.isoformat()})
                self._next_push[persona.key] = push.index + 1

    async def media(self, request: Request) -> Response:
        """``GET /sim/media/{media_id}``: the picture, or 404 (unknown or past its three days)."""
        try:
            media = self.fake.get_media(request.path_params["media_id"])
        except WeChatError:
            return Response(status_code=404)
        if media.content_type not in PICTURE_TYPES:
            return Response(status_code=404)
        return Response(media.content, media_type=media.content_type, headers={"X-Content-Type-Options": "nosniff"})


async def _json_body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BadRequest("send JSON (Content-Type: application/json)", 415)
    raw = await request.body()
    if len(raw) > BODY_BYTES:
        raise BadRequest(f"over {BODY_BYTES} bytes", 413)
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _picture(data_url: str) -> tuple[bytes, str]:
    """The bytes and type of a ``data:image/…;base64,…`` URL; BadRequest unless a picture WeChat takes."""
    header, _, encoded = data_url.partition(",")
    content_type = header.removeprefix("data:").removesuffix(";base64")
    if not header.startswith("data:") or not header.endswith(";base64") or content_type not in PICTURE_TYPES:
        raise BadRequest(f"a picture must be a base64 data: URL of {', '.join(sorted(PICTURE_TYPES))}")
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("the picture is not valid base64") from None
    if not content or len(content) > PICTURE_BYTES:
        raise BadRequest(f"a picture must be 1 byte to {PICTURE_BYTES // (1024 * 1024)} MB")
    return content, content_type


def _reply_entry(reply: Reply) -> dict[str, Any] | None:
    """What the phone shows of a passive reply: its text; nothing for ``success``; a note otherwise."""
    if reply.status_code != 200:
        return {"from": "note", "kind": "note", "text": f"[HTTP {reply.status_code}] {reply.body.strip()[:200]}"}
    if reply.fields is None:
        return None
    if reply.fields.get("MsgType") == "text":
        return {"from": "bot", "kind": "text", "text": reply.fields.get("Content", "")}
    return {"from": "note", "kind": "note", "text": f"[{reply.fields.get('MsgType', '?')}]"}


def _push_entry(push: Push) -> dict[str, Any]:
    """What the phone shows of a message the fake WeChat delivered."""
    payload = push.payload
    if push.channel == "template":
        fields = [[name, str((value or {}).get("value", ""))] for name, value in (payload.get("data") or {}).items()]
        return {"from": "bot", "kind": "template", "fields": fields, "url": payload.get("url") or None}
    if push.msgtype == "text":
        return {"from": "bot", "kind": "text", "text": str((payload.get("text") or {}).get("content", ""))}
    if push.msgtype == "image":
        return {"from": "bot", "kind": "image", "src": f"/sim/media/{(payload.get('image') or {}).get('media_id', '')}"}
    return {"from": "note", "kind": "note", "text": f"[客服消息 {push.msgtype}]"}


def with_simulator(bot: Starlette, simulator: Simulator) -> Starlette:
    """``bot`` (an app built with a demo clock) with ``/sim`` in front: the bot's lifespan runs as
    it would alone, and the simulator's client closes after it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with bot.router.lifespan_context(bot):
                yield
        finally:
            simulator.close()

    return Starlette(routes=[*simulator.routes(), Mount("", app=bot)], lifespan=lifespan)
