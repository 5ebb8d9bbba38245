"""The admin API under /api, through the ASGI app: the office's tools show ADMIN_TOKEN as a bearer
token, and see the loaded campaigns with their units and registered liaisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from starlette.testclient import TestClient

from bot.app import create_app
from tests.conftest import make_settings
from tests.fixtures_fake import ServedFake
from tests.fixtures_forms import Campaign, jincheng  # noqa: F401  (fixture)

TOKEN = "test-admin-token-0123456789"  # make_settings' ADMIN_TOKEN


def api(client: Any, path: str, authorization: str | None) -> tuple[int, dict, dict]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    answer = client.get(path, headers=headers)
    return answer.status_code, answer.json(), dict(answer.headers)


@pytest.fixture
def client(tmp_path: Path, sqlite_url: str, fake_wechat: ServedFake) -> Iterator[TestClient]:
    """The bot's ASGI app on an empty database, for what the guard answers before any endpoint."""
    settings = make_settings(tmp_path, DATABASE_URL=sqlite_url, WECHAT_API_BASE_URL=fake_wechat.base_url)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_tool_with_the_token_sees_each_campaign_with_its_units_and_liaisons(jincheng: Campaign) -> None:
    jincheng.register("oLiaisonZezhou", "泽州县商务局")
    jincheng.register("oLiaisonGaoping", "高平市商务局")
    status, body, _ = api(jincheng.bot.side.client, "/api/campaigns", f"Bearer {TOKEN}")
    assert status == 200
    assert body == {"campaigns": [{
        "key": "jincheng-commerce-2023", "title": "2023年全市商务系统“安全生产月”活动", "issuer": "晋城市商务局",
        "year": 2023, "timezone": "Asia/Shanghai", "units": len(jincheng.codes), "liaisons": 2,
    }]}


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer   ", f"Basic {TOKEN}", TOKEN])
def test_without_a_bearer_token_the_answer_is_401_and_says_how(client: TestClient, authorization: str | None) -> None:
    status, body, headers = api(client, "/api/campaigns", authorization)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert "ADMIN_TOKEN" in body["error"]


@pytest.mark.parametrize("token", ["test-admin-token-012345678", TOKEN + "0", TOKEN.upper(), f"{TOKEN} extra"])
def test_with_another_token_the_answer_is_403(client: TestClient, token: str) -> None:
    status, body, _ = api(client, "/api/campaigns", f"Bearer {token}")
    assert status == 403 and "ADMIN_TOKEN" in body["error"]


def test_the_guard_covers_the_whole_group_so_unknown_paths_reveal_nothing(client: TestClient) -> None:
    assert api(client, "/api/no-such-thing", None)[0] == 401
    assert client.get("/api/no-such-thing", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_the_scheme_is_case_blind_as_http_says_and_no_campaign_is_an_empty_list(client: TestClient) -> None:
    assert api(client, "/api/campaigns", f"bearer {TOKEN}")[:2] == (200, {"campaigns": []})
