"""The events the fake pushes to the bot's callback URL, as WeChat does: where the bot listens
(:class:`Callback`), each push and its tries (:class:`EventPush`), and the :class:`EventPusher`
that posts them, signed (and encrypted in safe mode) by :class:`simulator.wechat_side.WeChatSide`.

Follows WeChat's template-message page for the ``TEMPLATESENDJOBFINISH`` event and the
passive-reply page for the 5-second timeout and the three tries (``/work/shared/wechat-rules.md``
A2, A5).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable

import httpx

from simulator.wechat_side import WeChatSide

# A5: WeChat waits 5 s for the callback's answer, then tries again; 3 tries in all.
CALLBACK_TIMEOUT_SECONDS = 5.0
CALLBACK_TRIES = 3
# Events are pushed by a few threads at once, as WeChat's servers do not queue them one by one.
CALLBACK_PUSHERS = 4


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



class EventPusher:
    """Posts events to the callback on a few threads and records every try.

    It shares the account's lock, so that accepting a send and queueing its event are one step.
    ``timeout`` and ``tries`` are read at every try: changing them affects pushes under way.
    """

    def __init__(self, lock: threading.RLock, app_id: str, account: str, callback: Callback | None,
                 timeout: float, tries: int, clock: Callable[[], float] = time.time):
        self.clock = clock  # Unix seconds the events are signed with (WeChat's now)
        self.timeout = timeout
        self.tries = tries
        self._lock = lock
        self._app_id = app_id
        self._account = account
        self._callback = callback
        self._pushers: ThreadPoolExecutor | None = None
        self._http: httpx.Client | None = None
        self._events: list[EventPush] = []
        self._closed = False

    def set_callback(self, callback: Callback | None) -> None:
        """Push later events to ``callback``; None stops pushing (events already queued still go)."""
        with self._lock:
            self._callback = callback

    @property
    def callback(self) -> Callback | None:
        """Where events are pushed, or None."""
        with self._lock:
            return self._callback

    def events(self, openid: str | None = None) -> list[EventPush]:
        """Events pushed to the callback so far, oldest first; only ``openid``'s when given."""
        with self._lock:
            return [e for e in self._events if openid is None or e.openid == openid]

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was answered or gave up its tries; False on timeout."""
        deadline = time.monotonic() + timeout
        while any(e.answered is None for e in self.events()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        """Stop pushing: events not yet tried are dropped, tries under way end after this one."""
        with self._lock:
            self._closed = True
            pushers, self._pushers = self._pushers, None
            http, self._http = self._http, None
        if pushers is not None:
            pushers.shutdown(wait=False, cancel_futures=True)
        if http is not None:
            http.close()

    def queue_template_event(self, openid: str, msgid: int, status: str) -> None:
        """The TEMPLATESENDJOBFINISH of an accepted template message, to be pushed (none when no
        callback is set or the pusher is closed)."""
        with self._lock:
            if self._callback is None or self._closed:
                return
            event = EventPush(len(self._events), openid, "TEMPLATESENDJOBFINISH", msgid, status)
            self._events.append(event)
            if self._pushers is None or self._http is None:
                self._pushers = ThreadPoolExecutor(CALLBACK_PUSHERS, thread_name_prefix="fake-wechat-callback")
                # One client for all pushes: making one costs more than a push (its TLS context).
                self._http = httpx.Client()
            self._pushers.submit(self._push, event.index, self._callback, self._http)

    def _push(self, index: int, callback: Callback, client: httpx.Client) -> None:
        """On a pusher thread: try event ``index`` until the bot answers or the tries run out."""
        with self._lock:
            event = self._events[index]
        side = WeChatSide(client, token=callback.token, app_id=self._app_id, aes_key=callback.aes_key,
                          path=callback.url, account=self._account, clock=self.clock)
        # One XML for every try, signed (and encrypted) afresh each time, as WeChat does.
        plain_xml = side.event_xml(event.openid, event.event, MsgID=event.msgid, Status=event.status)
        for attempt in range(1, self.tries + 1):
            started = time.monotonic()
            body, params = side.delivery(plain_xml)
            try:
                answer = client.post(callback.url, content=body.encode("utf-8"), params=params,
                                     headers={"Content-Type": "text/xml"}, timeout=self.timeout)
                outcome, answered = str(answer.status_code), True
            except (httpx.HTTPError, RuntimeError) as error:
                # RuntimeError: the client was closed by close() while this push waited.
                outcome, answered = type(error).__name__, False
            last = answered or attempt == self.tries
            with self._lock:
                event = replace(event, tries=event.tries + (outcome,), answered=answered if last else None)
                self._events[index] = event
                closed = self._closed
            if last or closed:
                return
            # A refused connection fails at once; WeChat's next try still comes after its timeout.
            time.sleep(max(0.0, self.timeout - (time.monotonic() - started)))
