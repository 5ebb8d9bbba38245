"""The fake WeChat API keeps WeChat's rules, checked over real HTTP against the served fake."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import httpx
import pytest
from defusedxml import ElementTree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto

from simulator.fake_wechat import BackgroundServer, Callback
from simulator.wechat_side import sign
from tests.conftest import free_port
from tests.fixtures_fake import APP_ID, APP_SECRET, ServedFake

USER = "oLiaison_0123456789abcdefghi"


class WeChatCaller:
    """A plain HTTP client speaking WeChat's API to the served fake."""

    def __init__(self, served: ServedFake, http: httpx.Client):
        self.fake = served.fake
        self.http = http

    def token(self, **overrides: str) -> dict[str, Any]:
        params = {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET, **overrides}
        return self.http.get("/cgi-bin/token", params={k: v for k, v in params.items() if v}).json()

    def stable(self, force_refresh: bool = False, **overrides: Any) -> dict[str, Any]:
        body = {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET,
                "force_refresh": force_refresh, **overrides}
        return self.http.post("/cgi-bin/stable_token", json=body).json()

    def with_token(self, token: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        params = {**kwargs.pop("params", {}), **({"access_token": token} if token is not None else {})}
        return self.http.request(method, path, params=params, **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self.with_token(self.stable()["access_token"], method, path, **kwargs).json()

    def send_text(self, openid: str = USER, content: str = "请填报本周隐患排查情况") -> int:
        body = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        return self.call("POST", "/cgi-bin/message/custom/send", json=body)["errcode"]

    def menu_get(self, token: str) -> int:
        return self.with_token(token, "GET", "/cgi-bin/menu/get").json()["errcode"]


@pytest.fixture(scope="module")
def fake_http(_fake_wechat_server: tuple[object, str]) -> Iterator[httpx.Client]:
    """One client of the served fake for the module's tests: making one costs ~30 ms of CPU (its
    TLS context), more than most of these tests; each test still talks to a fresh fake."""
    _current, base_url = _fake_wechat_server
    with httpx.Client(base_url=base_url) as http:
        yield http


@pytest.fixture
def wechat(fake_wechat: ServedFake, fake_http: httpx.Client) -> WeChatCaller:
    return WeChatCaller(fake_wechat, fake_http)


# -- access tokens ----------------------------------------------------------------------------------


def test_each_token_call_replaces_the_last_which_keeps_five_minutes(wechat: WeChatCaller):
    first = wechat.token()
    assert first["expires_in"] == 7200
    second = wechat.token()
    assert second["access_token"] != first["access_token"]
    wechat.fake.advance(299)
    assert wechat.menu_get(first["access_token"]) == 46003  # still accepted: the menu is merely absent
    wechat.fake.advance(1)
    assert wechat.menu_get(first["access_token"]) == 40001
    assert wechat.menu_get(second["access_token"]) == 46003


@pytest.mark.parametrize(
    "overrides, errcode",
    [({"appid": "wx9999999999999999"}, 40013), ({"secret": "wrong"}, 40125), ({"grant_type": ""}, 40002),
     ({"grant_type": "password"}, 40002), ({"appid": ""}, 41002), ({"secret": ""}, 41004)],
)
def test_bad_credentials_get_wechats_codes_on_both_token_apis(wechat: WeChatCaller, overrides, errcode):
    assert wechat.token(**overrides)["errcode"] == errcode
    assert wechat.stable(**overrides)["errcode"] == errcode


def test_the_2001st_token_of_a_beijing_day_is_refused_until_midnight(wechat: WeChatCaller):
    beijing = timezone(timedelta(hours=8))
    morning = (wechat.fake.now().astimezone(beijing) + timedelta(days=1)).replace(hour=8, minute=0, second=0)
    wechat.fake.set_time(morning)
    for _ in range(2000):
        assert "access_token" in wechat.fake.issue_token(
            {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET})
    assert wechat.token()["errcode"] == 45009
    wechat.fake.set_time(morning.replace(hour=23, minute=59, second=59))
    assert wechat.token()["errcode"] == 45009
    wechat.fake.advance(1)
    assert "access_token" in wechat.token()


def test_stable_token_is_the_same_while_valid_and_renewed_five_minutes_early(wechat: WeChatCaller):
    first = wechat.stable()
    wechat.fake.advance(1000)
    again = wechat.stable()
    assert again == {"access_token": first["access_token"], "expires_in": 6200}
    wechat.fake.advance(6200 - 300)
    renewed = wechat.stable()
    assert renewed["access_token"] != first["access_token"] and renewed["expires_in"] == 7200
    wechat.fake.advance(299)
    assert wechat.menu_get(first["access_token"]) == 46003
    wechat.fake.advance(1)
    assert wechat.menu_get(first["access_token"]) == 42001


def test_force_refresh_kills_the_old_token_and_is_rationed(wechat: WeChatCaller):
    # The ration is per Beijing day: start at 02:00 so the 10 minutes below stay within one day.
    beijing = ZoneInfo("Asia/Shanghai")
    today = wechat.fake.now().astimezone(beijing)
    wechat.fake.set_time(datetime.combine(today.date() + timedelta(days=1), time(2, 0), beijing))
    old = wechat.stable()["access_token"]
    new = wechat.stable(force_refresh=True)
    assert new["expires_in"] == 7200 and wechat.menu_get(old) == 40001
    assert wechat.stable(force_refresh=True)["errcode"] == 45011
    for _ in range(19):
        wechat.fake.advance(30)
        assert "access_token" in wechat.stable(force_refresh=True)
    wechat.fake.advance(30)
    assert wechat.stable(force_refresh=True)["errcode"] == 45009


def test_stable_and_plain_tokens_do_not_disturb_each_other(wechat: WeChatCaller):
    stable = wechat.stable()["access_token"]
    plain = wechat.token()["access_token"]
    wechat.token()
    wechat.stable(force_refresh=True)
    wechat.fake.advance(301)
    assert wechat.menu_get(stable) == 40001  # killed by the force refresh
    assert wechat.menu_get(plain) == 40001  # killed by the newer plain token
    assert wechat.menu_get(wechat.stable()["access_token"]) == 46003


def test_every_api_checks_the_access_token(wechat: WeChatCaller):
    token = wechat.stable()["access_token"]
    assert wechat.menu_get(None) == 41001  # type: ignore[arg-type]
    assert wechat.menu_get("made-up") == 40001
    wechat.fake.expire_tokens()
    assert wechat.menu_get(token) == 42001
    assert wechat.stable()["access_token"] != token


def test_a_token_runs_out_after_two_hours(wechat: WeChatCaller):
    token = wechat.token()["access_token"]
    wechat.fake.advance(7200)
    assert wechat.menu_get(token) == 42001


def test_token_apis_insist_on_their_http_method(wechat: WeChatCaller):
    assert wechat.http.post("/cgi-bin/token").json()["errcode"] == 43001
    assert wechat.http.get("/cgi-bin/stable_token").json()["errcode"] == 43002


# -- customer-service messages ----------------------------------------------------------------------


def test_a_user_message_opens_five_sends_and_the_next_message_five_more(wechat: WeChatCaller):
    wechat.fake.user_wrote(USER)
    assert [wechat.send_text() for _ in range(6)] == [0, 0, 0, 0, 0, 45047]
    wechat.fake.user_wrote(USER)
    assert wechat.send_text() == 0


def test_after_48_hours_of_silence_sends_fail_with_45015(wechat: WeChatCaller):
    wechat.fake.user_wrote(USER)
    wechat.fake.advance(48 * 3600 - 1)
    assert wechat.send_text() == 0
    wechat.fake.advance(1)
    assert wechat.send_text() == 45015


@pytest.mark.parametrize("kind", ["click", "subscribe", "scan"])
def test_a_click_follow_or_scan_allows_three_sends_within_a_minute(wechat: WeChatCaller, kind):
    wechat.fake.user_interacted(USER, kind)
    assert [wechat.send_text() for _ in range(4)] == [0, 0, 0, 45047]
    wechat.fake.advance(60)
    assert wechat.send_text() == 45015


def test_who_cannot_be_reached_by_customer_service(wechat: WeChatCaller):
    assert wechat.send_text("oNeverSeen") == 40003
    wechat.fake.follow("oQuietFollower")
    assert wechat.send_text("oQuietFollower") == 45015
    wechat.fake.user_wrote(USER)
    wechat.fake.unfollow(USER)
    assert wechat.send_text() == 45015


@pytest.mark.parametrize(
    "body, errcode",
    [(b"", 44002), (b"{not json", 47001), (b"[1]", 47001),
     ({"touser": USER, "text": {"content": "x"}}, 40008),
     ({"touser": USER, "msgtype": "file", "file": {}}, 40008),
     ({"touser": USER, "msgtype": "text", "text": {"content": ""}}, 44004),
     ({"touser": USER, "msgtype": "image", "image": {"media_id": "nope"}}, 40007),
     ({"touser": USER, "msgtype": "news", "news": {"articles": []}}, 44003),
     ({"touser": USER, "msgtype": "news", "news": {"articles": [{"title": "a"}, {"title": "b"}]}}, 45008)],
)
def test_malformed_messages_are_refused_as_wechat_does(wechat: WeChatCaller, body, errcode):
    wechat.fake.user_wrote(USER)
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    assert wechat.call("POST", "/cgi-bin/message/custom/send", **kwargs)["errcode"] == errcode
    assert wechat.fake.pushes() == []


def test_a_text_over_2048_bytes_is_refused_with_45002_and_one_at_the_limit_is_delivered(wechat: WeChatCaller):
    wechat.fake.user_wrote(USER)
    at_the_limit = "安" * 682 + "12"  # 682 × 3 + 2 = 2,048 bytes of UTF-8
    assert wechat.send_text(content=at_the_limit + "3") == 45002
    assert wechat.fake.pushes() == []  # and the refused text spent none of the window's five sends
    assert [wechat.send_text(content=at_the_limit) for _ in range(5)] == [0] * 5
    assert [p.payload["text"]["content"] for p in wechat.fake.pushes()] == [at_the_limit] * 5
    answer = wechat.call("POST", "/cgi-bin/message/custom/send",
                         json={"touser": USER, "msgtype": "text", "text": {"content": "字" * 683}})
    assert answer["errcode"] == 45002 and answer["errmsg"].startswith("content size out of limit")


def test_delivered_messages_are_recorded_in_order_and_readable_over_http(wechat: WeChatCaller):
    wechat.fake.user_wrote(USER)
    wechat.fake.user_wrote("oOther")
    media_id = wechat.fake.add_user_media("image", b"\xff\xd8jpeg", "image/jpeg")
    wechat.send_text(content="第一条")
    wechat.call("POST", "/cgi-bin/message/custom/send",
                json={"touser": "oOther", "msgtype": "image", "image": {"media_id": media_id}})
    wechat.send_text(content="第二条")
    assert [p.payload["text"]["content"] for p in wechat.fake.pushes(USER)] == ["第一条", "第二条"]
    later = wechat.http.get("/_fake/pushes", params={"openid": USER, "since": 1}).json()
    assert [p["payload"]["text"]["content"] for p in later["pushes"]] == ["第二条"]
    assert later["next"] == 3


# -- template messages ------------------------------------------------------------------------------

TEMPLATE = "tmpl-deadline-reminder"
FIELDS = {"thing1": "thing", "time2": "time", "phrase3": "phrase", "character_string4": "character_string",
          "number5": "number", "name6": "name", "const7": "const"}
GOOD_DATA = {"thing1": "报送安全生产月活动方案", "time2": "2026年6月5日 18:00", "phrase3": "待报送",
             "character_string4": "2026-W23", "number5": "3", "name6": "王小明"}


def send_template(wechat: WeChatCaller, data: dict[str, str], openid: str = USER,
                  template_id: str = TEMPLATE, **extra: Any) -> dict[str, Any]:
    body = {"touser": openid, "template_id": template_id, "data": {k: {"value": v} for k, v in data.items()},
            **extra}
    return wechat.call("POST", "/cgi-bin/message/template/send", json=body)


@pytest.fixture
def with_template(wechat: WeChatCaller) -> WeChatCaller:
    wechat.fake.add_template(TEMPLATE, FIELDS)
    wechat.fake.follow(USER)
    return wechat


def test_a_valid_template_message_is_delivered_without_first_and_remark(with_template: WeChatCaller):
    data = {**GOOD_DATA, "first": "您好", "remark": "谢谢"}
    answer = send_template(with_template, data, url="https://example.org/form")
    assert answer["errcode"] == 0 and answer["errmsg"] == "ok" and answer["msgid"] > 2**31
    [push] = with_template.fake.pushes(USER)
    assert push.channel == "template" and push.msgid == answer["msgid"]
    assert set(push.payload["data"]) == set(GOOD_DATA)


@pytest.mark.parametrize(
    "field, value",
    [("thing1", "一二三四五六七八九十一二三四五六七八九十一"), ("thing1", "第一行\n第二行"), ("thing1", ""),
     ("time2", "明天下午"), ("time2", "2026-06-05 18:00"), ("time2", "25:00"), ("time2", "2026年2月30日 10:00"),
     ("phrase3", "待报送材料齐全"), ("phrase3", "ok"), ("character_string4", "第23周"),
     ("character_string4", "x" * 33), ("number5", "三"), ("number5", "1" * 33), ("name6", "王" * 11),
     ("name6", "Wang1")],
)
def test_a_value_breaking_its_field_type_is_47003_naming_the_field(with_template: WeChatCaller, field, value):
    answer = send_template(with_template, {**GOOD_DATA, field: value})
    assert answer["errcode"] == 47003
    assert answer["errmsg"].startswith(f"argument invalid! data.{field}.value invalid")
    assert with_template.fake.pushes() == []


def test_missing_fields_and_set_const_fields_are_47003(with_template: WeChatCaller):
    without_thing = {k: v for k, v in GOOD_DATA.items() if k != "thing1"}
    assert send_template(with_template, without_thing)["errmsg"].startswith("argument invalid! data.thing1.value")
    assert send_template(with_template, {**GOOD_DATA, "const7": "催办"})["errcode"] == 47003


@pytest.mark.parametrize(
    "kind, value",
    [("thing", "一二三四五六七八九十一二三四五六七八九十"), ("number", "12.50"), ("letter", "ABC"), ("symbol", "%"),
     ("character_string", "SB-2026/06"), ("time", "15:01"), ("time", "2019年10月1日 15:01~2019年10月1日 17:00"),
     ("date", "2019年10月1日"), ("date", "2019年10月1日 15:01"), ("amount", "￥12.50元"),
     ("phone_number", "+86-0766-66888866"), ("car_number", "粤A8Z888挂"), ("name", "Li Lei"), ("phrase", "配送中")],
)
def test_documented_examples_of_each_field_type_pass(wechat: WeChatCaller, kind, value):
    wechat.fake.add_template("one-field", {"field1": kind})
    wechat.fake.follow(USER)
    assert send_template(wechat, {"field1": value}, template_id="one-field")["errcode"] == 0


@pytest.mark.parametrize(
    "kind, value",
    [("letter", "AB1"), ("symbol", "%%%%%%"), ("symbol", "a"), ("amount", "12.50"), ("phone_number", "1" * 18),
     ("car_number", "粤A8Z888挂X"), ("date", "15:01"), ("letter", "A" * 33)],
)
def test_other_field_types_refuse_what_their_rule_forbids(wechat: WeChatCaller, kind, value):
    wechat.fake.add_template("one-field", {"field1": kind})
    wechat.fake.follow(USER)
    assert send_template(wechat, {"field1": value}, template_id="one-field")["errcode"] == 47003


def test_templates_need_a_known_template_and_a_following_user(with_template: WeChatCaller):
    assert send_template(with_template, GOOD_DATA, template_id="nope")["errcode"] == 40037
    assert send_template(with_template, GOOD_DATA, openid="oNeverSeen")["errcode"] == 40003
    with_template.fake.unfollow(USER)
    assert send_template(with_template, GOOD_DATA)["errcode"] == 43004


def test_the_job_finish_event_carries_the_status_chosen_for_the_user(with_template: WeChatCaller):
    with_template.fake.template_job_status[USER] = "failed:user block"
    msgid = send_template(with_template, GOOD_DATA)["msgid"]
    event = with_template.fake.template_job_finish_event(msgid)
    assert event["Event"] == "TEMPLATESENDJOBFINISH" and event["Status"] == "failed:user block"
    assert event["FromUserName"] == USER and event["MsgID"] == str(msgid)
    assert with_template.http.get(f"/_fake/template-events/{msgid}").json() == event


# -- TEMPLATESENDJOBFINISH pushed to the bot's callback -----------------------------------------------

CALLBACK_TOKEN = "callbacktoken01"
CALLBACK_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


class CallbackReceiver:
    """A bot's callback URL that checks WeChat's signature, decrypts in safe mode, and records the
    event fields of each try; the first ``silent_tries`` tries get no answer in time."""

    def __init__(self, aes_key: str | None = None, silent_tries: int = 0, silence: float = 0.0):
        self.aes_key = aes_key
        self.silent_tries = silent_tries
        self.silence = silence
        self.tries: list[dict[str, str]] = []
        self.app = Starlette(routes=[Route("/wechat", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        query, body = request.query_params, (await request.body()).decode()
        signed = sign(CALLBACK_TOKEN, query["timestamp"], query["nonce"])
        assert query["signature"] == signed
        if self.aes_key:
            crypto = WeChatCrypto(CALLBACK_TOKEN, self.aes_key, APP_ID)
            body = crypto.decrypt_message(body, query["msg_signature"], query["timestamp"], query["nonce"])
        self.tries.append({child.tag: child.text or "" for child in ElementTree.fromstring(body)})
        if len(self.tries) <= self.silent_tries:
            await asyncio.sleep(self.silence)
        return PlainTextResponse("success")


@pytest.fixture
def receiver_port() -> int:
    return free_port()


def serve_receiver(receiver: CallbackReceiver, port: int) -> BackgroundServer:
    return BackgroundServer(receiver.app, port)


@pytest.mark.parametrize("aes_key", [None, CALLBACK_AES_KEY], ids=["plaintext", "safe-mode"])
def test_every_accepted_template_message_is_followed_by_its_event_at_the_bots_callback(
        with_template: WeChatCaller, receiver_port: int, aes_key: str | None):
    receiver = CallbackReceiver(aes_key)
    fake = with_template.fake
    fake.set_callback(Callback(f"http://127.0.0.1:{receiver_port}/wechat", CALLBACK_TOKEN, aes_key))
    fake.template_job_status["oBlocker"] = "failed:user block"
    fake.follow("oBlocker")
    with serve_receiver(receiver, receiver_port):
        first = send_template(with_template, GOOD_DATA)["msgid"]
        refused = send_template(with_template, GOOD_DATA, template_id="nope")
        blocked = send_template(with_template, GOOD_DATA, openid="oBlocker")["msgid"]
        assert fake.wait_for_events()

    assert refused["errcode"] == 40037  # refused: no event
    assert sorted((t["FromUserName"], t["MsgID"], t["Status"]) for t in receiver.tries) == [
        ("oBlocker", str(blocked), "failed:user block"), (USER, str(first), "success")]
    assert {(t["ToUserName"], t["MsgType"], t["Event"]) for t in receiver.tries} == {
        (fake.original_id, "event", "TEMPLATESENDJOBFINISH")}
    assert [(e.openid, e.msgid, e.tries, e.answered) for e in fake.event_pushes(USER)] == [
        (USER, first, ("200",), True)]


def test_a_callback_silent_for_the_timeout_is_tried_again_up_to_three_times(
        with_template: WeChatCaller, receiver_port: int):
    fake = with_template.fake
    fake.callback_timeout = 0.3
    fake.set_callback(Callback(f"http://127.0.0.1:{receiver_port}/wechat", CALLBACK_TOKEN))
    slow_once = CallbackReceiver(silent_tries=1, silence=1.0)
    with serve_receiver(slow_once, receiver_port):
        send_template(with_template, GOOD_DATA)
        assert fake.wait_for_events()
    (event,) = fake.event_pushes()
    assert (event.tries, event.answered) == (("ReadTimeout", "200"), True)
    # Every try is the same event (same CreateTime), signed afresh.
    assert len({(t["CreateTime"], t["MsgID"]) for t in slow_once.tries}) == 1

    send_template(with_template, GOOD_DATA)  # nobody listens any more
    assert fake.wait_for_events()
    assert (fake.event_pushes()[1].tries, fake.event_pushes()[1].answered) == (("ConnectError",) * 3, False)


def test_without_a_callback_no_event_is_pushed_and_the_control_sets_one(with_template: WeChatCaller, receiver_port: int):
    send_template(with_template, GOOD_DATA)
    assert with_template.fake.event_pushes() == []

    url = f"http://127.0.0.1:{receiver_port}/wechat"
    assert with_template.http.post("/_fake/callback", json={"url": url}).status_code == 400
    answer = with_template.http.post("/_fake/callback", json={"url": url, "token": CALLBACK_TOKEN,
                                                              "aes_key": CALLBACK_AES_KEY}).json()
    assert (answer["url"], answer["encrypted"], answer["events"]) == (url, True, [])
    receiver = CallbackReceiver(CALLBACK_AES_KEY)
    with serve_receiver(receiver, receiver_port):
        msgid = send_template(with_template, GOOD_DATA)["msgid"]
        assert with_template.fake.wait_for_events()
    (listed,) = with_template.http.get("/_fake/callback").json()["events"]
    assert (listed["msgid"], listed["status"], listed["answered"]) == (msgid, "success", True)

    assert with_template.http.post("/_fake/callback", json={"url": None}).json()["url"] is None
    send_template(with_template, GOOD_DATA)
    assert len(with_template.fake.event_pushes()) == 1


# -- temporary media -------------------------------------------------------------------------------


def upload(wechat: WeChatCaller, kind: str, filename: str, content: bytes) -> dict[str, Any]:
    return wechat.call("POST", "/cgi-bin/media/upload", params={"type": kind},
                       files={"media": (filename, content, "application/octet-stream")})


def test_an_uploaded_image_downloads_as_bytes_with_a_file_name(wechat: WeChatCaller):
    answer = upload(wechat, "image", "notice.png", b"\x89PNG-image")
    assert answer["type"] == "image" and isinstance(answer["created_at"], int)
    token = wechat.stable()["access_token"]
    got = wechat.with_token(token, "GET", "/cgi-bin/media/get", params={"media_id": answer["media_id"]})
    assert got.content == b"\x89PNG-image" and got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"] == f'attachment; filename="{answer["media_id"]}.png"'


def test_a_video_downloads_through_a_second_url_that_needs_no_token(wechat: WeChatCaller):
    media_id = upload(wechat, "video", "drill.mp4", b"mp4-bytes")["media_id"]
    answer = wechat.call("GET", "/cgi-bin/media/get", params={"media_id": media_id})
    assert answer["video_url"].endswith(f"/_fake/video/{media_id}")
    assert httpx.get(answer["video_url"]).content == b"mp4-bytes"


def test_user_media_is_gone_after_three_days(wechat: WeChatCaller):
    media_id = wechat.http.post("/_fake/media", params={"type": "voice"}, content=b"#!AMR",
                                headers={"content-type": "audio/amr"}).json()["media_id"]
    assert wechat.with_token(wechat.stable()["access_token"], "GET", "/cgi-bin/media/get",
                             params={"media_id": media_id}).content == b"#!AMR"
    wechat.fake.advance(3 * 24 * 3600)
    assert wechat.call("GET", "/cgi-bin/media/get", params={"media_id": media_id})["errcode"] == 40007
    assert wechat.call("GET", "/cgi-bin/media/get", params={"media_id": "unknown"})["errcode"] == 40007


@pytest.mark.parametrize(
    "kind, filename, size, errcode",
    [("image", "big.jpg", 2 * 1024 * 1024 + 1, 40009), ("voice", "long.mp3", 2 * 1024 * 1024 + 1, 40010),
     ("video", "huge.mp4", 10 * 1024 * 1024 + 1, 40011), ("thumb", "t.jpg", 64 * 1024 + 1, 40012),
     ("image", "report.docx", 10, 40005), ("file", "a.jpg", 10, 40004), ("image", "empty.jpg", 0, 44001)],
)
def test_uploads_keep_type_and_size_limits(wechat: WeChatCaller, kind, filename, size, errcode):
    assert upload(wechat, kind, filename, b"x" * size)["errcode"] == errcode


def test_upload_edge_answers(wechat: WeChatCaller):
    assert "thumb_media_id" in upload(wechat, "thumb", "t.jpg", b"jpeg")
    assert wechat.call("POST", "/cgi-bin/media/upload", params={"type": "image"})["errcode"] == 41005


# -- menus ----------------------------------------------------------------------------------------

GOOD_MENU = {"button": [
    {"type": "click", "name": "报周报", "key": "REPORT_WEEKLY"},
    {"name": "我的", "sub_button": [{"type": "click", "name": "我的待办", "key": "MY_TODO"},
                                    {"type": "view", "name": "填报表单", "url": "https://example.org/form"}]},
]}


def test_a_menu_is_stored_and_read_back(wechat: WeChatCaller):
    assert wechat.call("GET", "/cgi-bin/menu/get")["errcode"] == 46003
    assert wechat.call("POST", "/cgi-bin/menu/create", json=GOOD_MENU) == {"errcode": 0, "errmsg": "ok"}
    menu = wechat.call("GET", "/cgi-bin/menu/get")["menu"]["button"]
    assert menu[0]["key"] == "REPORT_WEEKLY" and menu[1]["sub_button"][1]["url"] == "https://example.org/form"


def leaf(**fields: str) -> dict[str, str]:
    return {"type": "click", "name": "按钮", "key": "K", **fields}


@pytest.mark.parametrize(
    "buttons, errcode",
    [([], 40016), ([leaf()] * 4, 40016), ([leaf(type="teleport")], 40017), ([leaf(name="六个汉字名字")], 40018),
     ([leaf(name="")], 40018), ([leaf(key="k" * 129)], 40019), ([leaf(type="view", url="")], 40020),
     ([{"name": "多", "sub_button": [leaf()] * 6}], 40023),
     ([{"name": "多", "sub_button": [leaf(type="nope")]}], 40024),
     ([{"name": "多", "sub_button": [leaf(name="长" * 21)]}], 40025),
     ([{"name": "多", "sub_button": [leaf(key="")]}], 40026),
     ([{"name": "多", "sub_button": [leaf(type="view", url="https://e.org/" + "x" * 1020)]}], 40027),
     ([{"name": "七个汉字的名字", "sub_button": [leaf()]}], 40018)],
)
def test_menus_breaking_the_limits_are_refused(wechat: WeChatCaller, buttons, errcode):
    assert wechat.call("POST", "/cgi-bin/menu/create", json={"button": buttons})["errcode"] == errcode


def test_a_menu_at_the_limits_is_accepted(wechat: WeChatCaller):
    sub = leaf(name="二" * 20, key="k" * 128)
    buttons = [{"name": "四个汉字", "sub_button": [sub] * 5}] * 2 + [leaf(type="view", name="网页", url="https://e.org")]
    assert wechat.call("POST", "/cgi-bin/menu/create", json={"button": buttons})["errcode"] == 0


# -- the rest: unknown paths, faults, latency, recording, HTTP controls ------------------------------


def test_an_api_wechat_does_not_have_is_unauthorized(wechat: WeChatCaller):
    assert wechat.call("POST", "/cgi-bin/message/teleport")["errcode"] == 48001


def test_injected_faults_answer_the_next_calls_then_stop(wechat: WeChatCaller):
    wechat.fake.user_wrote(USER)
    wechat.http.post("/_fake/faults", json={"path": "/cgi-bin/message/custom/send", "errcode": -1, "times": 2})
    assert [wechat.send_text() for _ in range(3)] == [-1, -1, 0]
    wechat.fake.fail_next("/cgi-bin/stable_token", 40164)
    assert wechat.stable()["errmsg"].startswith("invalid ip")


def test_a_slow_wechat_still_answers_many_overlapping_calls(fake_wechat: ServedFake):
    fake_wechat.fake.set_latency(0.05)

    async def many() -> list[int]:
        async with httpx.AsyncClient(base_url=fake_wechat.base_url) as client:
            answers = await asyncio.gather(*(client.get("/cgi-bin/menu/get") for _ in range(20)))
        return [a.json()["errcode"] for a in answers]

    assert asyncio.run(many()) == [41001] * 20
    assert len(fake_wechat.fake.calls) == 20


def test_calls_are_recorded_with_the_secret_redacted(wechat: WeChatCaller):
    wechat.token()
    wechat.stable()
    wechat.token(secret="wrong")
    calls = wechat.fake.calls
    assert [c.errcode for c in calls] == [0, 0, 40125]
    assert calls[0].query["secret"] == "[redacted]" and calls[1].body["secret"] == "[redacted]"
    assert APP_SECRET not in repr(calls)
    listed = wechat.http.get("/_fake/calls", params={"path": "/cgi-bin/stable_token"}).json()["calls"]
    assert len(listed) == 1 and listed[0]["body"]["appid"] == APP_ID


def test_the_http_controls_drive_clock_users_templates_and_tokens(wechat: WeChatCaller):
    start = wechat.fake.now()
    moved = wechat.http.post("/_fake/clock", json={"advance_seconds": 90}).json()["now"]
    assert datetime.fromisoformat(moved) == start + timedelta(seconds=90)
    assert wechat.http.get("/_fake/clock").json()["now"] == moved
    assert wechat.http.post("/_fake/users/oX/events", json={"kind": "message"}).json() == {"ok": True}
    assert wechat.send_text("oX") == 0
    wechat.http.post("/_fake/users/oX/events", json={"kind": "unsubscribe"})
    assert wechat.send_text("oX") == 45015
    assert wechat.http.post("/_fake/users/oX/events", json={"kind": "dance"}).status_code == 400
    wechat.http.post("/_fake/templates", json={"template_id": "t1", "fields": {"thing1": "thing"}})
    wechat.fake.follow("oX")
    assert send_template(wechat, {"thing1": "ok"}, openid="oX", template_id="t1")["errcode"] == 0
    token = wechat.stable()["access_token"]
    wechat.http.post("/_fake/tokens/expire")
    assert wechat.menu_get(token) == 42001
