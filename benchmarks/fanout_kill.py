"""Fault check: a 2,000-reminder fan-out whose sender is killed with SIGKILL at 5 random moments.

The sender runs as its own process (``python benchmarks/fanout_kill.py --send``, which builds the
sender as ``safetybot reminders run-due`` does); after each kill it is started again, and a last
run finishes the fan-out. What arrived is counted from the fake WeChat's record of pushes, never
from our ledger, and compared with the 2,000 liaisons that should each have one reminder.

    .venv/bin/python benchmarks/fanout_kill.py [--reminders 2000] [--kills 5] [--seed N]

Prints delivered-once / duplicated / lost, and the ledger's own view (rows left in doubt: the
request may have left when the process died; they are not sent again, see docs/reminders.md).
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

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fanout  # noqa: E402

from bot.db import make_engine  # noqa: E402
from bot.models import Delivery  # noqa: E402


def send_once(database_url: str, base_url: str, concurrency: int) -> None:
    """The sender process: run what is due at the weekly reminder's moment."""
    engine = make_engine(database_url)
    fanout.sender(engine, base_url, database_url, concurrency).run_due(fanout.DUE)
    engine.dispose()


def sender_process(database_url: str, base_url: str, concurrency: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--send", database_url, base_url, str(concurrency)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ledger(database_url: str) -> Counter[str]:
    """Our own view, for comparison only: rows by status."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        table = Delivery.__table__
        counts = Counter(dict(conn.execute(sa.select(table.c.status, sa.func.count()).group_by(table.c.status)).all()))
    engine.dispose()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reminders", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--send", nargs=3, metavar=("DATABASE_URL", "BASE_URL", "CONCURRENCY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.send:
        send_once(args.send[0], args.send[1], int(args.send[2]))
        return 0

    chance = random.Random(args.seed)
    port = fanout.free_port()
    base_url = f"http://127.0.0.1:{port}"
    fake = fanout.start_fake(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            database_url = f"sqlite:///{tmp}/fanout_kill.db"
            fanout.prepare(database_url, base_url, args.reminders, Path(tmp)).dispose()
            httpx.post(f"{base_url}/_fake/latency", json={"seconds": args.latency})
            for kill in range(args.kills):
                process = sender_process(database_url, base_url, args.concurrency)
                # Somewhere in the fan-out: after start-up (about 1 s) and before it could finish.
                time.sleep(chance.uniform(0.8, 2.5))
                arrived = len(httpx.get(f"{base_url}/_fake/pushes", timeout=60).json()["pushes"])
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                print(f"kill {kill + 1}: SIGKILL with {arrived} delivered so far")
            final = sender_process(database_url, base_url, args.concurrency)
            final.wait()
            once, duplicates, lost = fanout.count(fanout.delivered(base_url), args.reminders)
            statuses = ledger(database_url)
    finally:
        fake.terminate()
        fake.wait()
    print(f"delivered once {once} / duplicated {duplicates} / lost {lost}  (from the fake WeChat's record)")
    print(f"ledger: {dict(statuses)}  ('sending' = in doubt when a sender died; not resent)")
    return 0 if (once, duplicates, lost) == (args.reminders, 0, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
