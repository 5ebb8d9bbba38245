"""What the form handlers ask storage to write; ``bot.app.change_writers`` lists a writer for each type.

Changes are plain values so a handler stays pure: it says *what* should be stored, and the
gateway writes it in the same transaction as the person's dialogue state and the reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from handlers.ports import Audience


@dataclass(frozen=True)
class Value:
    """One field's answer: the text shown, the number for counts, whether it was an estimate.
    ``text`` None stores the field as deliberately left blank (跳过)."""

    field_key: str
    text: str | None
    number: int | None = None
    approximate: bool = False


@dataclass(frozen=True)
class SaveAnswers:
    """Store answers of the unit's submission for one deadline period, creating the draft if needed.

    Every change to an existing answer is kept as a revision; after ``due_at`` a change to a
    submitted table is accepted and marked late.
    """

    unit_id: int
    deadline_id: int
    period: str
    due_at: datetime
    values: tuple[Value, ...]
    # Whose answers these are when not the sender's (staff approving a liaison's table).
    on_behalf_of: str = ""


@dataclass(frozen=True)
class SubmitForm:
    """Mark the unit's submission for a deadline period submitted (late after ``due_at``)."""

    unit_id: int
    deadline_id: int
    period: str
    due_at: datetime
    on_behalf_of: str = ""


@dataclass(frozen=True)
class ClaimUnit:
    """Make the sender the liaison of a unit, with their name and their answer to reminders.

    Refused as stale when someone else became the unit's liaison after the handler looked.
    """

    unit_id: int
    name: str
    reminders: bool


@dataclass(frozen=True)
class RenamePerson:
    """The sender's name changed (修改资料)."""

    name: str


@dataclass(frozen=True)
class RequestLiaison:
    """The sender asks to become the unit's liaison and staff decide: ``kind`` "replacement" to
    take over from ``holder_openid``, "registration" for a unit picked from an open campaign's list
    (``holder_openid`` ""). The liaison-table answers wait with the request."""

    unit_id: int
    holder_openid: str
    kind: str
    name: str
    reminders: bool
    answers: tuple[Value, ...]


@dataclass(frozen=True)
class DecideRequest:
    """Staff approve or refuse a pending liaison request; stale when someone decided it first."""

    request_id: int
    approved: bool


@dataclass(frozen=True)
class AppointLiaison:
    """Make ``openid`` the unit's liaison (staff approved); whoever held the unit loses it."""

    unit_id: int
    openid: str
    name: str
    reminders: bool


@dataclass(frozen=True)
class BecomeStaff:
    """The sender gave a campaign's staff code: they become ``role`` (staff or coordinator) of the
    campaign ``campaign_id``."""

    role: str
    campaign_id: int


@dataclass(frozen=True)
class StaffNote:
    """Tell the staff and coordinators of the campaign of unit ``unit_id`` ``text`` (a liaison asks
    to take over the unit, a 要情 came in). ``topic`` names the event once: a second note with the
    same topic is not sent. Other campaigns' offices never hear of it."""

    unit_id: int
    topic: str
    text: str


@dataclass(frozen=True)
class PersonNote:
    """Tell ``openid`` ``text`` outside the reply to their own message (staff decided their
    request); ``topic`` names the event once."""

    openid: str
    topic: str
    text: str


@dataclass(frozen=True)
class SendAnnouncement:
    """Queue an announcement (通知) of the campaign ``campaign_id`` from the sender: ``text``, shown
    literally, and an optional picture (WeChat's ``image_media_id``, usable for 3 days), to
    ``audience``. Stale when the sender is no longer staff or a coordinator of that campaign."""

    campaign_id: int
    text: str
    image_media_id: str | None
    audience: Audience


@dataclass(frozen=True)
class RedeemInvitation:
    """The sender redeems the invitation ``invitation_id``: they become ``role`` (staff or
    coordinator) of the campaign ``campaign_id`` and hold no unit any more. Stale when the
    invitation was used by someone else or expired after the handler looked."""

    invitation_id: int
    role: str
    campaign_id: int
