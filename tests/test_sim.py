"""``/sim``, the demo's phone-like conversation page: a persona's messages go through the real
``/wechat`` signed and encrypted as WeChat does, and what the fake WeChat delivers to them shows in
their conversation; production has no ``/sim``."""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from bot.app import create_app
from bot.demo_clock import DemoClock
from bot.menu import MENU
from bot.store.engine import make_engine
from bot.store.models import InboundMessage, table_of
from simulator.demo import DemoCode, sim_personas
from simulator.fake_wechat import BackgroundServer, FakeWeChat, create_fake_app
from simulator.june import ZEZHOU
from simulator.replay import QINSHUI, REPLAYED, DemoCampaign, drill_picture, load_demo_campaign
from simulator.sim import Persona, Simulator, with_simulator
from tests.conftest import free_port, make_settings
from tests.fixtures_fake import APP_ID, APP_SECRET
from tests.fixtures_forms import CAMPAIGN, UNITS
from tests.fixtures_gateway import AES_KEY

# A Tuesday morning of June 2027: the weekly report is due Wednesday 18:00, its reminder Tuesday 18:00.
START = "2027-06-08T09:00+08:00"
PERSONAS = [
    Persona("liaison", "沁水联络员", "o_sim_liaison", "登记，再发加入码"),
    Persona("newcomer", "新用户", "o_sim_newcomer", "发 帮助 看看能做什么"),
]


@dataclass
class Demo:
    """The bot with ``/sim``, served on a demo clock beside its fake WeChat, and its database."""

    page: httpx.Client
    fake: FakeWeChat
    engine: sa.Engine
    join_code: str

    def send(self, persona: str, **message: str) -> httpx.Response:
        return self.page.post("/sim/send", json={"persona": persona, **message})

    def say(self, persona: str, text: str) -> str:
        answer = self.send(persona, text=text)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["reply"]["text"])

    def feed(self, persona: str) -> list[dict[str, object]]:
        return list(self.page.get("/sim/feed", params={"persona": persona}).json()["entries"])


@dataclass
class Served:
    """The bot with ``/sim`` served on a demo clock beside its fake WeChat: its address, the fake,
    the database, the campaign as loaded and the clock."""

    base: str
    fake: FakeWeChat
    engine: sa.Engine
    campaign: DemoCampaign
    clock: DemoClock


@contextlib.contextmanager
def served_demo(tmp_path: Path, sqlite_url: str, personas: list[Persona], **settings: str) -> Iterator[Served]:
    """What `safetybot demo` serves, in-process: the 晋城 campaign in June 2027, ``personas`` in /sim."""
    clock = DemoClock(datetime.fromisoformat(START))
    fake = FakeWeChat(APP_ID, APP_SECRET, clock=clock)
    fake.create_menu(MENU)
    engine = make_engine(sqlite_url)
    campaign = load_demo_campaign(engine, CAMPAIGN, UNITS, 2027)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with BackgroundServer(create_fake_app(fake), free_port()) as fake_url:
        values = make_settings(tmp_path, DATABASE_URL=sqlite_url, WECHAT_API_BASE_URL=fake_url, PUBLIC_URL=base,
                               DEMO_CLOCK_START=START, MESSAGES_PER_MINUTE="0", **settings)
        app = with_simulator(create_app(values, demo=clock), Simulator(values, fake, clock, personas, base))
        # Served for real (lifespan included): the simulator posts to /wechat over HTTP, as WeChat does.
        with BackgroundServer(app, port, lifespan="on"):
            yield Served(base, fake, engine, campaign, clock)
    fake.close()
    engine.dispose()


@pytest.fixture
def demo(tmp_path: Path, sqlite_url: str) -> Iterator[Demo]:
    with served_demo(tmp_path, sqlite_url, PERSONAS, WECHAT_ENCODING_AES_KEY=AES_KEY) as served, \
            httpx.Client(base_url=served.base, timeout=30) as page:
        yield Demo(page, served.fake, served.engine, served.campaign.join_codes[QINSHUI])


def test_the_page_shows_each_persona_and_the_menu_as_the_bot_created_it(demo: Demo) -> None:
    page = demo.page.get("/sim", params={"persona": "newcomer"})
    assert page.status_code == 200
    assert "沁水联络员" in page.text and "新用户" in page.text and "发 帮助 看看能做什么" in page.text
    for top in MENU["button"]:
        assert top["name"] in page.text
        for sub in top["sub_button"]:
            assert f'data-key="{sub["key"]}">{sub["name"]}<' in page.text
    # Its one script runs by the nonce the policy names; nothing from elsewhere may load.
    policy = page.headers["content-security-policy"]
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in page.text and "<script src" not in page.text


def test_a_new_person_asks_for_help_and_sees_the_bots_reply_in_their_conversation(demo: Demo) -> None:
    reply = demo.send("newcomer", text="帮助")
    assert reply.status_code == 200
    assert "登记" in reply.json()["reply"]["text"]
    feed = demo.feed("newcomer")
    assert [(entry["from"], entry["kind"]) for entry in feed] == [("me", "text"), ("bot", "text")]
    assert feed[0]["text"] == "帮助" and feed[1]["text"] == reply.json()["reply"]["text"]
    # A menu tap is the CLICK event, answered as the word is.
    tapped = demo.send("newcomer", click="HELP").json()["reply"]["text"]
    assert tapped == reply.json()["reply"]["text"]
    assert demo.feed("newcomer")[2] == {**demo.feed("newcomer")[2], "from": "note", "text": "点击菜单「帮助」"}


def test_a_liaison_sends_a_picture_the_bot_stores_and_later_sees_the_reminder_the_clock_brought(demo: Demo) -> None:
    for text in ("登记", demo.join_code, "孙丽", "0356-2056819", "13800000009", "跳过", "跳过", "sun@163.com",
                 "晋城市沁水县1号", "确认"):
        demo.say("liaison", text)
    assert "登记完成" in demo.say("liaison", "是")
    assert "开始报送《报送一周活动开展情况》" in demo.say("liaison", "周报")

    picture = drill_picture()
    sent = demo.send("liaison", picture="data:image/png;base64," + base64.b64encode(picture).decode())
    assert sent.status_code == 200, sent.text
    shown = demo.feed("liaison")[-2]
    assert shown["from"] == "me" and shown["kind"] == "image"
    # The page shows the very picture the fake WeChat hosts, and the bot logged it with that MediaId.
    assert demo.page.get(str(shown["src"])).content == picture
    media_id = str(shown["src"]).rsplit("/", 1)[1]
    inbound = table_of(InboundMessage)
    with demo.engine.connect() as conn:
        pictures = conn.execute(sa.select(inbound.c.raw).where(
            inbound.c.openid == "o_sim_liaison", inbound.c.msg_type == "image")).scalars().all()
    assert len(pictures) == 1 and f"<MediaId><![CDATA[{media_id}]]></MediaId>" in pictures[0]
    demo.say("liaison", "取消")

    before = len(demo.feed("liaison"))
    moved = demo.page.post("/demo/clock", json={"to": "next"})
    assert moved.status_code == 200 and moved.json()["reminders"].startswith("sent "), moved.text
    arrived = demo.feed("liaison")[before:]
    assert any(entry["kind"] == "text" and "报送一周活动开展情况" in str(entry["text"]) for entry in arrived), arrived
    assert not any("报送一周活动开展情况" in str(entry.get("text")) for entry in demo.feed("newcomer"))


def test_the_simulator_takes_json_only_and_known_personas_only(demo: Demo) -> None:
    # A page of another site can post a form here, but not JSON without asking first.
    assert demo.page.post("/sim/send", data={"persona": "newcomer", "text": "帮助"}).status_code == 415
    assert demo.send("nobody", text="帮助").status_code == 404
    assert demo.send("newcomer", picture="data:text/html;base64,PGI+").status_code == 400
    assert demo.send("newcomer", click="NOT_A_BUTTON").status_code == 400
    assert demo.feed("newcomer") == []


def test_production_has_no_simulator(tmp_path: Path, sqlite_url: str) -> None:
    production = TestClient(create_app(make_settings(tmp_path, DATABASE_URL=sqlite_url)))
    for path in ("/sim", "/sim/feed?persona=liaison"):
        assert production.get(path).status_code == 404
    assert production.post("/sim/send", json={"persona": "liaison", "text": "帮助"}).status_code == 404


def test_the_demo_offers_zezhous_liaison_a_newcomer_with_a_free_units_join_code_and_the_offices_codes(
        sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        campaign = load_demo_campaign(engine, CAMPAIGN, UNITS, 2027)
    finally:
        engine.dispose()
    codes = [DemoCode(campaign.slug, "staff", "STAFF123"), DemoCode(campaign.slug, "coordinator", "COORD456"),
             DemoCode("another-campaign", "staff", "OTHER789")]
    personas = {persona.key: persona for persona in sim_personas(codes, campaign, [QINSHUI])}
    assert list(personas) == ["liaison", "newcomer", "staff", "coordinator"]
    assert personas["liaison"].openid == REPLAYED[ZEZHOU][0] and "已登记" in personas["liaison"].hint
    assert personas["newcomer"].hint == f"发 登记，再发{QINSHUI}的加入码 {campaign.join_codes[QINSHUI]}"
    assert "STAFF123" in personas["staff"].hint and "COORD456" in personas["coordinator"].hint
    assert (personas["staff"].openid, personas["coordinator"].openid) == ("o_staff_demo", "o_coordinator_demo")
