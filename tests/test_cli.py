"""The administrative commands of `safetybot`, run as an operator would."""

from __future__ import annotations

from pathlib import Path


from bot.cli import main
from tests.fixtures_cli import safetybot
from tests.fixtures_fake import APP_ID, APP_SECRET, ServedFake


def test_a_forced_token_refresh_needs_the_explicit_flag(env_file: Path, fake_wechat: ServedFake, capsys):
    assert safetybot(env_file, "token", "refresh") == 2
    assert "--force" in capsys.readouterr().err
    assert not fake_wechat.fake.calls


def test_a_forced_refresh_asks_wechat_for_a_new_stable_token_once(env_file: Path, fake_wechat: ServedFake):
    assert safetybot(env_file, "token", "refresh", "--force") == 0
    forced = [c for c in fake_wechat.fake.calls if c.path == "/cgi-bin/stable_token"]
    assert len(forced) == 1 and forced[0].body["force_refresh"] is True


def test_the_demo_refuses_to_point_the_bot_at_a_real_wechat(tmp_path: Path, capsys):
    path = tmp_path / ".env"
    path.write_text(
        f"WECHAT_TOKEN=safetybottest\nWECHAT_APP_ID={APP_ID}\nWECHAT_APP_SECRET={APP_SECRET}\n"
        "ADMIN_TOKEN=test-admin-token-0123456789\nWECHAT_API_BASE_URL=https://api.weixin.qq.com\n"
    )
    assert main(["--env-file", str(path), "demo"]) == 2
    assert "WECHAT_API_BASE_URL" in capsys.readouterr().err
