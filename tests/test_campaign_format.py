"""Campaign files: every mistake is reported with its place, and dates follow the calendar.

The broken examples in ``tests/campaign_examples/`` each break ``valid_minimal.toml`` in one way.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli.campaign import register
from bot.campaigns import (
    DefinitionError,
    ReminderKind,
    check_file,
    load_definition,
)

EXAMPLES = Path(__file__).parent / "campaign_examples"
SHANGHAI = ZoneInfo("Asia/Shanghai")

BROKEN = [
    ("unknown_field_type", 29, "forms[statistics].items[study].fields[visits].type", "unknown field type 'cnt'"),
    ("duplicate_field_key", 29, "forms[statistics].items[study].fields[visits]", "duplicate field key 'visits'"),
    ("duplicate_form_key", 20, "forms[statistics]", "duplicate form key 'statistics'"),
    ("duplicate_deadline_key", 42, "deadlines[statistics]", "duplicate deadline key 'statistics'"),
    ("duplicate_toml_key", 28, "", "not valid TOML: Cannot overwrite a value"),
    ("deadline_outside_year", 46, "deadlines[statistics].due", "2024-07-01 is outside the campaign year 2023"),
    ("collects_unknown_form", 45, "deadlines[statistics].collects",
     "collects form 'statistic', which this file does not define (forms: statistics, weekly)"),
    ("wednesday_yields_no_date", 54, "deadlines[weekly].weekday",
     "no Wednesday falls between 2023-06-01 and 2023-06-06, so this weekly rule yields no date"),
    ("count_without_unit", 30, "forms[statistics].items[study].fields[visits].unit", "a count needs its unit"),
    ("unknown_reminder_schedule", 58, "deadlines[weekly].reminders", "unknown reminder schedule 'daily'"),
    ("bad_reminder_offset", 16, "reminder_schedules.standard.before", "offset '1 day' is not like 3d, 12h or 30m"),
    ("missing_schema_version", None, "schema_version", "is missing; this safetybot reads schema_version = 1"),
    ("future_schema_version", 2, "schema_version", "is 2; this safetybot reads schema_version = 1"),
    ("not_toml", 27, "", "not valid TOML: Invalid value"),
    ("misspelt_setting", 36, "forms[weekly].tittle", "unknown setting 'tittle'"),
    ("unknown_timezone", 9, "campaign.timezone", "unknown time zone 'China/Beijing'"),
    ("unknown_weekday", 54, "deadlines[weekly].weekday", "unknown weekday 'wensday'"),
    ("due_with_zone", 46, "deadlines[statistics].due", "needs a local date and time"),
    ("unknown_deadline_kind", 43, "deadlines[statistics].kind", "unknown deadline kind 'yearly'"),
]


def safetybot(*argv: str) -> int:
    """Run a campaign sub-command as ``safetybot`` would, with the parser ``register`` builds."""
    parser = argparse.ArgumentParser(prog="safetybot")
    parser.add_argument("--env-file", default=".env")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_the_minimal_example_is_valid() -> None:
    assert check_file(EXAMPLES / "valid_minimal.toml") == []


def test_every_broken_example_is_covered() -> None:
    files = {p.stem for p in EXAMPLES.glob("*.toml")} - {"valid_minimal"}
    assert files == {name for name, *_ in BROKEN}


@pytest.mark.parametrize(("name", "line", "where", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_file_names_its_problem_and_place(name: str, line: int | None, where: str, message: str) -> None:
    problems = check_file(EXAMPLES / f"{name}.toml")
    matching = [p for p in problems if message in p.message]
    assert matching, f"no problem says {message!r}; got {[str(p) for p in problems]}"
    assert (matching[0].where, matching[0].line) == (where, line)


def test_loading_a_broken_file_raises_with_the_same_problems() -> None:
    with pytest.raises(DefinitionError) as raised:
        load_definition(EXAMPLES / "unknown_field_type.toml")
    assert [str(p) for p in raised.value.problems] == [str(p) for p in check_file(EXAMPLES / "unknown_field_type.toml")]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (EXAMPLES / "valid_minimal.toml").read_text(encoding="utf-8")
    for old, new in (('type = "count"', 'type = "cnt"'), ('collects = "weekly"', 'collects = "weakly"'),
                     ("until = 2023-06-30", "until = 2023-06-06"), ('before = ["1d"]', 'before = ["soon"]')):
        text = text.replace(old, new, 1)
    broken = tmp_path / "four_mistakes.toml"
    broken.write_text(text, encoding="utf-8")
    messages = " | ".join(p.message for p in check_file(broken))
    for expected in ("unknown field type 'cnt'", "collects form 'weakly'", "yields no date", "offset 'soon'"):
        assert expected in messages


def test_campaign_check_prints_each_problem_with_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES / "wednesday_yields_no_date.toml")
    assert safetybot("campaign", "check", path, str(EXAMPLES / "valid_minimal.toml")) == 1
    out, err = capsys.readouterr()
    assert f"{path}:54: deadlines[weekly].weekday: no Wednesday falls between" in err
    assert "valid_minimal.toml: ok (example-2023: 2 forms, 2 deadlines)" in out


def test_campaign_check_passes_all_five_notices(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (Path(__file__).parent.parent / "campaigns").glob("*.toml"))
    assert len(files) == 5
    assert safetybot("campaign", "check", *files) == 0
    assert capsys.readouterr().out.count(": ok (") == 5


def test_a_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    problems = check_file(tmp_path / "nowhere.toml")
    assert len(problems) == 1 and "cannot read the file" in problems[0].message


def test_a_file_not_in_utf8_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes((EXAMPLES / "valid_minimal.toml").read_text(encoding="utf-8").encode("gb18030"))
    assert [p.message for p in check_file(path)] == ["is not UTF-8 text; save it as UTF-8"]


def test_weekly_wednesdays_of_june_2023() -> None:
    weekly = load_definition(EXAMPLES / "valid_minimal.toml").deadline("weekly")
    assert [(o.period_key, o.due_at) for o in weekly.occurrences()] == [
        (day, datetime.fromisoformat(f"{day}T18:00:00").replace(tzinfo=SHANGHAI))
        for day in ("2023-06-07", "2023-06-14", "2023-06-21", "2023-06-28")
    ]


def test_year_moves_a_wednesday_rule_to_that_years_calendar() -> None:
    # June 1st is a Wednesday in 2022 (five report days) and a Thursday in 2023 (four).
    definition = load_definition(Path(__file__).parent.parent / "campaigns" / "yincheng-town-2022.toml")
    june_2022 = [o.period_key for o in definition.deadline("weekly").occurrences()]
    moved = definition.for_year(2023).deadline("weekly").occurrences()
    assert june_2022 == ["2022-06-01", "2022-06-08", "2022-06-15", "2022-06-22", "2022-06-29"]
    assert [o.period_key for o in moved] == ["2023-06-07", "2023-06-14", "2023-06-21", "2023-06-28"]
    assert {o.due_at.weekday() for o in moved} == {2}
    assert moved[0].covers_from == date(2023, 6, 1)


def test_year_moves_one_off_dates_and_keeps_their_time() -> None:
    definition = load_definition(EXAMPLES / "valid_minimal.toml", year=2027)
    assert definition.slug == "example-2027"
    assert definition.deadline("statistics").occurrences()[0].due_at == datetime(2027, 7, 1, 17, tzinfo=SHANGHAI)


def test_monthly_rule_reports_last_months_cases_by_each_month_end() -> None:
    definition = load_definition(Path(__file__).parent.parent / "campaigns" / "jincheng-commerce-2023.toml")
    cases = definition.deadline("typical_cases").occurrences(2024)
    assert [o.due_at.date() for o in cases[:3]] == [date(2024, 6, 30), date(2024, 7, 31), date(2024, 8, 31)]
    assert (cases[0].period_key, cases[0].covers_from, cases[0].covers_until) == ("2024-06", date(2024, 5, 1), date(2024, 5, 31))
    assert len(cases) == 7


def test_a_reminder_schedule_gives_times_before_at_and_after_the_due_time() -> None:
    schedule = load_definition(Path(__file__).parent.parent / "campaigns" / "chongming-2023.toml").reminder_schedules["standard"]
    due = datetime(2023, 6, 28, 17, tzinfo=SHANGHAI)
    reminders = schedule.reminders(due)
    assert [(r.kind, r.at) for r in reminders] == [
        (ReminderKind.BEFORE, due - timedelta(days=3)),
        (ReminderKind.BEFORE, due - timedelta(days=1)),
        (ReminderKind.BEFORE, due - timedelta(hours=2)),
        (ReminderKind.DUE, due),
        (ReminderKind.OVERDUE, due + timedelta(days=1)),
    ]


def test_the_complete_example_in_the_format_doc_is_valid(tmp_path: Path) -> None:
    doc = (Path(__file__).parent.parent / "docs" / "campaign-format.md").read_text(encoding="utf-8")
    example = doc.split("## A complete example", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.toml"
    path.write_text(example, encoding="utf-8")
    assert check_file(path) == []
    definition = load_definition(path)
    assert [d.kind.value for d in definition.deadlines] == ["once", "weekly", "monthly"]
    assert {f.kind.value for f in definition.forms} == {"record", "statistics", "table"}


def _texts(value: object, skip: frozenset[str] = frozenset({"raw", "path", "units", "contact"})) -> list[str]:
    """Every string a definition holds, in order (its raw file data, source path, units and contact aside)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _texts(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [text for f in dataclasses.fields(value) if f.name not in skip for text in _texts(getattr(value, f.name))]
    return []


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "campaigns").glob("*.toml")), ids=lambda p: p.stem)
def test_a_campaign_run_four_years_on_names_its_new_year_wherever_it_named_its_own(path: Path) -> None:
    definition = load_definition(path)
    moved = definition.for_year(definition.year + 4)
    own = re.compile(rf"(?<![0-9]){definition.year}(?![0-9])")
    before, after = _texts(definition), _texts(moved)
    assert any(own.search(text) for text in before), "the file names its year somewhere (its name, at least)"
    assert after == [own.sub(str(definition.year + 4), text) for text in before]
    assert not any(own.search(text) for text in after)


def test_the_years_in_titles_labels_and_notes_move_and_other_numbers_stay(tmp_path: Path) -> None:
    text = (EXAMPLES / "valid_minimal.toml").read_text(encoding="utf-8")
    for old, new in [('name = "示例“安全生产月”活动"', 'name = "2023年示例“安全生产月”活动"'),
                     ('title = "进展情况统计表"', 'title = "2023年进展情况统计表"\nnote = "口径同2022年，编号20231"'),
                     ('label = "组织开展宣讲活动"', 'label = "2023年组织开展宣讲活动"'),
                     ('title = "报送统计表"', 'title = "报送2023年统计表"')]:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "example.toml"
    path.write_text(text, encoding="utf-8")
    moved = load_definition(path, year=2027)
    statistics = moved.form("statistics")
    assert moved.name == "2027年示例“安全生产月”活动"
    assert (statistics.title, statistics.note) == ("2027年进展情况统计表", "口径同2022年，编号20231")
    assert statistics.items[0].fields[0].label == "2027年组织开展宣讲活动"
    assert moved.deadline("statistics").title == "报送2027年统计表"
    # The file's own year stays where it is run: only a moved campaign is retitled.
    assert load_definition(path).name == "2023年示例“安全生产月”活动"
