"""Sending what is due: the reminders of the plan whose time has come, to those who still owe.

:meth:`Reminders.run_due` is the one entry point, for the scheduler's jobs and for
``safetybot reminders run-due --now``. It is safe to run at any time, as often as wanted, from
several processes at once: every notice is a ledger row unique by its key, so a second run finds
the work already claimed. For each deadline and period only the latest reminder whose time has
come is sent, and only while it is still useful (before the deadline; an overdue follow-up for a
day), so reminders missed during downtime go once and obsolete ones not at all.

A template reminder left ``sending`` by a crash and never confirmed by WeChat's
``TEMPLATESENDJOBFINISH`` is sent again under its row by the next run (:meth:`Reminders.run_due`,
or :meth:`Reminders.send_leftovers`, which the scheduler calls every minute) while it is still
useful, once ``resend_after`` has passed since its request left *and* since the bot last heard
such an event: after a fan-out the events come as a stream, and one still flowing may yet hold
this row's. Both waits are measured on the real clock, never on the ``now`` a replay passes in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Sequence

import sqlalchemy as sa

from bot.campaigns import CampaignDefinition, MessageTemplate, ReminderKind, definition_of
from bot.store.engine import session
from bot.outbound.delivery import (
    FieldValueError,
    HeldReason,
    Notice,
    Outbound,
    Status,
    template_data,
)
from bot.outbound.outbox import office
from bot.outbound.sending import ConcurrentSender, Tally, claim_all, resend_cutoff, rows_to_send
from bot.store.models import (
    Campaign, Deadline, DeadlinePeriod, Delivery, Person, Role, Submission, Unit, table_of, utcnow,
)
from bot.texts import Texts
from scheduler.plan import PlannedReminder, QuietHours, Stage, plan

log = logging.getLogger(__name__)

# How long each kind of moment stays worth sending after its time (a misfire after downtime).
DUE_GRACE = timedelta(minutes=15)
OVERDUE_USEFUL_FOR = timedelta(days=1)
DIGEST_USEFUL_FOR = timedelta(days=1)
# How long a template message in doubt waits for WeChat's TEMPLATESENDJOBFINISH before it is sent
# again (TEMPLATE_EVENT_WAIT_SECONDS; why 5 minutes: docs/reminders.md).
RESEND_AFTER = timedelta(minutes=5)
REMINDER, COORDINATOR_NOTE, DIGEST = "reminder", "coordinator_note", "digest"


def still_useful(item: PlannedReminder, now: datetime) -> bool:
    """Whether a moment whose time has come is still worth sending at ``now``."""
    if item.stage is Stage.BEFORE:
        return now < item.due_at
    if item.stage is Stage.DUE:
        return now < item.due_at + DUE_GRACE
    lasts = OVERDUE_USEFUL_FOR if item.stage is Stage.OVERDUE else DIGEST_USEFUL_FOR
    return now < item.at + lasts


def due_now(planned: Iterable[PlannedReminder], now: datetime) -> list[PlannedReminder]:
    """The moments to act on at ``now``: per deadline and period the latest reminder that has come
    (an earlier one missed meanwhile is superseded by it) and every digest, each if still useful."""
    latest: dict[tuple[int, str], PlannedReminder] = {}
    digests = []
    for item in planned:
        if item.at > now:
            continue
        if item.stage is Stage.DIGEST:
            digests.append(item)
            continue
        key = (item.deadline_id, item.period)
        if key not in latest or item.at >= latest[key].at:
            latest[key] = item
    chosen = list(latest.values()) + digests
    return sorted((i for i in chosen if still_useful(i, now)), key=lambda i: (i.at, i.stage is Stage.DIGEST))


@dataclass(frozen=True)
class Owed:
    """Who owes one deadline's period: the units, their liaisons, and who is left without one."""

    total_units: int
    missing: list[tuple[int, str]]
    liaisons: list[tuple[int, str, int, str]]  # person id, openid, unit id, unit name
    without_liaison: list[str]


def owed(conn: sa.Connection, campaign_id: int, deadline_id: int, period: str) -> Owed:
    """The units of the campaign that have not submitted ``deadline_id`` for ``period``."""
    units = table_of(Unit)
    subs = table_of(Submission)
    people = table_of(Person)
    all_units = conn.execute(sa.select(units.c.id, units.c.name).where(units.c.campaign_id == campaign_id)
                             .order_by(units.c.id)).all()
    submitted = set(conn.execute(sa.select(subs.c.unit_id).where(
        subs.c.deadline_id == deadline_id, subs.c.period == period, subs.c.status == "submitted")).scalars())
    missing = [(u.id, u.name) for u in all_units if u.id not in submitted]
    names = dict(missing)
    liaisons = conn.execute(sa.select(people.c.id, people.c.openid, people.c.unit_id).where(
        people.c.role == Role.LIAISON.value, people.c.unit_id.in_(list(names))).order_by(people.c.id)).all()
    covered = {row.unit_id for row in liaisons}
    return Owed(len(all_units), missing, [(r.id, r.openid, r.unit_id, names[r.unit_id]) for r in liaisons],
                [name for unit_id, name in missing if unit_id not in covered])


class Reminders:
    """Sends the due reminders, coordinator notes and digests through ``api``.

    ``template_messages`` says whether the account kind has template messages at all;
    ``page_url`` gives the web page of a deadline's period when the bot has one (the template's link).
    ``resend_after`` is how long a template message in doubt waits for WeChat's job event before
    it is sent again, measured on ``real_clock`` (the real time in the product; a replay's ``now``
    cannot stand in for it, as every run of a replay may pass the same ``now``).
    """

    def __init__(self, engine: sa.Engine, api: Outbound, texts: Texts, *, template_messages: bool,
                 quiet: QuietHours = QuietHours(), concurrency: int = 32,
                 page_url: Callable[[PlannedReminder], str | None] = lambda item: None,
                 progress: Callable[[int, int], None] | None = None,
                 resend_after: timedelta = RESEND_AFTER, real_clock: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.api = api
        self.texts = texts
        self.template_messages = template_messages
        self.quiet = quiet
        self.concurrency = concurrency
        self.page_url = page_url
        self.progress = progress
        self.resend_after = resend_after
        self.real_clock = real_clock

    def run_due(self, now: datetime, campaign_slug: str | None = None) -> Tally:
        """Send everything due at ``now`` that has not been sent; stop early on a quota error."""
        tally = Tally()
        for item in due_now(plan(self.engine, self.quiet, campaign_slug), now):
            step = self._digest(item, now) if item.stage is Stage.DIGEST else self._remind(item, now)
            tally.add(step)
            if tally.stopped:
                log.error("reminders stopped: %s", tally.stopped)
                break
        return tally

    # --- reminders to liaisons ------------------------------------------------------------------

    def claim_due(self, now: datetime, campaign_slug: str | None = None) -> Tally:
        """Decide and record every reminder due at ``now`` without sending any: the first half of
        :meth:`run_due`, which sends what was claimed (here or by a run that crashed) once."""
        tally = Tally()
        for item in due_now(plan(self.engine, self.quiet, campaign_slug), now):
            if item.stage is not Stage.DIGEST:
                notices, _who, ready = self._notices(item)
                tally.add(self._claim_all(notices, now, ready))
        return tally

    def send_leftovers(self, now: datetime, campaign_slug: str | None = None) -> Tally:
        """Send, for the moments due at ``now`` that are still useful, what earlier runs left:
        rows a crash left ``claimed``, and template messages WeChat never confirmed within
        ``resend_after``. Cheap when there are none (one query), so the scheduler runs it often."""
        table = table_of(Delivery)
        with self.engine.connect() as conn:
            waiting = conn.execute(sa.select(table.c.id).where(
                table.c.kind == REMINDER, table.c.status == Status.CLAIMED.value).limit(1)).first()
        tally = Tally()
        if waiting is None and self._resend_cutoff() is None:
            return tally
        for item in due_now(plan(self.engine, self.quiet, campaign_slug), now):
            if item.stage is not Stage.DIGEST:
                tally.add(self._send_claimed(REMINDER, item, now, self._ready(self._template_of(item)[1])))
            if tally.stopped:
                break
        return tally

    def _template_of(self, item: PlannedReminder) -> tuple[CampaignDefinition, MessageTemplate | None]:
        campaign = definition_of(self._campaign(item.campaign_id))
        return campaign, campaign.message_templates.get(item.reminder_kind) if item.reminder_kind else None

    def _notices(self, item: PlannedReminder) -> tuple[list[Notice], Owed, bool]:
        campaign, template = self._template_of(item)
        with self.engine.connect() as conn:
            who = owed(conn, item.campaign_id, item.deadline_id, item.period)
        notices = [self._reminder(item, campaign, template, person_id, openid, unit_id, unit)
                   for person_id, openid, unit_id, unit in who.liaisons]
        return notices, who, self._ready(template)

    def _remind(self, item: PlannedReminder, now: datetime) -> Tally:
        notices, who, ready = self._notices(item)
        tally = self._claim_all(notices, now, template_ready=ready)
        tally.add(self._send_claimed(REMINDER, item, now, template_ready=ready))
        if not tally.stopped and item.by_email is None:  # nobody is known to owe what goes by e-mail
            tally.add(self._note(item, who, now))
        return tally

    def _ready(self, template: MessageTemplate | None) -> bool:
        return self.template_messages and template is not None and bool(template.template_id)

    def _campaign(self, campaign_id: int) -> Campaign:
        with session(self.engine) as db:
            campaign = db.get(Campaign, campaign_id)
            assert campaign is not None
            return campaign

    def _values(self, item: PlannedReminder, campaign: CampaignDefinition, unit: str,
                needed: Iterable[str]) -> dict[str, str]:
        """The template variables the message template uses, each rendered by its own text."""
        raw = {"campaign": campaign.name, "deadline": item.deadline_title, "unit": unit,
               "due_at": item.due_at.astimezone(item.timezone), "period": item.period,
               "issuer": campaign.issuer, "contact_phone": campaign.contact.phone or campaign.contact.mobile}
        return {name: self.texts.render(f"template_value_{name}", value=raw[name]) for name in needed if name in raw}

    def _reminder(self, item: PlannedReminder, campaign: CampaignDefinition, template: MessageTemplate | None,
                  person_id: int, openid: str, unit_id: int, unit: str) -> Notice:
        text = (self.texts.render("reminder_by_email", deadline=item.deadline_title, unit=unit, email=item.by_email,
                                  due=item.due_at.astimezone(item.timezone), campaign=item.campaign_name)
                if item.by_email is not None else
                self.texts.render(f"reminder_{item.stage.value}", deadline=item.deadline_title, unit=unit,
                                  due=item.due_at.astimezone(item.timezone), period=item.period,
                                  campaign=item.campaign_name, left=item.due_at - item.at))
        fields, defect = {}, None
        if template is not None and self._ready(template):
            try:
                fields = template_data(template.data, self._values(item, campaign, unit, set(template.data.values())))
            except FieldValueError as error:
                log.error("reminder %s for %s cannot be formatted: %s", item.label, unit, error)
                defect = str(error)
        return Notice(
            key=f"reminder:{person_id}:{item.deadline_id}:{item.period}:{item.label}", kind=REMINDER,
            person_id=person_id, openid=openid, text=text, template_id=template.template_id if template else "",
            template_fields=fields, url=self.page_url(item), unit_id=unit_id, deadline_id=item.deadline_id,
            period=item.period, stage=item.label, local_day=item.local_at.date().isoformat(), defect=defect,
        )

    # --- claiming and sending -------------------------------------------------------------------

    def _claim_all(self, notices: Sequence[Notice], now: datetime, template_ready: bool) -> Tally:
        """Decide every notice, a chunk per transaction; held ones are counted, claimed ones wait."""
        return claim_all(self.engine, notices, now, template_ready)

    def _resend_cutoff(self) -> datetime | None:
        """When template rows in doubt may be sent again (:func:`bot.outbound.sending.resend_cutoff`)."""
        return resend_cutoff(self.engine, self.real_clock(), self.resend_after)

    def _claimed(self, kind: str, item: PlannedReminder) -> list[dict[str, Any]]:
        """This moment's rows to send: claimed ones, and template messages WeChat never confirmed."""
        table = table_of(Delivery)
        return rows_to_send(self.engine, self._resend_cutoff(), table.c.kind == kind,
                            table.c.deadline_id == item.deadline_id, table.c.period == item.period,
                            table.c.stage == item.label)

    def _send_claimed(self, kind: str, item: PlannedReminder, now: datetime, template_ready: bool) -> Tally:
        """Send every claimed row of this moment (this run's and any a crash left), and every
        template row WeChat never confirmed, concurrently (:class:`bot.outbound.sending.ConcurrentSender`)."""
        sender = ConcurrentSender(self.engine, self.api, concurrency=self.concurrency, real_clock=self.real_clock,
                                  progress=self.progress, what=kind.replace("_", " "))
        return sender.send_rows(self._claimed(kind, item), now, template_ready)

    # --- what coordinators are told -----------------------------------------------------------

    def _problems(self, item: PlannedReminder) -> dict[str, list[str]]:
        """Liaisons of this moment that no reminder reached, by reason, with their unit's name."""
        table, units = table_of(Delivery), table_of(Unit)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.status, table.c.errmsg, table.c.errcode, units.c.name)
                                .join(units, units.c.id == table.c.unit_id).where(
                table.c.kind == REMINDER, table.c.deadline_id == item.deadline_id, table.c.period == item.period,
                table.c.stage == item.label,
                table.c.status.in_([Status.HELD.value, Status.FAILED.value, Status.DEFECT.value]))).all()
        found: dict[str, list[str]] = {}
        for row in rows:
            reason = row.errmsg if row.status == Status.HELD.value else row.status
            found.setdefault(reason, []).append(f"{row.name}（{row.errcode}）" if row.errcode else row.name)
        return found

    def _note(self, item: PlannedReminder, who: Owed, now: datetime) -> Tally:
        problems = self._problems(item)
        if not problems and not who.without_liaison:
            return Tally()
        text = self.texts.render(
            "coordinator_note", deadline=item.deadline_title, period=item.period,
            due=item.due_at.astimezone(item.timezone), without_liaison=who.without_liaison,
            unreachable=problems.get(HeldReason.UNREACHABLE.value, []) + problems.get(Status.FAILED.value, []),
            no_consent=problems.get(HeldReason.NO_CONSENT.value, []),
            no_template=problems.get(HeldReason.NO_TEMPLATE.value, []),
            defects=problems.get(Status.DEFECT.value, []))
        return self._to_coordinators(COORDINATOR_NOTE, item, text, now)

    def _digest(self, item: PlannedReminder, now: datetime) -> Tally:
        with self.engine.connect() as conn:
            who = owed(conn, item.campaign_id, item.deadline_id, item.period)
            so_far, expected = self._totals(conn, item.campaign_id, now, who.total_units)
        problems = self._problems_of_deadline(item)
        text = self.texts.render(
            "coordinator_digest", deadline=item.deadline_title, period=item.period,
            due=item.due_at.astimezone(item.timezone), submitted=who.total_units - len(who.missing),
            total=who.total_units, missing=[name for _, name in who.missing], unreachable=problems,
            so_far=so_far, expected=expected)
        return self._to_coordinators(DIGEST, item, text, now)

    def _totals(self, conn: sa.Connection, campaign_id: int, now: datetime, units: int) -> tuple[int, int]:
        """Submissions so far against what was owed by ``now``, over the whole campaign."""
        deadlines = table_of(Deadline)
        periods = table_of(DeadlinePeriod)
        subs = table_of(Submission)
        passed = sa.select(periods.c.deadline_id, periods.c.period).join(
            deadlines, deadlines.c.id == periods.c.deadline_id).where(
            deadlines.c.campaign_id == campaign_id, periods.c.due_at <= now).subquery()
        owed_so_far = conn.execute(sa.select(sa.func.count()).select_from(passed)).scalar_one() * units
        given = conn.execute(sa.select(sa.func.count()).select_from(subs.join(
            passed, sa.and_(passed.c.deadline_id == subs.c.deadline_id, passed.c.period == subs.c.period)))
            .where(subs.c.status == "submitted")).scalar_one()
        return int(given), int(owed_so_far)

    def _problems_of_deadline(self, item: PlannedReminder) -> list[str]:
        people, units = table_of(Person), table_of(Unit)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(units.c.name).join(people, people.c.unit_id == units.c.id).where(
                units.c.campaign_id == item.campaign_id, people.c.role == Role.LIAISON.value,
                sa.or_(people.c.following.is_(False), people.c.unreachable_reason.is_not(None)))
                .order_by(units.c.name)).scalars()
            return list(rows)

    def _to_coordinators(self, kind: str, item: PlannedReminder, text: str, now: datetime) -> Tally:
        """A note to every coordinator: customer service in their window, else held for the CLI."""
        with self.engine.connect() as conn:
            people = office(conn, item.campaign_id, (Role.COORDINATOR,))
        notices = [Notice(key=f"{kind}:{person_id}:{item.deadline_id}:{item.period}:{item.label}", kind=kind,
                          person_id=person_id, openid=openid, text=text, deadline_id=item.deadline_id,
                          period=item.period, stage=item.label) for person_id, openid in people]
        # Coordinator notes are free text: no template fits them, so outside the window they are
        # held (and listed by `safetybot reminders`) rather than squeezed into reminder fields.
        tally = self._claim_all(notices, now, template_ready=False)
        tally.add(self._send_claimed(kind, item, now, template_ready=False))
        return tally


def template_names() -> list[str]:
    """The message templates reminders need, for the start-up check."""
    return [f"reminder_{kind.value}" for kind in ReminderKind] + [
        "reminder_by_email", "coordinator_note", "coordinator_digest"] + [
        f"template_value_{name}" for name in ("campaign", "deadline", "unit", "due_at", "period", "issuer",
                                              "contact_phone")]

