"""Settings: read once at start-up (the ``.env`` file, then the environment), validated, passed in.

This is the only module that looks at the process environment. Everything else receives a
:class:`Settings` object, so tests build their own and nothing changes behind a running bot.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from dotenv import dotenv_values

WECHAT_API_BASE_URL = "https://api.weixin.qq.com"
# uvicorn starts each of several web workers as a fresh interpreter that imports the app factory by
# name; the factory reads the settings again, from the file the parent read (named in this variable)
# and the environment the worker inherits. See :func:`share_with_subprocesses`.
ENV_FILE_VARIABLE = "SAFETYBOT_ENV_FILE"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable and the problem."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class RunWorker(str, enum.Enum):
    """Whether ``safetybot serve`` also runs the worker role (reminder scheduler, outbox, media
    fetcher) in its web process, or leaves it to a ``safetybot worker`` process beside it."""

    AUTO = "auto"  # in the web process when it is the only one (WEB_WORKERS=1)
    YES = "yes"  # in every web process (safe: the parts take turns through the database)
    NO = "no"  # never: a `safetybot worker` process runs it


class AccountKind(str, enum.Enum):
    """What kind of official account this is; WeChat lets each kind do different things."""

    SERVICE_VERIFIED = "service_verified"
    SERVICE = "service"
    SUBSCRIPTION = "subscription"


@dataclass(frozen=True)
class Features:
    """What WeChat lets this account kind do (see shared/wechat-rules.md, A0)."""

    template_messages: bool
    web_oauth: bool
    mass_send_by_openid: bool

    @classmethod
    def for_kind(cls, kind: AccountKind) -> "Features":
        verified = kind is AccountKind.SERVICE_VERIFIED
        return cls(template_messages=verified, web_oauth=verified, mass_send_by_openid=verified)

    def off(self) -> list[str]:
        """Names of the features this account kind lacks, for the start-up report."""
        return [name for name, on in vars(self).items() if not on]


@dataclass(frozen=True)
class Settings:
    """Every setting of the bot; see ``config.example.env`` for what each one means."""

    wechat_token: str
    wechat_app_id: str
    wechat_app_secret: str
    # The admin API's bearer token; only the web role needs it (:func:`bot.app.create_app` checks).
    admin_token: str | None = None
    wechat_encoding_aes_key: str | None = None
    wechat_account_kind: AccountKind = AccountKind.SERVICE_VERIFIED
    wechat_api_base_url: str = WECHAT_API_BASE_URL
    database_url: str = "sqlite:///var/safetybot.db"
    redis_url: str | None = None
    media_dir: Path = Path("var/media")
    host: str = "127.0.0.1"
    port: int = 8080
    web_workers: int = 1
    run_worker: RunWorker = RunWorker.AUTO
    handler_threads: int = 4
    reply_budget_seconds: float = 4.0
    max_body_bytes: int = 65536
    timestamp_tolerance_seconds: int = 300
    log_level: str = "INFO"
    template_event_wait_seconds: int = 300
    quiet_hours: str = "22:00-08:00"
    # Messages one person may send in a minute before the rest of it is stored unhandled; 0: no limit.
    messages_per_minute: int = 30
    # Where people's phones reach the bot's pages (announcement texts, the Excel download); links in
    # template messages and replies start with it. Empty: http://HOST:PORT.
    public_url: str = ""
    # Where the demo's clock starts (DEMO_CLOCK_START): only `safetybot demo` and tests may set it
    # (:func:`bot.demo_clock.refuse_demo_clock`).
    demo_clock_start: datetime | None = None

    @property
    def page_base(self) -> str:
        """The base of every link the bot sends (``PUBLIC_URL``, else http://HOST:PORT), without a final /."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def link_key(self) -> bytes:
        """The key signed links (:mod:`bot.links`) are made with: derived from the AppSecret, which
        every process of the bot has and nobody else does, so no further secret is to be kept."""
        return hmac.new(self.wechat_app_secret.encode(), b"safetybot signed links", hashlib.sha256).digest()

    @property
    def safe_mode(self) -> bool:
        """Messages are AES-encrypted (safe or compatible mode) when an EncodingAESKey is set."""
        return self.wechat_encoding_aes_key is not None

    @property
    def features(self) -> Features:
        return Features.for_kind(self.wechat_account_kind)

    @property
    def web_runs_worker(self) -> bool:
        """Whether each web process runs the worker role too (``RUN_WORKER``; auto: with one web worker)."""
        return self.run_worker is RunWorker.YES or (self.run_worker is RunWorker.AUTO and self.web_workers == 1)


def _required(values: Mapping[str, str], name: str) -> str:
    value = values.get(name, "").strip()
    if not value:
        raise ConfigError(name, "is missing; set it in .env or the environment (see config.example.env)")
    return value


def _optional(values: Mapping[str, str], name: str) -> str | None:
    value = values.get(name, "").strip()
    return value or None


def _token(value: str) -> str:
    # WeChat's console accepts 3-32 letters and digits for the callback token.
    if not re.fullmatch(r"[A-Za-z0-9]{3,32}", value):
        raise ConfigError("WECHAT_TOKEN", "must be 3 to 32 letters or digits, as in WeChat's console")
    return value


def _aes_key(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z0-9]{43}", value):
        raise ConfigError("WECHAT_ENCODING_AES_KEY", "must be exactly 43 letters or digits, as in WeChat's console")
    return value


def _app_id(value: str) -> str:
    if not re.fullmatch(r"wx[0-9a-zA-Z]{8,30}", value):
        raise ConfigError("WECHAT_APP_ID", "must look like wx followed by letters and digits (e.g. wx1234567890abcdef)")
    return value


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(name, f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value.rstrip("/")


def _database_url(value: str) -> str:
    if not re.match(r"(sqlite|postgresql)(\+\w+)?://", value):
        raise ConfigError("DATABASE_URL", "must start with sqlite:/// or postgresql://")
    return value


def _int(values: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _optional(values, name)
    if raw is None:
        return default
    try:
        number = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, not {raw!r}") from None
    if not low <= number <= high:
        raise ConfigError(name, f"must be between {low} and {high}, not {number}")
    return number


def _float(values: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = _optional(values, name)
    if raw is None:
        return default
    try:
        number = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number, not {raw!r}") from None
    if not low <= number <= high:
        raise ConfigError(name, f"must be between {low} and {high}, not {number}")
    return number


def _quiet_hours(value: str | None) -> str:
    # Checked here; scheduler.plan.QuietHours.parse reads it.
    text = (value or "22:00-08:00").strip()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text)
    if text.lower() != "off" and not (match and int(match[1]) < 24 and int(match[3]) < 24
                                      and int(match[2]) < 60 and int(match[4]) < 60):
        raise ConfigError("QUIET_HOURS", f"must look like 22:00-08:00 (local time) or be off, not {text!r}")
    return text


def _moment(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(name, f"must be a moment like 2027-06-05T09:00+08:00, not {value!r}") from None
    if moment.tzinfo is None:
        raise ConfigError(name, f"needs its UTC offset, like 2027-06-05T09:00+08:00, not {value!r}")
    return moment


def settings_from_mapping(values: Mapping[str, str]) -> Settings:
    """Validate raw settings (names as in ``config.example.env``) into a :class:`Settings`."""
    kind_raw = _optional(values, "WECHAT_ACCOUNT_KIND") or AccountKind.SERVICE_VERIFIED.value
    try:
        kind = AccountKind(kind_raw)
    except ValueError:
        choices = ", ".join(k.value for k in AccountKind)
        raise ConfigError("WECHAT_ACCOUNT_KIND", f"must be one of {choices}, not {kind_raw!r}") from None
    run_worker_raw = (_optional(values, "RUN_WORKER") or RunWorker.AUTO.value).lower()
    try:
        run_worker = RunWorker(run_worker_raw)
    except ValueError:
        raise ConfigError("RUN_WORKER", f"must be auto, yes or no, not {run_worker_raw!r}") from None
    redis_url = _optional(values, "REDIS_URL")
    public_url = _optional(values, "PUBLIC_URL")
    admin_token = _optional(values, "ADMIN_TOKEN")
    if admin_token is not None and len(admin_token) < 16:
        raise ConfigError("ADMIN_TOKEN", "must be at least 16 characters")
    log_level = (_optional(values, "LOG_LEVEL") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("LOG_LEVEL", "must be DEBUG, INFO, WARNING or ERROR")
    return Settings(
        wechat_token=_token(_required(values, "WECHAT_TOKEN")),
        wechat_app_id=_app_id(_required(values, "WECHAT_APP_ID")),
        wechat_app_secret=_required(values, "WECHAT_APP_SECRET"),
        admin_token=admin_token,
        wechat_encoding_aes_key=_aes_key(_optional(values, "WECHAT_ENCODING_AES_KEY")),
        wechat_account_kind=kind,
        wechat_api_base_url=_url(
            "WECHAT_API_BASE_URL", _optional(values, "WECHAT_API_BASE_URL") or WECHAT_API_BASE_URL, ("http", "https")
        ),
        database_url=_database_url(_optional(values, "DATABASE_URL") or "sqlite:///var/safetybot.db"),
        redis_url=_url("REDIS_URL", redis_url, ("redis", "rediss")) if redis_url else None,
        media_dir=Path(_optional(values, "MEDIA_DIR") or "var/media"),
        host=_optional(values, "HOST") or "127.0.0.1",
        port=_int(values, "PORT", 8080, 1, 65535),
        web_workers=_int(values, "WEB_WORKERS", 1, 1, 64),
        run_worker=run_worker,
        handler_threads=_int(values, "HANDLER_THREADS", 4, 2, 64),
        reply_budget_seconds=_float(values, "REPLY_BUDGET_SECONDS", 4.0, 0.1, 4.5),
        max_body_bytes=_int(values, "MAX_BODY_BYTES", 65536, 1024, 10 * 1024 * 1024),
        timestamp_tolerance_seconds=_int(values, "TIMESTAMP_TOLERANCE_SECONDS", 300, 10, 86400),
        log_level=log_level,
        template_event_wait_seconds=_int(values, "TEMPLATE_EVENT_WAIT_SECONDS", 300, 1, 86400),
        quiet_hours=_quiet_hours(_optional(values, "QUIET_HOURS")),
        messages_per_minute=_int(values, "MESSAGES_PER_MINUTE", 30, 0, 10000),
        public_url=_url("PUBLIC_URL", public_url, ("http", "https")) if public_url else "",
        demo_clock_start=_moment("DEMO_CLOCK_START", _optional(values, "DEMO_CLOCK_START")),
    )


def load_settings(env_file: str | os.PathLike[str] | None = ".env", environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``env_file`` (if it exists), let the environment override it, and validate."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return settings_from_mapping(values)


def share_with_subprocesses(env_file: str | os.PathLike[str] | None) -> None:
    """Name ``env_file`` (made absolute) in this process's environment, so that processes it starts
    (uvicorn's web workers) read the same settings with :func:`load_shared_settings`."""
    os.environ[ENV_FILE_VARIABLE] = os.path.abspath(env_file) if env_file is not None else ""


def load_shared_settings() -> Settings:
    """The settings of the process that started this one (see :func:`share_with_subprocesses`);
    when no process named a file, ``.env`` and the environment, as :func:`load_settings` reads them."""
    return load_settings(os.environ.get(ENV_FILE_VARIABLE, ".env") or None)


def configure_logging(settings: Settings) -> None:
    """Log to stderr at ``LOG_LEVEL``, a line a record; every process of the bot calls this once."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
