"""A local WeChat API that keeps WeChat's rules and records every call.

The fake answers on WeChat's own paths with WeChat's own JSON: HTTP 200 and an ``errcode`` for
every API error, an ``errmsg`` ending in a ``rid`` like the real one (so nothing can match
messages exactly), tokens that are replaced, expire and run out, a 48-hour customer-service
window, category-template field rules, three-day temporary media and menu limits. Where the
documentation leaves a choice, the fake takes the stricter one. Each rule names its source in
``/work/shared/wechat-rules.md``; ``docs/fake-wechat.md`` lists them.

Like WeChat, the fake pushes a ``TEMPLATESENDJOBFINISH`` event to the bot's callback URL after
every template message it accepted (signed, and encrypted in safe mode, by
:class:`simulator.wechat_side.WeChatSide`), once a callback is configured.

Tests and demos drive the WeChat side (users writing, clicking, time passing) through
:class:`FakeWeChat` in Python or the ``/_fake/`` HTTP endpoints, which WeChat does not have.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from email import policy
from email.parser import BytesParser
from typing import Any, Awaitable, Callable, Literal
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.wechat_side import WeChatSide

# WeChat's daily quotas reset at midnight Beijing time.
QUOTA_ZONE = ZoneInfo("Asia/Shanghai")
TOKEN_LIFETIME = timedelta(seconds=7200)
# A6: a replaced /cgi-bin/token token and a renewed stable token stay valid 5 more minutes.
GRACE = timedelta(minutes=5)
TOKEN_DAILY_LIMIT = 2000
FORCE_REFRESH_DAILY_LIMIT = 20
FORCE_REFRESH_SPACING = timedelta(seconds=30)
# A1: a user message opens 5 messages in 48 h; a click, follow or scan opens 3 in 1 minute.
MESSAGE_WINDOW = timedelta(hours=48)
MESSAGE_QUOTA = 5
INTERACTION_WINDOW = timedelta(minutes=1)
INTERACTION_QUOTA = 3
MEDIA_LIFETIME = timedelta(days=3)
# A5: WeChat waits 5 s for the callback's answer, then tries again; 3 tries in all.
CALLBACK_TIMEOUT_SECONDS = 5.0
CALLBACK_TRIES = 3
# Events are pushed by a few threads at once, as WeChat's servers do not queue them one by one.
CALLBACK_PUSHERS = 4
REDACTED = "[redacted]"

# Global return codes with WeChat's English messages (Global_Return_Code; stable_token error table).
ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40005: "invalid file type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40010: "invalid voice size",
    40011: "invalid video size",
    40012: "invalid thumb size",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40037: "invalid template_id",
    40117: "invalid button media_id size",
    40118: "invalid sub button media_id size",
    40125: "invalid appsecret",
    40164: "invalid ip, not in whitelist",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41005: "media data missing",
    41006: "media_id missing",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    44001: "empty media data",
    44002: "empty post data",
    44003: "empty news data",
    44004: "empty content",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    46003: "menu no exist",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
}


class WeChatError(Exception):
    """An API answer with a non-zero errcode; the HTTP layer turns it into WeChat's JSON."""

    def __init__(self, errcode: int, errmsg: str | None = None):
        super().__init__(errcode, errmsg)
        self.errcode = errcode
        self.errmsg = errmsg if errmsg is not None else ERRMSG.get(errcode, "fake fault")


@dataclass(frozen=True)
class RecordedCall:
    """One API call as the fake saw it; the app secret is redacted from query and body."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    errcode: int
    at: datetime


@dataclass(frozen=True)
class Push:
    """A message WeChat accepted for delivery: a customer-service or a template message."""

    index: int
    openid: str
    channel: Literal["custom", "template"]
    msgtype: str
    payload: dict[str, Any]
    at: datetime
    msgid: int | None = None
    job_status: str | None = None


@dataclass(frozen=True)
class Callback:
    """Where the bot listens: the URL of its ``/wechat``, its token, and its EncodingAESKey in
    safe mode (None: plaintext)."""

    url: str
    token: str
    aes_key: str | None = None


@dataclass(frozen=True)
class EventPush:
    """An event the fake pushed to the callback: each try's outcome (the HTTP status, or the
    error when no answer came within the timeout) and whether the bot answered at all."""

    index: int
    openid: str
    event: str
    msgid: int
    status: str
    tries: tuple[str, ...] = ()
    answered: bool | None = None  # None while tries are still to come


@dataclass
class _Token:
    value: str
    kind: Literal["token", "stable"]
    expires_at: datetime
    invalid_after: datetime | None = None


@dataclass
class _User:
    following: bool = True
    message_at: datetime | None = None
    message_sent: int = 0
    interaction_at: datetime | None = None
    interaction_sent: int = 0


@dataclass(frozen=True)
class _Media:
    kind: str
    content: bytes
    content_type: str
    created_at: datetime


@dataclass
class _Quota:
    """Calls counted per Beijing calendar day."""

    day: date | None = None
    used: int = 0

    def take(self, today: date, limit: int) -> bool:
        """Count one call; False when today's limit is already reached."""
        if self.day != today:
            self.day, self.used = today, 0
        if self.used >= limit:
            return False
        self.used += 1
        return True


def _rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _new_token() -> str:
    # Real tokens are long opaque strings; A6 says to keep 512 characters for them.
    return secrets.token_urlsafe(102)


class FakeWeChat:
    """The state of one fake official account: clock, tokens, users, templates, media, menu, log.

    Every method is safe to call from any thread while the app serves requests.
    """

    def __init__(self, app_id: str, app_secret: str, start: datetime | None = None, *, original_id: str = "gh_fakeaccount01",
                 callback: Callback | None = None, callback_timeout: float = CALLBACK_TIMEOUT_SECONDS,
                 callback_tries: int = CALLBACK_TRIES):
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        self.app_id = app_id
        self.app_secret = app_secret
        self.original_id = original_id
        self.callback_timeout = callback_timeout
        self.callback_tries = callback_tries
        self._callback = callback
        self._pushers: ThreadPoolExecutor | None = None
        self._pusher_http: httpx.Client | None = None
        self._events: list[EventPush] = []
        self._closed = False
        self.template_job_status: dict[str, str] = {}
        self._lock = threading.RLock()
        self._now = (start or datetime.now(timezone.utc)).replace(microsecond=0)
        self._tokens: dict[str, _Token] = {}
        self._stable: _Token | None = None
        self._token_quota = _Quota()
        self._force_quota = _Quota()
        self._last_force: datetime | None = None
        self._users: dict[str, _User] = {}
        self._templates: dict[str, dict[str, str]] = {}
        self._media: dict[str, _Media] = {}
        self._menu: list[dict[str, Any]] | None = None
        self._faults: dict[str, deque[int]] = {}
        self._latency = 0.0
        self._calls: list[RecordedCall] = []
        self._pushes: list[Push] = []
        self._next_msgid = 10**18

    # -- clock --------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The fake's clock; it moves only when told to."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set_time(self, moment: datetime) -> datetime:
        """Put the clock at ``moment`` (aware, not earlier than now)."""
        if moment.tzinfo is None:
            raise ValueError("moment must be an aware datetime")
        with self._lock:
            if moment < self._now:
                raise ValueError("the clock only moves forward")
            self._now = moment
            return self._now

    def _today(self) -> date:
        return self._now.astimezone(QUOTA_ZONE).date()

    # -- users: the WeChat side tells the fake what users did ----------------------------------

    def user_wrote(self, openid: str) -> None:
        """The user sent a message: a new 48-hour window with a fresh count of 5 (A1)."""
        with self._lock:
            user = self._users.setdefault(openid, _User())
            user.following = True
            user.message_at, user.message_sent = self._now, 0

    def user_interacted(self, openid: str, kind: Literal["click", "subscribe", "scan"]) -> None:
        """A menu click, follow or scan: 3 messages within 1 minute, no 48-hour window (A1)."""
        if kind not in ("click", "subscribe", "scan"):
            raise ValueError(f"unknown interaction {kind!r}")
        with self._lock:
            user = self._users.setdefault(openid, _User())
            if kind == "subscribe":
                user.following = True
            user.interaction_at, user.interaction_sent = self._now, 0

    def follow(self, openid: str) -> None:
        """The user follows the account (without opening any window)."""
        with self._lock:
            self._users.setdefault(openid, _User()).following = True

    def unfollow(self, openid: str) -> None:
        """The user unfollowed: every window closes (45015 "or subscription is canceled")."""
        with self._lock:
            self._users[openid] = _User(following=False)

    # -- templates, media, faults, latency, tokens ----------------------------------------------

    def add_template(self, template_id: str, fields: dict[str, str]) -> None:
        """Make a category template usable: field name → type (``thing``, ``time``, ``const``…)."""
        unknown = {kind for kind in fields.values() if kind not in FIELD_RULES and kind != "const"}
        if unknown:
            raise ValueError(f"unknown template field types: {sorted(unknown)}")
        with self._lock:
            self._templates[template_id] = dict(fields)

    def add_user_media(self, kind: str, content: bytes, content_type: str) -> str:
        """Media a user sent (image, voice, video…), dated now; returns its media_id."""
        if kind not in MEDIA_KINDS:
            raise ValueError(f"unknown media kind {kind!r}")
        with self._lock:
            return self._store_media(kind, content, content_type)

    def _store_media(self, kind: str, content: bytes, content_type: str) -> str:
        media_id = secrets.token_urlsafe(48)
        self._media[media_id] = _Media(kind, content, content_type, self._now)
        return media_id

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """The next ``times`` calls to ``path`` answer ``errcode`` whatever they ask."""
        with self._lock:
            self._faults.setdefault(path, deque()).extend([errcode] * times)

    def clear_faults(self, path: str) -> None:
        """Drop the faults still waiting for ``path`` (e.g. a daily quota that has reset)."""
        with self._lock:
            self._faults.pop(path, None)

    def set_latency(self, seconds: float) -> None:
        """Delay every API answer by ``seconds`` (concurrent calls overlap, as on the network)."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001 from now on."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = min(token.expires_at, self._now)

    # -- what happened --------------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """Every API call so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def pushes(self, openid: str | None = None) -> list[Push]:
        """Messages WeChat accepted for delivery, in order; only ``openid``'s when given."""
        with self._lock:
            return [p for p in self._pushes if openid is None or p.openid == openid]

    def template_job_finish_event(self, msgid: int) -> dict[str, str]:
        """The fields of the TEMPLATESENDJOBFINISH event WeChat pushes after a template send (A2)."""
        with self._lock:
            push = next((p for p in self._pushes if p.msgid == msgid), None)
        if push is None or push.job_status is None:
            raise KeyError(f"no template message with msgid {msgid}")
        return {
            "ToUserName": self.original_id,
            "FromUserName": push.openid,
            "CreateTime": str(int(push.at.timestamp())),
            "MsgType": "event",
            "Event": "TEMPLATESENDJOBFINISH",
            "MsgID": str(msgid),
            "Status": push.job_status,
        }

    # -- events pushed to the bot's callback (A2, A5) --------------------------------------------

    def set_callback(self, callback: Callback | None) -> None:
        """Push later events to ``callback``; None stops pushing (events already queued still go)."""
        with self._lock:
            self._callback = callback

    @property
    def callback(self) -> Callback | None:
        """Where events are pushed, or None."""
        with self._lock:
            return self._callback

    def event_pushes(self, openid: str | None = None) -> list[EventPush]:
        """Events pushed to the callback so far, oldest first; only ``openid``'s when given."""
        with self._lock:
            return [e for e in self._events if openid is None or e.openid == openid]

    def wait_for_events(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was answered or gave up its tries; False on timeout."""
        deadline = time.monotonic() + timeout
        while any(e.answered is None for e in self.event_pushes()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        """Stop pushing: events not yet tried are dropped, tries under way end after this one."""
        with self._lock:
            self._closed = True
            pushers, self._pushers = self._pushers, None
            http, self._pusher_http = self._pusher_http, None
        if pushers is not None:
            pushers.shutdown(wait=False, cancel_futures=True)
        if http is not None:
            http.close()

    def _queue_template_event(self, push: Push) -> None:
        """Under the lock: the TEMPLATESENDJOBFINISH of an accepted template message, to be pushed."""
        if self._callback is None or self._closed or push.msgid is None or push.job_status is None:
            return
        event = EventPush(len(self._events), push.openid, "TEMPLATESENDJOBFINISH", push.msgid, push.job_status)
        self._events.append(event)
        if self._pushers is None or self._pusher_http is None:
            self._pushers = ThreadPoolExecutor(CALLBACK_PUSHERS, thread_name_prefix="fake-wechat-callback")
            # One client for all pushes: making one costs more than a push (its TLS context).
            self._pusher_http = httpx.Client()
        self._pushers.submit(self._push_event, event.index, self._callback, self._pusher_http)

    def _push_event(self, index: int, callback: Callback, client: httpx.Client) -> None:
        with self._lock:
            event = self._events[index]
        side = WeChatSide(client, token=callback.token, app_id=self.app_id, aes_key=callback.aes_key,
                          path=callback.url, account=self.original_id)
        # One XML for every try, signed (and encrypted) afresh each time, as WeChat does.
        plain_xml = side.event_xml(event.openid, event.event, MsgID=event.msgid, Status=event.status)
        for attempt in range(1, self.callback_tries + 1):
            started = time.monotonic()
            body, params = side.delivery(plain_xml)
            try:
                answer = client.post(callback.url, content=body.encode("utf-8"), params=params,
                                     headers={"Content-Type": "text/xml"}, timeout=self.callback_timeout)
                outcome, answered = str(answer.status_code), True
            except (httpx.HTTPError, RuntimeError) as error:
                # RuntimeError: the client was closed by close() while this push waited.
                outcome, answered = type(error).__name__, False
            last = answered or attempt == self.callback_tries
            with self._lock:
                event = replace(event, tries=event.tries + (outcome,), answered=answered if last else None)
                self._events[index] = event
                closed = self._closed
            if last or closed:
                return
            # A refused connection fails at once; WeChat's next try still comes after its timeout.
            time.sleep(max(0.0, self.callback_timeout - (time.monotonic() - started)))

    # -- access tokens (A6) ---------------------------------------------------------------------

    def _check_credentials(self, grant_type: Any, appid: Any, secret: Any) -> None:
        if grant_type != "client_credential":
            raise WeChatError(40002)
        if not appid:
            raise WeChatError(41002)
        if not secret:
            raise WeChatError(41004)
        if appid != self.app_id:
            raise WeChatError(40013)
        if secret != self.app_secret:
            raise WeChatError(40125)

    def _issue(self, kind: Literal["token", "stable"]) -> _Token:
        token = _Token(_new_token(), kind, self._now + TOKEN_LIFETIME)
        self._tokens[token.value] = token
        return token

    def _answer(self, token: _Token) -> dict[str, Any]:
        return {"access_token": token.value, "expires_in": int((token.expires_at - self._now).total_seconds())}

    def issue_token(self, query: dict[str, str]) -> dict[str, Any]:
        """``GET /cgi-bin/token``: a new token each call; the previous ones keep 5 minutes."""
        with self._lock:
            self._check_credentials(query.get("grant_type"), query.get("appid"), query.get("secret"))
            if not self._token_quota.take(self._today(), TOKEN_DAILY_LIMIT):
                raise WeChatError(45009)
            for old in self._tokens.values():
                if old.kind == "token" and old.invalid_after is None:
                    old.invalid_after = self._now + GRACE
            return self._answer(self._issue("token"))

    def issue_stable_token(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /cgi-bin/stable_token``: the same token while valid, renewed 5 minutes early."""
        with self._lock:
            self._check_credentials(body.get("grant_type"), body.get("appid"), body.get("secret"))
            if body.get("force_refresh") is True:
                return self._answer(self._force_refresh())
            current = self._stable
            if current is None or not self._usable(current) or current.expires_at - self._now <= GRACE:
                # The old token is not withdrawn: it runs out on its own within 5 minutes.
                self._stable = self._issue("stable")
            return self._answer(self._stable)

    def _force_refresh(self) -> _Token:
        if self._last_force is not None and self._now - self._last_force < FORCE_REFRESH_SPACING:
            raise WeChatError(45011)
        if not self._force_quota.take(self._today(), FORCE_REFRESH_DAILY_LIMIT):
            raise WeChatError(45009)
        self._last_force = self._now
        for old in self._tokens.values():
            if old.kind == "stable":
                old.invalid_after = self._now
        self._stable = self._issue("stable")
        return self._stable

    def _usable(self, token: _Token) -> bool:
        return (token.invalid_after is None or self._now < token.invalid_after) and self._now < token.expires_at

    def check_access_token(self, value: str | None) -> None:
        """41001 when missing, 40001 when unknown or replaced, 42001 when expired."""
        if not value:
            raise WeChatError(41001)
        with self._lock:
            token = self._tokens.get(value)
            if token is None or (token.invalid_after is not None and self._now >= token.invalid_after):
                raise WeChatError(40001)
            if self._now >= token.expires_at:
                raise WeChatError(42001)

    # -- customer-service messages (A1) ---------------------------------------------------------

    def send_custom(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /cgi-bin/message/custom/send``."""
        with self._lock:
            openid = body.get("touser")
            user = self._users.get(openid) if isinstance(openid, str) else None
            if user is None:
                raise WeChatError(40003)
            msgtype = body.get("msgtype")
            check = CUSTOM_CONTENT_CHECKS.get(msgtype) if isinstance(msgtype, str) else None
            if check is None:
                raise WeChatError(40008)
            check(self, body.get(msgtype))
            self._spend_window(user)
            self._record_push(openid, "custom", msgtype, body)
            return {"errcode": 0, "errmsg": "ok"}

    def _spend_window(self, user: _User) -> None:
        if not user.following:
            raise WeChatError(45015)
        message_open = user.message_at is not None and self._now - user.message_at < MESSAGE_WINDOW
        interaction_open = user.interaction_at is not None and self._now - user.interaction_at < INTERACTION_WINDOW
        if message_open and user.message_sent < MESSAGE_QUOTA:
            user.message_sent += 1
        elif interaction_open and user.interaction_sent < INTERACTION_QUOTA:
            user.interaction_sent += 1
        elif message_open or interaction_open:
            raise WeChatError(45047)
        else:
            raise WeChatError(45015)

    def _check_text(self, content: Any) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("content"), str) or not content["content"]:
            raise WeChatError(44004)

    def _check_media_ref(self, content: Any) -> None:
        media_id = content.get("media_id") if isinstance(content, dict) else None
        if not isinstance(media_id, str) or self._live_media(media_id) is None:
            raise WeChatError(40007)

    def _check_news(self, content: Any) -> None:
        articles = content.get("articles") if isinstance(content, dict) else None
        if not isinstance(articles, list) or not articles:
            raise WeChatError(44003)
        # Since 2018-10-12 a news message carries one article; more is 45008.
        if len(articles) > 1:
            raise WeChatError(45008)

    def _check_object(self, content: Any) -> None:
        if not isinstance(content, dict) or not content:
            raise WeChatError(47001)

    def _record_push(self, openid: str, channel: Literal["custom", "template"], msgtype: str,
                     payload: dict[str, Any], msgid: int | None = None, job_status: str | None = None) -> None:
        self._pushes.append(Push(len(self._pushes), openid, channel, msgtype, payload, self._now, msgid, job_status))

    # -- template messages (A2) -----------------------------------------------------------------

    def send_template(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /cgi-bin/message/template/send`` for category templates."""
        with self._lock:
            template_id = body.get("template_id")
            fields = self._templates.get(template_id) if isinstance(template_id, str) else None
            if fields is None:
                raise WeChatError(40037)
            openid = body.get("touser")
            user = self._users.get(openid) if isinstance(openid, str) else None
            if user is None:
                raise WeChatError(40003)
            if not user.following:
                raise WeChatError(43004)
            data = _template_data(fields, body.get("data"))
            msgid = self._next_msgid
            self._next_msgid += 1
            delivered = {**body, "data": data}
            status = self.template_job_status.get(openid, "success")
            self._record_push(openid, "template", "template", delivered, msgid, status)
            self._queue_template_event(self._pushes[-1])
            return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    # -- temporary media (A7) -------------------------------------------------------------------

    def upload_media(self, kind: str | None, upload: tuple[str, str, bytes] | None) -> dict[str, Any]:
        """``POST /cgi-bin/media/upload?type=``: format and size per type, kept 3 days."""
        rule = UPLOAD_RULES.get(kind or "")
        if kind is None or rule is None:
            raise WeChatError(40004)
        if upload is None:
            raise WeChatError(41005)
        filename, _, content = upload
        if not content:
            raise WeChatError(44001)
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if extension not in rule.extensions:
            raise WeChatError(40005)
        if len(content) > rule.max_bytes:
            raise WeChatError(rule.size_errcode)
        with self._lock:
            media_id = self._store_media(kind, content, rule.extensions[extension])
            created_at = int(self._now.timestamp())
        # Undocumented but observed: a thumb upload answers thumb_media_id instead of media_id.
        id_field = "thumb_media_id" if kind == "thumb" else "media_id"
        return {"type": kind, id_field: media_id, "created_at": created_at}

    def _live_media(self, media_id: str) -> _Media | None:
        media = self._media.get(media_id)
        if media is None or self._now - media.created_at >= MEDIA_LIFETIME:
            return None
        return media

    def get_media(self, media_id: str | None) -> _Media:
        """The media behind ``media_id``; 40007 when unknown or older than 3 days."""
        if not media_id:
            raise WeChatError(41006)
        with self._lock:
            media = self._live_media(media_id)
        if media is None:
            raise WeChatError(40007)
        return media

    # -- menus (A9) -----------------------------------------------------------------------------

    def create_menu(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /cgi-bin/menu/create``: 1–3 buttons, 1–5 subs each, byte limits per field."""
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise WeChatError(40016)
        stored = [_checked_top_button(button) for button in buttons]
        with self._lock:
            self._menu = stored
        return {"errcode": 0, "errmsg": "ok"}

    def get_menu(self) -> dict[str, Any]:
        """``GET /cgi-bin/menu/get``: the menu as created, 46003 when there is none."""
        with self._lock:
            if self._menu is None:
                raise WeChatError(46003)
            return {"menu": {"button": json.loads(json.dumps(self._menu))}}

    def delete_menu(self) -> dict[str, Any]:
        """``GET /cgi-bin/menu/delete``."""
        with self._lock:
            self._menu = None
        return {"errcode": 0, "errmsg": "ok"}

    # -- recording and faults -------------------------------------------------------------------

    def _take_fault(self, path: str) -> int | None:
        with self._lock:
            queue = self._faults.get(path)
            return queue.popleft() if queue else None

    def _latency_now(self) -> float:
        with self._lock:
            return self._latency

    def _record(self, method: str, path: str, query: dict[str, str], body: Any, errcode: int) -> None:
        with self._lock:
            self._calls.append(RecordedCall(method, path, _redact(query, self.app_secret),
                                            _redact(body, self.app_secret), errcode, self._now))


def _redact(value: Any, secret: str) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k == "secret" else _redact(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secret) for v in value]
    if isinstance(value, str) and secret and secret in value:
        return value.replace(secret, REDACTED)
    return value


CUSTOM_CONTENT_CHECKS: dict[str, Callable[[FakeWeChat, Any], None]] = {
    "text": FakeWeChat._check_text,
    "image": FakeWeChat._check_media_ref,
    "voice": FakeWeChat._check_media_ref,
    "video": FakeWeChat._check_media_ref,
    "music": FakeWeChat._check_object,
    "news": FakeWeChat._check_news,
    "msgmenu": FakeWeChat._check_object,
    "miniprogrampage": FakeWeChat._check_object,
}

# -- category-template field rules (A2; the subscription-message value table) -------------------

_HANZI = "\u3400-\u4dbf\u4e00-\u9fff"
_POINT = re.compile(r"(?:(\d{4})年(\d{1,2})月(\d{1,2})日)?\s*(?:(\d{1,2}):(\d{2}))?")


def _is_hanzi(ch: str) -> bool:
    return "\u3400" <= ch <= "\u4dbf" or "\u4e00" <= ch <= "\u9fff"


def _is_symbol(ch: str) -> bool:
    return not ch.isalnum() and not ch.isspace() and ch.isprintable()


def _time_points(value: str, need_date: bool) -> bool:
    """``15:01`` / ``2019年10月1日 15:01`` (time) or ``2019年10月1日[ 15:01]`` (date), ranges with ``~``."""
    points = value.split("~")
    if len(points) > 2:
        return False
    for point in points:
        match = _POINT.fullmatch(point.strip())
        if match is None or not point.strip():
            return False
        year, month, day, hour, minute = match.groups()
        if (need_date and year is None) or (not need_date and hour is None):
            return False
        if year is not None:
            try:
                date(int(year), int(month), int(day))
            except ValueError:
                return False
        if hour is not None and not (int(hour) < 24 and int(minute) < 60):
            return False
    return True


def _name(value: str) -> bool:
    if any(ch.isdigit() for ch in value):
        return False
    # Chinese and letters mixed count as a Chinese name: 10 characters.
    if any(_is_hanzi(ch) for ch in value):
        return len(value) <= 10
    return len(value) <= 20 and all(ch.isalpha() or _is_symbol(ch) or ch == " " for ch in value)


def _car_number(value: str) -> bool:
    if not 1 <= len(value) <= 8:
        return False
    inner_ok = all(ch.isascii() and ch.isalnum() for ch in value[1:-1])
    ends_ok = all((ch.isascii() and ch.isalnum()) or _is_hanzi(ch) for ch in (value[0], value[-1]))
    return inner_ok and ends_ok


FIELD_RULES: dict[str, Callable[[str], bool]] = {
    "thing": lambda v: len(v) <= 20 and "\n" not in v and "\r" not in v,
    "number": lambda v: len(v) <= 32 and re.fullmatch(r"\d+(\.\d+)?", v) is not None,
    "letter": lambda v: len(v) <= 32 and re.fullmatch(r"[A-Za-z]+", v) is not None,
    "symbol": lambda v: len(v) <= 5 and all(_is_symbol(ch) for ch in v),
    "character_string": lambda v: len(v) <= 32 and all(" " <= ch <= "~" for ch in v),
    "time": lambda v: _time_points(v, need_date=False),
    "date": lambda v: _time_points(v, need_date=True),
    "amount": lambda v: re.fullmatch(r"[¥￥$€£]\d{1,10}(\.\d{1,2})?元?", v) is not None,
    "phone_number": lambda v: len(v) <= 17 and all(ch.isdigit() or _is_symbol(ch) for ch in v),
    "car_number": _car_number,
    "name": _name,
    "phrase": lambda v: len(v) <= 5 and re.fullmatch(f"[{_HANZI}]+", v) is not None,
}


def _template_data(fields: dict[str, str], data: Any) -> dict[str, Any]:
    """The data WeChat delivers; 47003 naming the first field that is missing or breaks its type."""
    if not isinstance(data, dict):
        raise WeChatError(47003, "argument invalid! data invalid")
    delivered: dict[str, Any] = {}
    for name, kind in fields.items():
        entry = data.get(name)
        value = entry.get("value") if isinstance(entry, dict) else None
        if kind == "const":
            # Fixed text of the template: WeChat fills it; a value sent for it is an error.
            if entry is not None:
                raise WeChatError(47003, f"argument invalid! data.{name}.value invalid")
            continue
        if not isinstance(value, str) or not value.strip() or not FIELD_RULES[kind](value):
            raise WeChatError(47003, f"argument invalid! data.{name}.value invalid")
        delivered[name] = {"value": value}
    # first/remark, colours and unknown keys are dropped silently since 2023-05-04.
    return delivered


# -- media upload rules (A7: the strictest reading of a self-contradicting page) ----------------


@dataclass(frozen=True)
class _UploadRule:
    extensions: dict[str, str]
    max_bytes: int
    size_errcode: int


UPLOAD_RULES: dict[str, _UploadRule] = {
    # The page says both 2 MB and 10 MB for images; the fake takes 2 MB.
    "image": _UploadRule({"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "gif": "image/gif"},
                         2 * 1024 * 1024, 40009),
    "voice": _UploadRule({"amr": "audio/amr", "mp3": "audio/mpeg"}, 2 * 1024 * 1024, 40010),
    "video": _UploadRule({"mp4": "video/mp4"}, 10 * 1024 * 1024, 40011),
    "thumb": _UploadRule({"jpg": "image/jpeg", "jpeg": "image/jpeg"}, 64 * 1024, 40012),
}
MEDIA_KINDS = frozenset(UPLOAD_RULES) | {"shortvideo"}
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "audio/amr": "amr",
               "audio/mpeg": "mp3", "video/mp4": "mp4"}


# -- menu rules (A9) ----------------------------------------------------------------------------

KEY_TYPES = frozenset({"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
                       "pic_weixin", "location_select"})
URL_TYPES = frozenset({"view", "miniprogram"})
MEDIA_TYPES = frozenset({"media_id", "view_limited"})
BUTTON_TYPES = KEY_TYPES | URL_TYPES | MEDIA_TYPES | {"article_id", "article_view_limited"}


@dataclass(frozen=True)
class _ButtonCodes:
    type: int
    name: int
    key: int
    url: int
    media: int
    name_bytes: int


TOP_CODES = _ButtonCodes(type=40017, name=40018, key=40019, url=40020, media=40117, name_bytes=16)
SUB_CODES = _ButtonCodes(type=40024, name=40025, key=40026, url=40027, media=40118, name_bytes=60)


def _byte_len(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else -1


def _checked_leaf(button: Any, codes: _ButtonCodes) -> dict[str, Any]:
    if not isinstance(button, dict) or button.get("type") not in BUTTON_TYPES:
        raise WeChatError(codes.type)
    if not 1 <= _byte_len(button.get("name")) <= codes.name_bytes:
        raise WeChatError(codes.name)
    kind = button["type"]
    if kind in KEY_TYPES and not 1 <= _byte_len(button.get("key")) <= 128:
        raise WeChatError(codes.key)
    if kind in URL_TYPES and not 1 <= _byte_len(button.get("url")) <= 1024:
        raise WeChatError(codes.url)
    if kind in MEDIA_TYPES and _byte_len(button.get("media_id")) < 1:
        raise WeChatError(codes.media)
    return dict(button)


def _checked_top_button(button: Any) -> dict[str, Any]:
    subs = button.get("sub_button") if isinstance(button, dict) else None
    if not subs:
        return {**_checked_leaf(button, TOP_CODES), "sub_button": []}
    if not isinstance(subs, list) or len(subs) > 5:
        raise WeChatError(40023)
    if not 1 <= _byte_len(button.get("name")) <= TOP_CODES.name_bytes:
        raise WeChatError(40018)
    return {"name": button["name"], "sub_button": [_checked_leaf(sub, SUB_CODES) for sub in subs]}


# -- HTTP -----------------------------------------------------------------------------------------


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
        latency = fake._latency_now()
        if latency:
            await asyncio.sleep(latency)
        errcode, answer = _run(fake, handler, incoming, request.method, method, needs_token, request.url.path)
        fake._record(request.method, request.url.path, incoming.query, incoming.recorded_body, errcode)
        return answer

    return endpoint


def _run(fake: FakeWeChat, handler: Handler, incoming: _Incoming, actual_method: str, method: str,
         needs_token: bool, path: str) -> tuple[int, Response]:
    try:
        fault = fake._take_fault(path)
        if fault is not None:
            raise WeChatError(fault)
        if actual_method != method:
            raise WeChatError(43001 if method == "GET" else 43002)
        if needs_token:
            fake.check_access_token(incoming.query.get("access_token"))
        result = handler(fake, incoming)
    except WeChatError as error:
        return error.errcode, _wechat_json({"errcode": error.errcode, "errmsg": f"{error.errmsg} rid: {_rid()}"})
    if isinstance(result, Response):
        return 0, result
    return int(result.get("errcode", 0)), _wechat_json(result)


def _media_response(fake: FakeWeChat, incoming: _Incoming) -> dict[str, Any] | Response:
    media_id = incoming.query.get("media_id")
    media = fake.get_media(media_id)
    if media.kind in ("video", "shortvideo"):
        # A7/B5: video is a JSON body with a second URL to download from.
        return {"video_url": f"{incoming.base_url}/_fake/video/{media_id}"}
    filename = f"{media_id}.{_EXTENSIONS.get(media.content_type, 'bin')}"
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
        fake._record(request.method, request.url.path, query, None, 48001)
        return _wechat_json({"errcode": 48001, "errmsg": f"{ERRMSG[48001]} rid: {_rid()}"})

    return endpoint


# -- test and demo control: /_fake/ ---------------------------------------------------------------


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


def _control_routes(fake: FakeWeChat) -> list[Route]:
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


def create_fake_app(fake: FakeWeChat) -> Starlette:
    """The Starlette app serving ``fake``: WeChat's API paths, then the ``/_fake/`` controls."""
    api = [Route(path, _api(fake, handler, method, needs_token), methods=["GET", "POST"])
           for path, method, handler, needs_token in API_ROUTES]
    fallback = Route("/{path:path}", _unknown_api(fake), methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    return Starlette(routes=[*api, *_control_routes(fake), fallback])


def serve(fake: FakeWeChat, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve ``fake`` in the foreground until interrupted (``safetybot fake-wechat``)."""
    uvicorn.run(create_fake_app(fake), host=host, port=port, log_level="info", lifespan="off")


class BackgroundServer:
    """Serves an ASGI app with uvicorn on a daemon thread: ``with BackgroundServer(app, port) as url:``."""

    def __init__(self, app: Any, port: int, host: str = "127.0.0.1"):
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", ws="none",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn:{port}", daemon=True)
        self.base_url = f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the base URL once the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server at {self.base_url} did not start")
            time.sleep(0.005)
        return self.base_url

    def stop(self) -> None:
        """Ask the server to finish and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
