"""The ``reminder_world`` fixture: the 晋城 2023 campaign loaded with a few units, their people, and a
fake WeChat whose clock starts in May 2023, served over HTTP, with the bot's reminder sender.

``serve_callback(world)`` also serves the bot's ``/wechat`` (safe mode) on the same database and
points the fake WeChat's event pushes at it, as a real account's server configuration does."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.app import create_app
from bot.campaigns import load_definition, load_into_db
from bot.store.engine import make_engine, session
from simulator.fake_wechat import BackgroundServer, Callback, FakeWeChat, create_fake_app
from bot.store.models import Campaign, Deadline, Person, Role, Submission, Unit, utcnow
from bot.texts import Texts
from bot.wechat.token_store import build_token_store
from bot.wechat.client import WeChatAPI
from scheduler.plan import QuietHours
from scheduler.run import RESEND_AFTER, Reminders, Tally
from tests.conftest import free_port, make_settings
from tests.fixtures_fake import APP_ID, APP_SECRET

BEIJING = ZoneInfo("Asia/Shanghai")
CAMPAIGN_FILE = Path(__file__).resolve().parent.parent / "campaigns" / "jincheng-commerce-2023.toml"
TEMPLATE_ID = "TPL_DEADLINE_REMINDER_01"
# The fields of the 待办/催办 category template the 晋城 file maps (thing1, time2, thing3).
TEMPLATE_FIELDS = {"thing1": "thing", "time2": "time", "thing3": "thing"}
START = datetime(2023, 5, 20, 9, 0, tzinfo=BEIJING)


def beijing(text: str) -> datetime:
    """``"2023-06-07 16:00"`` as an aware Beijing time."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=BEIJING)


def campaign_with_template(tmp_path: Path, template_id: str = TEMPLATE_ID) -> Path:
    """The 晋城 file with the account admin's template id filled in."""
    path = tmp_path / CAMPAIGN_FILE.name
    path.write_text(CAMPAIGN_FILE.read_text(encoding="utf-8").replace('template_id = ""', f'template_id = "{template_id}"'),
                    encoding="utf-8")
    return path


@dataclass
class ReminderWorld:
    """One campaign, its people, the fake WeChat and the sender, with helpers that say what happened."""

    engine: sa.Engine
    fake: FakeWeChat
    base_url: str
    reminders: Reminders
    campaign_id: int

    def unit(self, name: str) -> int:
        """A unit of the campaign (created when new)."""
        with session(self.engine) as db:
            found = db.exec(select(Unit).where(Unit.campaign_id == self.campaign_id, Unit.name == name)).first()
            if found is None:
                found = Unit(campaign_id=self.campaign_id, name=name, join_code=f"J{abs(hash(name)) % 10**8:08d}")
                db.add(found)
                db.commit()
            assert found.id is not None
            return found.id

    def person(self, openid: str, *, unit: str | None = None, role: Role = Role.LIAISON, opted_in: bool = True) -> None:
        """Someone who follows the account (known to the fake) and, as registration does, agreed to
        deadline reminders unless ``opted_in`` is false; staff and coordinators work on this campaign."""
        unit_id = self.unit(unit) if unit else None
        self.fake.follow(openid)
        with session(self.engine) as db:
            db.add(Person(openid=openid, name=openid, role=role, unit_id=unit_id,
                          campaign_id=None if role is Role.LIAISON else self.campaign_id,
                          reminder_opt_in_at=self.fake.now() if opted_in else None))
            db.commit()

    def writes(self, openid: str) -> None:
        """The person sends the account a message now: WeChat opens the window, the gateway records it."""
        self.fake.user_wrote(openid)
        with session(self.engine) as db:
            person = db.exec(select(Person).where(Person.openid == openid)).one()
            person.last_message_at = self.fake.now()
            db.add(person)
            db.commit()

    def submits(self, unit: str, deadline_key: str, period: str = "") -> None:
        """The unit gives what the deadline collects (as the conversations issue records it)."""
        unit_id = self.unit(unit)
        with session(self.engine) as db:
            deadline = db.exec(select(Deadline).where(Deadline.campaign_id == self.campaign_id,
                                                      Deadline.key == deadline_key)).one()
            db.add(Submission(unit_id=unit_id, deadline_id=deadline.id, period=period, status="submitted",
                              submitted_at=self.fake.now()))
            db.commit()

    def at(self, moment: datetime) -> None:
        """Move the fake WeChat's clock (the sender's clock follows it)."""
        if moment > self.fake.now():
            self.fake.set_time(moment)

    def run_due(self, moment: datetime | None = None) -> Tally:
        """``safetybot reminders run-due --now moment``."""
        if moment is not None:
            self.at(moment)
        return self.reminders.run_due(self.fake.now())

    def received(self, openid: str) -> list[tuple[str, str, str]]:
        """What ``openid`` got, as WeChat recorded it: (Beijing time, channel, deadline or text)."""
        found = []
        for push in self.fake.pushes(openid):
            what = push.payload["data"]["thing1"]["value"] if push.channel == "template" else push.payload["text"]["content"]
            found.append((push.at.astimezone(BEIJING).strftime("%m-%d %H:%M"), push.channel, what))
        return found


def build_sender(engine: sa.Engine, fake: FakeWeChat, base_url: str, tmp_path: Path, *,
                 template_messages: bool = True, concurrency: int = 8,
                 real_clock: Callable[[], datetime] = utcnow, resend_after: timedelta = RESEND_AFTER) -> Reminders:
    """The bot's sender against the served fake, its clock the fake's; ``real_clock`` stands for
    the real time that the wait for WeChat's job events is measured on."""
    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=base_url, DATABASE_URL=str(engine.url))
    # No real waiting between retries of a busy WeChat: the fake answers at once.
    api = WeChatAPI(settings, build_token_store(settings, engine), sleep=lambda seconds: None, clock=fake.now)
    return Reminders(engine, api, Texts(), template_messages=template_messages, quiet=QuietHours(),
                     concurrency=concurrency, real_clock=real_clock, resend_after=resend_after)


class LaterClock:
    """The real time, moved on by :meth:`wait` instead of sleeping through the wait for job events."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.ahead

    def wait(self, span: timedelta = RESEND_AFTER + timedelta(seconds=1)) -> None:
        """As if ``span`` (default: the whole wait for job events) had passed."""
        self.ahead += span


CALLBACK_TOKEN = "callbacktoken01"
CALLBACK_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@pytest.fixture
def serve_callback(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``serve_callback(world, start=True, clock=utcnow)``: the bot's /wechat on the world's
    database, in safe mode, as the fake WeChat's callback; returns its URL. With ``start=False``
    the URL is configured but nothing listens yet; call it again with ``start=True`` to serve."""
    with contextlib.ExitStack() as stack:
        ports: dict[int, int] = {}

        def serve(world: ReminderWorld, start: bool = True, clock: Callable[[], datetime] = utcnow) -> str:
            port = ports.setdefault(id(world), free_port())
            url = f"http://127.0.0.1:{port}/wechat"
            world.fake.set_callback(Callback(url, CALLBACK_TOKEN, CALLBACK_AES_KEY))
            if start:
                settings = make_settings(tmp_path, WECHAT_TOKEN=CALLBACK_TOKEN, WECHAT_ENCODING_AES_KEY=CALLBACK_AES_KEY,
                                         WECHAT_API_BASE_URL=world.base_url, DATABASE_URL=str(world.engine.url))
                app = create_app(settings, engine=world.engine, wechat=world.reminders.api, clock=clock)
                stack.enter_context(BackgroundServer(app, port))
            return url

        yield serve


@pytest.fixture
def june_fake(_fake_wechat_server: tuple) -> Iterator[tuple[FakeWeChat, str]]:
    """A fresh fake WeChat whose clock starts on 2023-05-20 09:00 Beijing time, with the template."""
    current, base_url = _fake_wechat_server
    fake = FakeWeChat(APP_ID, APP_SECRET, start=START)
    fake.add_template(TEMPLATE_ID, TEMPLATE_FIELDS)
    current.app = create_fake_app(fake)
    yield fake, base_url
    current.app = None
    fake.close()


@pytest.fixture
def reminder_world(database_url: str, june_fake: tuple[FakeWeChat, str], tmp_path: Path) -> Iterator[ReminderWorld]:
    """The 晋城 2023 campaign (template configured) on a migrated database, and the sender."""
    fake, base_url = june_fake
    engine = make_engine(database_url)
    result = load_into_db(engine, load_definition(campaign_with_template(tmp_path)))
    with session(engine) as db:
        assert db.get(Campaign, result.campaign_id) is not None
    yield ReminderWorld(engine, fake, base_url, build_sender(engine, fake, base_url, tmp_path), result.campaign_id)
    engine.dispose()
