"""The HTTP surface WeChat has: its API paths (:data:`API_ROUTES`), each answered as WeChat
answers (HTTP 200 and JSON, an ``errcode`` for every error, its ``errmsg`` ending in a ``rid``),
after the fake's faults, latency, method and access-token checks, and recorded in the call log.
A path WeChat would not serve the account answers 48001.

Follows WeChat's Global_Return_Code page for the error answers and the API pages of each path
(``/work/shared/wechat-rules.md`` A1, A2, A6, A7, A9); the rules themselves are
:class:`simulator.fake_wechat.account.FakeWeChat`'s.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.fake_wechat.account import FakeWeChat
from simulator.fake_wechat.errors import ERRMSG, WeChatError, rid
from simulator.fake_wechat.media import EXTENSIONS



@dataclass
class _Incoming:
    """What an API handler may read of a request."""

    query: dict[str, str]
    raw: bytes
    content_type: str
    base_url: str
    recorded_body: Any = field(init=False)

    def __post_init__(self) -> None:
        # Until the body is understood, the log keeps its text (or only the size of a form).
        if self.content_type.startswith("multipart/form-data"):
            self.recorded_body = {"multipart_bytes": len(self.raw)}
        else:
            self.recorded_body = self.raw.decode("utf-8", "replace") if self.raw else None

    def json(self) -> dict[str, Any]:
        """The JSON object body; 44002 when empty, 47001 when not a JSON object."""
        if not self.raw.strip():
            raise WeChatError(44002)
        try:
            body = json.loads(self.raw)
        except (UnicodeDecodeError, ValueError):
            raise WeChatError(47001) from None
        if not isinstance(body, dict):
            raise WeChatError(47001)
        self.recorded_body = body
        return body

    def upload(self, field_name: str) -> tuple[str, str, bytes] | None:
        """(filename, content type, bytes) of a multipart form file, or None."""
        if not self.content_type.startswith("multipart/form-data"):
            return None
        header = b"Content-Type: " + self.content_type.encode("latin-1") + b"\r\n\r\n"
        message = BytesParser(policy=policy.HTTP).parsebytes(header + self.raw)
        if not message.is_multipart():
            return None
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == field_name:
                content = part.get_payload(decode=True)
                found = (part.get_filename() or "", part.get_content_type(), content if isinstance(content, bytes) else b"")
                self.recorded_body = {field_name: {"filename": found[0], "content_type": found[1], "size": len(found[2])}}
                return found
        return None


Handler = Callable[[FakeWeChat, _Incoming], "dict[str, Any] | Response"]


def _wechat_json(payload: dict[str, Any]) -> Response:
    # WeChat answers UTF-8 JSON without escaping Chinese, always with HTTP 200.
    return Response(json.dumps(payload, ensure_ascii=False), media_type="application/json; encoding=utf-8")


def _api(fake: FakeWeChat, handler: Handler, method: str, needs_token: bool = True) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        # A request WeChat has received is handled even if the caller hangs up while waiting for
        # the answer, as a real server would: the body is read before the latency, not after.
        incoming = _Incoming(dict(request.query_params), await request.body(),
                             request.headers.get("content-type", ""), str(request.base_url).rstrip("/"))
        latency = fake.latency_now()
        if latency:
            await asyncio.sleep(latency)
        errcode, answer = _run(fake, handler, incoming, request.method, method, needs_token, request.url.path)
        fake.record(request.method, request.url.path, incoming.query, incoming.recorded_body, errcode)
        return answer

    return endpoint


def _run(fake: FakeWeChat, handler: Handler, incoming: _Incoming, actual_method: str, method: str,
         needs_token: bool, path: str) -> tuple[int, Response]:
    try:
        fault = fake.take_fault(path)
        if fault is not None:
            raise WeChatError(fault)
        if actual_method != method:
            raise WeChatError(43001 if method == "GET" else 43002)
        if needs_token:
            fake.check_access_token(incoming.query.get("access_token"))
        result = handler(fake, incoming)
    except WeChatError as error:
        return error.errcode, _wechat_json({"errcode": error.errcode, "errmsg": f"{error.errmsg} rid: {rid()}"})
    if isinstance(result, Response):
        return 0, result
    return int(result.get("errcode", 0)), _wechat_json(result)


def _media_response(fake: FakeWeChat, incoming: _Incoming) -> dict[str, Any] | Response:
    media_id = incoming.query.get("media_id")
    media = fake.get_media(media_id)
    if media.kind in ("video", "shortvideo"):
        # A7/B5: video is a JSON body with a second URL to download from.
        return {"video_url": f"{incoming.base_url}/_fake/video/{media_id}"}
    filename = f"{media_id}.{EXTENSIONS.get(media.content_type, 'bin')}"
    return Response(media.content, media_type=media.content_type,
                    headers={"Content-disposition": f'attachment; filename="{filename}"'})


API_ROUTES: list[tuple[str, str, Handler, bool]] = [
    ("/cgi-bin/token", "GET", lambda fake, i: fake.issue_token(i.query), False),
    ("/cgi-bin/stable_token", "POST", lambda fake, i: fake.issue_stable_token(i.json()), False),
    ("/cgi-bin/message/custom/send", "POST", lambda fake, i: fake.send_custom(i.json()), True),
    ("/cgi-bin/message/template/send", "POST", lambda fake, i: fake.send_template(i.json()), True),
    ("/cgi-bin/media/upload", "POST", lambda fake, i: fake.upload_media(i.query.get("type"), i.upload("media")), True),
    ("/cgi-bin/media/get", "GET", _media_response, True),
    ("/cgi-bin/menu/create", "POST", lambda fake, i: fake.create_menu(i.json()), True),
    ("/cgi-bin/menu/get", "GET", lambda fake, i: fake.get_menu(), True),
    ("/cgi-bin/menu/delete", "GET", lambda fake, i: fake.delete_menu(), True),
]


def _unknown_api(fake: FakeWeChat) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        # WeChat answers a path it does not serve as an API the account may not use.
        query = dict(request.query_params)
        fake.record(request.method, request.url.path, query, None, 48001)
        return _wechat_json({"errcode": 48001, "errmsg": f"{ERRMSG[48001]} rid: {rid()}"})

    return endpoint


def api_routes(fake: FakeWeChat) -> list[Route]:
    """WeChat's API paths served for ``fake``; a path answers any method, the wrong one 43001/43002."""
    return [Route(path, _api(fake, handler, method, needs_token), methods=["GET", "POST"])
            for path, method, handler, needs_token in API_ROUTES]


def unknown_api_route(fake: FakeWeChat) -> Route:
    """Every other path, to come last: the 48001 WeChat answers for an API the account may not use."""
    return Route("/{path:path}", _unknown_api(fake), methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
