"""Signed links: a link opens what it was made for, until it expires, and nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.links import BadLink, sign, verify

KEY = b"k" * 32
NOW = datetime(2023, 6, 7, 10, 0, tzinfo=timezone.utc)


def test_a_link_opens_its_subject_until_it_expires() -> None:
    token = sign(KEY, "notice", "42", NOW + timedelta(days=7))
    assert verify(KEY, "notice", token, NOW + timedelta(days=6, hours=23)) == "42"
    with pytest.raises(BadLink, match="expired"):
        verify(KEY, "notice", token, NOW + timedelta(days=7))


def test_a_link_for_one_purpose_opens_nothing_else() -> None:
    token = sign(KEY, "notice", "42", NOW + timedelta(days=1))
    with pytest.raises(BadLink, match="something else"):
        verify(KEY, "export", token, NOW)


@pytest.mark.parametrize("change", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: ("A" if t[0] != "A" else "B") + t[1:],
    lambda t: t.split(".")[0],
    lambda t: "",
    lambda t: "....",
])
def test_an_altered_link_is_refused(change) -> None:  # type: ignore[no-untyped-def]
    token = sign(KEY, "notice", "42", NOW + timedelta(days=1))
    with pytest.raises(BadLink):
        verify(KEY, "notice", change(token), NOW)


def test_a_link_made_with_another_key_is_refused() -> None:
    token = sign(b"x" * 32, "notice", "42", NOW + timedelta(days=1))
    with pytest.raises(BadLink, match="not one the bot made"):
        verify(KEY, "notice", token, NOW)
