"""The campaign settings for conversations: [registration] open, [staff] codes, [answers] late and
implausible_above, and the liaison table's flag; each mistake is named with its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.campaigns import LatePolicy, check_file, load_definition

EXAMPLES = Path(__file__).parent / "campaign_examples"
CAMPAIGNS = Path(__file__).resolve().parent.parent / "campaigns"


def minimal_with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "campaign.toml"
    path.write_text((EXAMPLES / "valid_minimal.toml").read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return path


def test_the_settings_have_defaults_and_can_be_set(tmp_path: Path) -> None:
    plain = load_definition(EXAMPLES / "valid_minimal.toml")
    assert (plain.open_registration, plain.staff_code, plain.late, plain.implausible_above) == (
        False, "", LatePolicy.ACCEPT, 100_000)
    set_ = load_definition(minimal_with(tmp_path, '[staff]\njoin_code = "office2023"\ncoordinator_code = "Chief2023"\n'
                                                  '[answers]\nlate = "lock"\nimplausible_above = 5000\n'))
    assert (set_.staff_code, set_.coordinator_code, set_.late, set_.implausible_above) == (
        "OFFICE2023", "CHIEF2023", LatePolicy.LOCK, 5000)


@pytest.mark.parametrize(("extra", "where", "message"), [
    ('[registration]\nopen = "yes"\n', "registration.open", "must be true or false"),
    ("[registration]\nopen = true\n", "registration.open", "open registration needs the liaison table"),
    ('[answers]\nlate = "later"\n', "answers.late", "unknown late policy 'later'; use one of accept, lock"),
    ("[answers]\nimplausible_above = 0\n", "answers.implausible_above", "must be a whole number from 1"),
    ('[staff]\njoin_code = "abc"\n', "staff.join_code", "must be 6 to 32 letters and digits"),
    ('[staff]\njoin_code = "SAME2023"\ncoordinator_code = "same2023"\n', "staff.coordinator_code",
     "must differ from the staff join_code"),
    ('[staff]\nchief = "SAME2023"\n', "staff.chief", "unknown setting 'chief'"),
])
def test_a_wrong_setting_is_named_with_its_place(tmp_path: Path, extra: str, where: str, message: str) -> None:
    problems = check_file(minimal_with(tmp_path, extra))
    assert [(p.where, message in p.message) for p in problems] == [(where, True)], problems


def test_a_staff_code_may_not_be_a_units_join_code(tmp_path: Path) -> None:
    problems = check_file(minimal_with(tmp_path, '[[units]]\nname = "城区"\njoin_code = "QJ7K2M9P"\n'
                                                 '[staff]\njoin_code = "qj7k2m9p"\n'))
    assert [p.where for p in problems] == ["staff.join_code"] and "unit's join code" in problems[0].message


def test_the_liaison_flag_is_for_one_record_form(tmp_path: Path) -> None:
    text = (CAMPAIGNS / "jincheng-commerce-2023.toml").read_text(encoding="utf-8")
    path = tmp_path / "two.toml"
    path.write_text(text.replace('key = "plan"\nkind = "record"\n', 'key = "plan"\nkind = "record"\nliaison = true\n'),
                    encoding="utf-8")
    assert ["liaison, plan all say liaison = true" in p.message for p in check_file(path)] == [True]
    path.write_text(text.replace('kind = "statistics"\n', 'kind = "statistics"\nliaison = true\n'), encoding="utf-8")
    assert "only a record form can be the liaison table" in str(check_file(path))


def test_the_notices_with_a_liaison_table_mark_it_and_only_yincheng_opens_registration() -> None:
    found = {path.stem: load_definition(path) for path in CAMPAIGNS.glob("*.toml")}
    liaison = {slug: d.liaison_form().key if d.liaison_form() else None for slug, d in found.items()}
    assert liaison == {"jincheng-commerce-2023": "liaison", "yincheng-town-2022": "liaison",
                       "luojiang-commerce-2024": None, "dadukou-commerce-2021": None, "chongming-2023": None}
    assert [slug for slug, d in found.items() if d.open_registration] == ["yincheng-town-2022"]
