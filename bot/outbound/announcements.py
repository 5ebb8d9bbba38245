"""Announcements (通知) fanned out to liaisons, exactly once each, and the report to their sender.

``确认`` in the chat (:class:`~handlers.changes.SendAnnouncement`, written by
:func:`write_announcement`) or ``safetybot notice send`` (:func:`queue_announcement`) inserts an
:class:`~bot.store.models.Announcement` row, ``queued``. A thread of the worker role
(:class:`Announcements`, run by :mod:`bot.worker`) then, for each one:

1. **fans out**: every recipient (``bot.store.audience.recipients``) becomes a
   :class:`~bot.store.models.Delivery` row through the reminders' ledger
   (:func:`bot.outbound.sending.claim_all`: a chunk of rows a transaction, each unique by
   ``announcement:<id>:<person id>``), its channel decided by the same rules the preview counted
   with: customer service inside the person's 48 hours while fewer than 5 went, else a template
   message whose link opens the full text (:mod:`bot.pages`), else held until they write;
2. **sends** the claimed rows with the reminders' concurrent path and limits
   (:class:`bot.outbound.sending.ConcurrentSender`); the picture follows the text by customer
   service (a template message carries only the text's title and a link);
3. **reports** once nothing is left to send: the counts go into the row and, through the outbox,
   to the sender as a note.

A crash anywhere is resumed by the next pass: the announcement is still ``queued`` (fan out again:
rows already claimed are not claimed twice) or ``sending`` (send what is still claimed). A row a
crash left ``sending`` is never sent blindly again (docs/reminders.md): a template message is
confirmed by its TEMPLATESENDJOBFINISH or sent again after the wait; a customer-service message
stays in doubt and is counted as not confirmed. Held rows are released by the outbox when their
person writes (:meth:`bot.outbound.outbox.Outbox.send_claimed`) and sent by the next pass here.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Mapping

import sqlalchemy as sa

from bot.background import repeating
from bot.campaigns import CampaignDefinition, definition_of
from bot.outbound.delivery import (
    Channel, FieldValueError, Notice, Outbound, Result, Status, Verdict, send, template_data,
)
from bot.outbound.outbox import PERSON_NOTE, claim_notes
from bot.pages import notice_url
from bot.outbound.sending import ConcurrentSender, Tally, claim_all, resend_cutoff, rows_to_send
from bot.store.audience import ANNOUNCEMENT, counts, notice_template_ready, recipients, title_of
from bot.store.models import Announcement, AnnouncementStatus, Campaign, Delivery, Person, Role, table_of, utcnow
from bot.store.writers import StaleDecision
from bot.texts import Texts
from bot.wechat.client import WeChatAPIError
from handlers.base import Incoming
from handlers.changes import SendAnnouncement
from handlers.ports import Audience, DeliveryCounts

log = logging.getLogger("safetybot.announcements")

POLL_SECONDS = 1.0
# After a batch stopped (WeChat's quota, or sends that could not leave) the fan-out waits this long
# rather than meet the same wall again each pass.
STOPPED_PAUSE = timedelta(minutes=1)
RESEND_AFTER = timedelta(minutes=5)
CLI_SENDER = "命令行"
STAFF_SENDER = "工作人员"
TEMPLATE_VALUES = ("title", "sender", "time", "campaign", "issuer")
# The texts the fan-out renders, for the start-up check.
ANNOUNCEMENT_TEMPLATES = ("announcement_text", "announcement_report",
                          *(f"template_value_{name}" for name in TEMPLATE_VALUES))
_ANNOUNCEMENT = table_of(Announcement)
_DELIVERY = table_of(Delivery)
_PERSON = table_of(Person)


def write_announcement(conn: sa.Connection, incoming: Incoming, change: SendAnnouncement, now: datetime) -> None:
    """The writer of :class:`SendAnnouncement`: queue the announcement, unless the sender is no
    longer staff or a coordinator of its campaign (then :class:`StaleDecision`: the handler
    decides again and refuses)."""
    sender = conn.execute(sa.select(_PERSON.c.role, _PERSON.c.campaign_id, _PERSON.c.name)
                          .where(_PERSON.c.openid == incoming.openid)).first()
    if sender is None or sender.role not in (Role.STAFF, Role.COORDINATOR) or sender.campaign_id != change.campaign_id:
        raise StaleDecision(f"{incoming.openid} is no longer staff of campaign {change.campaign_id}")
    queue_announcement(conn, change.campaign_id, change.text, change.audience, now, sender_openid=incoming.openid,
                       sender_name=sender.name or STAFF_SENDER, image_media_id=change.image_media_id)


def queue_announcement(conn: sa.Connection, campaign_id: int, text: str, audience: Audience, now: datetime, *,
                       sender_openid: str = "", sender_name: str = CLI_SENDER,
                       image_media_id: str | None = None) -> int:
    """Insert a queued announcement in the caller's transaction; its id. ``sender_openid`` ""
    (the command line) gets no report note."""
    return int(conn.execute(sa.insert(_ANNOUNCEMENT).values(
        campaign_id=campaign_id, sender_openid=sender_openid, sender_name=sender_name, text=text,
        image_media_id=image_media_id, audience=audience.as_json(), status=AnnouncementStatus.QUEUED.value,
        recipients=0, report={}, created_at=now).returning(_ANNOUNCEMENT.c.id)).scalar_one())


def deliver(api: Any, payload: Mapping[str, Any], openid: str, channel: Channel, template_allowed: bool) -> Result:
    """One recipient's message (:func:`bot.outbound.delivery.send`), then its picture as a
    customer-service image when the text went by customer service. A picture WeChat refuses is
    logged and leaves the text's result as it is: the text, the announcement itself, arrived."""
    result = send(api, payload, openid, channel, template_allowed)
    image = payload.get("image")
    if image and result.verdict is Verdict.SENT and result.channel is Channel.CUSTOMER_SERVICE:
        try:
            api.send_image(openid, image)
        except WeChatAPIError as error:
            log.warning("announcement picture to %s: %s %s", openid, error.errcode, error.errmsg)
    return result


class Announcements:
    """Fans out queued announcements and sends their rows through ``api`` (:class:`WeChatAPI`).

    ``template_messages``: the account kind has template messages; ``page_base`` and ``link_key``
    make the links of template messages (:func:`bot.pages.notice_url`);
    ``clock`` gives the now deliveries are decided at (the fake's in tests); ``real_clock`` the
    real time the wait for WeChat's job events is measured on; ``progress(done, total)`` is told
    after each row sent (the command line's progress line); ``reads`` is the engine the pass looks
    for work on (:func:`bot.store.engine.read_engine`; default ``engine``).
    """

    def __init__(self, engine: sa.Engine, api: Outbound, texts: Texts, *, template_messages: bool, page_base: str,
                 link_key: bytes, clock: Callable[[], datetime] = utcnow, concurrency: int = 32,
                 real_clock: Callable[[], datetime] = utcnow, resend_after: timedelta = RESEND_AFTER,
                 progress: Callable[[int, int], None] | None = None, reads: sa.Engine | None = None):
        self.engine = engine
        # Looking for work every second must not take SQLite's write lock.
        self.reads = reads or engine
        self.texts = texts
        self.template_messages = template_messages
        self.page_base = page_base
        self.link_key = link_key
        self.clock = clock
        self.real_clock = real_clock
        self.resend_after = resend_after
        self.sender = ConcurrentSender(engine, api, concurrency=concurrency, real_clock=real_clock,
                                       progress=progress, what=ANNOUNCEMENT)
        self._paused_until: datetime | None = None

    # --- the worker's pass --------------------------------------------------------------------

    def run_pending(self) -> Tally:
        """One pass: fan out every queued announcement, send every claimed row (a crash's, or a
        held one released when its person wrote), and report every announcement that is done."""
        tally = Tally()
        if self._paused_until is not None and self.real_clock() < self._paused_until:
            return tally
        with self.reads.connect() as conn:
            open_ids = list(conn.execute(sa.select(_ANNOUNCEMENT.c.id).where(
                _ANNOUNCEMENT.c.status != AnnouncementStatus.DONE.value).order_by(_ANNOUNCEMENT.c.id)).scalars())
            waiting = list(conn.execute(sa.select(_DELIVERY.c.announcement_id).where(
                _DELIVERY.c.kind == ANNOUNCEMENT, _DELIVERY.c.status == Status.CLAIMED.value).distinct()).scalars())
        for announcement_id in sorted(set(open_ids) | set(waiting)):
            tally.add(self.run(announcement_id))
            if tally.stopped:
                log.error("announcements stopped: %s", tally.stopped)
                self._paused_until = self.real_clock() + STOPPED_PAUSE
                break
        return tally

    def run(self, announcement_id: int) -> Tally:
        """Fan out, send and (when nothing is left to send) report one announcement; safe to run
        again at any time, from any process."""
        tally = self.fan_out(announcement_id)
        tally.add(self.send(announcement_id))
        if not tally.stopped:
            self.finish(announcement_id)
        return tally

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Run :meth:`run_pending` in a thread for the duration of the ``with`` block."""
        with repeating(self.run_pending, "announcements", POLL_SECONDS):
            yield

    # --- the steps ----------------------------------------------------------------------------

    def _announcement(self, announcement_id: int) -> tuple[Any, CampaignDefinition]:
        campaigns = table_of(Campaign)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_ANNOUNCEMENT).where(_ANNOUNCEMENT.c.id == announcement_id)).one()
            campaign = conn.execute(sa.select(campaigns).where(campaigns.c.id == row.campaign_id)).one()
        return row, definition_of(Campaign(**campaign._mapping))

    def fan_out(self, announcement_id: int) -> Tally:
        """Claim a delivery row for every recipient of a queued announcement (held ones counted),
        then mark it ``sending``; nothing for one already fanned out."""
        row, definition = self._announcement(announcement_id)
        if row.status != AnnouncementStatus.QUEUED.value:
            return Tally()
        ready = notice_template_ready(definition, self.template_messages)
        with self.engine.connect() as conn:
            found, _units, without_liaison = recipients(conn, row.campaign_id, Audience.of_json(row.audience))
        text = self.texts.render("announcement_text", campaign=definition.name, text=row.text)
        fields, defect = self._template_fields(row, definition, ready)
        url = notice_url(self.page_base, self.link_key, row.id, row.created_at)
        template_id = definition.notice_template.template_id if definition.notice_template else ""
        notices = [Notice(key=f"{ANNOUNCEMENT}:{row.id}:{r.person_id}", kind=ANNOUNCEMENT, person_id=r.person_id,
                          openid=r.openid, text=text, template_id=template_id, template_fields=fields, url=url,
                          unit_id=r.unit_id, defect=defect, announcement_id=row.id, image_media_id=row.image_media_id)
                   for r in found]
        tally = claim_all(self.engine, notices, self.clock(), ready)
        with self.engine.begin() as conn:
            conn.execute(_ANNOUNCEMENT.update().where(
                _ANNOUNCEMENT.c.id == row.id, _ANNOUNCEMENT.c.status == AnnouncementStatus.QUEUED.value).values(
                status=AnnouncementStatus.SENDING.value, recipients=len(found),
                report={"without_liaison": without_liaison}))
        return tally

    def _template_fields(self, row: Any, definition: CampaignDefinition, ready: bool) -> tuple[dict[str, str], str | None]:
        """The template message's fields (the same for every recipient), or the defect that stops them."""
        template = definition.notice_template
        if not ready or template is None:
            return {}, None
        raw = {"title": title_of(row.text), "sender": row.sender_name or STAFF_SENDER,
               "time": row.created_at.astimezone(definition.timezone), "campaign": definition.name,
               "issuer": definition.issuer}
        values = {name: self.texts.render(f"template_value_{name}", value=raw[name]) for name in TEMPLATE_VALUES}
        try:
            return template_data(template.data, values), None
        except FieldValueError as error:
            log.error("announcement %s cannot be formatted for its template: %s", row.id, error)
            return {}, str(error)

    def send(self, announcement_id: int) -> Tally:
        """Send the announcement's claimed rows, and its template rows WeChat never confirmed."""
        row, definition = self._announcement(announcement_id)
        rows = rows_to_send(self.engine, resend_cutoff(self.engine, self.real_clock(), self.resend_after),
                            _DELIVERY.c.announcement_id == announcement_id, _DELIVERY.c.kind == ANNOUNCEMENT)
        return self.sender.send_rows(rows, self.clock(), notice_template_ready(definition, self.template_messages),
                                     deliver)

    def finish(self, announcement_id: int) -> DeliveryCounts | None:
        """Once the announcement has nothing left to send (nothing claimed, no template message
        waiting for WeChat's confirmation), record its counts and note them to the sender; the
        counts, or None while it is not done (or was reported before)."""
        unfinished = sa.or_(_DELIVERY.c.status == Status.CLAIMED.value, sa.and_(
            _DELIVERY.c.status == Status.SENDING.value, _DELIVERY.c.channel == Channel.TEMPLATE.value,
            _DELIVERY.c.wechat_msg_id.is_(None), _DELIVERY.c.job_status.is_(None)))
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(_ANNOUNCEMENT).where(_ANNOUNCEMENT.c.id == announcement_id)).one()
            left = conn.execute(sa.select(_DELIVERY.c.id).where(
                _DELIVERY.c.announcement_id == announcement_id, unfinished).limit(1)).first()
            if row.status != AnnouncementStatus.SENDING.value or left is not None:
                return None
            found = counts(conn, [announcement_id])[announcement_id]
            report = dict(row.report or {}) | found.as_json()
            done = conn.execute(_ANNOUNCEMENT.update().where(
                _ANNOUNCEMENT.c.id == announcement_id, _ANNOUNCEMENT.c.status == AnnouncementStatus.SENDING.value)
                .values(status=AnnouncementStatus.DONE.value, finished_at=self.clock(), report=report))
            if not done.rowcount:
                return None  # another process reported it first
            sender = conn.execute(sa.select(_PERSON.c.id).where(_PERSON.c.openid == row.sender_openid)).scalar()
            if sender is not None:
                claim_notes(conn, PERSON_NOTE, f"announcement:{announcement_id}:report",
                            self.report_text(row, found), [(sender, row.sender_openid)], self.clock())
        return found

    def report_text(self, row: Any, found: DeliveryCounts) -> str:
        """The delivery report of the announcement ``row`` with the counts ``found``."""
        return self.texts.render("announcement_report", title=title_of(row.text), recipients=row.recipients,
                                 without_liaison=(row.report or {}).get("without_liaison", 0), counts=found)
