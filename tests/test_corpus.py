"""The bad-input corpus (``tests/corpus/*.toml``, format in its README) sent to the served bot on
each database: every request gets the status its file expects, none a 5xx, the log shows no
traceback, and nothing stored changes (issue 19).

The requests are written to a raw socket, byte for byte as the file says: odd methods, lying
``Content-Length`` headers, bodies that stall, trickle or stop half-way are what is being tried,
and an HTTP client would tidy them up.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import select
import socket
import struct
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.crypto import PrpCrypto

from simulator.wechat_side import ACCOUNT, sign
from tests.fixtures_gateway import AES_KEY, Bot, StartBot

CORPUS = Path(__file__).parent / "corpus"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
# The budget a stalled or trickling body is given; the corpus bot answers nothing else slowly.
BUDGET_SECONDS = 1.0
SIGNATURES = ("signature", "signature_upper", "msg_signature")


@dataclass(frozen=True)
class Case:
    """One corpus file: its name (the file's stem) and its TOML table."""

    name: str
    spec: dict[str, Any]

    @property
    def mode(self) -> str:
        return str(self.spec.get("mode", "plaintext"))

    @property
    def statuses(self) -> set[int]:
        """The acceptable statuses; empty when the sender closes before any answer."""
        status = self.spec["expect"].get("status", [])
        return set(status) if isinstance(status, list) else {status}


def load_corpus() -> list[Case]:
    """Every ``tests/corpus/*.toml``, in file-name order."""
    return [Case(path.stem, tomllib.loads(path.read_text(encoding="utf-8"))) for path in sorted(CORPUS.glob("*.toml"))]


# --- building a request -------------------------------------------------------------------------


def _fill(template: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"unknown placeholder ${{{match.group(1)}}}")
        return values[match.group(1)]

    return PLACEHOLDER.sub(value, template)


def _cipher(spec: dict[str, Any], values: dict[str, str], app_id: str) -> str:
    """A ``<Encrypt>`` value built field by field, so a test can lie in any of them: WeChat's layout
    is AES-CBC(key, iv=key[:16]) over 16 random bytes, the XML's length (4 bytes, big-endian), the
    XML, the AppID and PKCS#7 padding to 32 bytes."""
    key = base64.b64decode(spec.get("key", AES_KEY) + "=")
    xml = _fill(spec["xml"], values).encode(spec.get("encoding", "utf-8"))
    inner = b"0123456789abcdef" + struct.pack(">I", spec.get("length", len(xml))) + xml
    inner += spec.get("app_id", app_id).encode()
    count = 32 - len(inner) % 32
    padded = inner + bytes([count]) * count
    if "pad_byte" in spec:
        padded = padded[:-1] + bytes([spec["pad_byte"]])
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def _edited(encrypt: str, edit: str) -> str:
    """``flip:N`` changes one bit of ciphertext byte N; ``truncate:N`` keeps its first N bytes."""
    how, _, at = edit.partition(":")
    raw = bytearray(base64.b64decode(encrypt))
    if how == "flip":
        raw[int(at)] ^= 0x01
    elif how == "truncate":
        raw = raw[:int(at)]
    else:
        raise ValueError(f"unknown edit {edit!r}")
    return base64.b64encode(bytes(raw)).decode()


def _body(spec: dict[str, Any], values: dict[str, str]) -> bytes:
    if "body_base64" in spec:
        return base64.b64decode(spec["body_base64"])
    if "body_repeat" in spec:
        repeat = spec["body_repeat"]
        middle = _fill(repeat["text"], values) * repeat["times"]
        return (_fill(repeat.get("before", ""), values) + middle + _fill(repeat.get("after", ""), values)).encode()
    return _fill(spec.get("body", ""), values).encode(spec.get("body_encoding", "utf-8"))


def build(case: Case, bot: Bot) -> tuple[bytes, bytes]:
    """The request head and body bytes ``case`` describes, placeholders filled for ``bot``."""
    spec, settings = case.spec, bot.settings
    now = int(time.time())
    values = {"now": str(now), "hour_ago": str(now - 3600), "hour_ahead": str(now + 3600), "account": ACCOUNT,
              "digits_5000": "7" * 5000, "long_text": "o" * 6000, "x16k": "x" * 16384, "close_8000": "</a>" * 8000}
    if "plain" in spec:
        values["encrypt"] = PrpCrypto(base64.b64decode(AES_KEY + "=")).encrypt(
            _fill(spec["plain"], values), settings.wechat_app_id).decode()
    if "cipher" in spec:
        values["encrypt"] = _cipher(spec["cipher"], values, settings.wechat_app_id)
    if "encrypt" in spec:
        values["encrypt"] = _fill(spec["encrypt"], values)
    if "edit" in spec:
        values["encrypt"] = _edited(values["encrypt"], spec["edit"])
    default_query = {"signature": "${signature}", "timestamp": "${now}", "nonce": "7"}
    if case.mode == "safe":
        default_query.update(encrypt_type="aes", msg_signature="${msg_signature}")
    # The signatures sign the query's own timestamp and nonce: those are filled in first.
    unsigned = {**values, **{name: f"${{{name}}}" for name in SIGNATURES}}
    query = {name: _fill(str(value), unsigned) for name, value in spec.get("query", default_query).items()}
    signing = {name: _fill(str(value), values) for name, value in spec.get("signing", {}).items()}
    token = signing.get("token", settings.wechat_token)
    timestamp, nonce = signing.get("timestamp", query.get("timestamp", "")), signing.get("nonce", query.get("nonce", ""))
    values["signature"] = sign(token, timestamp, nonce)
    values["signature_upper"] = values["signature"].upper()
    values["msg_signature"] = sign(token, timestamp, nonce, values.get("encrypt", ""))
    if "query_string" in spec:
        target = _fill(spec["query_string"], values)
    else:
        target = "&".join(f"{quote(k, safe='')}={quote(_fill(v, values), safe='')}" for k, v in query.items())
    body = _body(spec, values)
    headers = {"Host": "corpus", "Content-Type": "text/xml", "Content-Length": str(len(body)),
               "Connection": "close", **spec.get("headers", {})}
    head = f"{spec.get('method', 'POST')} {spec.get('path', '/wechat')}{'?' + target if target else ''} HTTP/1.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items() if value != "")
    return head.encode("latin-1") + b"\r\n", body


# --- sending it ---------------------------------------------------------------------------------


def exchange(address: tuple[str, int], head: bytes, body: bytes, send: dict[str, Any]) -> int | None:
    """Send ``head`` and ``body`` as ``send`` says and return the answer's status (None: no answer).

    ``send``: ``bytes`` (send only the first N bytes of the body), ``then`` (``"wait"`` for the
    answer, the default, or ``"close"``), ``trickle`` (seconds between single bytes of the body,
    until the bot answers)."""
    with socket.create_connection(address, timeout=15) as conn:
        conn.sendall(head)
        sent = body[:send.get("bytes", len(body))]
        # Piece by piece, and no more once the bot has answered: a bot that refuses a request
        # before its body is read closes the connection, and writing on would only reset it.
        size, pause = (1, send["trickle"]) if "trickle" in send else (65536, 0.005)
        for at in range(0, len(sent), size):
            if select.select([conn], [], [], pause)[0]:
                break
            try:
                conn.sendall(sent[at:at + size])
            except (BrokenPipeError, ConnectionResetError):
                break
        if send.get("then", "wait") == "close":
            return None
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    status = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    return int(status.group(1)) if status else None


class LogLines(logging.Handler):
    """Every record (with its traceback) of the app and of uvicorn, which does not propagate to
    the root logger, so pytest's caplog would miss uvicorn's "Exception in ASGI application"."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def recorded_log(level: int = logging.INFO) -> Iterator[LogLines]:
    """Record the log while the block runs, the root logger at ``level``."""
    lines = LogLines()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    before = loggers[0].level
    loggers[0].setLevel(level)
    for logger in loggers:
        logger.addHandler(lines)
    try:
        yield lines
    finally:
        for logger in loggers:
            logger.removeHandler(lines)
        loggers[0].setLevel(before)


class Stored:
    """What the bot has stored: every row of every table (reflected once), as sorted reprs."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self.tables = sa.MetaData()
        self.tables.reflect(engine)

    def now(self) -> dict[str, list[str]]:
        with self.engine.connect() as conn:
            return {name: sorted(repr(tuple(row)) for row in conn.execute(sa.select(table)))
                    for name, table in self.tables.tables.items()}


def _changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return [name for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]


# --- the tests ----------------------------------------------------------------------------------


def test_the_corpus_covers_every_kind_of_bad_input() -> None:
    cases = load_corpus()
    kinds = Counter(case.spec["kind"] for case in cases)
    assert len(cases) >= 60, f"only {len(cases)} cases"
    assert set(kinds) >= {"signature", "numbers", "disconnect", "path", "method", "xml", "truncated", "dtd",
                          "oversize", "slow", "encoding", "missing", "control", "duplicate", "nested", "cdata",
                          "empty", "aes"}, kinds
    for case in cases:
        assert case.spec["description"] and case.spec["expect"], case.name
        assert all(status < 500 for status in case.statuses), case.name
        assert case.statuses or case.spec.get("send", {}).get("then") == "close", f"{case.name} expects no status"


def test_no_request_of_the_corpus_crashes_the_bot_or_changes_what_is_stored(start_bot: StartBot) -> None:
    bots = {"plaintext": start_bot(served=True, REPLY_BUDGET_SECONDS=str(BUDGET_SECONDS)),
            "safe": start_bot(served=True, aes_key=AES_KEY, REPLY_BUDGET_SECONDS=str(BUDGET_SECONDS))}
    failures: list[str] = []
    database = Stored(bots["plaintext"].engine)
    initial = database.now()
    with recorded_log() as log:
        for case in load_corpus():
            bot = bots[case.mode]
            where = urlsplit(str(bot.side.client.base_url))
            before, logged = database.now(), len(log.lines)
            status = exchange((str(where.hostname), int(where.port or 80)), *build(case, bot), case.spec.get("send", {}))
            expect, wrong = case.spec["expect"], []
            if case.statuses and status not in case.statuses:
                wrong.append(f"status {status}, expected {sorted(case.statuses)}")
            if "log" in expect and not _logged_soon(log, logged, expect["log"]):
                wrong.append(f"no log line with {expect['log']!r}")
            changed = _changed(before, database.now())
            if changed:
                wrong.append(f"stored data changed: {changed}")
            lines = "\n".join(log.lines[logged:])
            if "Traceback" in lines or "Exception in ASGI application" in lines:
                wrong.append("a traceback in the log")
            if wrong:
                failures.append(f"{case.name}: {'; '.join(wrong)}\n    log: {lines[-600:]!r}")
        time.sleep(BUDGET_SECONDS)  # anything a request left running has had its budget
    assert not failures, "\n".join(failures)
    whole = "\n".join(log.lines)
    assert "Traceback" not in whole and "Exception in ASGI application" not in whole
    assert not _changed(initial, database.now())
    # The same bots still take WeChat's own messages after all that.
    assert bots["plaintext"].side.text("oAfterCorpus", "帮助").status_code == 200
    assert bots["safe"].side.text("oAfterCorpus", "帮助").status_code == 200


def _logged_soon(log: LogLines, since: int, text: str, seconds: float = 3.0) -> bool:
    """Whether a line with ``text`` is logged after line ``since`` within ``seconds`` (a dropped
    connection's line comes a moment after the socket closed)."""
    deadline = time.monotonic() + seconds
    while not any(text in line for line in log.lines[since:]):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
