"""The demo clock (``DEMO_CLOCK_START``): ``safetybot demo`` shows the campaign in its June, the bot,
the reminder scheduler and the fake WeChat agree on "now", and moving the clock sends what fell
due; production (``serve``, ``worker``, an app built without a demo clock) refuses the setting and
has no clock to move."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from bot.app import create_app
from bot.cli.main import main
from bot.config import ConfigError
from bot.demo_clock import DemoClock
from bot.store.engine import make_engine
from bot.store.models import MediaFile, table_of
from simulator.chat import FakeWeChatControl
from simulator.june import CHENGQU, GAOPING, YANGCHENG, ZEZHOU
from simulator.replay import LINGCHUAN, QINSHUI, REPLAYED, LiaisonReplay
from simulator.wechat_side import WeChatSide
from tests.conftest import free_port, make_settings, wait_until_served
from tests.fixtures_fake import APP_ID, APP_SECRET
from tests.fixtures_forms import CAMPAIGN, UNITS

TOKEN = "safetybottest"
# A Tuesday morning of June 2027: the week of 6-03 to 6-09 is open, its report due Wednesday 18:00.
START = "2027-06-08T09:00+08:00"
BEIJING = timezone(timedelta(hours=8))
NEWCOMER = "o_liaison_demo"


class Demo:
    """``safetybot demo`` running in a process of its own, as ``make run`` starts it."""

    def __init__(self, process: subprocess.Popen[str], bot: str, fake: str):
        self.process = process
        self.bot = bot
        self.fake = fake
        self.printed: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def stop(self) -> None:
        """Stop the demo as Ctrl-C would, and close what it printed to."""
        self.process.terminate()
        self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.printed.append(line.rstrip("\n"))

    def wait_for(self, start: str, seconds: float = 240) -> str:
        """The first printed line starting with ``start``, once printed (the replay takes a while)."""
        deadline = time.monotonic() + seconds
        while True:
            found = next((line for line in self.printed if line.startswith(start)), None)
            if found is not None:
                return found
            assert self.process.poll() is None, "the demo exited:\n" + "\n".join(self.printed)
            assert time.monotonic() < deadline, "the demo did not print it:\n" + "\n".join(self.printed)
            time.sleep(0.2)


@pytest.fixture
def demo(sqlite_url: str, tmp_path: Path) -> Iterator[Demo]:
    """The demo on a database of its own, its clock started at :data:`START`."""
    fake_port, port = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", ""), "WECHAT_TOKEN": TOKEN, "WECHAT_APP_ID": APP_ID,
        "WECHAT_APP_SECRET": APP_SECRET, "ADMIN_TOKEN": "test-admin-token-0123456789",
        "WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "WECHAT_API_BASE_URL": f"http://127.0.0.1:{fake_port}", "DATABASE_URL": sqlite_url,
        "MEDIA_DIR": str(tmp_path / "media"), "PORT": str(port), "LOG_LEVEL": "WARNING", "DEMO_CLOCK_START": START,
    }
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "--env-file", os.devnull, "demo",
                                "--fake-port", str(fake_port), "--replay-june", str(CAMPAIGN), "--units", str(UNITS)],
                               env=env, stdout=subprocess.PIPE, text=True)
    running = Demo(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{fake_port}")
    try:
        wait_until_served(process, running.bot)
        yield running
    finally:
        running.stop()


def _pushed_to(fake: httpx.Client, openid: str) -> list[str]:
    pushes = fake.get("/_fake/pushes", params={"openid": openid}).json()["pushes"]
    return [p["payload"]["text"]["content"] for p in pushes if p["msgtype"] == "text"]


def test_the_demo_shows_the_campaign_in_its_june_and_moving_its_clock_sends_the_reminders_then_due(
        demo: Demo, sqlite_url: str) -> None:
    tried = demo.wait_for("The demo clock shows")
    assert tried.startswith("The demo clock shows 2027-06-08 09:0"), tried
    replayed = demo.wait_for("A June of jincheng-commerce-2027")
    assert "2027年全市商务系统“安全生产月”活动" in replayed and "2023" not in replayed
    ways_in = {who: demo.wait_for(f"  {who}:") for who in ("a liaison", "a coordinator", "staff")}
    assert all(f"--as o_{role}_demo" in line for role, line in zip(("liaison", "coordinator", "staff"), ways_in.values()))
    join = re.search(rf"{QINSHUI}'s join code (\w+)", ways_in["a liaison"])
    assert join is not None, ways_in

    with httpx.Client(base_url=demo.bot, timeout=30) as bot, httpx.Client(base_url=demo.fake, timeout=10) as fake:
        # The fake WeChat and the bot read the same clock.
        fake_now = datetime.fromisoformat(fake.get("/_fake/clock").json()["now"])
        clock = bot.get("/demo/clock").json()
        assert abs(datetime.fromisoformat(clock["now"]) - fake_now) < timedelta(seconds=5)
        assert datetime(2027, 6, 8, 9, tzinfo=BEIJING) <= fake_now < datetime(2027, 6, 8, 9, 10, tzinfo=BEIJING)

        # A newcomer signs their messages with WeChat's now, as `safetybot chat` does, and the bot takes them.
        control = FakeWeChatControl(fake)
        liaison = LiaisonReplay(WeChatSide(bot, token=TOKEN, app_id=APP_ID,
                                           aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                                           clock=control.now_seconds), control)
        liaison.register(NEWCOMER, join.group(1), "孙丽", "13800000009")
        opened = liaison.say(NEWCOMER, "周报", expect="（6月3日—6月9日），截止 6月9日 18:00")
        assert "迟报" not in opened
        liaison.say(NEWCOMER, "取消")
        liaison.say(NEWCOMER, "要情", expect="报送要情")
        liaison.say(NEWCOMER, "6月8日上午在沁水县开展安全宣传咨询活动。", expect="要情")
        liaison.say(NEWCOMER, "完成")

        owing = [REPLAYED[unit][0] for unit in (GAOPING, LINGCHUAN, YANGCHENG)] + [NEWCOMER]
        reported = [REPLAYED[unit][0] for unit in (CHENGQU, ZEZHOU)]
        assert not any(_pushed_to(fake, openid) for openid in owing + reported)

        # The day before the week's report is due, 18:00: the reminder goes to those who owe it.
        assert datetime.fromisoformat(clock["next"]) == datetime(2027, 6, 8, 18, tzinfo=BEIJING)
        moved = bot.post("/demo/clock", json={"to": "next"})
        assert moved.status_code == 200, moved.text
        assert datetime.fromisoformat(moved.json()["now"]) - datetime(2027, 6, 8, 18, tzinfo=BEIJING) < timedelta(seconds=5)
        assert moved.json()["reminders"].startswith("sent ")
        for openid in owing:
            assert any("报送一周活动开展情况" in text for text in _pushed_to(fake, openid)), openid
        assert not any(_pushed_to(fake, openid) for openid in reported)
        assert datetime.fromisoformat(fake.get("/_fake/clock").json()["now"]) >= datetime(2027, 6, 8, 18, tzinfo=BEIJING)

    # 城区's weekly report came with a picture, fetched from the fake WeChat and stored.
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            pictures = conn.execute(sa.select(table_of(MediaFile).c.id)).all()
    finally:
        engine.dispose()
    assert pictures


def test_serve_and_worker_refuse_the_demo_clock_before_they_start(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text((Path(__file__).parent.parent / "config.example.env").read_text()
                        + f"DATABASE_URL=sqlite:///{tmp_path / 'bot.db'}\nDEMO_CLOCK_START={START}\n")
    for command in ("serve", "worker"):
        assert main(["--env-file", str(env_file), command]) == 2
        refused = capsys.readouterr().err
        assert "DEMO_CLOCK_START" in refused and f"`safetybot {command}` keeps real time" in refused


def test_an_app_built_without_a_demo_clock_refuses_the_setting_and_has_no_clock_or_fake_to_move(
        tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        create_app(make_settings(tmp_path, DATABASE_URL=sqlite_url, DEMO_CLOCK_START=START))
    assert refused.value.variable == "DEMO_CLOCK_START"
    production = TestClient(create_app(make_settings(tmp_path, DATABASE_URL=sqlite_url)))
    for path in ("/demo/clock", "/_fake/clock"):
        assert production.get(path).status_code == 404
        assert production.post(path, json={"advance_seconds": 86400}).status_code in (404, 405)


@pytest.mark.parametrize("value, problem", [
    ("2027-06-08T09:00", "needs its UTC offset"),
    ("next June", "must be a moment like 2027-06-05T09:00+08:00"),
])
def test_a_demo_clock_start_must_be_a_moment_with_its_offset(tmp_path: Path, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        make_settings(tmp_path, DEMO_CLOCK_START=value)
    assert refused.value.variable == "DEMO_CLOCK_START" and problem in refused.value.problem


def test_the_demo_clock_moves_forward_on_json_only_and_never_back(tmp_path: Path, sqlite_url: str) -> None:
    clock = DemoClock(datetime.fromisoformat(START))
    app = TestClient(create_app(make_settings(tmp_path, DATABASE_URL=sqlite_url, DEMO_CLOCK_START=START), demo=clock))
    before = clock.now()
    # A page of another site can post a form here, but not JSON without asking first.
    assert app.post("/demo/clock", data={"advance_seconds": "86400"}).status_code == 415
    assert app.post("/demo/clock", json={"advance_seconds": -60}).status_code == 400
    assert app.post("/demo/clock", json={"advance_seconds": 1e30}).status_code == 400
    assert app.post("/demo/clock", json={"to": "2027-06-01T09:00+08:00"}).status_code == 400
    assert clock.now() - before < timedelta(seconds=5)
    moved = app.post("/demo/clock", json={"advance_seconds": 86400})
    assert moved.status_code == 200
    assert timedelta(days=1) <= datetime.fromisoformat(moved.json()["now"]) - before < timedelta(days=1, seconds=5)
    assert app.post("/demo/clock", json={"to": "2027-06-20T09:00+08:00"}).json()["now"].startswith("2027-06-20T01:00")
