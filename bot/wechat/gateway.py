"""The WeChat callback protocol: signatures, AES, XML in and out, retry de-duplication,
per-person ordering and the 5-second budget.

The gateway knows no web framework (like WeRoBot's ``robot.py``): :meth:`Gateway.verify_url`
and :meth:`Gateway.receive` take the query parameters and the body and return an
:class:`Answer`; ``bot/app.py`` turns that into an HTTP response.

Protocol: https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
(messages), .../Receiving_event_pushes.html (events), .../Passive_user_reply_message.html (replies,
retries, ``success``) and .../Message_encryption_and_decryption_instructions.html (safe mode).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hmac
import logging
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Mapping
from xml.parsers import expat

import sqlalchemy as sa
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from starlette.concurrency import run_in_threadpool
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import WeChatSigner

from bot.config import Settings
from bot.store.engine import Prepared, is_postgres, take_turn, transaction, writer_queue
from bot.store.models import Conversation, InboundMessage, InboundStatus, Person, Role, utcnow
from bot.store.facts import DatabaseFacts
from bot.store.sql import insert_on_conflict
from bot.store.writers import StaleDecision, Writers, apply_changes
from bot.texts import Texts
from handlers.base import Context, DialogueState, Incoming, Outcome
from handlers.ports import PersonFacts, StoredFacts

log = logging.getLogger("safetybot.gateway")

SUCCESS = "success"

# Message kinds an official account can receive (wechat-rules A8); anything else is logged and
# answered ``success`` without running a handler.
MESSAGE_KINDS = frozenset({"text", "image", "voice", "video", "shortvideo", "location", "link", "event"})
# A person's own message opens the 48-hour customer-service window (wechat-rules A1).
USER_MESSAGE_KINDS = frozenset(MESSAGE_KINDS - {"event"})
# These events open only the short 3-messages-in-1-minute window (wechat-rules A1).
INTERACTION_EVENTS = frozenset({"subscribe", "SCAN", "CLICK", "scancode_push", "scancode_waitmsg"})
KNOWN_EVENTS = frozenset(
    INTERACTION_EVENTS | {"unsubscribe", "VIEW", "LOCATION", "TEMPLATESENDJOBFINISH", "MASSSENDJOBFINISH"}
)

# WeChat's XML field names, renamed once at the edge (as wechatpy's messages.py does).
FIELD_NAMES = {
    "MsgId": "msg_id",
    "MsgID": "msg_id",
    "MediaId": "media_id",
    "PicUrl": "pic_url",
    "Format": "format",
    "Recognition": "recognition",
    "ThumbMediaId": "thumb_media_id",
    "Location_X": "location_x",
    "Location_Y": "location_y",
    "Scale": "scale",
    "Label": "label",
    "Title": "title",
    "Description": "description",
    "Url": "url",
    "EventKey": "event_key",
    "Ticket": "ticket",
    "Latitude": "latitude",
    "Longitude": "longitude",
    "Precision": "precision",
    "Status": "status",
}

# Characters XML 1.0 forbids anywhere in a document (https://www.w3.org/TR/xml/#charsets).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# Separate advisory-lock namespace for "one person's handling", so it never collides with other
# modules' advisory locks.
_PERSON_LOCK_NAMESPACE = 7301

# The most write steps (claims, handlings) one SQLite transaction carries: enough to share a commit
# among a busy moment's messages, few enough that the write lock is never held for long.
WRITES_A_TRANSACTION = 32


class Refused(Exception):
    """A request the gateway will not handle; ``status`` is the HTTP status, ``reason`` is logged."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    """What to send back: status, a short body, and optional work to run after the response."""

    status: int
    body: str
    media_type: str = "text/plain"
    later: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Message:
    """One parsed, verified callback: the domain view plus what storage and the reply need."""

    incoming: Incoming
    account: str
    dedupe_key: str
    raw: str

    @property
    def known(self) -> bool:
        return self.incoming.kind in MESSAGE_KINDS


@dataclass(frozen=True)
class Handled:
    """How a delivery ended: the passive reply XML (None → ``success``) and texts to push after it."""

    reply_xml: str | None = None
    followups: tuple[str, ...] = ()
    deferred: bool = False
    unavailable: bool = False


# --- XML in -------------------------------------------------------------------------------------


def parse_xml(body: bytes | str) -> dict[str, str]:
    """Parse an untrusted WeChat XML document into a flat dict, refusing DTDs and entities.

    Nested elements (``ScanCodeInfo``, ``SendPicsInfo``) become dotted keys such as
    ``ScanCodeInfo.ScanResult``. Raises :class:`Refused` (400) for anything that is not
    ``<xml>…</xml>``.
    """
    fields = _FlatFields()
    try:
        fields.parser().Parse(body, True)
    except DefusedXmlException as exc:
        raise Refused(400, f"XML with a DTD or entities refused ({type(exc).__name__})") from None
    except (expat.ExpatError, ValueError) as exc:  # ValueError: a declared encoding expat cannot read (gbk)
        raise Refused(400, f"malformed XML: {exc}") from None
    if fields.root != "xml":
        raise Refused(400, f"root element is <{fields.root}>, not <xml>")
    return fields.values


class _FlatFields:
    """Expat callbacks that collect leaf elements under their dotted path.

    Expat straight, not an element tree: defusedxml's parser is ElementTree's pure-Python one and
    costs more than the rest of a message's handling. The refusals are defusedxml's own: a DTD is
    refused where it starts, before anything in it is read, so no entity can be declared, let
    alone expanded; entity declarations and external references are refused as well.
    """

    def __init__(self) -> None:
        self.root = ""
        self.values: dict[str, str] = {}
        # Open elements below the root: [dotted name, has children, text parts].
        self._open: list[list[Any]] = []

    def parser(self) -> Any:
        """A new expat parser calling back here. Not kept: a parser and its handlers' object
        pointing at each other would be a cycle only the garbage collector frees."""
        parser = expat.ParserCreate()
        parser.buffer_text = True
        parser.StartDoctypeDeclHandler = self._refuse_dtd
        parser.EntityDeclHandler = self._refuse_entity
        parser.UnparsedEntityDeclHandler = self._refuse_unparsed_entity
        parser.ExternalEntityRefHandler = self._refuse_external
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        return parser

    def _start(self, tag: str, _attributes: dict[str, str]) -> None:
        if not self.root:
            self.root = tag
            return
        if self._open:
            self._open[-1][1] = True
            tag = self._open[-1][0] + "." + tag
        self._open.append([tag, False, []])

    def _end(self, _tag: str) -> None:
        if not self._open:
            return
        name, has_children, parts = self._open.pop()
        if not has_children:
            text = "".join(parts)
            self.values[name] = text if name == "Content" else text.strip()  # what the person typed, spaces included

    def _text(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)

    @staticmethod
    def _refuse_dtd(name: str, sysid: str | None, pubid: str | None, _internal: bool) -> None:
        raise DTDForbidden(name, sysid, pubid)

    @staticmethod
    def _refuse_entity(name: str, _parameter: bool, value: str | None, base: str | None, sysid: str | None,
                       pubid: str | None, notation: str | None) -> None:
        raise EntitiesForbidden(name, value, base, sysid, pubid, notation)

    @staticmethod
    def _refuse_unparsed_entity(name: str, base: str | None, sysid: str | None, pubid: str | None,
                                notation: str | None) -> None:
        raise EntitiesForbidden(name, None, base, sysid, pubid, notation)

    @staticmethod
    def _refuse_external(context: str, base: str | None, sysid: str | None, pubid: str | None) -> None:
        raise ExternalReferenceForbidden(context, base, sysid, pubid)


def to_message(fields: Mapping[str, str], raw: str) -> Message:
    """Translate WeChat's field names into an :class:`~handlers.base.Incoming` and its dedupe key."""
    openid = fields.get("FromUserName", "")
    kind = fields.get("MsgType", "")
    create_time = fields.get("CreateTime", "")
    if not openid or not kind or not create_time.isdigit():
        raise Refused(400, "message lacks FromUserName, MsgType or a numeric CreateTime")
    if len(openid) > 64 or len(kind) > 30:
        raise Refused(400, "FromUserName or MsgType is implausibly long")
    event = fields.get("Event", "") if kind == "event" else ""
    if len(event) > 50:
        raise Refused(400, "Event is implausibly long")
    incoming = Incoming(
        openid=openid,
        kind=kind,
        created_at=datetime.fromtimestamp(int(create_time), timezone.utc),
        event=event,
        text=fields.get("Content", "") if kind == "text" else fields.get("EventKey", ""),
        fields={FIELD_NAMES.get(name, name): value for name, value in fields.items()},
    )
    return Message(incoming=incoming, account=fields.get("ToUserName", ""), dedupe_key=dedupe_key(fields), raw=raw)


def dedupe_key(fields: Mapping[str, str]) -> str:
    """The retry key (with the sender): MsgId for messages, CreateTime+Event+EventKey for events.

    MsgIds collide across users (wechat-rules A5), hence the sender is part of the stored key.
    Events carry no MsgId; WeChat documents FromUserName + CreateTime, and Event/EventKey tell
    apart two events of the same second (a location report and a menu click). A
    TEMPLATESENDJOBFINISH carries its template message's MsgID: two of one second to one person
    are two messages, not a retry.
    """
    create_time = fields.get("CreateTime", "")
    if fields.get("MsgType") == "event":
        key = f"event:{create_time}:{fields.get('Event', '')}:{fields.get('EventKey', '')}"
        if fields.get("MsgID"):
            key += f":{fields['MsgID']}"
    else:
        msg_id = fields.get("MsgId") or fields.get("MsgID")
        key = f"msg:{msg_id}" if msg_id else f"msg:{create_time}:{fields.get('MsgType', '')}"
    return key[:200]


# --- XML out ------------------------------------------------------------------------------------


def cdata(text: str) -> str:
    """``text`` as CDATA that stays well-formed whatever it holds.

    ``]]>`` would end the section, so it is split across two sections; characters XML 1.0
    forbids are dropped because no escape can carry them.
    """
    text = _NOT_XML_CHAR.sub("", text)
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply_xml(to_openid: str, account: str, content: str, create_time: int) -> str:
    """A passive text reply (https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html)."""
    return (
        f"<xml><ToUserName>{cdata(to_openid)}</ToUserName><FromUserName>{cdata(account)}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(content)}</Content></xml>"
    )


# --- ordering and the budget --------------------------------------------------------------------


class _Turns:
    """A FIFO per person: a message is handled only after that person's previous one finished.

    Turns are taken synchronously on arrival, so the order is the order requests reached this
    process; the database lock in the handling transaction orders across processes.
    """

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Future[None]] = {}

    def take(self, openid: str) -> "_Turn":
        previous = self._tails.get(openid)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[openid] = mine
        return _Turn(self._tails, openid, previous, mine)


class _Turn:
    def __init__(self, tails: dict[str, asyncio.Future[None]], openid: str, previous: asyncio.Future[None] | None, mine: asyncio.Future[None]):
        self._tails = tails
        self._openid = openid
        self._previous = previous
        self._mine = mine

    async def wait(self) -> None:
        """Return when the person's previous message is done."""
        if self._previous is not None:
            # shield: cancelling this waiter must not cancel the predecessor's future.
            await asyncio.shield(self._previous)

    def finish(self) -> None:
        """Let the next message of this person go, once every earlier one is done."""
        if self._previous is None or self._previous.done():
            self._complete()
        else:
            self._previous.add_done_callback(lambda _: self._complete())

    def _complete(self) -> None:
        self._mine.set_result(None)
        if self._tails.get(self._openid) is self._mine:
            del self._tails[self._openid]


class _Handoff:
    """Decides, once, who delivers the reply: the HTTP response, or the outbound client later.

    The request gives up when the budget runs out; the handler settles just before its commit.
    Whichever comes first wins, so a reply is never both returned and pushed, nor lost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = False
        self._deferred = False

    def give_up(self) -> bool:
        """Request side: True if the handler has not settled, so the reply will be pushed later."""
        with self._lock:
            if self._settled:
                return False
            self._deferred = True
            return True

    def settle(self) -> bool:
        """Handler side: True if the request already answered ``success`` (push the reply)."""
        with self._lock:
            self._settled = True
            return self._deferred


class _Deciders:
    """Runs handlers' decisions on the handler threads, many to one wake-up.

    Handing each decision to a thread of its own cost more CPU than deciding: every hand-over woke
    a thread that then took turns with the busy event loop for Python's lock (a third of a served
    bot's CPU at 16 connections). Here the decisions asked for in one turn of the loop wait in one
    queue and one thread is woken for them; it takes them one at a time and hands each outcome back
    as soon as it is decided. A slow decision holds up only itself: one left waiting ``HELP_AFTER``
    seconds without a thread wakes another.
    """

    HELP_AFTER = 0.05

    def __init__(self, pool: ThreadPoolExecutor):
        self._pool = pool
        self._waiting: collections.deque[tuple[Callable[[], Any], asyncio.Future[Any], float]] = collections.deque()
        self._waking = False
        self._watching = False

    def run(self, decide: Callable[[], Any]) -> "asyncio.Future[Any]":
        """``decide()`` on a handler thread; its result or exception comes back in the future."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._waiting.append((decide, done, loop.time()))
        if not self._waking:
            self._waking = True
            loop.call_soon(self._wake, loop)
        return done

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        self._waking = False
        self._pool.submit(self._take_all, loop)
        if not self._watching:
            self._watching = True
            loop.call_later(self.HELP_AFTER, self._watch, loop)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watching = False
        try:
            oldest = self._waiting[0][2]
        except IndexError:  # taken by a thread meanwhile
            return
        if loop.time() - oldest >= self.HELP_AFTER:
            log.info("a decision waited %.0f ms for a handler thread: waking another", self.HELP_AFTER * 1000)
            self._pool.submit(self._take_all, loop)
        self._watching = True
        loop.call_later(self.HELP_AFTER, self._watch, loop)

    def _take_all(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                decide, done, _ = self._waiting.popleft()
            except IndexError:
                return
            try:
                outcome = decide()
            except BaseException as exc:
                _hand_back(loop, done, exception=exc)
            else:
                _hand_back(loop, done, result=outcome)


def _hand_back(loop: asyncio.AbstractEventLoop, done: "asyncio.Future[Any]", **settled: Any) -> None:
    try:
        loop.call_soon_threadsafe(functools.partial(_give, done, **settled))
    except RuntimeError:  # the loop closed: nobody waits for it any more
        pass


@dataclass
class _Claim:
    id: int
    deliveries: int
    status: InboundStatus
    reply: str | None
    received_at: datetime


class _DispatchFailed(Exception):
    pass


@dataclass(frozen=True)
class _Snapshot:
    """The person's dialogue state and facts as the handler saw them; ``version`` tells a change."""

    state: DialogueState
    facts: PersonFacts
    version: datetime | None


def _facts(role: Role, unit_id: int | None, name: str, following: bool) -> PersonFacts:
    return PersonFacts(role.value, unit_id, name, following)


def _look_up(conn: sa.Connection, sql: "_Statements", openid: str) -> _Snapshot:
    """The person's dialogue state and facts, in one query (either may not exist yet)."""
    row = sql.look_up.one(conn, {"openid": openid})
    state = DialogueState(row.flow, row.step, dict(row.data)) if row.updated_at is not None else DialogueState()
    facts = (_facts(row.role, row.unit_id, row.name, row.following) if row.role is not None
             else _facts(Role.LIAISON, None, "", True))
    return _Snapshot(state, facts, row.updated_at)


Dispatch = Callable[[Incoming, DialogueState, Context], Outcome]


class _Statements:
    """The hot path's SQL, compiled once per dialect and run on the DBAPI cursor (:class:`Prepared`).

    Building a SQLAlchemy statement (and its cache key) per request, or even running a built one
    through Core, costs more than SQLite takes to run it.
    """

    def __init__(self, dialect: sa.Dialect):
        self._dialect = dialect
        insert = functools.partial(insert_on_conflict, dialect)
        inbound, people, conversations = InboundMessage.__table__, Person.__table__, Conversation.__table__
        claim = insert(inbound).values(
            **{name: sa.bindparam(name) for name in ("openid", "dedupe_key", "msg_type", "event", "raw", "received_at")},
            deliveries=1, status=InboundStatus.CLAIMED,
        )
        self.claim = Prepared(claim.on_conflict_do_update(
            index_elements=["openid", "dedupe_key"], set_={"deliveries": inbound.c.deliveries + 1}
        ).returning(inbound.c.id, inbound.c.deliveries, inbound.c.status, inbound.c.reply, inbound.c.received_at), dialect)
        key = sa.select(sa.cast(sa.bindparam("openid"), sa.String).label("openid")).subquery()
        self.look_up = Prepared(sa.select(
            conversations.c.flow, conversations.c.step, conversations.c.data, conversations.c.updated_at,
            people.c.role, people.c.unit_id, people.c.name, people.c.following,
        ).select_from(key.outerjoin(conversations, conversations.c.openid == key.c.openid)
                      .outerjoin(people, people.c.openid == key.c.openid)), dialect)
        self.count_delivery = Prepared(
            sa.update(inbound)
            .where(inbound.c.openid == sa.bindparam("key_openid"), inbound.c.dedupe_key == sa.bindparam("key_dedupe"))
            .values(deliveries=inbound.c.deliveries + 1), dialect
        )
        self.settle = Prepared(
            sa.update(inbound)
            .where(inbound.c.id == sa.bindparam("inbound_id"), inbound.c.status == InboundStatus.CLAIMED)
            .values(status=sa.bindparam("status"), reply=sa.bindparam("reply"), answered_at=sa.bindparam("answered_at")),
            dialect,
        )
        self.pushed = Prepared(
            sa.update(inbound).where(inbound.c.id == sa.bindparam("inbound_id"))
            .values(status=InboundStatus.ANSWERED, answered_at=sa.bindparam("answered_at")), dialect
        )
        self.stored = Prepared(
            sa.select(inbound.c.status, inbound.c.reply).where(inbound.c.id == sa.bindparam("inbound_id")), dialect
        )
        # The stored answer and the sender's state version, read together before writing a handling.
        self.unanswered = Prepared(
            sa.select(inbound.c.status, inbound.c.reply, conversations.c.updated_at)
            .select_from(inbound.outerjoin(conversations, conversations.c.openid == inbound.c.openid))
            .where(inbound.c.id == sa.bindparam("inbound_id")), dialect
        )
        save = insert(conversations).values(
            {name: sa.bindparam(name) for name in ("openid", "flow", "step", "data", "updated_at")}
        )
        self.save_state = Prepared(save.on_conflict_do_update(
            index_elements=["openid"], set_={name: save.excluded[name] for name in ("flow", "step", "data", "updated_at")}
        ), dialect)
        self._touch = insert(people).values(
            **{name: sa.bindparam(name) for name in ("openid", "following", "created_at", "last_message_at",
                                                     "last_interaction_at")},
            name="", role=Role.LIAISON, unreachable_reason=None,
        )
        self._touches: dict[tuple[str, ...], Prepared] = {}

    def touch_person(self, changed: tuple[str, ...]) -> Prepared:
        """The person upsert that, for an existing person, updates only the ``changed`` columns."""
        statement = self._touches.get(changed)
        if statement is None:
            excluded = self._touch.excluded
            statement = Prepared(self._touch.on_conflict_do_update(index_elements=["openid"],
                                                                   set_={name: excluded[name] for name in changed})
                                 if changed else self._touch.on_conflict_do_nothing(index_elements=["openid"]),
                                 self._dialect)
            self._touches[changed] = statement
        return statement


class Gateway:
    """Everything between WeChat's HTTP callback and the pure handlers.

    ``wechat`` is the outbound client (anything with ``send_text(openid, content)``, called from
    a worker thread); ``dispatch`` is the routing table's entry point; ``clock`` gives aware now.
    """

    def __init__(self, settings: Settings, *, engine: sa.Engine, reads: sa.Engine, texts: Texts, wechat: Any,
                 dispatch: Dispatch, writers: Writers, clock: Callable[[], datetime] = utcnow):
        self.settings = settings
        self.engine = engine
        self.texts = texts
        self.wechat = wechat
        self.dispatch = dispatch
        self.writers = writers
        self.clock = clock
        self._crypto: WeChatCrypto | None = None
        if settings.safe_mode:
            self._crypto = WeChatCrypto(settings.wechat_token, settings.wechat_encoding_aes_key, settings.wechat_app_id)
        self._sql = _Statements(engine.dialect)
        # Handlers read through this one (bot.store.engine.read_engine): on SQLite it never takes the write lock.
        self._reads = reads
        self._turns = _Turns()
        # Handlers decide (and, on PostgreSQL, messages are claimed and written) on a few threads of
        # their own: every extra thread costs each of them more waiting for Python's lock. Pushes
        # to WeChat use Starlette's pool.
        self._handlers = ThreadPoolExecutor(settings.handler_threads, thread_name_prefix="safetybot-handler")
        self._deciders = _Deciders(self._handlers)
        # On SQLite the event loop (for a database in memory, each handler thread) keeps its
        # connection (see _writing); closed with the gateway.
        self._kept = threading.local()
        self._all_kept: list[sa.Connection] = []
        # A SQLite file: the claim and the handling write from the event loop (see _write_step);
        # PostgreSQL's round trips would hold the loop up, so there they run on a handler thread.
        self._writes_on_loop = writer_queue(engine) is not None
        self._writes: collections.deque[tuple[Callable[[], Any], asyncio.Future[Any]]] = collections.deque()
        self._writer: asyncio.Task[None] | None = None
        # Deliveries being handled in this process, so a retry can wait for the first answer.
        self._inflight: dict[tuple[str, str], asyncio.Task[Handled]] = {}

    def close(self) -> None:
        """Stop the handler threads and close the connections the gateway kept (the engines are
        the caller's)."""
        self._handlers.shutdown()
        for conn in self._all_kept:
            conn.close()

    # --- HTTP-facing entry points -----------------------------------------------------------

    def verify_url(self, query: Mapping[str, str]) -> Answer:
        """The console's URL check (GET): echo ``echostr`` when the signature is right."""
        try:
            self._check_signature(query)
        except Refused as refused:
            return self._refuse(refused)
        return Answer(200, query.get("echostr", ""))

    async def receive(self, query: Mapping[str, str], body: bytes) -> Answer:
        """One POSTed callback: verify, claim, handle once, answer within the budget."""
        started = asyncio.get_running_loop().time()
        try:
            message = self._open(query, body)
        except Refused as refused:
            return self._refuse(refused)
        key = (message.incoming.openid, message.dedupe_key)
        running = self._inflight.get(key)
        if running is not None:
            return await self._answer_retry(running, message, started)
        handoff = _Handoff()
        task = asyncio.create_task(self._process(message, handoff))
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        if await _finished_within(task, self._remaining(started)):
            handled = task.result()
        else:
            if handoff.give_up():
                log.warning("%s %s over the %.1fs budget: answered success, reply follows by push",
                            message.incoming.openid, message.dedupe_key, self.settings.reply_budget_seconds)
                return Answer(200, SUCCESS)
            handled = await task
        return self._answer(handled, message)

    # --- verification and decryption --------------------------------------------------------

    def _check_signature(self, query: Mapping[str, str]) -> None:
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not _same(query.get("signature", ""), _sign(self.settings.wechat_token, timestamp, nonce)):
            raise Refused(403, "bad signature")
        if not timestamp.isdigit():
            raise Refused(403, "timestamp is not a number")
        skew = abs(self.clock().timestamp() - int(timestamp))
        if skew > self.settings.timestamp_tolerance_seconds:
            raise Refused(403, f"timestamp {timestamp} is {skew:.0f}s away from now (replay?)")

    def _open(self, query: Mapping[str, str], body: bytes) -> Message:
        self._check_signature(query)
        encrypted = query.get("encrypt_type", "raw").lower() == "aes"
        if encrypted and self._crypto is None:
            raise Refused(400, "encrypt_type=aes but no WECHAT_ENCODING_AES_KEY is configured (plaintext mode)")
        if not encrypted and self._crypto is not None:
            raise Refused(400, "plaintext request, but safe mode is configured (WECHAT_ENCODING_AES_KEY is set)")
        envelope = parse_xml(body)
        if self._crypto is None:
            return to_message(envelope, body.decode("utf-8", "replace"))
        # Compatible mode also sends the plaintext fields; only the signed, encrypted part counts.
        plain = self._decrypt(self._crypto, envelope, query)
        return to_message(parse_xml(plain.encode("utf-8")), plain)

    def _decrypt(self, crypto: WeChatCrypto, envelope: Mapping[str, str], query: Mapping[str, str]) -> str:
        if not envelope.get("Encrypt"):
            raise Refused(400, "safe-mode message without <Encrypt>")
        try:
            # A dict, not XML: wechatpy would otherwise run xmltodict on untrusted input.
            return str(crypto.decrypt_message(
                {"Encrypt": envelope["Encrypt"]}, query.get("msg_signature", ""),
                query.get("timestamp", ""), query.get("nonce", ""),
            ))
        except InvalidSignatureException:
            raise Refused(403, "bad msg_signature") from None
        except InvalidAppIdException:
            raise Refused(403, "decrypted message is for another AppID") from None
        except Exception as exc:  # wechatpy does not validate padding or lengths: any garbage lands here
            raise Refused(400, f"cannot decrypt <Encrypt> ({type(exc).__name__})") from None

    def _refuse(self, refused: Refused) -> Answer:
        log.warning("callback refused (%d): %s", refused.status, refused.reason)
        return Answer(refused.status, {400: "bad request", 403: "forbidden"}.get(refused.status, "refused"))

    # --- answering ---------------------------------------------------------------------------

    def _remaining(self, started: float) -> float:
        return max(0.0, self.settings.reply_budget_seconds - (asyncio.get_running_loop().time() - started))

    async def _answer_retry(self, running: "asyncio.Task[Handled]", message: Message, started: float) -> Answer:
        """A re-delivery while the first is still being handled here: its answer, or ``success``."""
        log.info("retry of %s %s while the first delivery runs", message.incoming.openid, message.dedupe_key)
        try:
            finished = await _finished_within(running, self._remaining(started))
        finally:
            # Counted after the wait: the first delivery has claimed the row by then.
            await run_in_threadpool(self._count_delivery, message)
        if not finished:
            return Answer(200, SUCCESS)
        handled = running.result()
        if handled.deferred or handled.unavailable:
            return Answer(200, SUCCESS)
        return self._answer(Handled(reply_xml=handled.reply_xml), message)

    def _answer(self, handled: Handled, message: Message) -> Answer:
        if handled.unavailable:
            return Answer(503, "temporarily unavailable")
        later = self._followups(message.incoming.openid, handled.followups) if handled.followups else None
        if handled.reply_xml is None:
            return Answer(200, SUCCESS, later=later)
        body = handled.reply_xml
        if self._crypto is not None:
            # A fresh nonce each time, also when a stored reply is sent again for a retry.
            body = self._crypto.encrypt_message(body, secrets.token_hex(8), str(int(self.clock().timestamp())))
        return Answer(200, body, media_type="application/xml", later=later)

    def _followups(self, openid: str, texts: tuple[str, ...]) -> Callable[[], Awaitable[None]]:
        async def push() -> None:
            await run_in_threadpool(self._push, openid, texts)

        return push

    def _push(self, openid: str, texts: tuple[str, ...]) -> bool:
        """Send ``texts`` in order through the outbound client; False (logged) if one failed."""
        for text in texts:
            try:
                self.wechat.send_text(openid, text)
            except Exception:
                log.exception("could not push a reply to %s", openid)
                return False
        return True

    # --- claim and handle (worker thread) ----------------------------------------------------

    async def _process(self, message: Message, handoff: _Handoff) -> Handled:
        turn = self._turns.take(message.incoming.openid)
        try:
            await turn.wait()
            if self._writes_on_loop:
                return await self._claim_and_handle_here(message, handoff)
            return await self._in_thread(self._claim_and_handle, message, handoff)
        except Exception:
            log.exception("handling %s %s failed outside the handler", message.incoming.openid, message.dedupe_key)
            return Handled(unavailable=True)
        finally:
            turn.finish()

    def _in_thread(self, function: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
        return asyncio.get_running_loop().run_in_executor(self._handlers, functools.partial(function, *args))

    async def _write_step(self, step: Callable[..., Any], *args: Any) -> Any:
        """Run ``step(conn, *args)``, a short SQLite write, here on the event loop, in the order asked,
        and return its result once it is committed.

        On a thread, each of the transaction's sqlite3 calls (sqlite3 lets Python's lock go around
        every one) waits for the busy event loop to let go of that lock again: a served bot spent
        about as much CPU on that hand-over as on its work, and held SQLite's lock meanwhile.
        """
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._writes.append((lambda conn: step(conn, *args), done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_in_turn())
        return await done

    async def _write_in_turn(self) -> None:
        """Run the queued write steps, each when the writer's turn is free (waited for without
        blocking the loop): one waiter for the whole process, not one for each message.

        The steps queued at once share one transaction (a group commit): beginning and committing
        one cost more than a step's own work. Their results are given out only after the commit,
        so nobody acts on a write that could still be undone. If a step fails, the whole group is
        rolled back and each of its steps runs again in a transaction of its own, so only the
        failing one fails; the steps are decisions on what the database holds, safe to run again.
        """
        conn = self._kept_connection()
        try:
            while self._writes:
                try:
                    await take_turn(conn)
                except Exception as exc:
                    while self._writes:
                        _give(self._writes.popleft()[1], exception=exc)
                    continue
                # Taken after the wait for the turn, so the steps queued meanwhile go along.
                group = [self._writes.popleft() for _ in range(min(len(self._writes), WRITES_A_TRANSACTION))]
                try:
                    with transaction(conn):
                        results = [step(conn) for step, _ in group]
                except Exception as exc:
                    if len(group) == 1:
                        _give(group[0][1], exception=exc)
                        continue
                    log.info("a write step failed in a group of %d: each runs again on its own", len(group))
                    results = None
                if results is None:
                    # Outside the except block: a step's own failure must not read as caused by this one.
                    for step, done in group:
                        await self._write_alone(conn, step, done)
                    continue
                for (_, done), result in zip(group, results):
                    _give(done, result=result)
        finally:
            self._writer = None

    async def _write_alone(self, conn: sa.Connection, step: Callable[[sa.Connection], Any], done: "asyncio.Future[Any]") -> None:
        try:
            await take_turn(conn)
            with transaction(conn):
                result = step(conn)
        except Exception as exc:
            _give(done, exception=exc)
        else:
            _give(done, result=result)

    async def _claim_and_handle_here(self, message: Message, handoff: _Handoff) -> Handled:
        """:meth:`_claim_and_handle` with the writes on the event loop (SQLite): only the decision,
        which may be slow, and the pushes go to a handler thread. A decision taken again under the
        lock (rare: another worker changed the person's state meanwhile) runs in the write step."""
        claim, snapshot = await self._write_step(self._claim, message)
        if claim.deliveries > 1 and not self._take_over(claim, message):
            return _stored(claim.status, claim.reply)
        outcome = await self._deciders.run(functools.partial(self._first_decision, message, snapshot))
        handled: Handled = await self._write_step(self._write_handling, claim.id, message, handoff, snapshot, outcome)
        if handled.deferred:
            await self._in_thread(self._push_deferred, claim.id, message.incoming.openid, handled.followups)
            return Handled(deferred=True)
        return handled

    def _claim_and_handle(self, message: Message, handoff: _Handoff) -> Handled:
        with self._writing() as conn:
            claim, snapshot = self._claim(conn, message)
        if claim.deliveries > 1 and not self._take_over(claim, message):
            return _stored(claim.status, claim.reply)
        outcome = self._first_decision(message, snapshot)
        with self._writing() as conn:
            handled = self._write_handling(conn, claim.id, message, handoff, snapshot, outcome)
        if handled.deferred:
            self._push_deferred(claim.id, message.incoming.openid, handled.followups)
            return Handled(deferred=True)
        return handled

    def _take_over(self, claim: _Claim, message: Message) -> bool:
        """For a delivery already claimed: whether to handle it after all (the claim is stale)."""
        if not self._stale(claim):
            log.info("delivery %d of %s %s: %s", claim.deliveries, message.incoming.openid,
                     message.dedupe_key, claim.status.value)
            return False
        # The claim outlived the budget unanswered: its worker died (handling is one transaction,
        # so nothing of it was applied) or is still running. Taking over is safe either way:
        # _write_handling re-checks the status under the person's lock and writes only if the row
        # is still unanswered.
        log.warning("taking over the stale claim of %s %s", message.incoming.openid, message.dedupe_key)
        return True

    def _stale(self, claim: _Claim) -> bool:
        age = self.clock() - claim.received_at
        return claim.status is InboundStatus.CLAIMED and age > timedelta(seconds=self.settings.reply_budget_seconds)

    def _claim(self, conn: sa.Connection, message: Message) -> tuple[_Claim, _Snapshot]:
        """Store the raw message (or count one more delivery of it) and read the person's state.

        Committed before the handler runs, outside any transaction, so a slow handler never holds
        SQLite's single write lock.
        """
        incoming = message.incoming
        row = self._sql.claim.one(conn, {
            "openid": incoming.openid, "dedupe_key": message.dedupe_key, "msg_type": incoming.kind,
            "event": incoming.event, "raw": message.raw, "received_at": self.clock(),
        })
        snapshot = _look_up(conn, self._sql, incoming.openid)
        claim = _Claim(id=row.id, deliveries=row.deliveries, status=row.status, reply=row.reply, received_at=row.received_at)
        return claim, snapshot

    def _writing(self) -> contextlib.AbstractContextManager[sa.Connection]:
        """The claim's and the handling's transaction.

        On SQLite on a connection this thread keeps: checking one out of the pool and back in
        costs more than these transactions' own work. PostgreSQL's are checked out each time, so
        the pool's pre-ping still finds a connection the server dropped.
        """
        if self.engine.dialect.name != "sqlite":
            return self.engine.begin()
        return transaction(self._kept_connection())

    def _kept_connection(self) -> sa.Connection:
        conn: sa.Connection | None = getattr(self._kept, "conn", None)
        if conn is None or conn.invalidated:
            conn = self._kept.conn = self.engine.connect()
            self._all_kept.append(conn)
        return conn

    def _count_delivery(self, message: Message) -> None:
        with self.engine.begin() as conn:
            self._sql.count_delivery.count(conn, {"key_openid": message.incoming.openid, "key_dedupe": message.dedupe_key})

    def _first_decision(self, message: Message, snapshot: _Snapshot) -> Outcome | None:
        """Decide on ``snapshot`` outside any write lock; None if the handler failed.

        It reads through a read-only connection, opened only if the handler reads stored facts,
        so a slow handler holds nobody up.
        """
        incoming = message.incoming
        if not message.known:
            log.warning("unknown MsgType %r from %s: stored, answered success", incoming.kind, incoming.openid)
            return Outcome()
        try:
            with contextlib.ExitStack() as opened:
                reader = DatabaseFacts(lambda: opened.enter_context(self._reads.connect()))
                return self._decide(incoming, snapshot, reader)
        except _DispatchFailed:
            return None

    def _write_handling(self, conn: sa.Connection, inbound_id: int, message: Message, handoff: _Handoff,
                        snapshot: _Snapshot, outcome: Outcome | None) -> Handled:
        """Under the person's lock, write the handler's changes, the answer, the person and the
        state; ``outcome`` None (the handler failed) records the failure instead.

        If the person's state moved since ``snapshot``, or a change finds what it read outdated
        (another person's concurrent write), the handler decides again under the lock.
        """
        if outcome is None:
            return self._record_failure(conn, inbound_id, message, handoff)
        incoming = message.incoming
        self._lock_person(conn, incoming.openid)
        # Every handling of this person's messages holds this lock, so the status read here stays
        # true until commit: a take-over never writes changes twice.
        status, reply, version = self._sql.unanswered.one(conn, {"inbound_id": inbound_id})
        if status is not InboundStatus.CLAIMED:
            return _stored(status, reply)
        if message.known:
            try:
                if version != snapshot.version:
                    outcome = self._decide(incoming, _look_up(conn, self._sql, incoming.openid), DatabaseFacts(conn))
                outcome = self._apply(conn, incoming, outcome)
            except _DispatchFailed:
                # Nothing of this handling is written: _apply undid its own changes.
                return self._record_failure(conn, inbound_id, message, handoff)
        handled = self._settle(conn, inbound_id, message, outcome.replies, InboundStatus.ANSWERED, handoff)
        if handled is None:
            raise RuntimeError(f"inbound {inbound_id} was settled by another worker under the person's lock")
        if message.known:
            _touch_person(conn, self._sql, incoming, self.clock())
        if outcome.state is not None:
            state = outcome.state
            self._sql.save_state.count(conn, {"openid": incoming.openid, "flow": state.flow, "step": state.step,
                                              "data": dict(state.data), "updated_at": self.clock()})
        return handled

    def _apply(self, conn: sa.Connection, incoming: Incoming, outcome: Outcome) -> Outcome:
        """Write the outcome's changes; on an outdated read, decide once more under the lock."""
        if not outcome.changes:
            return outcome
        try:
            with conn.begin_nested():
                apply_changes(conn, incoming, outcome.changes, self.clock(), self.writers)
            return outcome
        except StaleDecision:
            log.info("%s: a change met newer data; deciding again under the lock", incoming.openid)
        outcome = self._decide(incoming, _look_up(conn, self._sql, incoming.openid), DatabaseFacts(conn))
        try:
            with conn.begin_nested():
                apply_changes(conn, incoming, outcome.changes, self.clock(), self.writers)
        except Exception as exc:
            log.exception("writing the changes for %s failed", incoming.openid)
            raise _DispatchFailed() from exc
        return outcome

    def _lock_person(self, conn: sa.Connection, openid: str) -> None:
        if is_postgres(self.engine):
            # SQLite needs nothing here: BEGIN IMMEDIATE (bot/store/engine.py) already serialises writers.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:openid))"),
                         {"namespace": _PERSON_LOCK_NAMESPACE, "openid": openid})

    def _decide(self, incoming: Incoming, snapshot: _Snapshot, stored: StoredFacts) -> Outcome:
        if incoming.kind == "event" and incoming.event not in KNOWN_EVENTS:
            log.info("event %r from %s is not one the bot knows; routing it anyway", incoming.event, incoming.openid)
        try:
            context = Context(texts=self.texts, facts=snapshot.facts, now=self.clock(), stored=stored)
            return self.dispatch(incoming, snapshot.state, context)
        except Exception as exc:
            log.exception("handler failed on %s from %s", incoming.kind, incoming.openid)
            raise _DispatchFailed() from exc

    def _record_failure(self, conn: sa.Connection, inbound_id: int, message: Message, handoff: _Handoff) -> Handled:
        """Mark the message failed (a retry will not run the handler again) and apologise."""
        self._lock_person(conn, message.incoming.openid)
        apology = self.texts.render("handler_failed")
        handled = self._settle(conn, inbound_id, message, (apology,), InboundStatus.FAILED, handoff)
        if handled is None:
            return _stored(*self._sql.stored.one(conn, {"inbound_id": inbound_id}))
        _touch_person(conn, self._sql, message.incoming, self.clock())
        return handled

    def _settle(self, conn: sa.Connection, inbound_id: int, message: Message, replies: tuple[str, ...],
                status: InboundStatus, handoff: _Handoff) -> Handled | None:
        """Record how the message was answered; None if it was answered meanwhile (a take-over)."""
        now = self.clock()
        if handoff.settle():
            values: dict[str, Any] = {"status": InboundStatus.DEFERRED, "reply": None, "answered_at": None}
            handled = Handled(followups=replies, deferred=True)
        else:
            reply = (text_reply_xml(message.incoming.openid, message.account, replies[0], int(now.timestamp()))
                     if replies else None)
            values = {"status": status, "reply": reply, "answered_at": now}
            handled = Handled(reply_xml=reply, followups=replies[1:])
        settled = self._sql.settle.count(conn, {"inbound_id": inbound_id, **values})
        return handled if settled == 1 else None

    def _push_deferred(self, inbound_id: int, openid: str, texts: tuple[str, ...]) -> None:
        """Push a reply the request could not wait for; the row goes from deferred to answered."""
        if not self._push(openid, texts):
            return
        with self.engine.begin() as conn:
            self._sql.pushed.count(conn, {"inbound_id": inbound_id, "answered_at": self.clock()})


async def _finished_within(task: "asyncio.Task[Any]", seconds: float) -> bool:
    """Wait up to ``seconds`` for ``task``, never cancelling it; whether it finished.

    What ``wait_for(shield(task), seconds)`` does, with one future instead of two and no
    exception: this runs for every message.
    """
    if not task.done():
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        timer = loop.call_later(seconds, wake)
        task.add_done_callback(wake)
        try:
            await waiter
        finally:
            timer.cancel()
            task.remove_done_callback(wake)
    return task.done()


def _give(done: "asyncio.Future[Any]", *, result: Any = None, exception: BaseException | None = None) -> None:
    """Settle a write step's future, unless whoever awaited it has gone."""
    if done.cancelled():
        return
    if exception is not None:
        done.set_exception(exception)
    else:
        done.set_result(result)


def _stored(status: InboundStatus, reply: str | None) -> Handled:
    """The answer for a delivery already handled: its stored reply, or ``success``."""
    if status in (InboundStatus.ANSWERED, InboundStatus.FAILED):
        return Handled(reply_xml=reply)
    return Handled()


def _touch_person(conn: sa.Connection, sql: _Statements, incoming: Incoming, now: datetime) -> None:
    """Record when the person last wrote or interacted; it decides which channel may reach them."""
    values: dict[str, Any] = {"openid": incoming.openid, "following": incoming.event != "unsubscribe",
                              "created_at": now, "last_message_at": None, "last_interaction_at": None}
    changed: tuple[str, ...] = ()
    if incoming.kind in USER_MESSAGE_KINDS:
        values["last_message_at"], changed = incoming.created_at, ("last_message_at",)
    elif incoming.event in INTERACTION_EVENTS:
        values["last_interaction_at"], changed = incoming.created_at, ("last_interaction_at",)
    if incoming.event == "subscribe":
        changed += ("following", "unreachable_reason")
    elif incoming.event == "unsubscribe":
        changed += ("following",)
    sql.touch_person(changed).count(conn, values)


def _sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii"))
