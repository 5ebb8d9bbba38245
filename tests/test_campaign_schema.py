"""The JSON Schema of campaign files: an editor checks a file with it as the file is typed.

``safetybot campaign schema`` prints it from the models that read the files. An editor (taplo,
the "Even Better TOML" extension) sees TOML's dates and times as ISO text, and so do these tests;
the schema is checked with ``jsonschema`` against Draft 7, which taplo implements.
"""

from __future__ import annotations

import json
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "tests" / "campaign_examples"
SECTIONS = ["schema_version", "campaign", "contact", "key_dates", "reminder_schedules", "message_templates", "forms",
            "deadlines", "slogans", "units", "registration", "staff", "answers"]


@pytest.fixture
def schema(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The schema as ``safetybot campaign schema`` prints it."""
    assert main(["campaign", "schema"]) == 0
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    return printed


def as_an_editor_reads(text: str) -> Any:
    """A TOML file's data as JSON, its dates and times as ISO text."""
    def json_safe(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: json_safe(v) for k, v in value.items()}
        if isinstance(value, list):
            return [json_safe(v) for v in value]
        return value.isoformat() if isinstance(value, (date, time)) else value
    return json_safe(tomllib.loads(text))


def editor_errors(schema: dict[str, Any], text: str) -> list[list[str | int]]:
    """Where an editor underlines mistakes: the path of each schema error."""
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return sorted(list(error.absolute_path) for error in validator.iter_errors(as_an_editor_reads(text)))


def test_the_schema_describes_each_section_of_a_campaign_file(schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(schema["properties"]) == SECTIONS
    assert schema["required"] == ["schema_version", "campaign", "contact", "reminder_schedules", "forms", "deadlines"]
    assert schema["additionalProperties"] is False


def doc_example() -> str:
    doc = (ROOT / "docs" / "campaign-format.md").read_text(encoding="utf-8")
    return doc.split("## A complete example", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("path", [*sorted((ROOT / "campaigns").glob("*.toml")), EXAMPLES / "valid_minimal.toml"],
                         ids=lambda p: p.stem)
def test_an_editor_finds_nothing_wrong_in_a_valid_file(schema: dict[str, Any], path: Path) -> None:
    assert editor_errors(schema, path.read_text(encoding="utf-8")) == []


def test_an_editor_finds_nothing_wrong_in_the_complete_example_of_the_format_doc(schema: dict[str, Any]) -> None:
    assert editor_errors(schema, doc_example()) == []


@pytest.mark.parametrize(("name", "underlined"), [
    ("unknown_field_type", [["forms", 0, "items", 0, "fields", 0, "type"]]),
    ("misspelt_setting", [["forms", 1], ["forms", 1]]),  # 'tittle' is no setting, and title is missing
    ("unknown_weekday", [["deadlines", 1, "weekday"]]),
    ("unknown_deadline_kind", [["deadlines", 0, "kind"]]),
    ("bad_reminder_offset", [["reminder_schedules", "standard", "before", 0]]),
    ("due_with_zone", [["deadlines", 0, "due"]]),
    ("future_schema_version", [["schema_version"]]),
    ("missing_schema_version", [[]]),
])
def test_an_editor_underlines_a_mistake_of_one_setting_as_it_is_typed(
        schema: dict[str, Any], name: str, underlined: list[list[str | int]]) -> None:
    assert editor_errors(schema, (EXAMPLES / f"{name}.toml").read_text(encoding="utf-8")) == underlined


@pytest.mark.parametrize("name", ["collects_unknown_form", "unknown_reminder_schedule", "duplicate_form_key",
                                  "duplicate_field_key", "deadline_outside_year", "wednesday_yields_no_date",
                                  "count_without_unit", "unknown_timezone"])
def test_a_mistake_across_settings_is_left_to_campaign_check(schema: dict[str, Any], name: str) -> None:
    # What a form a deadline collects, a key given twice or the campaign's year: the schema does not
    # say, so docs/campaign-format.md asks for `safetybot campaign check` before loading.
    assert editor_errors(schema, (EXAMPLES / f"{name}.toml").read_text(encoding="utf-8")) == []


def test_the_schema_is_written_to_a_file_for_the_schema_directive(
        tmp_path: Path, schema: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "campaign.schema.json"
    assert main(["campaign", "schema", "--output", str(path)]) == 0
    assert json.loads(path.read_text(encoding="utf-8")) == schema
    assert capsys.readouterr().out == f"{path}: the JSON Schema of campaign files\n"


def test_the_committed_schema_is_the_one_safetybot_prints(schema: dict[str, Any]) -> None:
    # campaigns/campaign.schema.json is what .taplo.toml points editors at: regenerate it with
    # `safetybot campaign schema --output campaigns/campaign.schema.json` when the format changes.
    committed = json.loads((ROOT / "campaigns" / "campaign.schema.json").read_text(encoding="utf-8"))
    assert committed == schema
