"""``safetybot chat --as OPENID``: talk to a served bot from a terminal, as WeChat would.

Each typed line becomes the XML WeChat would post, signed (and encrypted in safe mode); the reply
is decrypted and printed. Messages the bot pushes through the WeChat API are read back from the
fake WeChat and shown too. The fake is also told what the person did, as the real WeChat knows it
(a message opens the 48-hour customer-service window, a menu click a 1-minute one).
"""

from __future__ import annotations

import logging
import shlex
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TextIO

import httpx

from bot.config import Settings
from simulator.wechat_side import TEXT_BYTES, Reply, WeChatSide

COMMANDS = """commands:
  /image PATH     send a picture
  /video PATH     send a video
  /click KEY      click the menu button KEY
  /follow         follow the account (subscribe event)
  /unfollow       unfollow it
  /help           this list
  /quit           leave
anything else is sent as a text message"""

MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
               ".mp4": "video/mp4"}


class FakeWeChatControl:
    """The fake WeChat's ``/_fake/`` controls, as far as a WeChat-side client needs them.

    Against a real WeChat API these endpoints do not exist; the client then carries on without them.
    """

    def __init__(self, client: httpx.Client):
        self.client = client
        self.available = True
        self.next_push = 0

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        if not self.available:
            return None
        try:
            response = self.client.request(method, path, **kwargs)
            payload = response.json()
        except (httpx.HTTPError, ValueError):
            self.available = False
            return None
        if response.status_code != 200 or "errcode" in payload:
            self.available = False
            return None
        return payload if isinstance(payload, dict) else None

    def now_seconds(self) -> float:
        """WeChat's now in Unix seconds, which the messages it posts carry: the fake's clock (the
        demo clock under ``safetybot demo``, which the bot keeps too); real time without the fake."""
        payload = self._call("GET", "/_fake/clock")
        return time.time() if payload is None else datetime.fromisoformat(str(payload["now"])).timestamp()

    def user_did(self, openid: str, kind: str) -> None:
        """Tell the fake that ``openid`` wrote (``message``), clicked, followed or unfollowed."""
        self._call("POST", f"/_fake/users/{openid}/events", json={"kind": kind})

    def add_media(self, kind: str, content: bytes, content_type: str) -> str | None:
        """Store a file as media the person sent; returns its media_id."""
        payload = self._call("POST", "/_fake/media", params={"type": kind}, content=content,
                             headers={"Content-Type": content_type})
        return None if payload is None else str(payload["media_id"])

    def new_pushes(self, openid: str) -> list[dict[str, Any]]:
        """Messages delivered to ``openid`` since the last call."""
        payload = self._call("GET", "/_fake/pushes", params={"openid": openid, "since": self.next_push})
        if payload is None:
            return []
        self.next_push = int(payload["next"])
        return list(payload["pushes"])


def describe_reply(reply: Reply) -> list[str]:
    """What a phone would show for the bot's passive reply."""
    if reply.status_code != 200:
        return [f"[HTTP {reply.status_code}] {reply.body.strip()}"]
    if reply.fields is None:
        return []
    kind = reply.fields.get("MsgType", "")
    if kind == "text":
        shown = [reply.fields.get("Content", "")]
        if reply.over_limit:
            # The terminal shows the whole text; a phone would not, so the bot's fault must stand out.
            shown.append(f"[warning: this passive reply is {reply.size:,} bytes; WeChat cuts or drops a text "
                         f"over {TEXT_BYTES:,} bytes, so the person would not see it whole]")
        return shown
    if kind == "news":
        return [f"[图文 ×{reply.fields.get('ArticleCount', '?')}]"]
    return [f"[{kind}]"]


def describe_push(push: dict[str, Any]) -> str:
    """One pushed message, as a line for the terminal."""
    payload = push.get("payload") or {}
    if push.get("channel") == "template":
        values = "；".join(f"{k}: {v.get('value', '')}" for k, v in (payload.get("data") or {}).items())
        return f"[模板消息] {values}"
    if push.get("msgtype") == "text":
        return f"[客服消息] {(payload.get('text') or {}).get('content', '')}"
    return f"[客服消息 {push.get('msgtype')}]"


class ChatSession:
    """One person's conversation: turns typed lines into deliveries and replies into lines."""

    def __init__(self, side: WeChatSide, control: FakeWeChatControl, openid: str):
        self.side = side
        self.control = control
        self.openid = openid

    def handle_line(self, line: str) -> list[str] | None:
        """The lines to show for one typed line; None when the person leaves."""
        line = line.strip()
        if not line:
            return []
        if not line.startswith("/"):
            self.control.user_did(self.openid, "message")
            return describe_reply(self.side.text(self.openid, line))
        command, *rest = shlex.split(line)
        argument = " ".join(rest)
        if command == "/quit":
            return None
        if command == "/help":
            return COMMANDS.splitlines()
        if command == "/click" and argument:
            self.control.user_did(self.openid, "click")
            return describe_reply(self.side.event(self.openid, "CLICK", argument))
        if command == "/follow":
            self.control.user_did(self.openid, "subscribe")
            return describe_reply(self.side.event(self.openid, "subscribe"))
        if command == "/unfollow":
            self.control.user_did(self.openid, "unsubscribe")
            return describe_reply(self.side.event(self.openid, "unsubscribe"))
        if command in ("/image", "/video") and argument:
            return self._send_file(command[1:], Path(argument).expanduser())
        return [f"unknown command {command!r}; /help lists them"]

    def _send_file(self, kind: str, path: Path) -> list[str]:
        if not path.is_file():
            return [f"no such file: {path}"]
        content_type = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
        media_id = self.control.add_media(kind, path.read_bytes(), content_type)
        if media_id is None:
            return ["sending files needs the fake WeChat (WECHAT_API_BASE_URL points elsewhere)"]
        self.control.user_did(self.openid, "message")
        send: Callable[[str, str], Reply] = self.side.image if kind == "image" else self.side.video
        return describe_reply(send(self.openid, media_id))

    def pushed_lines(self) -> list[str]:
        """Lines for messages the bot pushed since the last look."""
        return [describe_push(p) for p in self.control.new_pushes(self.openid)]


def _watch_pushes(session: ChatSession, out: TextIO, lock: threading.Lock, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        with lock:
            lines = session.pushed_lines()
            if lines:
                out.write("\n" + "\n".join(lines) + "\n> ")
                out.flush()


def run_chat(settings: Settings, openid: str, bot_url: str | None = None,
             stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    """Read lines from ``stdin`` until EOF or ``/quit``, printing replies and pushes to ``out``."""
    bot_url = bot_url or f"http://{settings.host}:{settings.port}"
    # Each exchange is shown as the conversation itself; httpx's request lines would drown it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with httpx.Client(base_url=bot_url, timeout=10) as bot, \
            httpx.Client(base_url=settings.wechat_api_base_url, timeout=5) as wechat:
        control = FakeWeChatControl(wechat)
        side = WeChatSide(bot, token=settings.wechat_token, app_id=settings.wechat_app_id,
                          aes_key=settings.wechat_encoding_aes_key, clock=control.now_seconds)
        session = ChatSession(side, control, openid)
        lock, stop = threading.Lock(), threading.Event()
        interactive = stdin.isatty()
        if interactive:
            out.write(f"talking to {bot_url}/wechat as {openid}; /help lists commands\n")
            threading.Thread(target=_watch_pushes, args=(session, out, lock, stop), daemon=True).start()
        try:
            while True:
                if interactive:
                    with lock:
                        out.write("> ")
                        out.flush()
                line = stdin.readline()
                if not line:
                    break
                try:
                    shown = session.handle_line(line)
                except httpx.HTTPError as error:
                    shown = [f"cannot reach the bot at {bot_url}: {error}"]
                if shown is None:
                    break
                with lock:
                    shown += session.pushed_lines()
                    out.write("".join(f"{text}\n" for text in shown))
                    out.flush()
        finally:
            stop.set()
    return 0
