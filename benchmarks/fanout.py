"""Reminder and announcement fan-out: 10,000 silent liaisons, the fake WeChat answering each call after 50 ms.

Loads the 晋城 2023 campaign with templates configured, registers N units each with an opted-in
liaison who has not written for days (so every message is a template message), and sends the
weekly reminder due on 2023-06-06 18:00 with ``Reminders.run_due``; then an announcement (通知) to
all liaisons, queued as ``确认`` queues it and fanned out by the worker role's
``Announcements.run`` (claim every recipient, send, report). The fake WeChat runs in its own
process; what arrived is counted from its record of pushes, not from our ledger.

    .venv/bin/python benchmarks/fanout.py [--liaisons 10000] [--latency 0.05] [--concurrency 64]

Prints each path's duration, messages/s, duplicates and lost. Target: ≤ 30 s for 10,000 on two
cores, the announcement at the reminders' speed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.campaigns import load_definition, load_into_db  # noqa: E402
from bot.config import settings_from_mapping  # noqa: E402
from bot.store.engine import make_engine, upgrade  # noqa: E402
from bot.store.models import Person, Role, Unit  # noqa: E402
from bot.texts import Texts  # noqa: E402
from bot.wechat.token_store import build_token_store  # noqa: E402
from bot.wechat.client import WeChatAPI  # noqa: E402
from bot.outbound.announcements import Announcements, queue_announcement  # noqa: E402
from handlers.ports import Audience  # noqa: E402
from scheduler.run import Reminders  # noqa: E402

APP_ID, APP_SECRET = "wx0123456789abcdef", "bench-secret-0123456789abcdef0123"
TEMPLATE_ID = "TPL_DEADLINE_REMINDER_01"
NOTICE_TEMPLATE_ID = "TPL_NOTICE_01"
BEIJING = timezone(timedelta(hours=8))
START = datetime(2023, 6, 1, 9, 0, tzinfo=BEIJING)
DUE = datetime(2023, 6, 6, 18, 0, tzinfo=BEIJING)  # the weekly report's "1 day before" reminder

FAKE_SERVER = f"""
import sys
from datetime import datetime
from simulator.fake_wechat import FakeWeChat, serve
serve(FakeWeChat("{APP_ID}", "{APP_SECRET}", start=datetime.fromisoformat("{START.isoformat()}")),
      "127.0.0.1", int(sys.argv[1]))
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_fake(port: int) -> subprocess.Popen[bytes]:
    """The fake WeChat in its own process (its own core), ready when this returns."""
    process = subprocess.Popen([sys.executable, "-c", FAKE_SERVER, str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_fake/clock", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the fake WeChat did not start")


def prepare(database_url: str, base_url: str, liaisons: int, workdir: Path) -> sa.Engine:
    """A migrated database with the campaign, N units and their liaisons; the fake knows them all."""
    upgrade(database_url)
    engine = make_engine(database_url)
    source = (ROOT / "campaigns" / "jincheng-commerce-2023.toml").read_text(encoding="utf-8")
    campaign_file = workdir / "jincheng-commerce-2023.toml"
    # The announcements' template first (its own fields), then the reminders' three.
    source = re.sub(r'(\[message_templates\.notice\][^\n]*\ntemplate_id = )""', rf'\1"{NOTICE_TEMPLATE_ID}"', source)
    campaign_file.write_text(source.replace('template_id = ""', f'template_id = "{TEMPLATE_ID}"'), encoding="utf-8")
    campaign_id = load_into_db(engine, load_definition(campaign_file)).campaign_id
    opted_in = START - timedelta(days=3)
    with engine.begin() as conn:
        conn.execute(sa.insert(Unit.__table__), [
            {"campaign_id": campaign_id, "name": f"单位{n:05d}", "group": "", "join_code": f"B{n:07d}",
             "liaison_mobile": "", "created_at": opted_in} for n in range(liaisons)])
        unit_ids = conn.execute(sa.select(Unit.__table__.c.id).order_by(Unit.__table__.c.id)).scalars().all()
        conn.execute(sa.insert(Person.__table__), [
            {"openid": openid(n), "name": "", "role": Role.LIAISON.value, "unit_id": unit_id, "following": True,
             "reminder_opt_in_at": opted_in, "created_at": opted_in} for n, unit_id in enumerate(unit_ids)])
    with httpx.Client(base_url=base_url, timeout=30) as http:
        http.post("/_fake/templates", json={"template_id": TEMPLATE_ID,
                                            "fields": {"thing1": "thing", "time2": "time", "thing3": "thing"}})
        http.post("/_fake/templates", json={"template_id": NOTICE_TEMPLATE_ID,
                                            "fields": {"thing1": "thing", "thing2": "thing", "time3": "time"}})
        for n in range(liaisons):
            http.post(f"/_fake/users/{openid(n)}/events", json={"kind": "subscribe"})
        http.post("/_fake/clock", json={"now": DUE.isoformat()})
    return engine


def openid(n: int) -> str:
    """The benchmark's n-th liaison."""
    return f"o_bench_{n:06d}"


def bot_settings(base_url: str, database_url: str, **more: str) -> dict[str, str]:
    """The benchmark bot's settings, by their names in config.example.env."""
    return {"WECHAT_TOKEN": "benchtoken", "WECHAT_APP_ID": APP_ID, "WECHAT_APP_SECRET": APP_SECRET,
            "ADMIN_TOKEN": "bench-admin-token-0123456789", "WECHAT_API_BASE_URL": base_url,
            "DATABASE_URL": database_url, **more}


def sender(engine: sa.Engine, base_url: str, database_url: str, concurrency: int, **more: str) -> Reminders:
    """The bot's sender as ``safetybot reminders run-due`` builds it, clock at the due moment."""
    settings = settings_from_mapping(bot_settings(base_url, database_url, **more))
    api = WeChatAPI(settings, build_token_store(settings, engine), clock=lambda: DUE)
    return Reminders(engine, api, Texts(), template_messages=True, concurrency=concurrency,
                     resend_after=timedelta(seconds=settings.template_event_wait_seconds))


def announcer(engine: sa.Engine, base_url: str, database_url: str, concurrency: int) -> Announcements:
    """The worker role's announcement fan-out (``bot.worker.announcement_sender``), clock at the due moment."""
    settings = settings_from_mapping(bot_settings(base_url, database_url))
    api = WeChatAPI(settings, build_token_store(settings, engine), clock=lambda: DUE)
    return Announcements(engine, api, Texts(), template_messages=True, page_base=settings.page_base,
                         link_key=settings.link_key, clock=lambda: DUE, concurrency=concurrency,
                         resend_after=timedelta(seconds=settings.template_event_wait_seconds))


def delivered(base_url: str, template_id: str = TEMPLATE_ID) -> Counter[str]:
    """How many messages of ``template_id`` each OpenID received, from the fake WeChat's own record."""
    pushes = httpx.get(f"{base_url}/_fake/pushes", timeout=60).json()["pushes"]
    return Counter(push["openid"] for push in pushes if push["payload"].get("template_id") == template_id)


def count(received: Counter[str], liaisons: int) -> tuple[int, int, int]:
    """(delivered once, duplicates, lost) over the benchmark's liaisons."""
    once = sum(1 for n in range(liaisons) if received[openid(n)] == 1)
    duplicates = sum(max(0, received[openid(n)] - 1) for n in range(liaisons))
    lost = sum(1 for n in range(liaisons) if received[openid(n)] == 0)
    return once, duplicates, lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--liaisons", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    fake = start_fake(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            database_url = args.database_url or f"sqlite:///{tmp}/fanout.db"
            engine = prepare(database_url, base_url, args.liaisons, Path(tmp))
            httpx.post(f"{base_url}/_fake/latency", json={"seconds": args.latency})
            reminders = sender(engine, base_url, database_url, args.concurrency)
            started = time.monotonic()
            tally = reminders.run_due(DUE)
            duration = time.monotonic() - started
            once, duplicates, lost = count(delivered(base_url), args.liaisons)

            with engine.begin() as conn:
                campaign_id = conn.execute(sa.select(Unit.__table__.c.campaign_id).limit(1)).scalar_one()
                announcement = queue_announcement(conn, campaign_id, "关于汛期安全检查的通知\n请各单位于本周内完成自查。",
                                                  Audience("all"), DUE, sender_name="市商务局")
            notices = announcer(engine, base_url, database_url, args.concurrency)
            started = time.monotonic()
            notice_tally = notices.run(announcement)
            notice_duration = time.monotonic() - started
            notice_counts = count(delivered(base_url, NOTICE_TEMPLATE_ID), args.liaisons)
            engine.dispose()
    finally:
        fake.terminate()
        fake.wait()
    print(f"liaisons {args.liaisons}, latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}")
    print(f"reminders:    duration {duration:.1f} s, {args.liaisons / duration:.0f} messages/s; "
          f"sent by channel {dict(tally.sent)}, held {sum(tally.held.values())}, failed {tally.failed}; "
          f"delivered once {once}, duplicates {duplicates}, lost {lost}")
    print(f"announcement: duration {notice_duration:.1f} s, {args.liaisons / notice_duration:.0f} messages/s; "
          f"sent by channel {dict(notice_tally.sent)}, held {sum(notice_tally.held.values())}, "
          f"failed {notice_tally.failed}; delivered once {notice_counts[0]}, duplicates {notice_counts[1]}, "
          f"lost {notice_counts[2]}")
    return 0 if (duplicates, lost) == (0, 0) and notice_counts[1:] == (0, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
