"""``safetybot reminders plan|run-due``: the plan as a table, and a June day replayed from the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.cli import reminders as reminder_commands
from tests.fixtures_reminders import ReminderWorld, beijing


def _safetybot(argv: list[str]) -> int:
    # The same shape as bot/cli/main.py's parser: --env-file, then the sub-commands register() adds.
    parser = argparse.ArgumentParser(prog="safetybot")
    parser.add_argument("--env-file", default=".env")
    reminder_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def env_file(reminder_world: ReminderWorld, tmp_path: Path) -> str:
    path = tmp_path / "test.env"
    path.write_text("\n".join([
        "WECHAT_TOKEN=safetybottest", "WECHAT_APP_ID=wx0123456789abcdef",
        "WECHAT_APP_SECRET=test-secret-0123456789abcdef0123", "ADMIN_TOKEN=test-admin-token-0123456789",
        f"WECHAT_API_BASE_URL={reminder_world.base_url}", f"DATABASE_URL={reminder_world.engine.url}",
    ]))
    return str(path)


def test_plan_prints_the_upcoming_reminders_as_a_table(env_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _safetybot(["--env-file", env_file, "reminders", "plan", "--campaign", "jincheng-commerce-2023",
                       "--now", "2023-06-20T00:00+08:00"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["2023-06-20", "18:00", "jincheng-commerce-2023", "weekly", "2023-06-21", "before-1d",
                                "2023-06-21", "18:00"]
    assert ["2023-06-22", "18:00", "jincheng-commerce-2023", "weekly", "2023-06-21", "overdue-1d"] in [
        line.split()[:6] for line in lines]
    assert lines[-1].endswith("upcoming")


def test_run_due_sends_what_is_due_at_that_instant_and_moves_the_fake_clock(
        reminder_world: ReminderWorld, env_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    world = reminder_world
    world.person("o_chengqu", unit="城区商务局")
    world.person("o_yangcheng", unit="阳城县商务局", opted_in=False)

    assert _safetybot(["--env-file", env_file, "reminders", "run-due", "--now", "2023-06-06T18:00+08:00"]) == 0
    out = capsys.readouterr()

    assert world.fake.now() == beijing("2023-06-06 18:00")
    assert [at for at, _c, _w in world.received("o_chengqu")] == ["06-06 18:00"]
    assert out.out.strip() == "sent template 1; held 1; skipped 0; failed 0; defects 0"
    assert "1/1" in out.err  # the progress bar


def _digest_of_the_liaison_deadline(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line.split()[2:6] == ["jincheng-commerce-2023", "liaison", "-", "digest"]]
    return " ".join(line.split()[:2])


def test_quiet_hours_come_from_the_setting_and_the_option_overrides_it(
        env_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    plan = ["reminders", "plan", "--campaign", "jincheng-commerce-2023", "--now", "2023-05-31T20:00+08:00"]
    assert _safetybot(["--env-file", env_file, *plan]) == 0
    assert _digest_of_the_liaison_deadline(capsys.readouterr().out) == "2023-06-01 08:00"  # default 22:00-08:00

    with open(env_file, "a", encoding="utf-8") as settings:
        settings.write("\nQUIET_HOURS=off\n")
    assert _safetybot(["--env-file", env_file, *plan]) == 0
    assert _digest_of_the_liaison_deadline(capsys.readouterr().out) == "2023-05-31 23:59"

    assert _safetybot(["--env-file", env_file, *plan, "--quiet-hours", "21:00-07:30"]) == 0
    assert _digest_of_the_liaison_deadline(capsys.readouterr().out) == "2023-06-01 07:30"
