"""Announcements (通知): a staff member of 晋城 2023 writes one in the chat, chooses who gets it, sees
the preview and confirms; the worker role inside the served bot fans it out, and what each liaison
got is read from the fake WeChat's record. The template message's link is opened through the app.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.campaigns import load_definition, load_into_db
from bot.campaigns.units import import_units, unit_codes
from bot.store.engine import session
from bot.outbound.announcements import write_announcement
from bot.store.models import Announcement, Deadline, Delivery, Person, Role, Submission, Unit
from bot.store.writers import StaleDecision
from bot.texts import Texts
from handlers.announcements import SEND_ACTION
from handlers.base import Incoming
from handlers.changes import SendAnnouncement
from handlers.ports import Audience, AudienceFacts, DeliveryCounts
from tests.fixtures_forms import CAMPAIGN, SLUG, UNITS, Campaign, Clock
from tests.fixtures_gateway import StartBot
from tests.test_weekly_report import eventually

TEXTS = Texts()
STAFF, COORDINATOR = "oStaffWang", "oCoordinatorLi"
STAFF_CODE, COORDINATOR_CODE = "STAFF2023JC", "COORD2023JC"
NOTICE_TEMPLATE = "TPL_NOTICE_01"
# The category template the campaign file maps for announcements: title, sender, time.
NOTICE_FIELDS = {"thing1": "thing", "thing2": "thing", "time3": "time"}
ENFORCEMENT = "市商务综合行政执法队"  # a unit of the group 局属单位; the demo's units are all counties
TEXT = "关于开展安全生产大检查的通知\n请各单位于6月25日前完成自查，并将自查报告报送至市局安全科。"


def campaign_file(tmp_path: Path, template_id: str = NOTICE_TEMPLATE) -> Path:
    """晋城 2023 with the office's staff codes and the announcements' template id filled in."""
    text = CAMPAIGN.read_text(encoding="utf-8")
    text = re.sub(r'(\[message_templates\.notice\][^\n]*\ntemplate_id = )""', rf'\1"{template_id}"', text)
    edited = tmp_path / CAMPAIGN.name
    edited.write_text(text + f'\n[staff]\njoin_code = "{STAFF_CODE}"\ncoordinator_code = "{COORDINATOR_CODE}"\n',
                      encoding="utf-8")
    return edited


class Newsroom(Campaign):
    """The campaign and the bot, with the people of an announcement and what WeChat did with it."""

    def staff(self, openid: str = STAFF, code: str = STAFF_CODE) -> None:
        """Someone registers with the office's code and keeps writing (their window is open)."""
        self.say(openid, "登记")
        self.say(openid, code)
        self.bot.fake.user_wrote(openid)

    def liaison(self, openid: str, unit: str) -> None:
        """A unit's liaison, registered and agreeing to messages, as WeChat knows them."""
        self.register(openid, unit)
        self.bot.fake.user_wrote(openid)

    def announce(self, *answers: str, text: str = TEXT, openid: str = STAFF) -> str:
        """``通知``, the text, then each answer; the last reply (the preview, before 确认)."""
        self.bot.fake.user_wrote(openid)
        assert self.say(openid, "通知") == TEXTS.render("announce_start")
        reply = self.say(openid, text)
        for answer in answers:
            reply = self.say(openid, answer)
        return reply

    def announcements(self) -> list[Announcement]:
        with session(self.engine) as db:
            return list(db.exec(select(Announcement).order_by(Announcement.id)))  # type: ignore[arg-type]

    def finished(self) -> Announcement:
        """The latest announcement once the worker reported it."""
        done = eventually(lambda: [a for a in self.announcements()[-1:] if a.status == "done"])
        assert done, f"the announcement was not finished: {self.announcements()}"
        return done[0]

    def deliveries(self) -> list[Delivery]:
        with session(self.engine) as db:
            return list(db.exec(select(Delivery).where(Delivery.kind == "announcement").order_by(Delivery.id)))

    def job_events(self) -> None:
        """WeChat pushes TEMPLATESENDJOBFINISH for every template message it took (as the fake recorded it)."""
        for push in self.bot.fake.pushes():
            if push.channel == "template" and push.msgid is not None:
                event = self.bot.fake.template_job_finish_event(push.msgid)
                self.bot.side.event(push.openid, "TEMPLATESENDJOBFINISH", MsgID=event["MsgID"], Status=event["Status"])

    def page(self, url: str) -> httpx.Response:
        """A link the bot sent, opened on a phone (through the app)."""
        response: httpx.Response = self.bot.side.client.get(httpx.URL(url).raw_path.decode())
        return response

    def received(self, openid: str) -> list[tuple[str, str]]:
        """What ``openid`` got as WeChat recorded it: (channel, text or template title)."""
        return [(p.channel, p.payload["data"]["thing1"]["value"] if p.channel == "template"
                 else p.payload.get("text", {}).get("content", p.msgtype)) for p in self.bot.fake.pushes(openid)]


def newsroom_of(start_bot: StartBot, engine: sa.Engine, tmp_path: Path, **settings: str) -> Newsroom:
    load_into_db(engine, load_definition(campaign_file(tmp_path)))
    import_units(engine, SLUG, UNITS)
    codes = {name: code for name, _group, code, _mobile in unit_codes(engine, SLUG)}
    with session(engine) as db:
        campaign_id = db.exec(select(Unit.campaign_id)).first()
        db.add(Unit(campaign_id=campaign_id, name=ENFORCEMENT, group="局属单位", join_code="JCZFD2023"))
        db.commit()
    codes[ENFORCEMENT] = "JCZFD2023"
    room = Newsroom(functools.partial(start_bot, **settings), engine, Clock(), codes)
    room.bot.fake.add_template(NOTICE_TEMPLATE, NOTICE_FIELDS)
    return room


@pytest.fixture
def newsroom(start_bot: StartBot, engine: sa.Engine, tmp_path: Path) -> Iterator[Newsroom]:
    """晋城 2023 on a verified service account, with a staff member who writes to the bot."""
    room = newsroom_of(start_bot, engine, tmp_path)
    yield room


def report_of(room: Newsroom, openid: str = STAFF) -> str:
    """The delivery report the sender got (pushed by the outbox)."""
    found = eventually(lambda: [t for t in room.bot.pushed_texts(openid, 1, timeout=0) if "【通知送达情况】" in t])
    assert found, f"no report reached {openid}: {room.received(openid)}"
    return found[-1]


def test_liaisons_get_an_announcement_by_the_channel_their_window_allows_and_the_link_opens_the_text(
        newsroom: Newsroom) -> None:
    room = newsroom
    room.liaison("oChengqu", "城区商务局")
    room.clock.advance(days=3)  # 城区's liaison has been silent since
    room.liaison("oZezhou", "泽州县商务局")
    room.clock.advance(hours=1)  # 泽州's liaison wrote an hour ago
    room.staff()

    preview = room.announce("1")
    assert preview == TEXTS.render("announce_preview", who="全部联络员", counts=_counts(
        recipients=2, customer_service=1, template=1, units=7, without_liaison=5), text=TEXT, image=False)
    assert room.say(STAFF, "确认") == TEXTS.render("announce_queued")
    announcement = room.finished()

    text = TEXTS.render("announcement_text", campaign="2023年全市商务系统“安全生产月”活动", text=TEXT)
    assert room.received("oZezhou") == [("custom", text)]
    [template] = room.bot.fake.pushes("oChengqu")
    assert template.channel == "template"
    assert template.payload["data"] == {"thing1": {"value": "关于开展安全生产大检查的通知"}, "thing2": {"value": "工作人员"},
                                        "time3": {"value": "2023年6月23日 11:00"}}

    page = room.page(template.payload["url"])
    assert page.status_code == 200
    assert "关于开展安全生产大检查的通知\n请各单位于6月25日前完成自查" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in page.text

    report = report_of(room)
    assert report == TEXTS.render("announcement_report", title="关于开展安全生产大检查的通知", recipients=2,
                                  without_liaison=5, counts=_report(customer_service=1, template=1))
    assert announcement.report["sent"] == {"customer_service": 1, "template": 1}


def _counts(**values: int) -> AudienceFacts:
    base = dict(recipients=0, customer_service=0, template=0, held=0, unreachable=0, units=0, without_liaison=0)
    return AudienceFacts(**(base | values))


def _report(customer_service: int = 0, template: int = 0, **values: int) -> DeliveryCounts:
    base = dict(delivered=0, held=0, failed=0, unreachable=0, pending=0)
    return DeliveryCounts({"customer_service": customer_service, "template": template}, **(base | values))


def test_the_text_arrives_literally_and_only_a_link_the_bot_signed_and_still_valid_opens_it(
        newsroom: Newsroom) -> None:
    room = newsroom
    room.liaison("oChengqu", "城区商务局")
    room.clock.advance(days=3)
    room.liaison("oZezhou", "泽州县商务局")
    room.staff()
    typed = "请核对{{ 7*7 }}项{% if true %}数据{% endif %}\n<script>alert(1)</script> & “附件”"
    room.announce("1", text=typed)
    room.say(STAFF, "确认")
    room.finished()

    [(channel, text)] = room.received("oZezhou")
    assert channel == "custom" and text.endswith("\n" + typed)
    [template] = room.bot.fake.pushes("oChengqu")
    assert template.payload["data"]["thing1"] == {"value": "请核对{{ 7*7 }}项{% if …"}  # a thing holds 20
    page = room.page(template.payload["url"])
    assert ("请核对{{ 7*7 }}项{% if true %}数据{% endif %}\n&lt;script&gt;alert(1)&lt;/script&gt; &amp; “附件”"
            in page.text)
    assert "<script>" not in page.text

    url = httpx.URL(template.payload["url"])
    token = url.path.rsplit("/", 1)[1]
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert room.page(str(url.copy_with(path=f"/notice/{altered}"))).status_code == 403
    assert room.page(str(url.copy_with(path="/notice/not-a-token"))).status_code == 403
    room.clock.advance(days=31)  # the link lives 30 days
    expired = room.page(template.payload["url"])
    assert expired.status_code == 403 and "请核对" not in expired.text


def test_each_kind_of_audience_reaches_exactly_its_liaisons(newsroom: Newsroom) -> None:
    room = newsroom
    people = {"城区商务局": "oChengqu", "泽州县商务局": "oZezhou", "高平市商务局": "oGaoping", ENFORCEMENT: "oZhifa"}
    for unit, openid in people.items():
        room.liaison(openid, unit)
    room.staff()
    # 泽州 has submitted the statistics table (due 7-1).
    zezhou = room.unit_id("泽州县商务局")
    with session(room.engine) as db:
        statistics = db.exec(select(Deadline).where(Deadline.key == "statistics")).one()
        db.add(Submission(unit_id=zezhou, deadline_id=statistics.id, period="", status="submitted"))
        db.commit()

    owing = room.announce("2", text="统计表请于7月1日前报送")
    # Open deadlines and those passed within a week (the week of 6-14), earliest first, ten at most.
    assert owing.splitlines()[1:7] == [
        "1. 报送一周活动开展情况（2023-06-14）", "2. 报送一周活动开展情况（2023-06-21）", "3. 报送一周活动开展情况（2023-06-28）",
        "4. 报送上月典型案例（2023-06）", "5. 报送安全生产月总结报告", "6. 报送安全生产月统计表"]
    assert room.say(STAFF, "66") == TEXTS.render("announce_pick_number", count=10)
    preview = room.say(STAFF, "6")
    assert "发送对象：尚未报送“报送安全生产月统计表”的单位，共 3 位联络员（另有 3 个单位未登记联络员）" in preview
    room.say(STAFF, "确认")
    room.finished()
    assert {openid for openid in people.values() if room.received(openid)} == {"oChengqu", "oGaoping", "oZhifa"}

    groups = room.announce("3", text="局属单位请注意")
    assert "2. 局属单位" in groups
    assert "共 1 位联络员" in room.say(STAFF, "2")
    room.say(STAFF, "确认")
    room.finished()
    assert [len(room.received(openid)) for openid in people.values()] == [1, 0, 1, 2]

    asked = room.announce("4", text="请城区和高平两家单位注意")
    assert asked == TEXTS.render("announce_ask_units")
    assert room.say(STAFF, "火星") == TEXTS.render("announce_no_unit", fragment="火星")
    choices = room.say(STAFF, "城区、商务局")  # 商务局 fits six units: a list to pick from
    assert choices.startswith("以下单位名称相近") and "高平市商务局" in choices
    gaoping = next(line.split(".")[0] for line in choices.splitlines() if "高平市商务局" in line)
    preview = room.say(STAFF, gaoping)
    assert "发送对象：城区商务局、高平市商务局，共 2 位联络员" in preview
    room.say(STAFF, "确认")
    room.finished()
    assert [len(room.received(openid)) for openid in people.values()] == [2, 0, 2, 2]

    everyone = room.announce("1", text="全体联络员：请按时报送")
    assert "共 4 位联络员" in everyone
    assert room.say(STAFF, "取消") == TEXTS.render("announce_cancelled")
    assert len(room.announcements()) == 3
    assert [len(room.received(openid)) for openid in people.values()] == [2, 0, 2, 2]


def test_the_report_counts_what_wechat_recorded_and_announcement_status_follows_its_job_events(
        newsroom: Newsroom) -> None:
    room = newsroom
    room.liaison("oChengqu", "城区商务局")
    room.liaison("oGaoping", "高平市商务局")
    room.register("oYangcheng", "阳城县商务局")  # WeChat never heard of this one: it cannot be reached
    room.clock.advance(days=3)
    room.liaison("oZezhou", "泽州县商务局")
    room.bot.fake.unfollow("oGaoping")  # unfollowed meanwhile: WeChat answers 43004
    room.staff()
    room.announce("1")
    room.say(STAFF, "确认")
    announcement = room.finished()

    pushes = room.bot.fake.pushes()
    by_channel = {channel: len([p for p in pushes if p.channel == channel and p.openid != STAFF])
                  for channel in ("custom", "template")}
    assert by_channel == {"custom": 1, "template": 1}
    assert announcement.report["sent"] == {"customer_service": 1, "template": 1}
    assert (announcement.report["unreachable"], announcement.report["failed"]) == (2, 0)
    report = report_of(room)
    assert "· 客服消息送达：1\n· 模板消息送达：1\n" in report and "· 无法送达（已取消关注或拒收）：2" in report

    status = room.say(STAFF, "通知 状态")
    assert "共 4 人：客服消息 1，模板消息 1（已确认送达 0），暂存 0，失败 0，无法送达 2" in status
    room.job_events()
    status = room.say(STAFF, "通知状态")
    assert "共 4 人：客服消息 1，模板消息 1（已确认送达 1），暂存 0，失败 0，无法送达 2" in status
    assert status.startswith("最近的通知：\n1. 关于开展安全生产大检查的通知（工作人员，6月23日 10:00）")


@pytest.fixture
def unverified(start_bot: StartBot, engine: sa.Engine, tmp_path: Path) -> Newsroom:
    """The same campaign on a service account that is not verified: no template messages."""
    return newsroom_of(start_bot, engine, tmp_path, WECHAT_ACCOUNT_KIND="service")


def test_on_an_account_without_templates_a_silent_liaison_gets_the_announcement_and_its_picture_when_they_write(
        unverified: Newsroom) -> None:
    room = unverified
    room.liaison("oChengqu", "城区商务局")
    room.clock.advance(days=3)
    room.liaison("oZezhou", "泽州县商务局")
    room.staff()
    picture = room.bot.fake.add_user_media("image", b"\xff\xd8\xff\xe0 a photo", "image/jpeg")
    assert room.say(STAFF, "通知") == TEXTS.render("announce_start")
    assert room.bot.side.image(STAFF, picture).content == TEXTS.render("announce_image_received", has_text=False)
    room.say(STAFF, TEXT)
    preview = room.say(STAFF, "1")
    assert preview == TEXTS.render("announce_preview", who="全部联络员", counts=_counts(
        recipients=2, customer_service=1, held=1, units=7, without_liaison=5), text=TEXT, image=True)
    room.say(STAFF, "确认")
    announcement = room.finished()
    assert announcement.report["held"] == 1
    assert [p.msgtype for p in room.bot.fake.pushes("oZezhou")] == ["text", "image"]
    assert room.bot.fake.pushes("oChengqu") == []

    room.clock.advance(hours=2)
    room.say("oChengqu", "收到")
    room.bot.fake.user_wrote("oChengqu")
    got = eventually(lambda: [p for p in room.bot.fake.pushes("oChengqu") if p.msgtype == "image"])
    assert got, room.received("oChengqu")
    assert [p.msgtype for p in room.bot.fake.pushes("oChengqu")] == ["text", "image"]
    assert room.bot.fake.pushes("oChengqu")[0].payload["text"]["content"].endswith(TEXT)
    # The ledger takes WeChat's answer once the picture's request is answered too.
    assert eventually(lambda: {d.status for d in room.deliveries()} == {"sent"})
    status = room.say(STAFF, "通知 状态")
    assert "共 2 人：客服消息 2，模板消息 0，暂存 0" in status


def test_only_staff_of_the_campaign_may_announce_and_a_refusal_changes_nothing(newsroom: Newsroom) -> None:
    room = newsroom
    room.liaison("oZezhou", "泽州县商务局")
    room.say("oZezhou", "周报")  # a liaison in the middle of a report, who is told it is still open
    for openid in ("oZezhou", "oStranger"):
        for words in ("通知", "通知 状态"):
            refused = TEXTS.render("role_refused", action=SEND_ACTION, roles=["staff", "coordinator"],
                                   newcomer=openid == "oStranger")
            if openid == "oZezhou":
                refused += "\n\n" + TEXTS.render("dialogue_still_open", flow="weekly")
            assert room.say(openid, words) == refused
    assert room.conversation("oZezhou").flow == "weekly"  # type: ignore[union-attr]
    assert room.announcements() == [] and room.deliveries() == []

    room.staff(COORDINATOR, COORDINATOR_CODE)
    assert room.say(COORDINATOR, "通知") == TEXTS.render("announce_start")
    room.say(COORDINATOR, TEXT)
    room.say(COORDINATOR, "1")
    # Staff rights taken away before 确认: the dialogue ends saying so, and nothing is queued.
    with session(room.engine) as db:
        db.exec(sa.text(f"UPDATE person SET role = 'liaison' WHERE openid = '{COORDINATOR}'"))  # type: ignore[call-overload]
        db.commit()
    assert room.say(COORDINATOR, "确认").startswith("您已不是2023年全市商务系统“安全生产月”活动的协调人，通知已结束：这条通知没有发送")
    assert room.announcements() == []
    person = room.bot.person(COORDINATOR)
    assert person is not None and person.role is Role.LIAISON


def test_the_confirmation_is_not_written_for_someone_no_longer_staff_of_that_campaign(newsroom: Newsroom) -> None:
    room = newsroom
    room.staff()
    staff = room.bot.person(STAFF)
    assert staff is not None and staff.campaign_id is not None
    change = SendAnnouncement(staff.campaign_id, TEXT, None, Audience("all"))
    incoming = Incoming(openid=STAFF, kind="text", created_at=room.clock(), text="确认")
    with room.engine.begin() as conn:
        conn.execute(sa.update(Person).where(Person.openid == STAFF).values(campaign_id=None))  # type: ignore[arg-type]
    with pytest.raises(StaleDecision), room.engine.begin() as conn:
        write_announcement(conn, incoming, change, room.clock())
    assert room.announcements() == []


def test_a_text_over_wechats_limit_is_refused_before_anything_is_chosen(newsroom: Newsroom) -> None:
    room = newsroom
    room.staff()
    room.say(STAFF, "通知")
    long_text = "请各单位认真落实安全生产责任。" * 50  # 750 characters, 2,250 bytes
    size = len(TEXTS.render("announcement_text", campaign="2023年全市商务系统“安全生产月”活动", text=long_text).encode())
    assert size > 2048
    assert room.say(STAFF, long_text) == TEXTS.render("announce_too_long", size=size, limit=2048)
    assert room.conversation(STAFF).step == "text"  # type: ignore[union-attr]
    assert room.say(STAFF, long_text[:300]) == TEXTS.render("announce_audience", groups=True)
