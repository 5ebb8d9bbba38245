"""The send path of one outbound notice: which channel WeChat allows, the ledger row that makes it
happen once, and what each of WeChat's answers means.

WeChat lets an account reach a person in two ways (wechat-rules A1, A2, R2-R5):

- a customer-service message, only within 48 hours of the person's last own message and only 5
  times in that window;
- a template message (verified service accounts), at any time, with short typed fields and a
  link, and only to a person who agreed to receive reminders.

The rule choosing between them is :func:`bot.store.reach.choose_channel`, on what is stored about
the person: the preview of an announcement counts with it too.

Every send is a :class:`~bot.store.models.Delivery` row, unique by its key. The row is inserted as
``claimed`` in the transaction that decides the send, turns ``sending`` in a transaction of its
own just before the request leaves (re-checking that the unit still owes; ``sent_at`` then holds
when the request left), and gets WeChat's answer afterwards. A crash between ``sending`` and the
answer leaves the row in doubt. WeChat settles the doubt for template messages: it pushes
``TEMPLATESENDJOBFINISH`` for every one it accepted, so a template row still ``sending`` without
that event long after its request left was never accepted and is sent again under the same row
(:func:`take_in_doubt`). A customer-service row in doubt is never sent again (docs/reminders.md).
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Protocol

import sqlalchemy as sa

from bot.store.models import Delivery, Person, UTCDateTime, table_of, utcnow
from bot.store.reach import ACTIVE, NOT_FOLLOWING, REFUSED, Channel, HeldReason, choose_channel, reaches
from bot.store.sql import insert_on_conflict
from bot.wechat.client import NotSent, WeChatAPIError
from handlers.base import Incoming
from handlers.template_job import TemplateJobFinished

log = logging.getLogger(__name__)


class Status(str, enum.Enum):
    """Where a delivery row stands."""

    CLAIMED = "claimed"  # decided, not yet sent: safe to send after a restart
    SENDING = "sending"  # the request may have left: in doubt if the process died here
    SENT = "sent"
    HELD = "held"  # no channel may reach the person; coordinators are told instead
    SKIPPED = "skipped"  # the unit submitted between the decision and the send
    FAILED = "failed"  # WeChat refused; recorded verbatim, not retried
    DEFECT = "defect"  # our own formatting or configuration is wrong; alerted, not retried


# WeChat's answers, by what they mean for a send (wechat-rules A1, A2, R3).
WINDOW_CLOSED = frozenset({45015, 45047})  # customer-service: out of window / over the count
FORMAT_DEFECTS = frozenset({47003, 40037, 44004, 40008})  # field value, template id, empty or bad message
QUOTA_ERRORS = frozenset({45009, 45011})  # daily or per-minute quota (after the client's waits): stop the batch


# --- template field values -------------------------------------------------------------------


class FieldValueError(ValueError):
    """A template field value breaks its WeChat field type; sending it would be answered 47003."""

    def __init__(self, field_name: str, value: str, problem: str):
        super().__init__(f"template field {field_name}={value!r}: {problem}")
        self.field_name = field_name


_HANZI = re.compile(r"[\u3400-\u9fff]")
_TIME = re.compile(r"(\d{4}年\d{1,2}月\d{1,2}日 )?\d{2}:\d{2}")
_DATE = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日( \d{2}:\d{2})?")
THING_LIMIT = 20


def _thing(value: str) -> str:
    # The 2023-05 rules: at most 20 characters and no line breaks; a long title is cut with "…".
    flat = " ".join(value.split())
    return flat if len(flat) <= THING_LIMIT else flat[: THING_LIMIT - 1] + "…"


def checked_field(field_name: str, value: str) -> str:
    """``value`` made fit for the category-template field ``field_name`` (``thing1``, ``time2``…):
    a ``thing`` is flattened and shortened; every other type must already fit or is refused."""
    kind = re.sub(r"\d+$", "", field_name)
    if kind in ("thing", "keyword") and value.strip():
        return _thing(value)
    rules: dict[str, tuple[bool, str]] = {
        "time": (bool(_TIME.fullmatch(value)), "must be 15:01 or 2019年10月1日 15:01"),
        "date": (bool(_DATE.fullmatch(value)), "must be 2019年10月1日"),
        "phrase": (len(value) <= 5 and all(_HANZI.match(c) for c in value), "at most 5 Chinese characters"),
        "character_string": (len(value) <= 32 and value.isascii() and value.isprintable(), "at most 32 ASCII characters"),
        "number": (len(value) <= 32 and bool(re.fullmatch(r"\d+(\.\d+)?", value)), "at most 32 digits"),
        "name": (0 < len(value) <= 10 and not any(c.isdigit() for c in value), "a name of at most 10 characters"),
        "phone_number": (len(value) <= 17 and bool(re.fullmatch(r"[\d+\-() ]+", value)), "at most 17 digits"),
    }
    fits, problem = rules.get(kind, (bool(value) and "\n" not in value, "must not be empty or span lines"))
    if not value or not fits:
        raise FieldValueError(field_name, value, problem)
    return value


def template_data(fields: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """The template's data: each field (``thing1``) filled with the value of its variable, checked."""
    data = {}
    for field_name, variable in fields.items():
        if variable not in values:
            raise FieldValueError(field_name, "", f"no value for {variable!r}")
        data[field_name] = checked_field(field_name, values[variable])
    return data


# --- the ledger ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One notice to one person, ready to be claimed: what to send on each channel."""

    key: str
    kind: str
    person_id: int
    openid: str
    text: str
    template_id: str = ""
    template_fields: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    unit_id: int | None = None
    deadline_id: int | None = None
    period: str = ""
    stage: str = ""
    local_day: str = ""
    # Set when the notice could not be formatted for its template (a field value breaks its type).
    defect: str | None = None
    # An announcement's row: the announcement it delivers, and its picture (WeChat's media id),
    # sent by customer service right after the text.
    announcement_id: int | None = None
    image_media_id: str | None = None


def insert_ignoring_duplicates(conn: sa.Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert delivery rows whose key is new; the keys this call inserted."""
    if not rows:
        return set()
    table = table_of(Delivery)
    statement = insert_on_conflict(conn, table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
    # A returned key says the row is ours (psycopg reports no rowcount for DO NOTHING).
    return set(conn.execute(statement, rows).scalars())


def reminded_today(conn: sa.Connection, notices: list[Notice]) -> set[str]:
    """Keys of the notices whose liaison already has another notice of the same kind for the same
    unit and deadline on the same local day: at most one a day (wechat-rules R5)."""
    dated = [n for n in notices if n.unit_id is not None and n.local_day]
    if not dated:
        return set()
    table = table_of(Delivery)
    taken = {(r.openid, r.unit_id, r.deadline_id, r.local_day, r.kind): r.key for r in conn.execute(
        sa.select(table.c.openid, table.c.unit_id, table.c.deadline_id, table.c.local_day, table.c.kind, table.c.key)
        .where(table.c.openid.in_([n.openid for n in dated]), table.c.status.in_(ACTIVE),
               table.c.local_day.in_({n.local_day for n in dated})))}
    return {n.key for n in dated
            if taken.get((n.openid, n.unit_id, n.deadline_id, n.local_day, n.kind), n.key) != n.key}


def _decision(notice: Notice, choice: Channel | HeldReason, now: datetime) -> dict[str, Any]:
    held = isinstance(choice, HeldReason)
    status = Status.HELD if held else Status.CLAIMED
    if choice is Channel.TEMPLATE and notice.defect:
        # Sending would be answered 47003 at best: record the defect for the alert instead.
        status = Status.DEFECT
    return {
        "key": notice.key, "openid": notice.openid, "kind": notice.kind, "channel": "" if held else choice.value,
        "payload": payload_of(notice), "status": status.value,
        "errmsg": choice.value if held else notice.defect if status is Status.DEFECT else None,
        "errcode": None, "wechat_msg_id": None, "job_status": None, "sent_at": None,
        "attempts": 0, "unit_id": notice.unit_id, "deadline_id": notice.deadline_id, "period": notice.period,
        "stage": notice.stage, "local_day": notice.local_day, "created_at": now,
        "announcement_id": notice.announcement_id,
    }


def claim_many(conn: sa.Connection, notices: list[Notice], now: datetime,
               template_ready: bool) -> list[Channel | HeldReason | None]:
    """Decide and record, in the caller's transaction, how each notice goes: the channel claimed,
    the reason it is held, or None when nothing is to be sent: the ledger already has its key
    (decided before), or its liaison already had one today for this deadline."""
    known = reaches(conn, [n.person_id for n in notices])
    today = reminded_today(conn, notices)
    choices: dict[str, Channel | HeldReason] = {
        n.key: choose_channel(known[n.person_id], now, template_ready) for n in notices if n.key not in today}
    inserted = insert_ignoring_duplicates(
        conn, [_decision(n, choices[n.key], now) for n in notices if n.key in choices])
    return [choices[n.key] if n.key in inserted else None for n in notices]


def claim(conn: sa.Connection, notice: Notice, now: datetime, template_ready: bool) -> Channel | HeldReason | None:
    """:func:`claim_many` for one notice."""
    return claim_many(conn, [notice], now, template_ready)[0]


def payload_of(notice: Notice) -> dict[str, Any]:
    """What the row keeps of the notice, so a restart can send it without recomputing."""
    payload = {"text": notice.text, "template_id": notice.template_id, "fields": dict(notice.template_fields),
               "url": notice.url}
    return payload | {"image": notice.image_media_id} if notice.image_media_id else payload


# Built once: a fan-out runs these for every message, and composing them each time cost more
# than executing them.
_STILL_OWED = ("NOT EXISTS (SELECT 1 FROM submission s WHERE s.unit_id = delivery.unit_id "
               "AND s.deadline_id = delivery.deadline_id AND s.period = delivery.period AND s.status = 'submitted')")
_START_SENDING = sa.text(
    "UPDATE delivery SET status = 'sending', attempts = attempts + 1, sent_at = :left_at "
    f"WHERE id = :id AND status = 'claimed' AND {_STILL_OWED}").bindparams(sa.bindparam("left_at", type_=UTCDateTime()))
# WeChat never confirmed it: a template row still sending, with neither the msgid of an answer nor
# a job event, whose request left before the cutoff. ``attempts`` makes two takers one.
_UNCONFIRMED = ("status = 'sending' AND channel = 'template' AND wechat_msg_id IS NULL AND job_status IS NULL "
                "AND sent_at < :cutoff")
_TAKE_IN_DOUBT = sa.text(
    "UPDATE delivery SET attempts = attempts + 1, sent_at = :left_at "
    f"WHERE id = :id AND attempts = :attempts AND {_UNCONFIRMED} AND {_STILL_OWED}").bindparams(
    sa.bindparam("left_at", type_=UTCDateTime()), sa.bindparam("cutoff", type_=UTCDateTime()))
# Keeps sent_at (when the request left: the wait for the job event counts from it) and anything a
# job event that came first has settled.
_IN_DOUBT = sa.text("UPDATE delivery SET channel = :channel, errmsg = :errmsg WHERE id = :id AND status = 'sending'")
_SKIP_SUBMITTED = sa.text(
    "UPDATE delivery SET status = 'skipped', errmsg = 'submitted before the send' WHERE id = :id AND status = 'claimed'")
_RECORD = sa.text(
    "UPDATE delivery SET status = :status, channel = :channel, errcode = :errcode, errmsg = :errmsg, "
    "wechat_msg_id = :msgid, sent_at = :sent_at WHERE id = :id").bindparams(sa.bindparam("sent_at", type_=UTCDateTime()))


def start_sending(conn: sa.Connection, delivery_id: int, left_at: datetime | None = None) -> bool:
    """Turn a claimed row ``sending`` (the request leaves at ``left_at``, by the real clock: default
    now), unless its unit has meanwhile submitted what it owed (then the row is skipped); True
    when the request may go now."""
    if conn.execute(_START_SENDING, {"id": delivery_id, "left_at": left_at or utcnow()}).rowcount:
        return True
    conn.execute(_SKIP_SUBMITTED, {"id": delivery_id})
    return False


def unconfirmed_filter(cutoff: datetime) -> sa.TextClause:
    """Delivery rows WeChat never confirmed: template messages left ``sending`` with no answer
    and no TEMPLATESENDJOBFINISH, whose request left before ``cutoff`` (real clock)."""
    return sa.text(_UNCONFIRMED).bindparams(sa.bindparam("cutoff", cutoff, type_=UTCDateTime()))


def take_in_doubt(conn: sa.Connection, delivery_id: int, attempts: int, left_at: datetime, cutoff: datetime) -> bool:
    """Take a template row WeChat never confirmed, to send it again under the same row: True for
    the one caller whose conditional UPDATE matched (``attempts`` as read), while the row is
    still unconfirmed since before ``cutoff`` and its unit still owes.

    WeChat pushes TEMPLATESENDJOBFINISH for every template message it accepted (wechat-rules A2),
    and :func:`record_template_job_on` settles a ``sending`` row on it even before the send's own
    answer is written. So a row with neither, well after its request left, was never accepted:
    the process died before the request reached WeChat. ``cutoff`` must leave room for a live
    sender still waiting for its answer and for the event's tries (docs/reminders.md).
    """
    values = {"id": delivery_id, "attempts": attempts, "left_at": left_at, "cutoff": cutoff}
    return bool(conn.execute(_TAKE_IN_DOUBT, values).rowcount)


# --- sending ----------------------------------------------------------------------------------


class Outbound(Protocol):
    """The two calls of :class:`bot.wechat.client.WeChatAPI` the send path uses."""

    def send_text(self, openid: str, content: str) -> None: ...

    def send_template(self, openid: str, template_id: str, data: Mapping[str, str], url: str | None = None) -> str: ...


class Verdict(str, enum.Enum):
    """What an answer means for the person and the batch."""

    SENT = "sent"
    UNREACHABLE = "unreachable"  # mark the person; coordinators are told
    DEFECT = "defect"  # our bug or configuration: alert, no retry
    QUOTA = "quota"  # stop the batch, alert; the row goes back to claimed for a later run
    IN_DOUBT = "in_doubt"  # no answer, the request may have arrived: the row stays sending
    NOT_SENT = "not_sent"  # surely never left (no token, no connection): back to claimed, the batch pauses
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    """The outcome of one send: channel finally used, WeChat's answer, and its meaning."""

    verdict: Verdict
    channel: Channel | None
    errcode: int = 0
    errmsg: str = ""
    msgid: str | None = None


def verdict_of(errcode: int) -> Verdict:
    """The meaning of WeChat's ``errcode`` for a reminder send (wechat-rules R3)."""
    if errcode == 0:
        return Verdict.SENT
    if errcode in NOT_FOLLOWING or errcode in REFUSED:
        return Verdict.UNREACHABLE
    if errcode in FORMAT_DEFECTS:
        return Verdict.DEFECT
    if errcode in QUOTA_ERRORS:
        return Verdict.QUOTA
    return Verdict.FAILED


def send(api: Outbound, notice_payload: Mapping[str, Any], openid: str, channel: Channel,
         template_allowed: bool) -> Result:
    """Send once on ``channel``; a customer-service send answered 45015/45047 goes once more as a
    template message when ``template_allowed`` (the same delivery, the same key)."""
    try:
        if channel is Channel.CUSTOMER_SERVICE:
            api.send_text(openid, notice_payload["text"])
            return Result(Verdict.SENT, channel)
        msgid = api.send_template(openid, notice_payload["template_id"], notice_payload["fields"], notice_payload["url"])
        return Result(Verdict.SENT, channel, msgid=msgid)
    except WeChatAPIError as error:
        if channel is Channel.CUSTOMER_SERVICE and error.errcode in WINDOW_CLOSED and template_allowed:
            return send(api, notice_payload, openid, Channel.TEMPLATE, False)
        verdict = (Verdict.NOT_SENT if isinstance(error, NotSent)
                   else Verdict.IN_DOUBT if error.in_doubt else verdict_of(error.errcode))
        return Result(verdict, channel, error.errcode, error.errmsg)


def _answer(delivery_id: int, result: Result, now: datetime, channel: str) -> dict[str, Any]:
    if result.verdict in (Verdict.QUOTA, Verdict.NOT_SENT):
        # Not delivered and not the person's fault: a later run sends it when the quota, the
        # token store or the connection is back.
        return {"id": delivery_id, "status": Status.CLAIMED.value, "channel": channel, "errcode": result.errcode,
                "errmsg": result.errmsg[:500], "msgid": None, "sent_at": None}
    status = {Verdict.SENT: Status.SENT, Verdict.DEFECT: Status.DEFECT}.get(result.verdict, Status.FAILED)
    return {"id": delivery_id, "status": status.value, "channel": channel, "errcode": result.errcode or None,
            "errmsg": result.errmsg[:500] or None, "msgid": result.msgid,
            "sent_at": now if result.verdict is Verdict.SENT else None}


def record_many(conn: sa.Connection, answers: list[tuple[int, str, Result]], now: datetime) -> None:
    """Write WeChat's answers (delivery id, OpenID, result) on their rows, and mark the people
    WeChat says cannot be reached. A send in doubt leaves its row ``sending``, as a crash would:
    a template message is settled by its job event or sent again after the wait, a
    customer-service message is not sent again (docs/reminders.md)."""
    doubtful = [(delivery_id, result) for delivery_id, _openid, result in answers if result.verdict is Verdict.IN_DOUBT]
    if doubtful:
        conn.execute(_IN_DOUBT, [{"id": delivery_id, "channel": result.channel.value if result.channel else "",
                                  "errmsg": result.errmsg[:500]} for delivery_id, result in doubtful])
    answered = [answer for answer in answers if answer[2].verdict is not Verdict.IN_DOUBT]
    if not answered:
        return
    conn.execute(_RECORD, [_answer(delivery_id, result, now, result.channel.value if result.channel else "")
                           for delivery_id, _openid, result in answered])
    for _delivery_id, openid, result in answered:
        if result.verdict is Verdict.UNREACHABLE:
            mark_unreachable(conn, openid, f"{result.errcode} {result.errmsg}",
                             following=result.errcode not in NOT_FOLLOWING)


def mark_unreachable(conn: sa.Connection, openid: str, reason: str, *, following: bool = True) -> None:
    """Record why WeChat cannot reach ``openid``; reminders are held and coordinators told until
    the person follows again (the gateway clears the reason on subscribe)."""
    people = table_of(Person)
    conn.execute(people.update().where(people.c.openid == openid)
                 .values(unreachable_reason=reason[:200], following=following))


def record_template_job(engine: sa.Engine, openid: str, msgid: str, status: str) -> bool:
    """Record a ``TEMPLATESENDJOBFINISH`` event (``MsgID``, ``Status``) against its delivery.

    The gateway records every such event through :func:`record_template_job_on`. ``Status`` is kept verbatim; any ``failed…``
    status marks the person (no blind retry). When no row has this msgid, the event settles the
    oldest template delivery to ``openid`` left in doubt by a crash (see docs/reminders.md).
    Returns whether a delivery was found.
    """
    with engine.begin() as conn:
        return record_template_job_on(conn, openid, msgid, status)


def write_template_job(conn: sa.Connection, incoming: Incoming, change: TemplateJobFinished, now: datetime) -> None:
    """The writer of a handled TEMPLATESENDJOBFINISH: the ledger learns how the message ended."""
    record_template_job_on(conn, incoming.openid, change.msgid, change.status)


def record_template_job_on(conn: sa.Connection, openid: str, msgid: str, status: str) -> bool:
    """:func:`record_template_job` inside the caller's transaction (the gateway's handling one)."""
    table = table_of(Delivery)
    by_msgid = table.update().where(table.c.wechat_msg_id == msgid).values(job_status=status[:100])
    found = conn.execute(by_msgid).rowcount or _settle_in_doubt(conn, openid, msgid, status)
    if not found:
        # The send's own answer (with this msgid) may have been committed between the two
        # statements above: under PostgreSQL's read committed the first saw no msgid yet and the
        # second no row in doubt any more. Each statement sees the latest commits, so ask again.
        found = conn.execute(by_msgid).rowcount
    if status.startswith("failed"):
        mark_unreachable(conn, openid, f"TEMPLATESENDJOBFINISH {status}")
    return bool(found)


def _settle_in_doubt(conn: sa.Connection, openid: str, msgid: str, status: str) -> int:
    table = table_of(Delivery)
    in_doubt = conn.execute(
        sa.select(table.c.id).where(table.c.openid == openid, table.c.status == Status.SENDING.value,
                                    table.c.channel == Channel.TEMPLATE.value)
        .order_by(table.c.id).limit(1)
    ).scalar()
    if in_doubt is None:
        return 0
    return conn.execute(table.update().where(table.c.id == in_doubt).values(
        status=Status.SENT.value, wechat_msg_id=msgid, job_status=status[:100])).rowcount
