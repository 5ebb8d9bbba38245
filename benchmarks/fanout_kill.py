"""Fault check: a 2,000-reminder fan-out whose sender is killed with SIGKILL at 5 random moments.

The sender runs as its own process (``python benchmarks/fanout_kill.py --send``, which builds the
sender as ``safetybot reminders run-due`` does); after each kill it is started again, and a last
run finishes the fan-out. The bot itself is served (``safetybot serve``, safe mode) so that the
fake WeChat's TEMPLATESENDJOBFINISH events reach its callback and settle the rows a kill left in
doubt. Once every event has been answered and the wait for them (TEMPLATE_EVENT_WAIT_SECONDS,
shortened here by setting, 10 s) has passed, one more run sends what WeChat never confirmed.

What arrived is counted from the fake WeChat's record of pushes, never from our ledger, and
compared with the 2,000 liaisons that should each have one reminder.

    .venv/bin/python benchmarks/fanout_kill.py [--reminders 2000] [--kills 5] [--seed N] [--event-wait 20]

Prints delivered-once / duplicated / lost, and the ledger's own view.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fanout  # noqa: E402

from bot.store.engine import make_engine  # noqa: E402
from bot.store.models import Delivery  # noqa: E402

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SAFETYBOT = Path(sys.executable).parent / "safetybot"


def send_once(database_url: str, base_url: str, concurrency: int, event_wait: str) -> None:
    """The sender process: run what is due at the weekly reminder's moment."""
    engine = make_engine(database_url)
    fanout.sender(engine, base_url, database_url, concurrency, TEMPLATE_EVENT_WAIT_SECONDS=event_wait).run_due(fanout.DUE)
    engine.dispose()


def sender_process(database_url: str, base_url: str, concurrency: int, event_wait: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--send", database_url, base_url, str(concurrency), str(event_wait)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def serve_bot(database_url: str, base_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``safetybot serve`` on a free port (settings from the environment only); ready when this returns."""
    port = fanout.free_port()
    settings = fanout.bot_settings(base_url, database_url, HOST="127.0.0.1", PORT=str(port), WECHAT_ENCODING_AES_KEY=AES_KEY,
                                   MEDIA_DIR=str(workdir / "media"), LOG_LEVEL="WARNING")
    log = (workdir / "bot.log").open("wb")
    process = subprocess.Popen([str(SAFETYBOT), "--env-file", str(workdir / "no.env"), "serve"],
                               env={**os.environ, **settings}, stdout=log, stderr=log)
    bot_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{bot_url}/healthz", timeout=1).status_code == 200:
                return process, bot_url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the bot did not start: {(workdir / 'bot.log').read_text()[-2000:]}")


def delivered_so_far(base_url: str) -> int:
    """How many messages the fake WeChat has accepted."""
    return int(httpx.get(f"{base_url}/_fake/pushes", params={"since": 10**9}, timeout=60).json()["next"])


def events(base_url: str) -> list[dict[str, Any]]:
    """The events the fake WeChat pushed to the bot's callback."""
    return list(httpx.get(f"{base_url}/_fake/callback", timeout=60).json()["events"])


def wait_for_events(base_url: str, timeout: float = 300) -> None:
    """Until every event pushed so far was answered by the bot (or gave up its tries)."""
    deadline = time.monotonic() + timeout
    while any(e["answered"] is None for e in events(base_url)) and time.monotonic() < deadline:
        time.sleep(0.2)


def ledger(database_url: str) -> tuple[Counter[str], int]:
    """Our own view, for comparison only: rows by status, and rows sent more than once."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        table = Delivery.__table__
        counts = Counter(dict(conn.execute(sa.select(table.c.status, sa.func.count()).group_by(table.c.status)).all()))
        retried = conn.execute(sa.select(sa.func.count()).where(table.c.attempts > 1)).scalar_one()
    engine.dispose()
    return counts, int(retried)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reminders", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--event-wait", type=int, default=10,
                        help="TEMPLATE_EVENT_WAIT_SECONDS for the senders (the product's default is 300)")
    parser.add_argument("--send", nargs=4, metavar=("DATABASE_URL", "BASE_URL", "CONCURRENCY", "EVENT_WAIT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.send:
        send_once(args.send[0], args.send[1], int(args.send[2]), args.send[3])
        return 0

    chance = random.Random(args.seed)
    port = fanout.free_port()
    base_url = f"http://127.0.0.1:{port}"
    fake = fanout.start_fake(port)
    bot = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            database_url = f"sqlite:///{tmp}/fanout_kill.db"
            fanout.prepare(database_url, base_url, args.reminders, Path(tmp)).dispose()
            bot, bot_url = serve_bot(database_url, base_url, Path(tmp))
            httpx.post(f"{base_url}/_fake/callback", json={"url": f"{bot_url}/wechat", "token": "benchtoken",
                                                           "aes_key": AES_KEY})
            httpx.post(f"{base_url}/_fake/latency", json={"seconds": args.latency})
            for kill in range(args.kills):
                before = delivered_so_far(base_url)
                process = sender_process(database_url, base_url, args.concurrency, args.event_wait)
                # Somewhere in the fan-out: once this sender's first message arrived, before it could finish.
                while delivered_so_far(base_url) == before and process.poll() is None:
                    time.sleep(0.02)
                time.sleep(chance.uniform(0.0, 1.0))
                arrived = delivered_so_far(base_url)
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                answered = sum(1 for e in events(base_url) if e["answered"])
                print(f"kill {kill + 1}: SIGKILL with {arrived} delivered so far, {answered} events answered by the bot")
            sender_process(database_url, base_url, args.concurrency, args.event_wait).wait()
            finished = time.monotonic()
            wait_for_events(base_url)
            print(f"the fan-out ended; the bot answered the last event {time.monotonic() - finished:.1f} s later")
            in_doubt = ledger(database_url)[0].get("sending", 0)
            # The product's scheduler looks again every minute; here one run once the wait is over
            # (since the last kill, and since the bot last heard an event: that was just now).
            time.sleep(args.event_wait + 1)
            sender_process(database_url, base_url, args.concurrency, args.event_wait).wait()
            wait_for_events(base_url)
            once, duplicates, lost = fanout.count(fanout.delivered(base_url), args.reminders)
            statuses, retried = ledger(database_url)
            unanswered = sum(1 for e in events(base_url) if not e["answered"])
    finally:
        for process in (bot, fake):
            if process is not None:
                process.terminate()
                process.wait()
    print(f"delivered once {once} / duplicated {duplicates} / lost {lost}  (from the fake WeChat's record)")
    print(f"ledger: {dict(statuses)}; {in_doubt} left in doubt after the kills, {retried} rows sent again "
          f"after {args.event_wait} s without WeChat's event; events unanswered by the bot: {unanswered}")
    return 0 if (once, duplicates, lost) == (args.reminders, 0, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
