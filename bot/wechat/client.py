"""Every outbound call to WeChat: one base URL, the shared access token, one retry policy.

wechatpy's :class:`~wechatpy.WeChatClient` supplies the API groups (message, media, menu, ...),
but left alone it would break three rules of this project (wechat-rules A6, R12):

- it fetches tokens from a fixed ``https://api.weixin.qq.com/cgi-bin/token``, without a lock, and
  on 40001/40014/42001 fetches again; each such call can invalidate the token other processes hold;
- its template and customservice groups call absolute ``https://api.weixin.qq.com/...`` URLs,
  ignoring any base URL, so tests against a local fake would leak to the real WeChat;
- it has no ``/cgi-bin/stable_token``, and for video ``media/get`` answers JSON with a ``video_url``.

So :class:`WeChatAPI` wraps a subclass that puts every URL on ``WECHAT_API_BASE_URL`` (and refuses
others at the transport too), takes the token from :mod:`bot.wechat.token_store`, and retries as WeChat's
error codes call for.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlencode, urlsplit

import requests
import sqlalchemy as sa
import urllib3
from requests.adapters import HTTPAdapter
from wechatpy import WeChatClient
from wechatpy.constants import WeChatErrorCode
from wechatpy.exceptions import WeChatClientException

from bot.config import WECHAT_API_BASE_URL, Settings
from bot.store.models import utcnow
from bot.wechat.token_store import SharedAccessToken, StoredToken, TokenStore, build_token_store
from bot.wechat.long_text import split_text

logger = logging.getLogger(__name__)

# WeChat's own origins, as wechatpy writes them; requests for them are moved onto the configured base.
WECHAT_ORIGINS = (WECHAT_API_BASE_URL, WECHAT_API_BASE_URL.replace("https://", "http://", 1))

TOKEN_REJECTED = frozenset(
    {
        WeChatErrorCode.INVALID_CREDENTIAL.value,  # 40001: not the latest token
        WeChatErrorCode.INVALID_ACCESS_TOKEN.value,  # 40014
        WeChatErrorCode.EXPIRED_ACCESS_TOKEN.value,  # 42001
    }
)
# No answer from WeChat (network failure, HTTP error status); retried like WeChat's own "busy" (-1).
TRANSPORT_ERROR = WeChatErrorCode.SYSTEM_BUSY.value
# errcode -> first wait in seconds, doubled on each retry. 45011 is a per-minute quota, so its
# waits (10, 20, 40 s) together reach into the next minute.
API_BACKOFF = {WeChatErrorCode.SYSTEM_BUSY.value: 0.5, WeChatErrorCode.API_MINUTE_QUOTA_REACH_LIMIT.value: 10.0}
# The token is fetched while every other process waits on the lock: retry only a brief "busy".
TOKEN_BACKOFF = {WeChatErrorCode.SYSTEM_BUSY.value: 0.5}
MAX_RETRIES = 3
# Calls under this path send a message to a person: never repeated blindly (see _retrying).
MESSAGE_PATH = "/cgi-bin/message/"
REQUEST_TIMEOUT_SECONDS = 15

IP_NOT_WHITELISTED = 40164  # missing from wechatpy's WeChatErrorCode
# Errors no retry can cure: someone has to change the account's or this server's configuration.
SETUP_FIXES = {
    IP_NOT_WHITELISTED: "WeChat refuses calls from this server's IP address ({errmsg}). Add the address in "
    "mp.weixin.qq.com → 开发 → 基本配置 → IP白名单 (the account admin confirms by scanning a QR code).",
    WeChatErrorCode.OUT_OF_API_FREQ_LIMIT.value: "The daily quota of this WeChat interface is used up ({errmsg}). "
    "It resets at midnight Beijing time; an account admin can reset it earlier with /cgi-bin/clear_quota "
    "(10 times a month). The quotas are listed in mp.weixin.qq.com → 开发 → 接口权限.",
    WeChatErrorCode.INVALID_APP_ID.value: "WECHAT_APP_ID is not this account's AppID ({errmsg}). Copy it from "
    "mp.weixin.qq.com → 开发 → 基本配置 into .env and restart.",
    WeChatErrorCode.INVALID_APP_SECRET.value: "WECHAT_APP_SECRET is wrong ({errmsg}). Copy or reset the AppSecret in "
    "mp.weixin.qq.com → 开发 → 基本配置, put it in .env and restart.",
    WeChatErrorCode.UNAUTHORIZED_API.value: "This account may not use this interface ({errmsg}). Check "
    "WECHAT_ACCOUNT_KIND and mp.weixin.qq.com → 开发 → 接口权限 (template messages need a verified service account).",
}

_SECRET_IN_URL = re.compile(r"((?:access_token|secret)=)[^&\s'\"]+")


def redact(text: str) -> str:
    """``text`` with access tokens and secrets in query strings replaced by ``***``."""
    return _SECRET_IN_URL.sub(r"\1***", text)


class _RedactSecrets(logging.Filter):
    """urllib3 logs each request line, query string included, at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactSecrets())


class WeChatAPIError(Exception):
    """WeChat answered ``errcode`` (or, as -1, could not be reached) for the call to ``path``."""

    setup_error = False

    def __init__(self, errcode: int, errmsg: str, path: str = "", in_doubt: bool = False):
        super().__init__(f"{path}: WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path
        # No answer, but the request may have reached WeChat (a read timeout, a dropped
        # connection, an HTTP error status): a message sent again could arrive twice.
        self.in_doubt = in_doubt


class WeChatSetupError(WeChatAPIError):
    """An error that stays until the configuration changes; ``fix`` (and the message) say how."""

    setup_error = True

    def __init__(self, errcode: int, errmsg: str, path: str = ""):
        super().__init__(errcode, errmsg, path)
        self.fix = SETUP_FIXES[errcode].format(errmsg=errmsg)
        self.args = (f"{path}: WeChat error {errcode}: {self.fix}",)


class NotSent(WeChatAPIError):
    """The request surely never left: no access token could be had (its store, Redis or the
    database, did not answer) or no connection to WeChat could be opened. Sending again cannot
    make a duplicate, so the delivery goes back to the queue (bot.outbound.delivery.Verdict.NOT_SENT)."""

    def __init__(self, errmsg: str, path: str = ""):
        super().__init__(TRANSPORT_ERROR, errmsg, path, in_doubt=False)


def wechat_error(errcode: int, errmsg: str, path: str) -> WeChatAPIError:
    """The exception for WeChat's answer ``errcode``: a setup error when one is known to be."""
    cls = WeChatSetupError if errcode in SETUP_FIXES else WeChatAPIError
    return cls(errcode, errmsg, path)


class ForeignHostError(RuntimeError):
    """A request was about to go somewhere other than ``WECHAT_API_BASE_URL``."""


@dataclass(frozen=True)
class DownloadedMedia:
    """A file a user sent, as WeChat handed it back."""

    content: bytes
    content_type: str
    filename: str


def _never_left(exc: requests.RequestException) -> bool:
    """Whether the request surely never reached the server: no connection could be made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(
        reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class _HostGuard(HTTPAdapter):
    """Refuses, at the transport, every request (redirects included) to an origin not allowed."""

    def __init__(self, allowed: Callable[[str], bool]):
        # One kept-alive connection per thread of a fan-out (requests keeps 10 by default).
        super().__init__(pool_maxsize=64)
        self._allowed = allowed

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if not self._allowed(_origin(request.url or "")):
            raise ForeignHostError(f"refused a request to {redact(request.url or '')}: not WECHAT_API_BASE_URL")
        return super().send(request, *args, **kwargs)


def _guarded_session(allowed: Callable[[str], bool], base_url: str) -> requests.Session:
    http = requests.Session()
    # requests would look up the proxy variables (and ~/.netrc) again on every request, a large
    # share of a fan-out's CPU per message: the base URL's proxies are taken once here instead.
    http.trust_env = False
    http.proxies = requests.utils.get_environ_proxies(base_url)
    guard = _HostGuard(allowed)
    http.mount("http://", guard)
    http.mount("https://", guard)
    return http


class BoundWeChatClient(WeChatClient):
    """wechatpy's client with every URL on the configured base, the token from the shared store,
    and this module's retry policy in place of wechatpy's ``auto_retry``.

    Reach wechatpy API groups that :class:`WeChatAPI` does not wrap through ``WeChatAPI.client``:
    they get the same base URL, token and retries.
    """

    def __init__(
        self,
        settings: Settings,
        token_store: TokenStore,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime],
    ):
        super().__init__(
            settings.wechat_app_id, settings.wechat_app_secret, timeout=REQUEST_TIMEOUT_SECONDS, auto_retry=False
        )
        self._base = settings.wechat_api_base_url.rstrip("/")
        self._http = _guarded_session(lambda origin: origin == _origin(self._base), self._base)
        # WeChat's video_url points at its own download servers; from real WeChat we follow it,
        # from a fake or a proxy everything must stay on the configured origin.
        follows_any_video_host = self._base == WECHAT_API_BASE_URL
        self._video_http = _guarded_session(
            lambda origin: follows_any_video_host or origin == _origin(self._base), self._base)
        self._sleep = sleep
        self._clock = clock
        # Message sends skip requests (see _post_message) unless a proxy is configured for the base.
        self._messages = None if self._http.proxies else urllib3.connection_from_url(
            self._base, maxsize=64, block=False)
        self.tokens = SharedAccessToken(token_store, self.appid, self.fetch_stable_token, clock)

    @property
    def access_token(self) -> str:
        """The shared token (wechatpy's API groups read this property)."""
        return self.tokens.current()

    def fetch_access_token(self) -> dict[str, str]:
        """wechatpy's hook for "get a token": the shared, locked, normal-mode path, never
        ``/cgi-bin/token``."""
        return {"access_token": self.tokens.current()}

    def fetch_stable_token(self, force_refresh: bool) -> StoredToken:
        """Ask ``/cgi-bin/stable_token`` for the token; ``force_refresh`` invalidates the old one.

        https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken
        """
        url = self.on_base(WECHAT_API_BASE_URL + "/cgi-bin/stable_token")
        body = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret,
            "force_refresh": force_refresh,
        }
        result = self._retrying(lambda _auth: self._send("post", url, data=body), authorized=False, backoff=TOKEN_BACKOFF)
        now = self._clock()
        return StoredToken(
            token=result["access_token"], expires_at=now + timedelta(seconds=int(result["expires_in"])), fetched_at=now
        )

    def on_base(self, url_or_endpoint: str, api_base_url: str | None = None) -> str:
        """The URL on the configured base for a wechatpy endpoint or absolute WeChat URL."""
        url = url_or_endpoint
        if not url.startswith(("http://", "https://")):
            url = (api_base_url or self.API_BASE_URL) + url
        for origin in WECHAT_ORIGINS:
            if url.startswith(origin + "/"):
                return self._base + url[len(origin) :]
        if url.startswith(self._base + "/"):
            return url
        raise ForeignHostError(f"refused a request to {redact(url)}: not WECHAT_API_BASE_URL")

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        # Every wechatpy API group ends up here (via get/post).
        url = self.on_base(url_or_endpoint, kwargs.pop("api_base_url", None))
        params = dict(kwargs.pop("params", None) or {})
        return self._retrying(
            lambda auth: self._send(method, url, params={**params, **auth}, **kwargs), authorized=True,
            backoff=API_BACKOFF, repeatable=MESSAGE_PATH not in url,
        )

    def fetch_video(self, video_url: str) -> requests.Response:
        """Download the file behind the ``video_url`` that ``media/get`` answered for a video."""
        if not video_url.startswith(("http://", "https://")):
            raise WeChatAPIError(TRANSPORT_ERROR, f"media/get answered an unusable video_url {redact(video_url)!r}")
        answer = self._retrying(
            lambda _auth: self._send("get", video_url, http=self._video_http), authorized=False, backoff=API_BACKOFF
        )
        # wechatpy hands back the response only when the body is not JSON; JSON would be an answer, not a file.
        if not isinstance(answer, requests.Response):
            raise WeChatAPIError(TRANSPORT_ERROR, f"the video_url {redact(video_url)!r} answered JSON, not a file")
        return answer

    def _retrying(self, send: Callable[[dict[str, str]], Any], *, authorized: bool, backoff: Mapping[int, float],
                  repeatable: bool = True) -> Any:
        """Call ``send`` with the token (when ``authorized``); on a rejected token use the one
        another process stored, or renew it once, and call again once; back off and retry on
        the transient errors of ``backoff``. A call that is not ``repeatable`` (it sends a
        message) is not repeated when its request may have reached WeChat: the error says so."""
        token_renewed = False
        retries = 0
        while True:
            token = self._token() if authorized else None
            try:
                return send({"access_token": token} if token else {})
            except WeChatAPIError as error:
                if token and error.errcode in TOKEN_REJECTED and not token_renewed:
                    token_renewed = True
                    self.tokens.replace_rejected(token)
                    continue
                if error.errcode not in backoff or retries >= MAX_RETRIES or (error.in_doubt and not repeatable):
                    raise
                delay = backoff[error.errcode] * 2**retries
                retries += 1
                logger.warning("wechat %s busy (%s): retry %d in %.1fs", error.path, error.errcode, retries, delay)
                self._sleep(delay)

    def _token(self) -> str:
        """The shared token; :class:`NotSent` when its store cannot be read or written (Redis or the
        database down, the lock stuck): the call that wanted it never leaves."""
        try:
            return self.tokens.current()
        except WeChatAPIError:
            raise  # WeChat's own answer to the token request, with its errcode
        except Exception as exc:  # redis-py, SQLAlchemy and TokenStoreBusy share no base class
            raise NotSent(redact(f"no access token: {type(exc).__name__}: {exc}"), "token") from None

    def _send(self, method: str, url: str, *, http: requests.Session | None = None, **kwargs: Any) -> Any:
        """One HTTP request, its answer decoded by wechatpy; logged as path, errcode, duration."""
        path = urlsplit(url).path
        result_processor = kwargs.pop("result_processor", None)
        if isinstance(kwargs.get("data"), dict):
            # WeChat wants UTF-8 JSON; requests' json= would escape every Chinese character.
            kwargs["data"] = json.dumps(kwargs["data"], ensure_ascii=False).encode("utf-8")
        started = time.monotonic()
        errcode: int | None = None  # stays None when the request was refused before it left
        try:
            if self._messages is not None and http is None and method == "post" and MESSAGE_PATH in url:
                result = self._post_message(url, kwargs.get("params") or {}, kwargs.get("data") or b"")
                result = result_processor(result) if result_processor else result
            else:
                response = (http or self._http).request(method=method, url=url, timeout=self.timeout, **kwargs)
                response.raise_for_status()
                result = self._handle_result(response, method, url, result_processor)
            errcode = 0
            return result
        except WeChatClientException as exc:
            errcode = int(exc.errcode)
            raise wechat_error(errcode, str(exc.errmsg), path) from None
        except WeChatAPIError as exc:
            errcode = exc.errcode
            raise
        except requests.RequestException as exc:
            errcode = TRANSPORT_ERROR
            if _never_left(exc):
                raise NotSent(redact(f"{type(exc).__name__}: {exc}"), path) from None
            raise WeChatAPIError(errcode, redact(f"{type(exc).__name__}: {exc}"), path, in_doubt=True) from None
        finally:
            elapsed_ms = (time.monotonic() - started) * 1000
            level = logging.INFO if errcode == 0 else logging.WARNING
            logger.log(level, "wechat %s %s errcode=%s %.0fms", method.upper(), path, errcode, elapsed_ms)


    def _post_message(self, url: str, params: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """POST a message send on a bare urllib3 pool bound to the base's origin: a fan-out's hot
        path, where requests' own work per call cost twice the rest of the send. The same rules
        as every other call: no other origin, no redirects, WeChat's errcode raised as an error,
        and no answer reported in doubt unless the connection never opened."""
        assert self._messages is not None
        if _origin(url) != _origin(self._base):
            raise ForeignHostError(f"refused a request to {redact(url)}: not WECHAT_API_BASE_URL")
        parts = urlsplit(url)
        target = parts.path + "?" + "&".join(q for q in (parts.query, urlencode(params)) if q)
        path = parts.path
        try:
            response = self._messages.request("POST", target, body=body, timeout=self.timeout, redirect=False,
                                              retries=False, headers={"Content-Type": "application/json"})
        except urllib3.exceptions.HTTPError as exc:
            if isinstance(exc, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)):
                raise NotSent(redact(f"{type(exc).__name__}: {exc}"), path) from None
            raise WeChatAPIError(TRANSPORT_ERROR, redact(f"{type(exc).__name__}: {exc}"), path, in_doubt=True) from None
        if response.status != 200:
            raise WeChatAPIError(TRANSPORT_ERROR, f"HTTP {response.status}", path, in_doubt=True)
        try:
            result = json.loads(response.data)
        except ValueError:
            raise WeChatAPIError(TRANSPORT_ERROR, "an answer that is not JSON", path, in_doubt=True) from None
        errcode = int(result.get("errcode", 0))
        if errcode:
            raise wechat_error(errcode, str(result.get("errmsg", errcode)), path)
        return dict(result)


class WeChatAPI:
    """The calls safetybot makes to WeChat. Synchronous and thread-safe: run it in threads."""

    def __init__(
        self,
        settings: Settings,
        token_store: TokenStore,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.client = BoundWeChatClient(settings, token_store, sleep=sleep, clock=clock)

    def access_token(self) -> str:
        """The shared access token, renewed (under the lock) when less than 5 minutes remain."""
        return self.client.tokens.current()

    def close(self) -> None:
        """Close the token store's connections (Redis, or the database's reading engine)."""
        self.client.tokens.close()

    def token_state(self) -> str:
        """The shared token's state in its store (:meth:`SharedAccessToken.state`)."""
        return self.client.tokens.state()

    def force_refresh_token(self) -> str:
        """Invalidate the token everywhere and fetch a new one. Only for an explicit admin command:
        WeChat allows 20 a day, 30 s apart, and other holders get 40001 until they re-read."""
        return self.client.tokens.force_refresh()

    def send_text(self, openid: str, content: str) -> None:
        """A customer-service text message (only inside the user's window, wechat-rules A1); a
        ``content`` over WeChat's 2,048 bytes goes as several messages, in order
        (:func:`bot.wechat.long_text.split_text`), each spending one of the window's sends.

        https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Service_Center_messages.html
        """
        for part in split_text(content):
            self.client.message.send_text(openid, part)

    def send_image(self, openid: str, media_id: str) -> None:
        """A customer-service image message with an uploaded ``media_id``."""
        self.client.message.send_image(openid, media_id)

    def send_news(self, openid: str, articles: Sequence[Mapping[str, str]]) -> None:
        """A customer-service news (link card) message; each article has ``title``,
        ``description``, ``url`` and ``picurl``. WeChat shows only one article per message."""
        self.client.message.send_articles(openid, list(articles))

    def send_template(self, openid: str, template_id: str, data: Mapping[str, str], url: str | None = None) -> str:
        """A template message; returns WeChat's msgid as text, the form in which the
        TEMPLATESENDJOBFINISH event reports it back.

        https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
        """
        fields = {name: {"value": value} for name, value in data.items()}
        result = self.client.message.send_template(openid, template_id, fields, url=url)
        return str(result["msgid"])

    def download_media(self, media_id: str) -> DownloadedMedia:
        """A temporary media file (kept by WeChat for 3 days). Images and voice come back as the
        body; for video WeChat answers JSON with a ``video_url``, which is fetched in turn.

        https://developers.weixin.qq.com/doc/service/api/material/temporary/api_getmedia
        """
        answer = self.client.media.download(media_id)
        if isinstance(answer, dict):
            if "video_url" not in answer:
                raise WeChatAPIError(TRANSPORT_ERROR, f"media/get answered JSON without video_url: {sorted(answer)}")
            answer = self.client.fetch_video(answer["video_url"])
        return _downloaded(media_id, answer)

    def upload_media(self, kind: str, filename: str, content: bytes) -> str:
        """Upload a temporary ``image``/``voice``/``video``/``thumb`` file; returns its media_id."""
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        result = self.client.media.upload(kind, (filename, content, content_type))
        return str(result["media_id"])

    def create_menu(self, menu: Mapping[str, Any]) -> None:
        """Replace the account's custom menu (``{"button": [...]}``, wechat-rules A9)."""
        self.client.menu.create(dict(menu))


# Types WeChat serves that Python's mimetypes does not know.
_EXTENSIONS = {"audio/amr": ".amr", "audio/speex": ".speex", "image/jpg": ".jpg"}


def _downloaded(media_id: str, response: requests.Response) -> DownloadedMedia:
    content_type = response.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip().lower()
    return DownloadedMedia(
        content=response.content,
        content_type=content_type,
        filename=media_id + _suffix(content_type, response.headers.get("Content-Disposition", "")),
    )


def _suffix(content_type: str, disposition: str) -> str:
    # The file name is ours (the media_id); only the extension is taken from what WeChat said.
    # Video answers carry no Content-Disposition, so the content type decides first.
    suffix = _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type)
    if suffix:
        return suffix
    named = re.search(r'filename="?([^";]+)', disposition)
    return PurePosixPath(named.group(1)).suffix if named else ".bin"


def wechat_api(settings: Settings, engine: sa.Engine, *, clock: Callable[[], datetime] = utcnow) -> WeChatAPI:
    """The client a bot process talks to WeChat with: its access token shared with every other process
    through Redis when ``REDIS_URL`` is set, else through ``engine``'s database (wechat-rules: one
    token for all processes). ``clock`` gives aware now (``reminders run-due --now`` replays another)."""
    return WeChatAPI(settings, build_token_store(settings, engine), clock=clock)
