"""Signed, expiring links to the bot's own pages: an announcement's full text, the Excel file.

A template message carries only short fields and a link (wechat-rules A2), and a coordinator's
phone cannot send a bearer token, so a link itself must say what it opens and until when. The
token is ``<payload>.<signature>``: the payload is URL-safe base64 of ``purpose:subject:expires``
(expires in Unix seconds) and the signature an HMAC-SHA256 of it under the key of
:attr:`bot.config.Settings.link_key`, truncated to 128 bits. Changing any character, using a link
for another purpose, or using it after it expired fails :func:`verify` the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime


class BadLink(ValueError):
    """The link was altered, is for something else, or has expired."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16])


def sign(key: bytes, purpose: str, subject: str, expires_at: datetime) -> str:
    """A token that opens ``subject`` (e.g. an announcement id) for ``purpose`` until ``expires_at``
    (aware). ``purpose`` and ``subject`` must not contain ":"."""
    if ":" in purpose or ":" in subject:
        raise ValueError("purpose and subject must not contain ':'")
    payload = _b64(f"{purpose}:{subject}:{int(expires_at.timestamp())}".encode())
    return f"{payload}.{_signature(key, payload)}"


def verify(key: bytes, purpose: str, token: str, now: datetime) -> str:
    """The subject ``token`` opens for ``purpose`` at ``now``; :class:`BadLink` if it opens nothing.

    Signatures are compared in constant time, before anything in the payload is trusted.
    """
    payload, _, signature = token.partition(".")
    if not payload or not hmac.compare_digest(signature.encode(), _signature(key, payload).encode()):
        raise BadLink("the link is not one the bot made")
    try:
        made_for, subject, expires = _unb64(payload).decode().split(":")
        expires_at = int(expires)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadLink("the link is not one the bot made") from None
    if made_for != purpose:
        raise BadLink("the link is for something else")
    if now.timestamp() >= expires_at:
        raise BadLink("the link has expired")
    return subject

