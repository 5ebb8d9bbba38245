"""The test and demo controls under ``/_fake/``, which WeChat does not have: the clock, what users
do, templates, user media, faults, latency, token expiry, the call log, the delivered messages,
the callback and its events. A malformed control request is HTTP 400 ``{"error": "..."}``, never
a WeChat answer.

Also ``/_fake/video/{media_id}``: the download URL a video's ``media/get`` answer names, which
needs no token, like WeChat's (temporary-media download page, ``/work/shared/wechat-rules.md`` A7,
B5). ``docs/fake-wechat.md`` lists every control beside its Python method.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.fake_wechat.account import FakeWeChat, Push, RecordedCall
from simulator.fake_wechat.callbacks import Callback
from simulator.fake_wechat.errors import WeChatError


class ControlError(Exception):
    """A malformed control request (HTTP 400); not a WeChat answer."""


async def _control_json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ControlError("body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError("body must be a JSON object")
    return body


def _call_json(call: RecordedCall) -> dict[str, Any]:
    return {**asdict(call), "at": call.at.isoformat()}


def _push_json(push: Push) -> dict[str, Any]:
    return {**asdict(push), "at": push.at.isoformat()}


USER_EVENTS: dict[str, Callable[[FakeWeChat, str], None]] = {
    "message": FakeWeChat.user_wrote,
    "click": lambda fake, openid: fake.user_interacted(openid, "click"),
    "subscribe": lambda fake, openid: fake.user_interacted(openid, "subscribe"),
    "scan": lambda fake, openid: fake.user_interacted(openid, "scan"),
    "unsubscribe": FakeWeChat.unfollow,
}


def control_routes(fake: FakeWeChat) -> list[Route]:
    """The ``/_fake/`` routes that drive ``fake``; each answers JSON, HTTP 400 when malformed."""

    async def clock(request: Request) -> dict[str, Any]:
        if request.method == "POST":
            body = await _control_json(request)
            if "advance_seconds" in body:
                fake.advance(float(body["advance_seconds"]))
            elif "now" in body:
                fake.set_time(datetime.fromisoformat(str(body["now"])))
            else:
                raise ControlError("give advance_seconds or now")
        return {"now": fake.now().isoformat()}

    async def user_event(request: Request) -> dict[str, Any]:
        kind = (await _control_json(request)).get("kind")
        action = USER_EVENTS.get(kind) if isinstance(kind, str) else None
        if action is None:
            raise ControlError(f"kind must be one of {sorted(USER_EVENTS)}")
        action(fake, request.path_params["openid"])
        return {"ok": True}

    async def templates(request: Request) -> dict[str, Any]:
        body = await _control_json(request)
        fake.add_template(str(body.get("template_id", "")), dict(body.get("fields") or {}))
        return {"ok": True}

    async def media(request: Request) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "application/octet-stream")
        return {"media_id": fake.add_user_media(request.query_params.get("type", ""), await request.body(), content_type)}

    async def faults(request: Request) -> dict[str, Any]:
        body = await _control_json(request)
        fake.fail_next(str(body["path"]), int(body["errcode"]), int(body.get("times", 1)))
        return {"ok": True}

    async def latency(request: Request) -> dict[str, Any]:
        fake.set_latency(float((await _control_json(request)).get("seconds", 0)))
        return {"ok": True}

    async def expire(request: Request) -> dict[str, Any]:
        fake.expire_tokens()
        return {"ok": True}

    async def calls(request: Request) -> dict[str, Any]:
        path = request.query_params.get("path")
        return {"calls": [_call_json(c) for c in fake.calls if path is None or c.path == path]}

    async def pushes(request: Request) -> dict[str, Any]:
        since = int(request.query_params.get("since", 0))
        found = [p for p in fake.pushes(request.query_params.get("openid")) if p.index >= since]
        return {"pushes": [_push_json(p) for p in found], "next": len(fake.pushes())}

    async def callback(request: Request) -> dict[str, Any]:
        if request.method == "POST":
            body = await _control_json(request)
            url = body.get("url")
            if url is None:
                fake.set_callback(None)
            elif not isinstance(url, str) or not url.startswith(("http://", "https://")) or not body.get("token"):
                raise ControlError("give url (http or https) and token, and aes_key in safe mode; or url null to stop")
            else:
                fake.set_callback(Callback(url, str(body["token"]), body.get("aes_key") or None))
        current = fake.callback
        return {"url": current.url if current else None, "encrypted": bool(current and current.aes_key),
                "events": [asdict(e) for e in fake.event_pushes()]}

    async def template_event(request: Request) -> dict[str, Any]:
        try:
            return fake.template_job_finish_event(int(request.path_params["msgid"]))
        except KeyError as error:
            raise ControlError(str(error)) from None

    def control(handler: Callable[[Request], Awaitable[dict[str, Any]]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(await handler(request))
            except (ControlError, ValueError, KeyError, TypeError) as error:
                return JSONResponse({"error": str(error)}, status_code=400)

        return endpoint

    return [
        Route("/_fake/clock", control(clock), methods=["GET", "POST"]),
        Route("/_fake/users/{openid}/events", control(user_event), methods=["POST"]),
        Route("/_fake/templates", control(templates), methods=["POST"]),
        Route("/_fake/media", control(media), methods=["POST"]),
        Route("/_fake/faults", control(faults), methods=["POST"]),
        Route("/_fake/latency", control(latency), methods=["POST"]),
        Route("/_fake/tokens/expire", control(expire), methods=["POST"]),
        Route("/_fake/calls", control(calls), methods=["GET"]),
        Route("/_fake/pushes", control(pushes), methods=["GET"]),
        Route("/_fake/template-events/{msgid:int}", control(template_event), methods=["GET"]),
        Route("/_fake/callback", control(callback), methods=["GET", "POST"]),
        Route("/_fake/video/{media_id}", _video_download(fake), methods=["GET"]),
    ]


def _video_download(fake: FakeWeChat) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        # The video_url needs no token, like WeChat's download URL; it dies with the media.
        try:
            media = fake.get_media(request.path_params["media_id"])
        except WeChatError:
            return Response(status_code=404)
        return Response(media.content, media_type=media.content_type)

    return endpoint
