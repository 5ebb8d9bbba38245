"""What handlers may read: the person the message is from (:class:`PersonFacts`) and the stored
data behind them (:class:`StoredFacts`), in types that belong to the handlers.

Handlers own this interface and storage implements it (``bot.store.facts.DatabaseFacts``), so
handlers import nothing from ``bot.store`` and a handler's every read is listed here. All values
are frozen: reading them changes nothing, and a decision is a function of what was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Sequence

from bot.campaigns.format import CampaignDefinition

STAFF_ROLES = frozenset({"staff", "coordinator"})


@dataclass(frozen=True)
class PersonFacts:
    """The sender as stored when their message was claimed: ``role`` liaison, staff or
    coordinator (liaison for someone the bot has not met), the unit they are the liaison of
    (None before registering), the name they gave ("" before), whether they follow the account,
    and the campaign a staff member or coordinator works on (None for liaisons: theirs is their
    unit's)."""

    role: str
    unit_id: int | None
    name: str
    following: bool
    campaign_id: int | None = None

    @property
    def is_staff(self) -> bool:
        """Staff or a coordinator: someone who decides liaison requests."""
        return self.role in STAFF_ROLES


@dataclass(frozen=True)
class StaffCode:
    """What a staff code gives: ``role`` staff or coordinator, in the campaign ``campaign_id``."""

    role: str
    campaign_id: int


@dataclass(frozen=True)
class UnitFacts:
    """A unit as handlers need it."""

    id: int
    campaign_id: int
    name: str


@dataclass(frozen=True)
class Holder:
    """The person registered as a unit's liaison."""

    openid: str
    name: str


@dataclass(frozen=True)
class DuePeriod:
    """One period of one deadline of a campaign, with the form it collects (its key)."""

    deadline_id: int
    key: str
    title: str
    collects: str
    period: str
    due_at: datetime


@dataclass(frozen=True)
class SubmissionFacts:
    """Where a unit's submission for one period stands: ``status`` draft or submitted."""

    id: int
    status: str
    late: bool
    submitted_at: datetime | None


@dataclass(frozen=True)
class LiaisonRequest:
    """A pending (or decided) request to become a unit's liaison, as staff see it.

    ``kind`` is replacement or registration; ``answers`` the liaison table's answers by answer
    key, each ``[text, number, approximate]``; ``status`` pending, approved or refused.
    """

    id: int
    kind: str
    unit_id: int
    unit_name: str
    openid: str
    name: str
    holder_openid: str
    holder_name: str
    reminders: bool
    answers: dict[str, list[Any]]
    status: str
    requested_at: datetime
    # The unit's campaign: staff see and decide only their own campaign's requests.
    campaign_id: int | None = None


@dataclass(frozen=True)
class StoredAnswer:
    """A stored answer; ``text`` None is a field deliberately left blank."""

    text: str | None
    number: int | None
    approximate: bool


@dataclass(frozen=True)
class ItemFacts:
    """One report item as the report's summary shows it: ``kind`` text, image, voice, video or
    link; ``media_status`` None for text and links, else the fetcher's status (pending, fetching,
    stored, failed)."""

    kind: str
    featured: bool
    media_status: str | None


@dataclass(frozen=True)
class Audience:
    """Whom an announcement (通知) is for, among a campaign's liaisons: ``kind`` "all"; "owing"
    (units that have not submitted ``deadline``, a deadline key, for ``period``); "group" (units
    of the unit group ``group``); or "units" (the units ``unit_ids``)."""

    kind: str
    deadline: str = ""
    period: str = ""
    group: str = ""
    unit_ids: tuple[int, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The form :attr:`bot.store.models.Announcement.audience` keeps."""
        if self.kind == "owing":
            return {"kind": "owing", "deadline": self.deadline, "period": self.period}
        if self.kind == "group":
            return {"kind": "group", "group": self.group}
        if self.kind == "units":
            return {"kind": "units", "unit_ids": list(self.unit_ids)}
        return {"kind": "all"}

    @classmethod
    def of_json(cls, stored: dict[str, Any]) -> "Audience":
        """The audience :meth:`as_json` wrote; ValueError for anything else."""
        kind = stored.get("kind")
        if kind not in ("all", "owing", "group", "units"):
            raise ValueError(f"not an audience: {stored!r}")
        return cls(kind, str(stored.get("deadline", "")), str(stored.get("period", "")), str(stored.get("group", "")),
                   tuple(int(u) for u in stored.get("unit_ids", ())))


@dataclass(frozen=True)
class AudienceFacts:
    """An audience counted before anything is sent, by the channel each recipient would get now
    (the send path's rules, ``bot.store.reach``): ``recipients`` liaisons in all, of whom
    ``customer_service`` are inside their 48 hours, ``template`` go by template message with a
    link, ``held`` wait until they next write (the account or campaign has no template for
    announcements, or they did not agree to messages), ``unreachable`` cannot be reached (they
    unfollowed or refused); ``units`` the units chosen, ``without_liaison`` of them with nobody
    registered."""

    recipients: int
    customer_service: int
    template: int
    held: int
    unreachable: int
    units: int
    without_liaison: int


@dataclass(frozen=True)
class DeliveryCounts:
    """How an announcement's deliveries stand: ``sent`` by channel (customer_service, template;
    WeChat took them and no job event said otherwise), ``delivered`` template messages WeChat
    confirmed (TEMPLATESENDJOBFINISH success), ``held`` until the person writes, ``failed``
    (refused by WeChat, or its job event said failed), ``unreachable``, and ``pending`` (not
    answered yet: being sent, or in doubt after a crash)."""

    sent: dict[str, int]
    delivered: int
    held: int
    failed: int
    unreachable: int
    pending: int

    def as_json(self) -> dict[str, object]:
        """The form the announcement's stored report (``Announcement.report``) keeps."""
        return {"sent": dict(self.sent), "delivered": self.delivered, "held": self.held, "failed": self.failed,
                "unreachable": self.unreachable, "pending": self.pending}


@dataclass(frozen=True)
class AnnouncementFacts:
    """One announcement as ``通知 状态`` shows it, with ``counts`` read live from its deliveries."""

    id: int
    title: str
    sender: str
    status: str
    created_at: datetime
    recipients: int
    counts: DeliveryCounts


@dataclass(frozen=True)
class FieldTotal:
    """One answer key of a statistics table summed over the units' submitted tables.

    ``total`` is the sum of the numbers given (None when no unit gave one: a text or yes/no
    field, or nobody answered); ``units`` how many units gave a number; ``approximate`` whether
    any of them was an estimate (约/余); ``yes`` how many units answered 是 (yes/no fields);
    ``answered`` how many units answered the field at all (blanks not counted).
    """

    answer_key: str
    total: int | None
    units: int
    approximate: bool
    yes: int
    answered: int


@dataclass(frozen=True)
class TotalsFacts:
    """A statistics deadline period summed over all units (the office's 合计).

    ``submitted`` units' tables are summed; ``drafts`` units have begun a table they have not
    submitted (left out); ``units`` is every unit of the campaign; ``fields`` maps each answer key
    that any submitted table answered to its :class:`FieldTotal`.
    """

    deadline_id: int
    period: str
    units: int
    submitted: int
    drafts: int
    fields: dict[str, FieldTotal]


@dataclass(frozen=True)
class PeriodProgress:
    """How far a campaign's units are with one deadline period: of ``units`` units, ``submitted``
    sent it (``late`` of them after the due time); ``missing`` names the first missing units by name."""

    deadline_id: int
    period: str
    units: int
    submitted: int
    late: int
    missing: tuple[str, ...]


@dataclass(frozen=True)
class UnitContact:
    """A unit and how the office reaches its liaison: ``registered`` whether a liaison is
    registered for it; ``liaison`` their name (as registered, else the liaison table's; "" for
    none); ``mobile`` the liaison table's mobile answer, else the one the units import gave ("")."""

    unit_id: int
    name: str
    registered: bool
    liaison: str
    mobile: str


@dataclass(frozen=True)
class UnitFiling:
    """One submission of a unit, begun or sent: ``status`` draft or submitted; ``answered`` how many
    answers it holds (blanks not counted); ``items`` its report items, ``featured`` the 要情 among them."""

    deadline_id: int
    period: str
    status: str
    late: bool
    submitted_at: datetime | None
    answered: int
    items: int
    featured: int


@dataclass(frozen=True)
class InvitationFacts:
    """A one-time invitation (``safetybot people invite``): it makes whoever sends it at 登记
    ``role`` (staff or coordinator) of the campaign ``campaign_id``, once, before ``expires_at``
    (aware UTC); ``used`` once someone has."""

    id: int
    role: str
    campaign_id: int
    used: bool
    expires_at: datetime


class StoredFacts(Protocol):
    """Every read a handler may make while deciding, on the handling transaction's data."""

    def unit(self, unit_id: int) -> UnitFacts:
        """The unit with this id (ids handlers hold come from stored rows); LookupError if there is none."""

    def unit_by_join_code(self, code: str) -> UnitFacts | None:
        """The unit whose join code is ``code`` (compared without case: codes are typed on phones)."""

    def holder(self, unit_id: int) -> Holder | None:
        """The unit's registered liaison, if any."""

    def definition(self, campaign_id: int) -> CampaignDefinition:
        """The campaign's definition (docs/campaign-format.md)."""

    def periods(self, campaign_id: int) -> list[DuePeriod]:
        """Every period of every deadline of the campaign, earliest due first."""

    def submission(self, unit_id: int, deadline_id: int, period: str) -> SubmissionFacts | None:
        """The unit's submission for one deadline period, if it has begun one."""

    def answers(self, submission_id: int) -> dict[str, StoredAnswer]:
        """A submission's answers by answer key."""

    def requests(self, *, request_id: int | None = None, openid: str | None = None,
                 pending: bool = True, campaign_id: int | None = None) -> list[LiaisonRequest]:
        """Liaison requests, oldest first: pending ones (unless ``pending`` is False), narrowed to
        one by id, to those of one requester, or to units of one campaign."""

    def staff_role(self, code: str) -> StaffCode | None:
        """The role (staff, coordinator) and campaign a loaded campaign's ``[staff]`` code gives, if
        ``code`` is one."""

    def open_units(self, fragment: str = "") -> list[UnitFacts]:
        """Units of campaigns with open registration whose name contains ``fragment``, by name."""

    def report_items(self, submission_id: int) -> list[ItemFacts]:
        """The items of a report (a submission), in the order they came."""

    def report_texts(self, submission_id: int, featured_only: bool = False) -> list[str]:
        """The texts of a report's items (only the 要情 ones with ``featured_only``), in the order they came."""

    def weekly_sums(self, unit_id: int, campaign_id: int) -> dict[str, int]:
        """The unit's numbers from all its weekly reports, added up per statistics answer key
        (only forms with ``sums_into`` carry numbers; blanks count as nothing)."""

    def audience(self, campaign_id: int, audience: Audience, now: datetime) -> AudienceFacts:
        """Who ``audience`` reaches in the campaign at ``now``, counted by channel as the send would
        decide it (``template_messages``: whether the account kind has template messages)."""

    def announcements(self, campaign_id: int, limit: int = 5) -> list[AnnouncementFacts]:
        """The campaign's latest announcements, newest first, with live delivery counts."""
    def totals(self, deadline_id: int, period: str, keys: frozenset[str]) -> TotalsFacts:
        """One deadline period's submitted statistics tables summed over all units, per answer key
        (one aggregate query; drafts are counted, not summed); the texts and 是 counted only for
        ``keys``, the fields the table sums (:func:`handlers.totals.summed_keys`)."""

    def export_link(self, campaign_id: int, expires_at: datetime) -> str:
        """The address of the campaign's Excel file (its statistics table, units, liaisons and
        status), signed and good until ``expires_at``; RuntimeError where links cannot be signed."""

    def dashboard_link(self, campaign_id: int, expires_at: datetime) -> str:
        """The address that logs its holder in to the dashboard (``/dashboard``) for the campaign
        only, signed and good until ``expires_at``; RuntimeError where links cannot be signed."""

    def progress(self, campaign_id: int, periods: Sequence[tuple[int, str]], shown: int) -> list[PeriodProgress]:
        """For each (deadline id, period) of ``periods``, in that order, how far the campaign's units
        are with it, naming the first ``shown`` missing units."""

    def missing_contacts(self, campaign_id: int, deadline_id: int, period: str) -> list[UnitContact]:
        """The campaign's units that have not sent the deadline period, by name, with their liaisons."""

    def unit_contact(self, campaign_id: int, unit_id: int) -> UnitContact:
        """One unit of the campaign with its liaison; LookupError if the campaign has no such unit."""

    def units_named(self, campaign_id: int, fragment: str, limit: int) -> list[UnitFacts]:
        """Up to ``limit`` units of the campaign whose name contains ``fragment``, by name (one
        named exactly ``fragment`` first)."""

    def unit_filings(self, unit_id: int) -> list[UnitFiling]:
        """Every submission of the unit, begun or sent, with its answer and report item counts."""
    def invitation(self, code: str) -> InvitationFacts | None:
        """The invitation whose code is ``code`` (compared without case or surrounding spaces), used
        or not, expired or not; None when no invitation has that code."""
