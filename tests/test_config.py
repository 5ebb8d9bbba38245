"""Settings are read once, validated, and a bad one stops start-up with one clear line."""

import inspect
import re
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import AccountKind, ConfigError, RunWorker, Settings, load_settings, settings_from_mapping

ROOT = Path(__file__).parent.parent

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
    assert (settings.web_workers, settings.run_worker, settings.web_runs_worker) == (1, RunWorker.AUTO, True)
    assert settings.admin_token == "0123456789abcdef"
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
        ("RUN_WORKER", "sometimes", "auto, yes or no"),
        ("PORT", "eighty", "whole number"),
        ("PORT", "70000", "between"),
        ("ADMIN_TOKEN", "short", "16"),
        ("MESSAGES_PER_MINUTE", "-1", "between 0 and"),
        ("MESSAGES_PER_MINUTE", "thirty", "whole number"),
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
    settings = load_settings(ROOT / "config.example.env", environ={})
    assert settings.safe_mode
    assert settings.features.template_messages


def test_every_setting_the_example_file_names_is_read_by_the_bot():
    names = re.findall(r"^([A-Z_]+)=", (ROOT / "config.example.env").read_text(), re.MULTILINE)
    fields = {name.lower() for name in names}
    assert fields <= set(Settings.__dataclass_fields__), "a documented setting that Settings does not hold"
    product = [path for package in ("bot", "handlers", "scheduler") for path in (ROOT / package).rglob("*.py")
               if path != ROOT / "bot" / "config.py"]
    read = {match for path in product for match in re.findall(r"settings\.([a-z_]+)", path.read_text())}
    # A property of Settings that the bot reads (web_runs_worker) reads the fields it is made of.
    for name in read & {n for n, attribute in vars(Settings).items() if isinstance(attribute, property)}:
        read |= set(re.findall(r"self\.([a-z_]+)", inspect.getsource(getattr(Settings, name).fget)))
    assert sorted(fields - read) == [], "settings nothing outside bot/config.py reads"


@pytest.mark.parametrize("workers, run_worker, in_web", [
    ("1", "auto", True), ("4", "auto", False), ("1", "no", False), ("4", "yes", True), ("4", "YES", True),
])
def test_web_processes_run_the_worker_role_alone_or_when_told(workers, run_worker, in_web):
    settings = settings_from_mapping({**GOOD, "WEB_WORKERS": workers, "RUN_WORKER": run_worker})
    assert settings.web_runs_worker is in_web


def test_only_serving_needs_the_admin_token(tmp_path: Path, capsys, monkeypatch):
    for name in (*GOOD, "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in GOOD.items() if k != "ADMIN_TOKEN")
                        + f"DATABASE_URL=sqlite:///{tmp_path / 'bot.db'}\n")
    assert main(["--env-file", str(env_file), "db", "upgrade"]) == 0
    campaign = ROOT / "campaigns" / "jincheng-commerce-2023.toml"
    assert main(["--env-file", str(env_file), "campaign", "load", str(campaign)]) == 0
    capsys.readouterr()
    assert main(["--env-file", str(env_file), "serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ADMIN_TOKEN" in err[0] and "/api" in err[0]


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
