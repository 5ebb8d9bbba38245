"""The coordinators' dashboard at /dashboard, through the ASGI app on a replayed June: who may log
in (the admin token, a coordinator's 后台 link), what a session sees (its campaign only), the
cookie's and the forms' protections, and that the pages show what 进度 and 合计 say."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from bot.dashboard.sessions import COOKIE, SESSION_LIFETIME
from tests.fixtures_forms import Campaign, jincheng  # noqa: F401  (fixture)
from tests.fixtures_june import (  # noqa: F401  (fixtures)
    CHENGQU, COORDINATOR, GAOPING, LIAISONS, STAFF, YANGCHENG, ZEZHOU, June, june,
)
from tests.test_announcements import STAFF as ANNOUNCER, Newsroom, newsroom  # noqa: F401  (fixture)
from tests.test_weekly_report import eventually, media

TOKEN = "test-admin-token-0123456789"  # make_settings' ADMIN_TOKEN
CAMPAIGN_PAGE = "/dashboard/c/jincheng-commerce-2023"


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def log_in(client: TestClient, token: str = TOKEN, base: str = "") -> Any:
    """The admin's login as a browser does it: the form, then the post with its CSRF token."""
    form = client.get(f"{base}/dashboard/login")
    return client.post(f"{base}/dashboard/login", data={"token": token, "csrf": csrf_of(form.text)},
                       follow_redirects=False)


def enter(june: June, openid: str = COORDINATOR) -> Any:
    """A coordinator's 后台 link, opened."""
    reply = june.say(openid, "后台")
    url = re.search(r"https?://\S+", reply)
    assert url, reply
    return june.campaign.bot.side.client.get(urlsplit(url.group(0)).path, follow_redirects=False)


def texts_of(page: str, css_class: str) -> list[str]:
    return [re.sub(r"<[^>]+>|\s+", " ", t).strip() for t in re.findall(rf'class="{css_class}"[^>]*>(.*?)</', page)]


def test_the_admin_token_logs_in_and_sees_every_campaign(june: June) -> None:
    client = june.campaign.bot.side.client
    answer = log_in(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    home = client.get("/dashboard")
    assert home.status_code == 200 and "2023年全市商务系统“安全生产月”活动" in home.text
    page = client.get(CAMPAIGN_PAGE)
    assert page.status_code == 200 and "泽州县商务局" in page.text and "退出登录" in page.text


@pytest.mark.parametrize("path", ["/dashboard", CAMPAIGN_PAGE, f"{CAMPAIGN_PAGE}/units/1",
                                  f"{CAMPAIGN_PAGE}/export.xlsx"])
def test_no_page_opens_without_a_login(june: June, path: str) -> None:
    answer = june.campaign.bot.side.client.get(path, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"


@pytest.mark.parametrize("token", ["", "test-admin-token-012345678", TOKEN + "0", TOKEN.upper()])
def test_a_wrong_token_is_refused_and_opens_no_session(june: June, token: str) -> None:
    client = june.campaign.bot.side.client
    answer = log_in(client, token)
    assert answer.status_code == 403 and "令牌不对" in answer.text
    assert COOKIE not in answer.cookies
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_login_without_the_forms_csrf_token_is_refused(june: June) -> None:
    client = june.campaign.bot.side.client
    client.get("/dashboard/login")
    assert client.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False).status_code == 403
    assert client.post("/dashboard/login", data={"token": TOKEN, "csrf": "forged"},
                       follow_redirects=False).status_code == 403
    # A token read from the page is no good without the cookie set with it (another site's post).
    page = client.get("/dashboard/login").text
    client.cookies.clear()
    assert client.post("/dashboard/login", data={"token": TOKEN, "csrf": csrf_of(page)},
                       follow_redirects=False).status_code == 403


def test_logging_out_needs_the_sessions_csrf_token_and_ends_the_session(june: June) -> None:
    client = june.campaign.bot.side.client
    log_in(client)
    page = client.get(CAMPAIGN_PAGE).text
    assert client.post("/dashboard/logout", data={}, follow_redirects=False).status_code == 403
    assert client.post("/dashboard/logout", data={"csrf": "forged"}, follow_redirects=False).status_code == 403
    assert client.get(CAMPAIGN_PAGE).status_code == 200
    out = client.post("/dashboard/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get(CAMPAIGN_PAGE, follow_redirects=False).status_code == 303


def test_a_forged_or_expired_session_cookie_is_refused(june: June) -> None:
    client = june.campaign.bot.side.client
    log_in(client)
    cookie = client.cookies[COOKIE]
    payload, _, signature = cookie.partition(".")
    other = "B" if payload[0] == "A" else "A"
    for forged in (f"{payload}.{signature[::-1]}", f"{other}{payload[1:]}.{signature}", "all-x", ""):
        client.cookies.clear()
        client.cookies.set(COOKIE, forged, path="/dashboard")
        assert client.get(CAMPAIGN_PAGE, follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie, path="/dashboard")
    june.campaign.clock.advance(seconds=SESSION_LIFETIME.total_seconds() - 60)
    assert client.get(CAMPAIGN_PAGE, follow_redirects=False).status_code == 200
    june.campaign.clock.advance(seconds=60)
    assert client.get(CAMPAIGN_PAGE, follow_redirects=False).status_code == 303


def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(june: June) -> None:
    client = june.campaign.bot.side.client
    plain = log_in(client).headers["set-cookie"].lower()
    assert "httponly" in plain and "samesite=lax" in plain and "path=/dashboard" in plain and "secure" not in plain
    client.cookies.clear()
    secured = log_in(client, base="https://testserver").headers["set-cookie"].lower()
    assert "httponly" in secured and "samesite=lax" in secured and "secure" in secured


def test_a_coordinators_link_opens_their_campaign_only(june: June) -> None:
    answer = enter(june)
    assert answer.status_code == 303
    client = june.campaign.bot.side.client
    home = client.get("/dashboard", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == CAMPAIGN_PAGE
    assert client.get(CAMPAIGN_PAGE).status_code == 200
    # A campaign that is not loaded is no page either (another loaded one: the test after the next).
    assert client.get("/dashboard/c/no-such-campaign").status_code == 404


def test_staff_and_liaisons_get_no_dashboard_link(june: June) -> None:
    for openid in (STAFF, LIAISONS[CHENGQU][0]):
        reply = june.say(openid, "后台")
        assert "http" not in reply and "协调人" in reply


def test_an_expired_or_altered_link_opens_nothing(june: June) -> None:
    reply = june.say(COORDINATOR, "后台")
    path = urlsplit(re.search(r"https?://\S+", reply).group(0)).path  # type: ignore[union-attr]
    client = june.campaign.bot.side.client
    assert client.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB"),
                      follow_redirects=False).status_code == 403
    june.campaign.clock.advance(hours=1)
    assert client.get(path, follow_redirects=False).status_code == 403
    assert client.get(CAMPAIGN_PAGE, follow_redirects=False).status_code == 303


def progress_of_chat(reply: str) -> dict[str, tuple[int, int, int]]:
    """进度's periods: "title|period" → (submitted, units, late)."""
    found = re.findall(r"【(.+?)(?:（(.+?)）)?】[^\n]*\n+(\d+)/(\d+) 个单位已报送(?:，其中逾期 (\d+) 个)?", reply)
    return {f"{t}|{p}": (int(n), int(of), int(late or 0)) for t, p, n, of, late in found}


def progress_of_page(page: str) -> dict[str, tuple[int, int, int]]:
    found = re.findall(r'data-period="([^"]*)">.*?已报 (\d+)/(\d+)(?:，<span class="late">逾期 (\d+))?', page, re.S)
    return {key: (int(n), int(of), int(late or 0)) for key, n, of, late in found}


def test_the_progress_shown_is_what_progress_says_with_the_late_units_named(june: June) -> None:
    enter(june)
    page = june.campaign.bot.side.client.get(CAMPAIGN_PAGE).text
    chat = progress_of_chat(june.say(COORDINATOR, "进度"))
    shown = progress_of_page(page)
    assert chat and all(shown[key] == counts for key, counts in chat.items()), (chat, shown)
    # The statistics table: 城区, 泽州 and 高平 (late) of six units.
    assert (3, 6, 1) in shown.values()
    assert f"逾期提交：{GAOPING}" in page
    # Each deadline's periods due so far and its next one: the monthly table's July, not August on.
    assert "报送上月典型案例|2023-06" in shown and "报送上月典型案例|2023-07" in shown
    assert "报送上月典型案例|2023-08" not in shown
    # Documents go by e-mail: no unit is shown owing them, as 进度 shows none.
    assert not [key for key in shown if key.startswith(("报送安全月活动方案", "报送安全生产月总结报告"))]


def test_the_totals_shown_and_charted_are_what_totals_says(june: June) -> None:
    from tests.test_totals import ALL_SHOWN, expected_sums
    log_in(june.campaign.bot.side.client)
    page = june.campaign.bot.side.client.get(CAMPAIGN_PAGE).text
    chat = june.read(COORDINATOR, "合计", ALL_SHOWN)
    sums = expected_sums()
    cells = dict(re.findall(r'data-key="([^"]+)">([^<]*)<', page))
    charted = texts_of(page, "chart-value")
    assert "<svg" in page and len(charted) == len(sums)
    for key, (total, approximate) in sums.items():
        value = f"{'约' if approximate else ''}{total}"
        assert cells[key].startswith(f"{value} ") and f"（{value}）" in chat
        assert value in charted


def test_a_coordinator_sees_no_other_campaign_and_the_admin_sees_both(june: June) -> None:
    from bot.campaigns import load_definition, load_into_db
    from tests.fixtures_forms import CAMPAIGN
    load_into_db(june.engine, load_definition(CAMPAIGN, year=2024))
    other = "/dashboard/c/jincheng-commerce-2024"
    client = june.campaign.bot.side.client
    enter(june)
    assert client.get(CAMPAIGN_PAGE).status_code == 200
    for path in (other, f"{other}/export.xlsx"):
        assert client.get(path).status_code == 404
    client.cookies.clear()
    log_in(client)
    assert "jincheng-commerce-2024" in client.get("/dashboard").text
    assert client.get(other).status_code == 200


def test_the_units_table_sorts_by_a_query_parameter(june: June) -> None:
    log_in(june.campaign.bot.side.client)
    client = june.campaign.bot.side.client

    def order(sort: str) -> list[str]:
        page = client.get(f"{CAMPAIGN_PAGE}?sort={sort}").text
        return re.findall(r'<tr class="unit"><td><a href="[^"]+">([^<]+)</a>', page)

    by_status = order("status")
    assert by_status.index(YANGCHENG) < by_status.index(GAOPING) < by_status.index(ZEZHOU)  # draft, late, sent
    by_reminders = order("reminders")
    assert by_reminders[:2] == [YANGCHENG, GAOPING]  # 4 and 3 reminders
    assert sorted(order("name")) == sorted(by_status) and len(by_status) == 6
    assert order("no-such-order") == order("name")


def test_a_units_page_shows_its_answers_and_its_weekly_reports_picture_only_with_a_login(jincheng: Campaign) -> None:
    zezhou = "oLiaisonZezhou"
    jincheng.register(zezhou, ZEZHOU)
    picture = jincheng.bot.fake.add_user_media("image", b"\xff\xd8jpeg-of-the-drill", "image/jpeg")
    jincheng.say(zezhou, "周报")
    jincheng.say(zezhou, "6月16日在泽州广场开展安全宣传咨询日活动。")
    jincheng.say(zezhou, "<script>alert(1)</script>现场有三百人")
    jincheng.bot.side.image(zezhou, picture)
    jincheng.say(zezhou, "完成")
    eventually(lambda: [m for m in media(jincheng) if m.status == "stored"])
    client = jincheng.bot.side.client
    unit_page = f"/dashboard/c/jincheng-commerce-2023/units/{jincheng.unit_id(ZEZHOU)}"
    assert client.get(unit_page, follow_redirects=False).status_code == 303
    log_in(client)
    page = client.get(unit_page).text
    assert "6月16日在泽州广场开展安全宣传咨询日活动。" in page
    # What a liaison typed shows as typed, never as markup.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;现场有三百人" in page and "<script>" not in page
    [thumbnail] = re.findall(r'<img class="thumb" src="([^"]+)"', page)
    shown = client.get(thumbnail)
    assert shown.status_code == 200 and shown.content == b"\xff\xd8jpeg-of-the-drill"
    assert shown.headers["content-type"] == "image/jpeg"
    client.cookies.clear()
    assert client.get(thumbnail).status_code == 401
    client.cookies.set(COOKIE, "forged.value", path="/dashboard")
    assert client.get(thumbnail).status_code == 401


def test_the_excel_download_is_the_campaigns_workbook(june: June) -> None:
    client = june.campaign.bot.side.client
    log_in(client)
    answer = client.get(f"{CAMPAIGN_PAGE}/export.xlsx")
    assert answer.status_code == 200 and answer.content[:2] == b"PK"
    assert 'filename="jincheng-commerce-2023.xlsx"' in answer.headers["content-disposition"]


def test_pages_forbid_scripts_and_sessions_last_twelve_hours(june: June) -> None:
    client = june.campaign.bot.side.client
    answer = log_in(client)
    assert f"max-age={int(SESSION_LIFETIME.total_seconds())}" in answer.headers["set-cookie"].lower()
    page = client.get(CAMPAIGN_PAGE)
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "<script" not in page.text
    assert SESSION_LIFETIME == timedelta(hours=12)


def test_the_announcement_reports_are_what_announcement_status_says(newsroom: Newsroom) -> None:
    newsroom.liaison("oZezhou", ZEZHOU)
    newsroom.staff()
    newsroom.announce("1")
    newsroom.say(ANNOUNCER, "确认")
    newsroom.finished()
    status = newsroom.say(ANNOUNCER, "通知 状态")
    counts = re.search(r"客服消息 \d+，模板消息 \d+(?:（已确认送达 \d+）)?，暂存 \d+，失败 \d+，无法送达 \d+", status)
    assert counts, status
    log_in(newsroom.bot.side.client)
    page = newsroom.bot.side.client.get(CAMPAIGN_PAGE).text
    assert "关于开展安全生产大检查的通知" in page and counts.group(0) in page


def test_a_coordinator_of_another_campaign_gets_no_unit_or_picture_of_this_one(jincheng: Campaign) -> None:
    from bot.campaigns import load_definition, load_into_db
    from bot.dashboard.sessions import link_url
    from bot.store.exports import campaign_id_of
    from tests.fixtures_forms import CAMPAIGN
    zezhou = "oLiaisonZezhou"
    jincheng.register(zezhou, ZEZHOU)
    picture = jincheng.bot.fake.add_user_media("image", b"\xff\xd8jpeg", "image/jpeg")
    jincheng.say(zezhou, "周报")
    jincheng.bot.side.image(zezhou, picture)
    jincheng.say(zezhou, "完成")
    [stored] = eventually(lambda: [m for m in media(jincheng) if m.status == "stored"])
    load_into_db(jincheng.engine, load_definition(CAMPAIGN, year=2024))
    with jincheng.engine.connect() as conn:
        other = campaign_id_of(conn, "jincheng-commerce-2024")
    client = jincheng.bot.side.client
    url = link_url("", jincheng.bot.settings.link_key, other, jincheng.clock.now + timedelta(minutes=5))
    assert client.get(url, follow_redirects=False).status_code == 303
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/c/jincheng-commerce-2024"
    assert client.get(f"/dashboard/pictures/{stored.id}").status_code == 404
    assert client.get(f"{CAMPAIGN_PAGE}/units/{jincheng.unit_id(ZEZHOU)}").status_code == 404
    assert client.get(f"/dashboard/c/jincheng-commerce-2024/units/{jincheng.unit_id(ZEZHOU)}").status_code == 404
