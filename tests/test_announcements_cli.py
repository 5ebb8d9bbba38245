"""``safetybot notice send``: the same announcement path from a terminal, its progress on stderr and
the chat's delivery report on stdout, checked against what the fake WeChat recorded."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.campaigns import load_definition, load_into_db
from bot.cli import notice as notice_commands
from bot.store.models import Person, utcnow
from bot.texts import Texts
from tests.fixtures_reminders import ReminderWorld
from tests.test_announcements import NOTICE_FIELDS, NOTICE_TEMPLATE, campaign_file
from tests.test_reminder_commands import env_file  # noqa: F401  (fixture)

TEXTS = Texts()


def _safetybot(argv: list[str]) -> int:
    # The same shape as bot/cli/main.py's parser: --env-file, then the sub-commands register() adds.
    parser = argparse.ArgumentParser(prog="safetybot")
    parser.add_argument("--env-file", default=".env")
    notice_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def office(reminder_world: ReminderWorld, tmp_path: Path) -> ReminderWorld:
    """晋城 with the announcements' template; 城区 silent, 泽州 wrote a minute ago, 高平 too."""
    world = reminder_world
    load_into_db(world.engine, load_definition(campaign_file(tmp_path)))
    world.fake.add_template(NOTICE_TEMPLATE, NOTICE_FIELDS)
    for openid, unit in (("o_chengqu", "城区商务局"), ("o_zezhou", "泽州县商务局"), ("o_gaoping", "高平市商务局")):
        world.person(openid, unit=unit)
    # The command decides at the real time: 泽州's liaison wrote just now.
    world.fake.user_wrote("o_zezhou")
    with world.engine.begin() as conn:
        conn.execute(sa.update(Person).where(Person.openid == "o_zezhou").values(last_message_at=utcnow()))  # type: ignore[arg-type]
    return world


def test_notice_send_reaches_the_named_units_by_their_channels_and_prints_the_report(
        office: ReminderWorld, env_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notice.txt"
    text.write_text("关于做好汛期安全工作的通知\n请各单位加强值守。{{ 7*7 }}\n", encoding="utf-8")
    picture = tmp_path / "poster.jpg"
    picture.write_bytes(b"\xff\xd8\xff\xe0" + b"poster" * 100)

    assert _safetybot(["--env-file", env_file, "notice", "send", "--campaign", "jincheng-commerce-2023",
                       "--to", "unit:城区,泽州", "--text-file", str(text), "--image", str(picture),
                       "--sender", "市局安全科"]) == 0
    out = capsys.readouterr()

    [template] = office.fake.pushes("o_chengqu")
    assert (template.channel, template.payload["data"]["thing2"]) == ("template", {"value": "市局安全科"})
    zezhou = office.fake.pushes("o_zezhou")
    assert [p.msgtype for p in zezhou] == ["text", "image"]
    assert zezhou[0].payload["text"]["content"].endswith("请各单位加强值守。{{ 7*7 }}")
    assert office.fake.pushes("o_gaoping") == []
    assert "2 liaisons: 1 by customer service, 1 by template message" in out.err
    assert "2/2" in out.err  # the progress bar
    assert "【通知送达情况】“关于做好汛期安全工作的通知”\n共 2 位联络员" in out.out
    assert "· 客服消息送达：1\n· 模板消息送达：1\n" in out.out
    uploads = [c for c in office.fake.calls if c.path == "/cgi-bin/media/upload"]
    assert [c.errcode for c in uploads] == [0]


def test_notice_send_refuses_a_unit_name_that_fits_several_and_sends_nothing(
        office: ReminderWorld, env_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notice.txt"
    text.write_text("通知", encoding="utf-8")
    argv = ["--env-file", env_file, "notice", "send", "--campaign", "jincheng-commerce-2023", "--text-file", str(text)]
    assert _safetybot([*argv, "--to", "unit:商务局"]) == 2
    assert "unit:商务局 must name one unit; it fits: 城区商务局、" in capsys.readouterr().err
    assert _safetybot([*argv, "--to", "group:没有的分组"]) == 2
    assert _safetybot([*argv, "--to", "owing:nothing"]) == 2
    assert office.fake.pushes() == []


def test_notice_send_to_the_units_owing_a_weekly_report_takes_the_period_due_last_when_none_is_given(
        office: ReminderWorld, env_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notice.txt"
    text.write_text("请尚未报送本周情况的单位尽快报送", encoding="utf-8")
    office.submits("城区商务局", "weekly", "2023-06-28")  # the campaign's last week (the command runs in 2026)
    argv = ["--env-file", env_file, "notice", "send", "--campaign", "jincheng-commerce-2023", "--text-file", str(text)]
    assert _safetybot([*argv, "--to", "owing:weekly:2099-01-01"]) == 2
    assert "has no period '2099-01-01'" in capsys.readouterr().err

    assert _safetybot([*argv, "--to", "owing:weekly"]) == 0
    assert [openid for openid in ("o_chengqu", "o_zezhou", "o_gaoping") if office.fake.pushes(openid)] == [
        "o_zezhou", "o_gaoping"]
    assert "共 2 位联络员" in capsys.readouterr().out
