"""Who is logged in to the dashboard: a session in a signed, expiring cookie, CSRF tokens bound to
it, and the coordinator's link (``后台``) that opens a session for one campaign.

Nothing is stored on the server: the cookie is a :mod:`bot.links` token under a key derived from
:attr:`bot.config.Settings.link_key` (so a notice or export link is never a session, nor the other
way round), naming the campaign it opens (``all`` for the admin token) and a random nonce. The
CSRF token of a form is an HMAC of the cookie it goes with, so a page of another site cannot
know it. The login form, sent before there is a session, carries a token that must equal a
short-lived signed cookie set with the form (double submit). Logging out deletes the cookie; a
copy of it taken before stays valid until it expires (``SESSION_LIFETIME``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.links import BadLink, sign, verify

COOKIE = "safetybot_dashboard"
LOGIN_COOKIE = "safetybot_dashboard_login"
SESSION_LIFETIME = timedelta(hours=12)
# Long enough to fill the login form in; the form is reloaded for another try.
LOGIN_FORM_LIFETIME = timedelta(hours=1)
# A link sent in chat is opened at once or not at all; a forwarded old one is worth nothing.
LINK_LIFETIME = timedelta(hours=1)
LINK_PATH = "/dashboard/enter/{token}"
_SESSION, _LOGIN, _LINK = "dashboard-session", "dashboard-login", "dashboard-link"
EVERY_CAMPAIGN = "all"


@dataclass(frozen=True)
class Session:
    """A logged-in dashboard: ``campaign_id`` the one campaign it may see (a coordinator's), None
    for every campaign (the admin token's); ``cookie`` its signed value."""

    campaign_id: int | None
    cookie: str

    def sees(self, campaign_id: int) -> bool:
        """Whether this session may see campaign ``campaign_id``."""
        return self.campaign_id is None or self.campaign_id == campaign_id


def dashboard_key(link_key: bytes) -> bytes:
    """The key sessions and CSRF tokens are signed with, derived from the links' key."""
    return hmac.new(link_key, b"safetybot dashboard sessions", hashlib.sha256).digest()


def link_url(page_base: str, link_key: bytes, campaign_id: int, expires_at: datetime) -> str:
    """The address ``后台`` sends a coordinator: opens a session for ``campaign_id`` until ``expires_at``."""
    token = sign(dashboard_key(link_key), _LINK, str(campaign_id), expires_at)
    return page_base + LINK_PATH.format(token=token)


@dataclass(frozen=True)
class Sessions:
    """Makes and reads sessions and CSRF tokens under ``key`` (:func:`dashboard_key`)."""

    key: bytes

    def open(self, campaign_id: int | None, now: datetime) -> Session:
        """A new session for one campaign (or every one, None), valid for ``SESSION_LIFETIME``."""
        scope = EVERY_CAMPAIGN if campaign_id is None else str(campaign_id)
        subject = f"{scope}-{secrets.token_urlsafe(12)}"
        return Session(campaign_id, sign(self.key, _SESSION, subject, now + SESSION_LIFETIME))

    def read(self, cookie: str | None, now: datetime) -> Session | None:
        """The session ``cookie`` holds at ``now``; None when it is missing, altered or expired."""
        if not cookie:
            return None
        try:
            scope, _, _nonce = verify(self.key, _SESSION, cookie, now).partition("-")
        except BadLink:
            return None
        if scope == EVERY_CAMPAIGN:
            return Session(None, cookie)
        return Session(int(scope), cookie) if scope.isdigit() else None

    def campaign_of_link(self, token: str, now: datetime) -> int:
        """The campaign a ``后台`` link opens at ``now``; :class:`BadLink` if it opens nothing."""
        subject = verify(self.key, _LINK, token, now)
        if not subject.isdigit():
            raise BadLink("the link is not one the bot made")
        return int(subject)

    def csrf(self, session: Session) -> str:
        """The CSRF token of the session's forms."""
        return self._mac(f"csrf:{session.cookie}")

    def csrf_ok(self, session: Session, sent: str | None) -> bool:
        """Whether a form posted ``sent`` as the session's CSRF token (compared in constant time)."""
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf(session).encode())

    def login_form(self, now: datetime) -> str:
        """A login form's token, to be set as ``LOGIN_COOKIE`` and sent in the form too."""
        return sign(self.key, _LOGIN, secrets.token_urlsafe(12), now + LOGIN_FORM_LIFETIME)

    def login_form_ok(self, cookie: str | None, sent: str | None, now: datetime) -> bool:
        """Whether a posted login form is the one this bot gave this browser: its token equals the
        cookie, and is a valid, unexpired one."""
        if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
            return False
        try:
            verify(self.key, _LOGIN, cookie, now)
        except BadLink:
            return False
        return True

    def _mac(self, text: str) -> str:
        digest = hmac.new(self.key, text.encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode()
