"""The stored data handlers read while deciding: :class:`DatabaseFacts`, the database's side of
the handlers' read port (:class:`handlers.ports.StoredFacts`).

It reads on the connection it is given (the handling transaction's, so a decision sees its own
writes), or opens a read-only one at the first query. Its writing counterpart, the writers of the
changes handlers return, is ``bot/store/writers.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Sequence

import sqlalchemy as sa

from bot.campaigns.format import CampaignDefinition
from bot.campaigns.store import definition_of
from bot.dashboard.sessions import link_url
from bot.exports.links import ExportLinks
from bot.store import audience as announcements, progress as office_reads, totals as totals_sql
from bot.store.models import (
    Answer, Campaign, Deadline, DeadlinePeriod, Invitation, LiaisonReplacement, MediaFile, Person, ReportItem, Role,
    Submission, Unit, table_of,
)
from handlers.ports import (
    AnnouncementFacts, Audience, AudienceFacts, DuePeriod, Holder, InvitationFacts, ItemFacts, LiaisonRequest,
    PeriodProgress, StaffCode, StoredAnswer, SubmissionFacts, TotalsFacts, UnitContact, UnitFacts, UnitFiling,
)

_UNIT = table_of(Unit)
_PERSON = table_of(Person)
# The current liaison beside a request's requester: one named alias, so the statement is compiled
# once and then found in SQLAlchemy's cache (a fresh anonymous alias each call compiled it anew).
_HOLDER = sa.alias(_PERSON, name="holder")
_CAMPAIGN = table_of(Campaign)
_DEADLINE = table_of(Deadline)
_PERIOD = table_of(DeadlinePeriod)
_SUBMISSION = table_of(Submission)
_ANSWER = table_of(Answer)
_REPLACEMENT = table_of(LiaisonReplacement)
_ITEM = table_of(ReportItem)
_MEDIA = table_of(MediaFile)
_INVITATION = table_of(Invitation)

# Parsing a stored definition costs milliseconds; a campaign changes only when it is loaded again,
# so (id, loaded_at) names one version for good.
_DEFINITIONS: dict[tuple[int, datetime], CampaignDefinition] = {}


class DatabaseFacts:
    """:class:`~handlers.ports.StoredFacts` on a connection: the handling transaction's, or a
    read-only one.

    Given a function instead of a connection, it opens the connection at the first query: many
    decisions (help for a newcomer, a walk's next question) read nothing stored, and the webhook
    answers them without checking a connection out.

    ``template_messages`` says whether the account kind has template messages
    (:attr:`bot.config.Features.template_messages`): an announcement's preview counts by it.
    """

    def __init__(self, conn: sa.Connection | Callable[[], sa.Connection], links: ExportLinks | None = None, *,
                 template_messages: bool = True):
        self._opened = conn if isinstance(conn, sa.Connection) else None
        self._connect = conn
        # Signing needs the bot's settings; the handling passes them, storage's own reads need none.
        self._links = links
        self._template_messages = template_messages

    @property
    def _conn(self) -> sa.Connection:
        """The connection queries run on, opened now if it was not yet."""
        if self._opened is None:
            assert callable(self._connect)
            self._opened = self._connect()
        return self._opened

    def unit(self, unit_id: int) -> UnitFacts:
        """The unit with this id; LookupError if there is none."""
        row = self._conn.execute(sa.select(_UNIT.c.id, _UNIT.c.campaign_id, _UNIT.c.name)
                                 .where(_UNIT.c.id == unit_id)).first()
        if row is None:
            raise LookupError(f"no unit {unit_id}")
        return UnitFacts(row.id, row.campaign_id, row.name)

    def unit_by_join_code(self, code: str) -> UnitFacts | None:
        """The unit whose join code is ``code`` (compared without case: codes are typed on phones)."""
        row = self._conn.execute(sa.select(_UNIT.c.id, _UNIT.c.campaign_id, _UNIT.c.name)
                                 .where(_UNIT.c.join_code == code.strip().upper())).first()
        return None if row is None else UnitFacts(row.id, row.campaign_id, row.name)

    def holder(self, unit_id: int) -> Holder | None:
        """The unit's registered liaison, if any."""
        row = self._conn.execute(sa.select(_PERSON.c.openid, _PERSON.c.name)
                                 .where(_PERSON.c.unit_id == unit_id, _PERSON.c.role == Role.LIAISON)
                                 .order_by(_PERSON.c.id)).first()
        return None if row is None else Holder(row.openid, row.name)

    def definition(self, campaign_id: int) -> CampaignDefinition:
        """The campaign's definition (see docs/campaign-format.md)."""
        loaded_at = self._conn.execute(
            sa.select(_CAMPAIGN.c.loaded_at).where(_CAMPAIGN.c.id == campaign_id)).scalar_one()
        cached = _DEFINITIONS.get((campaign_id, loaded_at))
        if cached is None:
            row = self._conn.execute(sa.select(_CAMPAIGN).where(_CAMPAIGN.c.id == campaign_id)).one()
            cached = definition_of(Campaign(**row._mapping))
            _DEFINITIONS[(campaign_id, loaded_at)] = cached
        return cached

    def periods(self, campaign_id: int) -> list[DuePeriod]:
        """Every period of every deadline of the campaign, earliest due first."""
        rows = self._conn.execute(
            sa.select(_DEADLINE.c.id, _DEADLINE.c.key, _DEADLINE.c.title, _DEADLINE.c.collects, _PERIOD.c.period,
                      _PERIOD.c.due_at)
            .join(_PERIOD, _PERIOD.c.deadline_id == _DEADLINE.c.id)
            .where(_DEADLINE.c.campaign_id == campaign_id)
            .order_by(_PERIOD.c.due_at, _DEADLINE.c.id))
        return [DuePeriod(r.id, r.key, r.title, r.collects, r.period, r.due_at) for r in rows]

    def submission(self, unit_id: int, deadline_id: int, period: str) -> SubmissionFacts | None:
        """The unit's submission for one deadline period, if it has begun one."""
        row = self._conn.execute(sa.select(_SUBMISSION).where(
            _SUBMISSION.c.unit_id == unit_id, _SUBMISSION.c.deadline_id == deadline_id,
            _SUBMISSION.c.period == period)).first()
        return None if row is None else SubmissionFacts(row.id, row.status, row.late, row.submitted_at)

    def answers(self, submission_id: int) -> dict[str, StoredAnswer]:
        """A submission's answers by field key."""
        rows = self._conn.execute(sa.select(_ANSWER.c.field_key, _ANSWER.c.value, _ANSWER.c.number,
                                            _ANSWER.c.approximate).where(_ANSWER.c.submission_id == submission_id))
        return {r.field_key: StoredAnswer(r.value, r.number, r.approximate) for r in rows}

    def requests(self, *, request_id: int | None = None, openid: str | None = None,
                 pending: bool = True, campaign_id: int | None = None) -> list[LiaisonRequest]:
        """Liaison requests, oldest first: pending ones, or one by id, or those of one requester, or
        of units of one campaign."""
        holder = _HOLDER
        query = (sa.select(_REPLACEMENT, _UNIT.c.name.label("unit_name"), _PERSON.c.name.label("person_name"),
                           holder.c.name.label("holder_name"), _UNIT.c.campaign_id.label("unit_campaign_id"))
                 .join(_UNIT, _UNIT.c.id == _REPLACEMENT.c.unit_id)
                 .outerjoin(_PERSON, _PERSON.c.openid == _REPLACEMENT.c.openid)
                 .outerjoin(holder, holder.c.openid == _REPLACEMENT.c.holder_openid)
                 .order_by(_REPLACEMENT.c.id))
        if pending:
            query = query.where(_REPLACEMENT.c.status == "pending")
        if request_id is not None:
            query = query.where(_REPLACEMENT.c.id == request_id)
        if openid is not None:
            query = query.where(_REPLACEMENT.c.openid == openid)
        if campaign_id is not None:
            query = query.where(_UNIT.c.campaign_id == campaign_id)
        return [LiaisonRequest(r.id, r.kind, r.unit_id, r.unit_name, r.openid, r.name or r.person_name or "",
                               r.holder_openid, r.holder_name or "", r.reminders, dict(r.answers or {}), r.status,
                               r.requested_at, r.unit_campaign_id) for r in self._conn.execute(query)]

    def _campaign_ids(self) -> list[int]:
        return list(self._conn.execute(sa.select(_CAMPAIGN.c.id).order_by(_CAMPAIGN.c.id)).scalars())

    def staff_role(self, code: str) -> StaffCode | None:
        """The role a loaded campaign's ``[staff]`` code gives (staff, coordinator) in that campaign,
        if ``code`` is one."""
        code = code.strip().upper()
        for campaign_id in self._campaign_ids():
            definition = self.definition(campaign_id)
            if code and code == definition.coordinator_code:
                return StaffCode(Role.COORDINATOR.value, campaign_id)
            if code and code == definition.staff_code:
                return StaffCode(Role.STAFF.value, campaign_id)
        return None

    def open_units(self, fragment: str = "") -> list[UnitFacts]:
        """Units of campaigns with open registration whose name contains ``fragment``, by name."""
        open_ids = [c for c in self._campaign_ids() if self.definition(c).open_registration]
        if not open_ids:
            return []
        query = sa.select(_UNIT.c.id, _UNIT.c.campaign_id, _UNIT.c.name).where(_UNIT.c.campaign_id.in_(open_ids))
        if fragment:
            query = query.where(_UNIT.c.name.contains(fragment, autoescape=True))
        rows = self._conn.execute(query.order_by(_UNIT.c.name, _UNIT.c.id))
        return [UnitFacts(r.id, r.campaign_id, r.name) for r in rows]

    def report_items(self, submission_id: int) -> list[ItemFacts]:
        """The items of a report (a submission), in the order they came."""
        rows = self._conn.execute(
            sa.select(_ITEM.c.kind, _ITEM.c.featured, _MEDIA.c.status)
            .select_from(_ITEM.outerjoin(_MEDIA, _MEDIA.c.id == _ITEM.c.media_file_id))
            .where(_ITEM.c.submission_id == submission_id).order_by(_ITEM.c.id))
        return [ItemFacts(r.kind, r.featured, r.status) for r in rows]

    def report_texts(self, submission_id: int, featured_only: bool = False) -> list[str]:
        """The texts of a report's items (only the 要情 ones with ``featured_only``), in the order they came."""
        query = sa.select(_ITEM.c.text).where(_ITEM.c.submission_id == submission_id, _ITEM.c.kind == "text")
        if featured_only:
            query = query.where(_ITEM.c.featured.is_(True))
        return [r.text for r in self._conn.execute(query.order_by(_ITEM.c.id)) if r.text]

    def weekly_sums(self, unit_id: int, campaign_id: int) -> dict[str, int]:
        """The unit's numbers from all its weekly reports, added up per statistics answer key.

        Only forms with ``sums_into`` (docs/campaign-format.md) carry numbers; blanks count as nothing.
        """
        definition = self.definition(campaign_id)
        summed = {d.key: {f.answer_key for f in definition.summed_fields(d.collects)} for d in definition.deadlines}
        keys = set().union(*summed.values())
        if not keys:
            return {}
        rows = self._conn.execute(
            sa.select(_ANSWER.c.field_key, sa.func.sum(_ANSWER.c.number).label("total"))
            .join(_SUBMISSION, _SUBMISSION.c.id == _ANSWER.c.submission_id)
            .join(_DEADLINE, _DEADLINE.c.id == _SUBMISSION.c.deadline_id)
            .where(_SUBMISSION.c.unit_id == unit_id, _DEADLINE.c.campaign_id == campaign_id,
                   _DEADLINE.c.key.in_([key for key, fields in summed.items() if fields]),
                   _ANSWER.c.field_key.in_(keys), _ANSWER.c.number.is_not(None))
            .group_by(_ANSWER.c.field_key))
        return {r.field_key: int(r.total) for r in rows}

    def audience(self, campaign_id: int, audience: Audience, now: datetime) -> AudienceFacts:
        """Who ``audience`` reaches in the campaign at ``now``, by the channel the send would take."""
        return announcements.audience_facts(self._conn, self.definition(campaign_id), campaign_id, audience, now,
                                            self._template_messages)

    def announcements(self, campaign_id: int, limit: int = 5) -> list[AnnouncementFacts]:
        """The campaign's latest announcements, newest first, with live delivery counts."""
        rows = announcements.latest(self._conn, campaign_id, limit)
        counted = announcements.counts(self._conn, [row.id for row in rows])
        return [AnnouncementFacts(row.id, announcements.title_of(row.text), row.sender_name, row.status,
                                  row.created_at, row.recipients, counted[row.id]) for row in rows]
    def totals(self, deadline_id: int, period: str, keys: frozenset[str]) -> TotalsFacts:
        """One deadline period's submitted statistics tables summed over all units (bot/store/totals.py)."""
        return totals_sql.totals(self._conn, deadline_id, period, keys)

    def export_link(self, campaign_id: int, expires_at: datetime) -> str:
        """The signed address of the campaign's Excel file, good until ``expires_at``."""
        if self._links is None:
            raise RuntimeError("this reader was made without the bot's links (DatabaseFacts(conn, links))")
        return self._links.url(campaign_id, expires_at)

    def dashboard_link(self, campaign_id: int, expires_at: datetime) -> str:
        """The signed address that logs its holder in to the campaign's dashboard until ``expires_at``."""
        if self._links is None:
            raise RuntimeError("this reader was made without the bot's links (DatabaseFacts(conn, links))")
        return link_url(self._links.base, self._links.key, campaign_id, expires_at)

    def progress(self, campaign_id: int, periods: Sequence[tuple[int, str]], shown: int) -> list[PeriodProgress]:
        """For each (deadline id, period) of ``periods``, in that order, how far the campaign's units
        are with it, naming the first ``shown`` missing units (``bot.store.progress``)."""
        return office_reads.period_progress(self._conn, campaign_id, periods, shown)

    def missing_contacts(self, campaign_id: int, deadline_id: int, period: str) -> list[UnitContact]:
        """The campaign's units that have not sent the deadline period, by name, with their liaisons."""
        return office_reads.missing_contacts(self._conn, self.definition(campaign_id), campaign_id, deadline_id, period)

    def unit_contact(self, campaign_id: int, unit_id: int) -> UnitContact:
        """One unit of the campaign with its liaison; LookupError if the campaign has no such unit."""
        return office_reads.unit_contact(self._conn, self.definition(campaign_id), campaign_id, unit_id)

    def units_named(self, campaign_id: int, fragment: str, limit: int) -> list[UnitFacts]:
        """Up to ``limit`` units of the campaign whose name contains ``fragment``, by name (one
        named exactly ``fragment`` first)."""
        return office_reads.units_named(self._conn, campaign_id, fragment, limit)

    def unit_filings(self, unit_id: int) -> list[UnitFiling]:
        """Every submission of the unit, begun or sent, with its answer and report item counts."""
        return office_reads.unit_filings(self._conn, unit_id)

    def invitation(self, code: str) -> InvitationFacts | None:
        """The invitation whose code is ``code`` (without case or surrounding spaces), used or not."""
        row = self._conn.execute(
            sa.select(_INVITATION.c.id, _INVITATION.c.role, _INVITATION.c.campaign_id, _INVITATION.c.used_at,
                      _INVITATION.c.expires_at).where(_INVITATION.c.code == code.strip().upper())).first()
        if row is None:
            return None
        return InvitationFacts(row.id, Role(row.role).value, row.campaign_id, row.used_at is not None, row.expires_at)
