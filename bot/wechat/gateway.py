"""The WeChat callback endpoint: verify and open a request, have it handled once, answer in time.

The gateway knows no web framework (like WeRoBot's ``robot.py``): :meth:`Gateway.verify_url` and
:meth:`Gateway.receive` take the query parameters and the body and return an :class:`Answer`;
``bot/app.py`` turns that into an HTTP response. The protocol itself (signatures, AES, XML) is
:mod:`bot.wechat.callback`; claiming, deciding and writing is :mod:`bot.handling`. Here: the
5-second budget (wechat-rules A6: WeChat gives up on an answer after 5 s and retries three times),
a retry that arrives while its first delivery is still being handled, and replies pushed later.

https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable, Mapping

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from bot.aio import finished_within
from bot.config import Settings
from bot.outbound.outbox import send_replies
from bot.handling import Budget, Dispatch, Handled, Handling, Handoff
from bot.store.writers import Writers
from bot.store.models import utcnow
from bot.texts import Texts
from bot.wechat.callback import SUCCESS, CallbackProtocol, Message, Refused

log = logging.getLogger("safetybot.gateway")


@dataclass(frozen=True)
class Answer:
    """What to send back: status, a short body, and optional work to run after the response."""

    status: int
    body: str
    media_type: str = "text/plain"
    later: Callable[[], Awaitable[None]] | None = None


class Gateway:
    """Everything between WeChat's HTTP callback and the pure handlers.

    ``wechat`` is the outbound client (:class:`bot.wechat.client.WeChatAPI`, called from a worker
    thread); ``dispatch`` is the routing table's entry point; ``clock`` gives aware now.
    """

    def __init__(self, settings: Settings, *, engine: sa.Engine, reads: sa.Engine, texts: Texts, wechat: Any,
                 dispatch: Dispatch, writers: Writers, clock: Callable[[], datetime] = utcnow):
        self.settings = settings
        self.engine = engine
        self.wechat = wechat
        self.clock = clock
        self.protocol = CallbackProtocol(settings, clock)
        self.handling = Handling(settings, engine=engine, reads=reads, texts=texts, dispatch=dispatch,
                                 writers=writers, push=self.push, clock=clock)
        # Deliveries being handled in this process, so a retry can wait for the first answer.
        self._inflight: dict[tuple[str, str], tuple[asyncio.Task[Handled], Handoff]] = {}

    def close(self) -> None:
        """Stop the handling's threads and close its kept connections (the engines are the caller's)."""
        self.handling.close()

    # --- HTTP-facing entry points -----------------------------------------------------------

    def verify_url(self, query: Mapping[str, str]) -> Answer:
        """The console's URL check (GET): echo ``echostr`` when the signature is right."""
        try:
            self.protocol.check_signature(query)
        except Refused as refused:
            return self._refuse(refused)
        return Answer(200, query.get("echostr", ""))

    def refusal(self, query: Mapping[str, str]) -> Answer | None:
        """The refusal of a POST whose query is not signed by WeChat, or None: checked before the
        body is read, so a stranger's request costs no read (:meth:`receive` checks again with the body)."""
        try:
            self.protocol.check_signature(query)
        except Refused as refused:
            return self._refuse(refused)
        return None

    async def receive(self, query: Mapping[str, str], body: bytes) -> Answer:
        """One POSTed callback: verify, claim, handle once, answer within the budget."""
        started = asyncio.get_running_loop().time()
        try:
            message = self.protocol.open(query, body)
        except Refused as refused:
            return self._refuse(refused)
        key = (message.incoming.openid, message.dedupe_key)
        running = self._inflight.get(key)
        if running is not None:
            return await self._answer_retry(*running, message, started)
        handoff = Handoff()
        task = asyncio.create_task(self.handling.process(message, handoff))
        self._inflight[key] = (task, handoff)
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        if not await finished_within(task, self._remaining(started)):
            given_up = self._give_up(handoff, message)
            if given_up is not None:
                return given_up
        return self._answer(await task, message)

    def _refuse(self, refused: Refused) -> Answer:
        log.warning("callback refused (%d): %s", refused.status, refused.reason)
        return Answer(refused.status, {400: "bad request", 403: "forbidden"}.get(refused.status, "refused"))

    # --- answering ---------------------------------------------------------------------------

    def _remaining(self, started: float) -> float:
        return max(0.0, self.settings.reply_budget_seconds - (asyncio.get_running_loop().time() - started))

    def _give_up(self, handoff: Handoff, message: Message) -> Answer | None:
        """The answer when the budget ran out: ``success`` once the message is stored (its reply
        is pushed later), 503 before (WeChat sends it again), None when the reply is a moment away."""
        budget = handoff.give_up()
        if budget is Budget.DEFER:
            log.warning("%s %s over the %.1fs budget: answered success, reply follows by push",
                        message.incoming.openid, message.dedupe_key, self.settings.reply_budget_seconds)
            return Answer(200, SUCCESS)
        if budget is Budget.UNSTORED:
            log.warning("%s %s not stored within the %.1fs budget: answered 503 so that WeChat sends it again",
                        message.incoming.openid, message.dedupe_key, self.settings.reply_budget_seconds)
            return Answer(503, "temporarily unavailable")
        return None

    async def _answer_retry(self, running: "asyncio.Task[Handled]", handoff: Handoff, message: Message,
                            started: float) -> Answer:
        """A re-delivery while the first is still being handled here: the first's answer when it
        comes within this request's budget, else what :meth:`_give_up` says."""
        log.info("retry of %s %s while the first delivery runs", message.incoming.openid, message.dedupe_key)
        try:
            finished = await finished_within(running, self._remaining(started))
        finally:
            # Counted after the wait: the first delivery has usually claimed the row by then.
            await run_in_threadpool(self.handling.count_delivery, message)
        if not finished:
            given_up = self._give_up(handoff, message)
            if given_up is not None:
                return given_up
        handled = await running
        if handled.deferred:
            return Answer(200, SUCCESS)
        # A failed first delivery (unavailable) is a 503 here too: WeChat must send it once more.
        return self._answer(Handled(reply_xml=handled.reply_xml, unavailable=handled.unavailable), message)

    def _answer(self, handled: Handled, message: Message) -> Answer:
        if handled.unavailable:
            return Answer(503, "temporarily unavailable")
        later = self._pushes(handled.pushes) if handled.pushes else None
        if handled.reply_xml is None:
            return Answer(200, SUCCESS, later=later)
        return Answer(200, self.protocol.seal(handled.reply_xml), media_type="application/xml", later=later)

    def _pushes(self, keys: tuple[str, ...]) -> Callable[[], Awaitable[None]]:
        async def push() -> None:
            await run_in_threadpool(self.push, keys)

        return push

    def push(self, keys: tuple[str, ...]) -> bool:
        """Push a reply's parts, recorded as deliveries under ``keys``, in order now; False if one
        did not go (the worker's outbox sends it later: :func:`bot.outbound.outbox.send_replies`)."""
        return send_replies(self.engine, self.wechat, keys, self.clock)
