"""What handlers may read: the person the message is from (:class:`PersonFacts`) and the stored
data behind them (:class:`StoredFacts`), in types that belong to the handlers.

Handlers own this interface and storage implements it (``bot.store.facts.DatabaseFacts``), so
handlers import nothing from ``bot.store`` and a handler's every read is listed here. All values
are frozen: reading them changes nothing, and a decision is a function of what was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

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

    def invitation(self, code: str) -> InvitationFacts | None:
        """The invitation whose code is ``code`` (compared without case or surrounding spaces), used
        or not, expired or not; None when no invitation has that code."""
