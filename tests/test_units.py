"""Units import and export: whole files or nothing, bad rows named by number, codes kept.

Driven through the ``safetybot units`` commands on SQLite and (when reachable) PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook
from sqlmodel import select

from bot.campaigns import load_definition, load_into_db
from bot.store.engine import session
from tests.fixtures_cli import safetybot
from bot.store.models import Unit
from bot.campaigns.units import JOIN_CODE_ALPHABET

CAMPAIGNS = Path(__file__).parent.parent / "campaigns"
UNITS_CSV = "单位名称,分组,联络员手机\n城区商务局,县（市、区）商务主管部门,13800138000\n泽州县商务局,县（市、区）商务主管部门,\n市场秩序科,机关科室,13912345678\n"


@pytest.fixture
def jincheng(engine: sa.Engine) -> str:
    return load_into_db(engine, load_definition(CAMPAIGNS / "jincheng-commerce-2023.toml")).slug


def units(engine: sa.Engine) -> dict[str, tuple[str, str, str]]:
    with session(engine) as db:
        return {u.name: (u.group, u.join_code, u.liaison_mobile) for u in db.exec(select(Unit))}


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_import_gives_every_unit_a_short_unguessable_code(engine: sa.Engine, env_file: Path, jincheng: str,
                                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert safetybot(env_file, "units", "import", str(write(tmp_path, "units.csv", UNITS_CSV))) == 0
    assert capsys.readouterr().out == f"{jincheng}: 3 units added, 0 updated, 0 unchanged\n"
    stored = units(engine)
    assert stored["城区商务局"][0::2] == ("县（市、区）商务主管部门", "13800138000")
    codes = [code for _, code, _ in stored.values()]
    assert len(set(codes)) == 3
    assert all(re.fullmatch(f"[{JOIN_CODE_ALPHABET}]{{8}}", code) for code in codes)


def test_reimporting_updates_units_and_keeps_their_codes(engine: sa.Engine, env_file: Path, jincheng: str,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    safetybot(env_file, "units", "import", str(write(tmp_path, "units.csv", UNITS_CSV)))
    before = units(engine)
    changed = UNITS_CSV.replace("泽州县商务局,县（市、区）商务主管部门,", "泽州县商务局,县（市、区）商务主管部门,13700000001")
    capsys.readouterr()
    assert safetybot(env_file, "units", "import", str(write(tmp_path, "units2.csv", changed))) == 0
    assert capsys.readouterr().out == f"{jincheng}: 0 units added, 1 updated, 2 unchanged\n"
    after = units(engine)
    assert {n: c for n, (_, c, _) in after.items()} == {n: c for n, (_, c, _) in before.items()}
    assert after["泽州县商务局"][2] == "13700000001"


def test_bad_rows_are_reported_by_number_and_nothing_is_imported(engine: sa.Engine, env_file: Path, jincheng: str,
                                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        "序号,单位名称,分组,联络员手机\n"
        "1,城区商务局,县（市、区）商务主管部门,13800138000\n"
        "2,,机关科室,\n"
        "3,城区商务局,县（市、区）商务主管部门,\n"
        "4,高平市商务局,县区,\n"
        "5,阳城县商务局,县（市、区）商务主管部门,1380013800\n"
    )
    path = write(tmp_path, "bad.csv", text)
    assert safetybot(env_file, "units", "import", str(path), "--campaign", jincheng) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}: row 3: the unit name is empty",
        f"{path}: row 4: 城区商务局 is already on row 2",
        f"{path}: row 5: group '县区' is not one of this campaign's groups (县（市、区）商务主管部门, 局属单位, 机关科室)",
        f"{path}: row 6: '1380013800' is not an 11-digit mobile number",
        f"{path}: nothing imported; fix the rows above and import again",
    ]
    assert units(engine) == {}


def test_a_file_without_a_name_column_is_refused(engine: sa.Engine, env_file: Path, jincheng: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "nameless.csv", "分组,手机\n机关科室,13800138000\n")
    assert safetybot(env_file, "units", "import", str(path)) == 1
    assert "row 1: no 单位名称 (or name) column" in capsys.readouterr().err


def test_excel_files_import_as_gb18030_csv_and_xlsx(engine: sa.Engine, env_file: Path, jincheng: str,
                                                     tmp_path: Path) -> None:
    assert safetybot(env_file, "units", "import", str(write(tmp_path, "excel.csv", UNITS_CSV, "gb18030"))) == 0
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["单位名称", "分组", "联络员手机"])
    sheet.append(["沁水县商务局", "县（市、区）商务主管部门", 13812345678])
    sheet.append([None, None, None])
    sheet.append(["局办公室", "局属单位", None])
    workbook.save(tmp_path / "units.xlsx")
    assert safetybot(env_file, "units", "import", str(tmp_path / "units.xlsx")) == 0
    stored = units(engine)
    assert len(stored) == 5
    assert stored["沁水县商务局"][2] == "13812345678" and stored["局办公室"][0] == "局属单位"


def test_export_writes_the_codes_for_staff(engine: sa.Engine, env_file: Path, jincheng: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    safetybot(env_file, "units", "import", str(write(tmp_path, "units.csv", UNITS_CSV)))
    capsys.readouterr()
    stored = units(engine)
    assert safetybot(env_file, "units", "export") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["单位名称", "分组", "加入码", "联络员手机"]
    assert {r[0]: r[2] for r in rows[1:]} == {n: c for n, (_, c, _) in stored.items()}

    assert safetybot(env_file, "units", "export", "--output", str(tmp_path / "codes.xlsx")) == 0
    sheet = load_workbook(tmp_path / "codes.xlsx").worksheets[0]
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["城区商务局", "泽州县商务局", "市场秩序科"]
    assert safetybot(env_file, "units", "export", "--output", str(tmp_path / "codes.csv")) == 0
    assert (tmp_path / "codes.csv").read_text(encoding="utf-8-sig").startswith("单位名称,分组,加入码,联络员手机")


def test_with_two_campaigns_loaded_the_campaign_must_be_named(engine: sa.Engine, env_file: Path, jincheng: str,
                                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_into_db(engine, load_definition(CAMPAIGNS / "chongming-2023.toml"))
    path = write(tmp_path, "units.csv", "单位名称\n城桥镇\n")
    assert safetybot(env_file, "units", "import", str(path)) == 1
    assert "name the campaign with --campaign; loaded: chongming-2023, jincheng-commerce-2023" in capsys.readouterr().err
    assert safetybot(env_file, "units", "import", str(path), "--campaign", "chongming-2023") == 0
    assert safetybot(env_file, "units", "import", str(path), "--campaign", "nowhere-2023") == 1
    assert "no campaign 'nowhere-2023' is loaded" in capsys.readouterr().err
