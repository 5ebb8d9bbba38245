"""The outbound client against the fake WeChat over real HTTP: every URL on the configured base,
the token renewed only as WeChat's rules allow, retries, setup errors, and each fake rule."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.config import Settings
from simulator.fake_wechat import BackgroundServer
from bot.wechat.token_store import DatabaseTokenStore
from bot.wechat.client import ForeignHostError, WeChatAPI, WeChatAPIError, WeChatSetupError
from tests.conftest import free_port, make_settings
from tests.fixtures_fake import ServedFake, losing_message_answers

OPENID = "oLiaison0000000000000000001"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
STABLE_TOKEN = "/cgi-bin/stable_token"
CUSTOM_SEND = "/cgi-bin/message/custom/send"
TEMPLATE_SEND = "/cgi-bin/message/template/send"


def paths(served: ServedFake) -> list[str]:
    return [call.path for call in served.fake.calls]


def token_fetches(served: ServedFake) -> list[dict[str, object]]:
    return [call.body for call in served.fake.calls if call.path == STABLE_TOKEN]


def errcodes(served: ServedFake, path: str) -> list[int]:
    return [call.errcode for call in served.fake.calls if call.path == path]


# -- every request goes to the configured base ------------------------------------------------


def test_every_call_of_the_client_arrives_at_the_configured_base(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake = fake_wechat.fake
    fake.user_wrote(OPENID)
    fake.add_template("TPL_DUE", {"thing1": "thing", "time2": "time"})
    picture = fake.add_user_media("image", PNG, "image/png")
    video = fake.add_user_media("video", b"mp4 bytes", "video/mp4")

    wechat_api.send_text(OPENID, "请在6月7日前报送周报")
    uploaded = wechat_api.upload_media("image", "poster.jpg", JPEG)
    wechat_api.send_image(OPENID, uploaded)
    wechat_api.send_news(OPENID, [{"title": "安全生产月", "description": "活动方案", "url": "https://example.org/a", "picurl": "https://example.org/p.jpg"}])
    wechat_api.send_template(OPENID, "TPL_DUE", {"thing1": "第一周周报", "time2": "2023年6月7日 17:00"})
    wechat_api.download_media(picture)
    wechat_api.download_media(video)
    wechat_api.create_menu({"button": [{"type": "click", "name": "报周报", "key": "WEEKLY"}]})

    assert paths(fake_wechat) == [
        STABLE_TOKEN,
        CUSTOM_SEND,
        "/cgi-bin/media/upload",
        CUSTOM_SEND,
        CUSTOM_SEND,
        TEMPLATE_SEND,
        "/cgi-bin/media/get",
        "/cgi-bin/media/get",
        "/cgi-bin/menu/create",
    ]
    assert all(call.errcode == 0 for call in fake.calls)


def test_wechatpy_groups_with_fixed_wechat_hosts_are_moved_onto_the_base(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    # wechatpy's template and customservice groups call https://api.weixin.qq.com/... directly;
    # the fake answers paths it does not serve with 48001, which proves the call reached it.
    with pytest.raises(WeChatSetupError):
        wechat_api.client.template.get_all_private_template()
    with pytest.raises(WeChatSetupError):
        wechat_api.client.customservice.get_accounts()

    assert paths(fake_wechat)[1:] == ["/cgi-bin/template/get_all_private_template", "/customservice/getkflist"]


def test_an_absolute_url_on_another_host_is_refused_before_it_leaves(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    with pytest.raises(ForeignHostError):
        wechat_api.client.get("https://mp.weixin.qq.com/cgi-bin/showqrcode")

    assert paths(fake_wechat) == []


@pytest.fixture
def outside_hits() -> list[str]:
    return []


@pytest.fixture
def outside_server(outside_hits: list[str]) -> Iterator[str]:
    """A server no request of the client may reach; it records every request that does."""

    async def anything(request: Request) -> Response:
        outside_hits.append(request.url.path)
        return Response('{"access_token": "leaked", "expires_in": 7200}', media_type="application/json")

    with BackgroundServer(Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])]), free_port()) as url:
        yield url


@pytest.fixture
def redirecting_wechat(outside_server: str) -> Iterator[str]:
    """A "WeChat" that answers every call with a redirect to the outside server."""

    async def redirect(request: Request) -> Response:
        return RedirectResponse(outside_server + request.url.path, status_code=307)

    with BackgroundServer(Starlette(routes=[Route("/{path:path}", redirect, methods=["GET", "POST"])]), free_port()) as url:
        yield url


def test_a_redirect_to_another_host_is_refused_at_the_transport(
    tmp_path: Path, client_engine: sa.Engine, redirecting_wechat: str, outside_hits: list[str]
) -> None:
    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=redirecting_wechat)
    api = WeChatAPI(settings, DatabaseTokenStore(client_engine), sleep=lambda _seconds: None)

    with pytest.raises(ForeignHostError):
        api.access_token()

    assert outside_hits == []


@pytest.fixture
def answer_losing_wechat(fake_wechat: ServedFake) -> Iterator[str]:
    """The fake reached through a network that loses the answers to message sends."""
    with losing_message_answers(fake_wechat.base_url) as url:
        yield url


def test_a_message_whose_answer_is_lost_is_not_sent_again_and_is_reported_in_doubt(
    tmp_path: Path, client_engine: sa.Engine, fake_wechat: ServedFake, answer_losing_wechat: str,
    backoff_waits: list[float]
) -> None:
    fake_wechat.fake.add_template("TPL_DUE", {"thing1": "thing"})
    fake_wechat.fake.follow(OPENID)
    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=answer_losing_wechat)
    api = WeChatAPI(settings, DatabaseTokenStore(client_engine), sleep=backoff_waits.append, clock=fake_wechat.fake.now)

    with pytest.raises(WeChatAPIError) as raised:
        api.send_template(OPENID, "TPL_DUE", {"thing1": "第一周周报"})

    # It arrived once; sending it again could only make it arrive twice.
    assert (raised.value.errcode, raised.value.in_doubt) == (-1, True)
    assert len(fake_wechat.fake.pushes(OPENID)) == 1 and backoff_waits == []


def test_a_message_that_could_not_leave_is_retried(
    tmp_path: Path, wechat_api: WeChatAPI, client_engine: sa.Engine, fake_wechat: ServedFake, backoff_waits: list[float]
) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    wechat_api.access_token()  # the token is stored; only the send meets the closed port
    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    api = WeChatAPI(settings, DatabaseTokenStore(client_engine), sleep=backoff_waits.append, clock=fake_wechat.fake.now)

    with pytest.raises(WeChatAPIError) as raised:
        api.send_text(OPENID, "请报送")

    assert (raised.value.errcode, raised.value.in_doubt) == (-1, False)
    assert backoff_waits == [0.5, 1.0, 2.0]


# -- the access token --------------------------------------------------------------------------


def test_the_token_is_fetched_once_and_reused_by_later_calls(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.user_wrote(OPENID)

    first = wechat_api.access_token()
    wechat_api.send_text(OPENID, "一")
    wechat_api.send_text(OPENID, "二")

    assert wechat_api.access_token() == first
    assert token_fetches(fake_wechat) == [
        {"grant_type": "client_credential", "appid": "wx0123456789abcdef", "secret": "[redacted]", "force_refresh": False}
    ]


def test_a_token_with_less_than_five_minutes_left_is_renewed_before_use(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    first = wechat_api.access_token()
    fake_wechat.fake.advance(7200 - 301)
    assert wechat_api.access_token() == first

    fake_wechat.fake.advance(2)
    renewed = wechat_api.access_token()

    assert renewed != first
    assert [body["force_refresh"] for body in token_fetches(fake_wechat)] == [False, False]


def test_an_expired_token_is_replaced_once_and_the_call_retried(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    wechat_api.access_token()
    fake_wechat.fake.expire_tokens()

    wechat_api.send_text(OPENID, "请报送")

    assert errcodes(fake_wechat, CUSTOM_SEND) == [42001, 0]
    assert [body["force_refresh"] for body in token_fetches(fake_wechat)] == [False, False]


def test_a_token_replaced_by_another_process_is_read_back_not_fetched(
    client_settings: Settings, client_engine: sa.Engine, wechat_api: WeChatAPI, fake_wechat: ServedFake
) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    other = WeChatAPI(client_settings, DatabaseTokenStore(client_engine), clock=fake_wechat.fake.now)
    wechat_api.access_token()
    other.access_token()

    replaced = other.force_refresh_token()
    wechat_api.send_text(OPENID, "请报送")

    assert wechat_api.access_token() == replaced
    assert errcodes(fake_wechat, CUSTOM_SEND) == [40001, 0]
    assert [body["force_refresh"] for body in token_fetches(fake_wechat)] == [False, True]


def test_a_token_still_rejected_after_one_renewal_fails_without_looping(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    fake_wechat.fake.fail_next(CUSTOM_SEND, 40001, times=5)

    with pytest.raises(WeChatAPIError) as raised:
        wechat_api.send_text(OPENID, "请报送")

    assert raised.value.errcode == 40001
    assert errcodes(fake_wechat, CUSTOM_SEND) == [40001, 40001]
    assert [body["force_refresh"] for body in token_fetches(fake_wechat)] == [False, False]


def test_a_second_force_refresh_within_30_seconds_is_refused_by_wechat(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    wechat_api.force_refresh_token()
    fake_wechat.fake.advance(10)

    with pytest.raises(WeChatAPIError) as raised:
        wechat_api.force_refresh_token()

    assert raised.value.errcode == 45011
    assert len(token_fetches(fake_wechat)) == 2


# -- setup errors say how to fix them ----------------------------------------------------------


def test_a_server_ip_missing_from_the_whitelist_says_where_to_add_it(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.fail_next(STABLE_TOKEN, 40164)

    with pytest.raises(WeChatSetupError) as raised:
        wechat_api.access_token()

    assert raised.value.errcode == 40164
    assert "IP白名单" in str(raised.value)


def test_a_wrong_app_secret_names_the_setting_to_fix(tmp_path: Path, client_engine: sa.Engine, fake_wechat: ServedFake) -> None:
    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=fake_wechat.base_url, WECHAT_APP_SECRET="not-the-secret")
    api = WeChatAPI(settings, DatabaseTokenStore(client_engine))

    with pytest.raises(WeChatSetupError) as raised:
        api.access_token()

    assert raised.value.errcode == 40125
    assert "WECHAT_APP_SECRET" in str(raised.value)


def test_a_used_up_daily_quota_stops_at_once_and_says_when_it_resets(
    wechat_api: WeChatAPI, fake_wechat: ServedFake, backoff_waits: list[float]
) -> None:
    fake_wechat.fake.add_template("TPL_DUE", {"thing1": "thing"})
    fake_wechat.fake.user_wrote(OPENID)
    fake_wechat.fake.fail_next(TEMPLATE_SEND, 45009)

    with pytest.raises(WeChatSetupError) as raised:
        wechat_api.send_template(OPENID, "TPL_DUE", {"thing1": "周报"})

    assert raised.value.errcode == 45009
    assert "midnight" in str(raised.value)
    assert errcodes(fake_wechat, TEMPLATE_SEND) == [45009]
    assert backoff_waits == []


# -- retries ---------------------------------------------------------------------------------------


def test_a_busy_wechat_is_retried_with_growing_waits(
    wechat_api: WeChatAPI, fake_wechat: ServedFake, backoff_waits: list[float]
) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    fake_wechat.fake.fail_next(CUSTOM_SEND, -1, times=2)

    wechat_api.send_text(OPENID, "请报送")

    assert errcodes(fake_wechat, CUSTOM_SEND) == [-1, -1, 0]
    assert backoff_waits == [0.5, 1.0]


def test_a_wechat_busy_for_too_long_gives_up_after_three_retries(
    wechat_api: WeChatAPI, fake_wechat: ServedFake, backoff_waits: list[float]
) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    fake_wechat.fake.fail_next(CUSTOM_SEND, -1, times=4)

    with pytest.raises(WeChatAPIError) as raised:
        wechat_api.send_text(OPENID, "请报送")

    assert raised.value.errcode == -1
    assert len(errcodes(fake_wechat, CUSTOM_SEND)) == 4
    assert backoff_waits == [0.5, 1.0, 2.0]
    assert fake_wechat.fake.pushes(OPENID) == []


def test_a_minute_quota_waits_into_the_next_minute(
    wechat_api: WeChatAPI, fake_wechat: ServedFake, backoff_waits: list[float]
) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    fake_wechat.fake.fail_next(CUSTOM_SEND, 45011, times=3)

    wechat_api.send_text(OPENID, "请报送")

    assert sum(backoff_waits) >= 60
    assert len(fake_wechat.fake.pushes(OPENID)) == 1


def test_an_unreachable_wechat_is_an_error_with_code_minus_one(
    tmp_path: Path, client_engine: sa.Engine, backoff_waits: list[float]
) -> None:
    settings = make_settings(tmp_path, WECHAT_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    api = WeChatAPI(settings, DatabaseTokenStore(client_engine), sleep=backoff_waits.append)

    with pytest.raises(WeChatAPIError) as raised:
        api.access_token()

    assert raised.value.errcode == -1
    assert backoff_waits == [0.5, 1.0, 2.0]


# -- the fake's rules, met through the client ------------------------------------------------


def test_customer_service_messages_stop_after_five_in_the_window(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    for number in range(5):
        wechat_api.send_text(OPENID, f"第{number + 1}条")

    with pytest.raises(WeChatAPIError) as raised:
        wechat_api.send_text(OPENID, "第6条")

    assert raised.value.errcode == 45047
    assert not raised.value.setup_error


def test_customer_service_messages_fail_after_48_hours_of_silence(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    fake_wechat.fake.advance(48 * 3600)

    with pytest.raises(WeChatAPIError) as raised:
        wechat_api.send_text(OPENID, "请报送")

    assert raised.value.errcode == 45015
    assert errcodes(fake_wechat, CUSTOM_SEND) == [45015]


def test_a_menu_click_allows_three_messages_within_a_minute(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.user_interacted(OPENID, "click")
    for number in range(3):
        wechat_api.send_text(OPENID, f"第{number + 1}条")

    with pytest.raises(WeChatAPIError) as raised:
        wechat_api.send_text(OPENID, "第4条")

    assert raised.value.errcode == 45047


def test_a_template_message_returns_the_msgid_of_its_finish_event(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.add_template("TPL_DUE", {"thing1": "thing", "time2": "time"})
    fake_wechat.fake.follow(OPENID)

    msgid = wechat_api.send_template(OPENID, "TPL_DUE", {"thing1": "第一周周报", "time2": "2023年6月7日 17:00"}, url="https://example.org/f")

    [push] = fake_wechat.fake.pushes(OPENID)
    assert push.payload["data"]["thing1"] == {"value": "第一周周报"}
    assert push.payload["url"] == "https://example.org/f"
    assert fake_wechat.fake.template_job_finish_event(int(msgid))["MsgID"] == msgid


def test_an_over_long_template_field_is_refused_with_47003(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.add_template("TPL_DUE", {"thing1": "thing"})
    fake_wechat.fake.follow(OPENID)

    with pytest.raises(WeChatAPIError) as raised:
        wechat_api.send_template(OPENID, "TPL_DUE", {"thing1": "安" * 21})

    assert raised.value.errcode == 47003


def test_a_template_to_a_user_who_unfollowed_fails_with_43004(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.add_template("TPL_DUE", {"thing1": "thing"})
    fake_wechat.fake.unfollow(OPENID)

    with pytest.raises(WeChatAPIError) as raised:
        wechat_api.send_template(OPENID, "TPL_DUE", {"thing1": "周报"})

    assert raised.value.errcode == 43004


def test_a_picture_and_a_voice_come_back_as_their_bytes(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    picture = fake_wechat.fake.add_user_media("image", PNG, "image/png")
    voice = fake_wechat.fake.add_user_media("voice", b"#!AMR\n" + b"\x00" * 32, "audio/amr")

    got_picture = wechat_api.download_media(picture)
    got_voice = wechat_api.download_media(voice)

    assert (got_picture.content, got_picture.content_type, got_picture.filename) == (PNG, "image/png", picture + ".png")
    assert (got_voice.content_type, got_voice.filename) == ("audio/amr", voice + ".amr")


def test_a_video_is_fetched_from_the_video_url_wechat_answers(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    video = fake_wechat.fake.add_user_media("video", b"\x00\x00\x00\x18ftypmp42", "video/mp4")

    got = wechat_api.download_media(video)

    assert (got.content, got.content_type, got.filename) == (b"\x00\x00\x00\x18ftypmp42", "video/mp4", video + ".mp4")


def test_a_video_url_answering_json_instead_of_a_file_is_an_error(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    video = fake_wechat.fake.add_user_media("video", b'{"error": "link expired"}', "application/json")

    with pytest.raises(WeChatAPIError, match="answered JSON, not a file"):
        wechat_api.download_media(video)


def test_media_older_than_three_days_is_gone(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    picture = fake_wechat.fake.add_user_media("image", PNG, "image/png")
    fake_wechat.fake.advance(3 * 24 * 3600)

    with pytest.raises(WeChatAPIError) as raised:
        wechat_api.download_media(picture)

    assert raised.value.errcode == 40007


def test_an_uploaded_picture_can_be_sent(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.user_wrote(OPENID)

    media_id = wechat_api.upload_media("image", "poster.jpg", JPEG)
    wechat_api.send_image(OPENID, media_id)

    [push] = fake_wechat.fake.pushes(OPENID)
    assert push.payload["image"] == {"media_id": media_id}


def test_a_news_message_carries_its_one_article(wechat_api: WeChatAPI, fake_wechat: ServedFake) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    article = {"title": "安全生产月", "description": "活动方案", "url": "https://example.org/a", "picurl": "https://example.org/p.jpg"}

    wechat_api.send_news(OPENID, [article])

    [push] = fake_wechat.fake.pushes(OPENID)
    assert push.payload["news"] == {"articles": [article]}


def test_the_created_menu_is_the_account_menu(wechat_api: WeChatAPI) -> None:
    menu = {"button": [{"type": "click", "name": "报周报", "key": "WEEKLY"}, {"type": "click", "name": "我的待办", "key": "TODO"}]}

    wechat_api.create_menu(menu)

    shown = wechat_api.client.menu.get()["menu"]["button"]
    assert [(button["name"], button["key"]) for button in shown] == [("报周报", "WEEKLY"), ("我的待办", "TODO")]


def test_a_menu_name_over_16_bytes_is_refused(wechat_api: WeChatAPI) -> None:
    with pytest.raises(WeChatAPIError) as raised:
        wechat_api.create_menu({"button": [{"type": "click", "name": "安全生产月活动", "key": "X"}]})

    assert raised.value.errcode == 40018


# -- logging ---------------------------------------------------------------------------------------


def test_every_call_is_logged_without_the_token_or_the_secret(
    wechat_api: WeChatAPI, fake_wechat: ServedFake, client_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    fake_wechat.fake.user_wrote(OPENID)
    fake_wechat.fake.fail_next(CUSTOM_SEND, 40001)
    caplog.set_level(logging.DEBUG)

    wechat_api.send_text(OPENID, "请报送")
    token = wechat_api.access_token()

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert token not in text
    assert client_settings.wechat_app_secret not in text
    client_lines = [r.getMessage() for r in caplog.records if r.name == "bot.wechat.client"]
    assert client_lines[0].startswith("wechat POST /cgi-bin/stable_token errcode=0 ")
    assert client_lines[1].startswith("wechat POST /cgi-bin/message/custom/send errcode=40001 ")
    assert client_lines[-1].startswith("wechat POST /cgi-bin/message/custom/send errcode=0 ")
