"""The state of one fake official account and WeChat's rules over it: :class:`FakeWeChat`.

It keeps the clock, the access tokens (replaced, expiring, daily quotas), the users and their
customer-service windows (48 hours and 5 messages, or 1 minute and 3 after a click), the
category templates, temporary media, the menu, injected faults and latency, and the log of every
call (:class:`RecordedCall`) and every message accepted for delivery (:class:`Push`). The HTTP
surface (``api``) and the controls (``control``) call into it.

Follows WeChat's access-token and stable_token pages (A6), the customer-service message page
(A1), the template-message page (A2), the temporary-media pages (A7) and the menu pages (A9), as
quoted in ``/work/shared/wechat-rules.md``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Literal, Protocol
from zoneinfo import ZoneInfo

from simulator.fake_wechat.callbacks import (CALLBACK_TIMEOUT_SECONDS, CALLBACK_TRIES, Callback, EventPush,
                                             EventPusher)
from simulator.fake_wechat.errors import WeChatError
from simulator.fake_wechat.media import MEDIA_KINDS, MEDIA_LIFETIME, UPLOAD_RULES, Media
from simulator.fake_wechat.menus import checked_top_button
from simulator.fake_wechat.template_fields import FIELD_RULES, template_data
from simulator.wechat_side import TEXT_BYTES

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
REDACTED = "[redacted]"


class Clock(Protocol):
    """What keeps the fake's time: its own :class:`StoppedClock`, or a clock it shares with the bot
    (the demo's :class:`bot.demo_clock.DemoClock`), so both agree on now."""

    def now(self) -> datetime: ...

    def advance(self, seconds: float) -> datetime: ...

    def set_time(self, moment: datetime) -> datetime: ...


class StoppedClock:
    """The fake's own clock: it reads ``start`` until told to move (forward only), so a test decides
    exactly when windows close and tokens expire."""

    def __init__(self, start: datetime):
        self._lock = threading.Lock()
        self._now = start.replace(microsecond=0)

    def now(self) -> datetime:
        """The moment the clock shows."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock ``seconds`` forward; ValueError for a negative move."""
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


def _new_token() -> str:
    # Real tokens are long opaque strings; A6 says to keep 512 characters for them.
    return secrets.token_urlsafe(102)


class FakeWeChat:
    """The state of one fake official account: clock, tokens, users, templates, media, menu, log.

    Every method is safe to call from any thread while the app serves requests.
    """

    def __init__(self, app_id: str, app_secret: str, start: datetime | None = None, *, original_id: str = "gh_fakeaccount01",
                 callback: Callback | None = None, callback_timeout: float = CALLBACK_TIMEOUT_SECONDS,
                 callback_tries: int = CALLBACK_TRIES, clock: Clock | None = None):
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        if start is not None and clock is not None:
            raise ValueError("give start or clock, not both")
        self.app_id = app_id
        self.app_secret = app_secret
        self.original_id = original_id
        self.template_job_status: dict[str, str] = {}
        self._lock = threading.RLock()
        self._clock: Clock = clock or StoppedClock(start or datetime.now(timezone.utc))
        # A shared clock is the bot's time too, so the events the fake signs carry it; the fake's own
        # stopped clock stands apart from the real time a bot under test keeps, so they carry that.
        signing = (lambda: self._clock.now().timestamp()) if clock is not None else time.time
        self._pusher = EventPusher(self._lock, app_id, original_id, callback, callback_timeout, callback_tries,
                                   clock=signing)
        self._tokens: dict[str, _Token] = {}
        self._stable: _Token | None = None
        self._token_quota = _Quota()
        self._force_quota = _Quota()
        self._last_force: datetime | None = None
        self._users: dict[str, _User] = {}
        self._templates: dict[str, dict[str, str]] = {}
        self._media: dict[str, Media] = {}
        self._menu: list[dict[str, Any]] | None = None
        self._faults: dict[str, deque[int]] = {}
        self._latency = 0.0
        self._calls: list[RecordedCall] = []
        self._pushes: list[Push] = []
        self._next_msgid = 10**18

    # -- clock --------------------------------------------------------------------------------

    @property
    def _now(self) -> datetime:
        return self._clock.now()

    def now(self) -> datetime:
        """The fake's clock; its own moves only when told to, a shared one (``clock=``) runs as it runs."""
        return self._clock.now()

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward."""
        return self._clock.advance(seconds)

    def set_time(self, moment: datetime) -> datetime:
        """Put the clock at ``moment`` (aware, not earlier than now)."""
        return self._clock.set_time(moment)

    def _today(self) -> date:
        return self._now.astimezone(QUOTA_ZONE).date()

    # -- users: the WeChat side tells the fake what users did ----------------------------------

    def user_wrote(self, openid: str, at: datetime | None = None) -> None:
        """The user sent a message (now, or ``at``, an aware moment before now): a new 48-hour
        window from then with a fresh count of 5 (A1)."""
        with self._lock:
            user = self._users.setdefault(openid, _User())
            user.following = True
            user.message_at, user.message_sent = self._now if at is None else min(at, self._now), 0

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
        self._media[media_id] = Media(kind, content, content_type, self._now)
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

    @property
    def issued_tokens(self) -> list[str]:
        """Every access token handed out so far (``/cgi-bin/token`` and ``/cgi-bin/stable_token``)."""
        with self._lock:
            return list(self._tokens)

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

    @property
    def callback_timeout(self) -> float:
        """Seconds WeChat waits for the callback's answer before its next try (A5: 5)."""
        return self._pusher.timeout

    @callback_timeout.setter
    def callback_timeout(self, seconds: float) -> None:
        self._pusher.timeout = seconds

    @property
    def callback_tries(self) -> int:
        """How many times WeChat tries an event the callback does not answer (A5: 3)."""
        return self._pusher.tries

    @callback_tries.setter
    def callback_tries(self, tries: int) -> None:
        self._pusher.tries = tries

    def set_callback(self, callback: Callback | None) -> None:
        """Push later events to ``callback``; None stops pushing (events already queued still go)."""
        self._pusher.set_callback(callback)

    @property
    def callback(self) -> Callback | None:
        """Where events are pushed, or None."""
        return self._pusher.callback

    def event_pushes(self, openid: str | None = None) -> list[EventPush]:
        """Events pushed to the callback so far, oldest first; only ``openid``'s when given."""
        return self._pusher.events(openid)

    def wait_for_events(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was answered or gave up its tries; False on timeout."""
        return self._pusher.wait(timeout)

    def close(self) -> None:
        """Stop pushing: events not yet tried are dropped, tries under way end after this one."""
        self._pusher.close()

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
        # The customer-service API refuses a text over WeChat's limit rather than cut it.
        if len(content["content"].encode()) > TEXT_BYTES:
            raise WeChatError(45002)

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
            data = template_data(fields, body.get("data"))
            msgid = self._next_msgid
            self._next_msgid += 1
            delivered = {**body, "data": data}
            status = self.template_job_status.get(openid, "success")
            self._record_push(openid, "template", "template", delivered, msgid, status)
            self._pusher.queue_template_event(self._pushes[-1].openid, msgid, status)
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

    def _live_media(self, media_id: str) -> Media | None:
        media = self._media.get(media_id)
        if media is None or self._now - media.created_at >= MEDIA_LIFETIME:
            return None
        return media

    def get_media(self, media_id: str | None) -> Media:
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
        stored = [checked_top_button(button) for button in buttons]
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

    # -- recording and faults: the HTTP surface asks and tells ----------------------------------

    def take_fault(self, path: str) -> int | None:
        """The errcode the next call to ``path`` must answer (see :meth:`fail_next`), or None."""
        with self._lock:
            queue = self._faults.get(path)
            return queue.popleft() if queue else None

    def latency_now(self) -> float:
        """Seconds every API answer waits now (see :meth:`set_latency`)."""
        with self._lock:
            return self._latency

    def record(self, method: str, path: str, query: dict[str, str], body: Any, errcode: int) -> None:
        """Log one API call with the errcode it was answered (0: success), the secret redacted."""
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
