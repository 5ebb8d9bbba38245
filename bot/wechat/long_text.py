"""WeChat's limit on one text message, and splitting a longer text into messages that keep it.

A text message (a passive reply or a customer-service text) carries at most 2,048 bytes of UTF-8;
WeChat refuses or cuts a longer one. A long text is split at line boundaries; a single line over
the limit is cut after a space or a punctuation mark where there is one, else between two
characters that are not both part of a Latin word or a number, so no number is ever cut in two.
"""

from __future__ import annotations

from typing import Iterable, Iterator

TEXT_BYTES = 2048

# A cut just after one of these leaves every word and number whole.
_BREAKS = frozenset("，。；、：！？…,;!?")
# Characters that make up one Latin word, number or address: a cut between two of them splits it.
_WORDY = frozenset("._-+%@/:',#&=~")


def split_text(text: str, limit: int = TEXT_BYTES) -> list[str]:
    """``text`` as messages of at most ``limit`` bytes (UTF-8) each, in order: whole lines packed
    into each message, a line longer than ``limit`` cut as the module says. Blank lines where a
    message ends or begins are dropped; a text within the limit comes back as it is."""
    if len(text.encode()) <= limit:
        return [text]
    parts: list[str] = []
    lines: list[str] = []
    size = 0
    for line in text.split("\n"):
        for piece in _cut(line, limit):
            cost = len(piece.encode()) + (1 if lines else 0)
            if lines and size + cost > limit:
                parts.append("\n".join(lines))
                lines, size, cost = [], 0, len(piece.encode())
            lines.append(piece)
            size += cost
    parts.append("\n".join(lines))
    return [part.strip("\n") for part in parts if part.strip()]


def split_texts(texts: Iterable[str], limit: int = TEXT_BYTES) -> tuple[str, ...]:
    """Every text of ``texts`` split by :func:`split_text`, the parts in the texts' order."""
    return tuple(part for text in texts for part in split_text(text, limit))


def _cut(line: str, limit: int) -> Iterator[str]:
    """``line`` in pieces of at most ``limit`` bytes each."""
    while len(line.encode()) > limit:
        at = _cut_at(line, limit)
        yield line[:at].rstrip()
        line = line[at:].lstrip()
    yield line


def _cut_at(line: str, limit: int) -> int:
    """Where to cut ``line`` (longer than ``limit`` bytes): the number of characters to keep."""
    fits, size = 0, 0
    for char in line:
        size += len(char.encode())
        if size > limit:
            break
        fits += 1
    # After a space or punctuation, unless that leaves less than half a message.
    for at in range(fits, fits // 2, -1):
        if (line[at - 1].isspace() or line[at - 1] in _BREAKS) and _between_words(line, at):
            return at
    for at in range(fits, 0, -1):
        if _between_words(line, at):
            return at
    return fits  # one "word" longer than a message: it cannot stay whole


def _between_words(line: str, at: int) -> bool:
    """Whether cutting ``line`` before its character ``at`` leaves every Latin word and number whole
    ("1,860" is one number: not after its comma)."""
    return not (_wordy(line[at - 1]) and _wordy(line[at]))


def _wordy(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char in _WORDY)
