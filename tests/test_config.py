"""Settings are read once, validated, and a bad one stops start-up with one clear line."""

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import AccountKind, ConfigError, load_settings, settings_from_mapping

GOOD = {
    "WECHAT_TOKEN": "abc123",
    "WECHAT_APP_ID": "wx0123456789abcdef",
    "WECHAT_APP_SECRET": "s3cret",
    "ADMIN_TOKEN": "0123456789abcdef",
}


def test_defaults_fill_what_is_not_set():
    settings = settings_from_mapping(GOOD)
    assert settings.wechat_api_base_url == "https://api.weixin.qq.com"
    assert settings.database_url.startswith("sqlite:///")
    assert str(settings.timezone) == "Asia/Shanghai"
    assert settings.safe_mode is False
    assert settings.wechat_account_kind is AccountKind.SERVICE_VERIFIED


@pytest.mark.parametrize(
    "name, value, says",
    [
        ("WECHAT_TOKEN", "", "is missing"),
        ("WECHAT_TOKEN", "a b", "3 to 32 letters"),
        ("WECHAT_APP_ID", "0123", "wx"),
        ("WECHAT_ENCODING_AES_KEY", "short", "43"),
        ("WECHAT_ACCOUNT_KIND", "enterprise", "service_verified"),
        ("WECHAT_API_BASE_URL", "ftp://x", "http://"),
        ("DATABASE_URL", "mysql://x", "sqlite:///"),
        ("REDIS_URL", "http://localhost", "redis://"),
        ("TIMEZONE", "Mars/Olympus", "time zone"),
        ("PORT", "eighty", "whole number"),
        ("PORT", "70000", "between"),
        ("ADMIN_TOKEN", "short", "16"),
    ],
)
def test_a_bad_setting_names_the_variable_and_the_problem(name, value, says):
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({**GOOD, name: value})
    assert caught.value.variable == name
    assert says in str(caught.value)


def test_the_environment_overrides_the_env_file(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in GOOD.items()) + "PORT=9000\n")
    assert load_settings(env_file, environ={}).port == 9000
    assert load_settings(env_file, environ={"PORT": "9100"}).port == 9100


def test_the_example_file_is_complete_and_valid():
    settings = load_settings(Path(__file__).parent.parent / "config.example.env", environ={})
    assert settings.safe_mode
    assert settings.features.template_messages


def test_an_account_kind_without_templates_reports_them_off():
    settings = settings_from_mapping({**GOOD, "WECHAT_ACCOUNT_KIND": "subscription"})
    assert "template_messages" in settings.features.off()


def test_the_command_stops_with_one_line_naming_the_variable(tmp_path: Path, capsys, monkeypatch):
    for name in GOOD:
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in GOOD.items() if k != "WECHAT_TOKEN"))
    assert main(["--env-file", str(env_file), "db", "upgrade"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "WECHAT_TOKEN" in err[0]
