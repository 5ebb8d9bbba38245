"""WeChat's TEMPLATESENDJOBFINISH event reaches the reminders ledger through /wechat."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlmodel import select

from bot.store.engine import session
from bot.store.models import Delivery, Person
from tests.fixtures_gateway import StartBot

FIXED_NOW = datetime(2026, 6, 6, 10, 0, tzinfo=timezone.utc)


def _template_delivery(bot, openid: str, msgid: str) -> None:
    with session(bot.engine) as db:
        db.add(Delivery(key=f"reminder:{openid}:1::before-1d", openid=openid, kind="reminder", channel="template",
                        status="sent", wechat_msg_id=msgid))
        db.commit()


def _delivery(bot, msgid: str) -> Delivery:
    with session(bot.engine) as db:
        return db.exec(select(Delivery).where(Delivery.wechat_msg_id == msgid)).one()


def test_a_delivered_template_message_is_recorded_as_such(start_bot: StartBot) -> None:
    bot = start_bot()
    bot.side.event("o_liaison", "subscribe")
    _template_delivery(bot, "o_liaison", "200163836")
    reply = bot.side.event("o_liaison", "TEMPLATESENDJOBFINISH", MsgID=200163836, Status="success")
    assert (reply.status_code, reply.body) == (200, "success")
    assert _delivery(bot, "200163836").job_status == "success"
    assert bot.person("o_liaison").unreachable_reason is None


def test_a_refused_template_message_marks_the_liaison_unreachable(start_bot: StartBot) -> None:
    bot = start_bot()
    bot.side.event("o_blocker", "subscribe")
    _template_delivery(bot, "o_blocker", "200163840")
    bot.side.event("o_blocker", "TEMPLATESENDJOBFINISH", MsgID=200163840, Status="failed:user block")
    assert _delivery(bot, "200163840").job_status == "failed:user block"
    person: Person | None = bot.person("o_blocker")
    assert person is not None and "failed:user block" in (person.unreachable_reason or "")


def test_two_template_messages_finished_in_the_same_second_are_both_recorded(start_bot: StartBot) -> None:
    bot = start_bot(clock=lambda: FIXED_NOW)
    bot.side.event("o_liaison", "subscribe")
    _template_delivery(bot, "o_liaison", "200163850")
    with session(bot.engine) as db:
        db.add(Delivery(key="reminder:o_liaison:2::before-1d", openid="o_liaison", kind="reminder",
                        channel="template", status="sent", wechat_msg_id="200163851"))
        db.commit()
    # The same CreateTime, Event and EventKey: only the MsgID tells the two apart.
    bot.side.event("o_liaison", "TEMPLATESENDJOBFINISH", MsgID=200163850, Status="success")
    bot.side.event("o_liaison", "TEMPLATESENDJOBFINISH", MsgID=200163851, Status="failed: system failed")
    assert _delivery(bot, "200163850").job_status == "success"
    assert _delivery(bot, "200163851").job_status == "failed: system failed"
