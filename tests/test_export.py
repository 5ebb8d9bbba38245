"""The office's Excel file from the replayed 晋城 June: 导出's signed link, the admin API and
`safetybot export` give the same workbook; opened again with openpyxl, every label reads as the
notice prints it and every total and answer is checked cell by cell."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from openpyxl import load_workbook
from openpyxl.workbook import Workbook

from bot.campaigns import FieldType, load_definition
from bot.exports.workbook import sheet_names
from bot.texts import Texts
from tests.fixtures_cli import env_file, safetybot  # noqa: F401  (fixture)
from tests.fixtures_forms import CAMPAIGN, SLUG
from tests.fixtures_june import (  # noqa: F401  (fixtures)
    CHENGQU, COORDINATOR, GAOPING, LIAISONS, REMINDERS, STAFF, SUBMITTED, YANGCHENG, ZEZHOU, June, entered, jincheng,
    june,
)
from tests.test_totals import ALL_SHOWN, expected_sums

TOKEN = "test-admin-token-0123456789"  # make_settings' ADMIN_TOKEN
TEXTS = Texts()
DEFINITION = load_definition(CAMPAIGN)
FORM = DEFINITION.form("statistics")
UNITS = ["城区商务局", "泽州县商务局", "高平市商务局", "阳城县商务局", "陵川县商务局", "沁水县商务局"]


def progress_cell(shown: Any) -> dict[str, str]:
    """Each item's 进展情况 cell as the notice words it, ``shown(field)`` in the blanks, one clause a line."""
    cells = {}
    for item in FORM.items:
        clauses: list[tuple] = []
        for f in item.fields:
            if item.clause(f.answer_key) not in clauses:
                clauses.append(item.clause(f.answer_key))
        text = ""
        for n, clause in enumerate(clauses):
            text += (clause[0].sep + "\n") if n else ""
            text += "".join(("" if i == 0 else c.sep) + f"{c.label}（{shown(c)}）{c.unit}{c.suffix}"
                            for i, c in enumerate(clause))
        cells[item.title] = text
    return cells


def rows(book: Workbook, sheet: str) -> list[tuple]:
    return [tuple(r) for r in book[sheet].iter_rows(values_only=True)]


def table(book: Workbook, sheet: str, heading: str = "序号") -> list[tuple]:
    """The rows under the sheet's column headings (the row starting with ``heading``)."""
    found = rows(book, sheet)
    start = next(i for i, r in enumerate(found) if r and r[0] == heading)
    return found[start:]


def download(june: June, openid: str = COORDINATOR) -> tuple[str, Workbook]:
    reply = june.say(openid, "导出")
    [url] = re.findall(r"https?://\S+\.xlsx", reply)
    answer = june.campaign.bot.side.client.get(urlsplit(url).path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    return urlsplit(url).path, load_workbook(io.BytesIO(answer.content))


def test_the_summed_sheet_reads_as_the_notice_with_every_total_in_its_blank(june: June) -> None:
    reply = june.say(COORDINATOR, "导出")
    assert "http://127.0.0.1:8080/files/export/" in reply and "24小时内有效（至7月3日 10:00）" in reply
    _, book = download(june)
    assert book.sheetnames[:1 + len(UNITS)] == ["合计", *UNITS]
    summed = rows(book, "合计")
    assert summed[0][0] == "附件2" and summed[1][0] == "晋城市“安全生产月”活动进展情况统计表"
    assert summed[2][0] == "填报单位（盖章）：晋城市商务局　　联系人：牛英华　　电话：2056819　　填报日期：2023-07-02"
    assert summed[3][0].startswith("汇总 3/6 个单位已提交的统计表；1 个单位未提交的草稿未计入")
    sums = expected_sums()

    def total(f: Any) -> str:
        if f.type is not FieldType.COUNT:
            return f"{len(SUBMITTED)}个单位填写"
        number, approximate = sums[f.answer_key]
        return f"约{number}" if approximate else str(number)

    expected = progress_cell(total)
    body = table(book, "合计")
    assert body[0] == ("序号", "活动项目", "进展情况")
    assert [(r[0], r[1]) for r in body[1:]] == [(item.number, item.title) for item in FORM.items]
    for row in body[1:]:
        assert row[2] == expected[row[1]]
    lectures = sum(entered(u)["study.lectures"].number or 0 for u in SUBMITTED)
    assert body[1][2].startswith(f"组织开展宣讲活动（{lectures}）场，参与（约")
    sheet = book["合计"]
    assert sheet.page_setup.paperSize == int(sheet.PAPERSIZE_A4) and sheet.page_setup.fitToWidth == 1
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.print_title_rows == "$5:$5" and sheet["C6"].alignment.wrap_text


def test_each_unit_has_its_own_sheet_and_its_row_in_the_status_sheet(june: June) -> None:
    _, book = download(june)
    status = {r[1]: r for r in table(book, "报送情况")[1:]}
    assert table(book, "报送情况")[0][8:] == tuple(f"{item.number}. {item.title}" for item in FORM.items)
    for unit in SUBMITTED + (YANGCHENG,):
        answers = entered(unit)
        typed = {k: (f"约{t.number}" if t.approximate else str(t.number)) if t.number is not None else t.text
                 for k, t in answers.items()}
        own = rows(book, unit)
        submitted = unit in SUBMITTED
        expected = progress_cell(lambda f: typed[f.answer_key] if submitted or f.answer_key in _first(unit, 6) else "")
        for row in table(book, unit)[1:]:
            assert row[2] == expected[row[1]], (unit, row[1])
        # The same cells, a row per unit, in the status sheet.
        assert status[unit][8:] == tuple(expected[item.title] for item in FORM.items)
        assert own[2][0].startswith(f"填报单位（盖章）：{unit}　　联系人：{LIAISONS[unit][1]}")
        assert own[3][0].startswith("报送情况：已提交 2023-07-02" if unit == GAOPING else
                                    "报送情况：已提交" if submitted else "报送情况：未提交（草稿）")
    assert rows(book, "沁水县商务局")[3][0] == "报送情况：未填报"
    assert status["沁水县商务局"][8:] in ((), (None,) * len(FORM.items))


def _first(unit: str, count: int) -> set[str]:
    return set(list(entered(unit))[:count])


def test_the_liaison_records_and_status_sheets(june: June) -> None:
    _, book = download(june)
    liaisons = table(book, "联络员表")
    assert liaisons[0] == ("序号", "单位名称", "姓名", "办公电话", "手机号码", "传真", "微信号", "电子邮箱", "通信地址")
    by_unit = {r[1]: r for r in liaisons[1:]}
    for unit, (_, name, mobile) in LIAISONS.items():
        assert by_unit[unit][2:5] == (name, "0356-2056819", mobile)
    assert by_unit["沁水县商务局"][2] in ("", None)
    records = next(n for n in book.sheetnames if n.startswith("附件3"))
    assert rows(book, records)[1][0] == "晋城市“安全生产月”相关活动情况报送表"
    assert table(book, records, "填报单位")[0] == ("填报单位", "期间", "序号", "活动内容", "时间", "刊登媒体", "媒体链接", "备注")

    status = {r[1]: r for r in table(book, "报送情况")[1:]}
    assert status[GAOPING][3:8] == ("李华", "已提交", "2023-07-02 10:00", "是", REMINDERS[GAOPING])
    assert status[ZEZHOU][3:8] == ("王小明", "已提交", "2023-06-28 10:00", "否", 0)
    assert status[CHENGQU][4:7] == ("已提交", "2023-06-20 10:00", "否")
    assert status[YANGCHENG][3:8] == ("陈静", "未提交（草稿）", None, None, REMINDERS[YANGCHENG])
    assert status["沁水县商务局"][3:5] == ("（无）", "未填报")


def values(book: Workbook) -> dict[str, list[tuple]]:
    return {name: rows(book, name) for name in book.sheetnames}


def test_the_link_the_api_and_the_command_give_the_same_workbook(june: June, env_file: Path, tmp_path: Path) -> None:
    _, linked = download(june)
    client = june.campaign.bot.side.client
    answer = client.get(f"/api/campaigns/{SLUG}/export.xlsx", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and f'filename="{SLUG}.xlsx"' in answer.headers["content-disposition"]
    assert values(load_workbook(io.BytesIO(answer.content))) == values(linked)
    written = tmp_path / "june.xlsx"
    assert safetybot(env_file, "export", str(written), "--campaign", SLUG) == 0
    by_command = values(load_workbook(written))
    # The command runs at the real time, so only the day in the header lines differs.
    assert {k: v for k, v in by_command.items() if k != "合计"} == {k: v for k, v in values(linked).items() if k != "合计"}
    assert table(load_workbook(written), "合计") == table(linked, "合计")
    assert safetybot(env_file, "export", str(written), "--campaign", "no-such-campaign") == 1


def test_an_altered_or_expired_link_is_refused(june: June) -> None:
    path, _ = download(june)
    client = june.campaign.bot.side.client
    token = path.removeprefix("/files/export/").removesuffix(".xlsx")
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (altered, token.split(".")[0] + ".x", "nonsense"):
        refused = client.get(f"/files/export/{bad}.xlsx")
        assert refused.status_code == 403 and "回复“导出”获取新的链接" in refused.text
    june.campaign.clock.advance(hours=23, minutes=59)
    assert client.get(path).status_code == 200
    june.campaign.clock.advance(minutes=1)
    expired = client.get(path)
    assert expired.status_code == 403 and expired.text == TEXTS.render("download_refused")


def test_staff_may_export_too_and_liaisons_get_no_link(june: June) -> None:
    download(june, STAFF)
    reply = june.say(LIAISONS[CHENGQU][0], "导出")
    assert reply.startswith("只有本活动的工作人员或协调人可以导出活动的Excel表格。") and "http" not in reply


@pytest.mark.parametrize("path", [f"/api/campaigns/{SLUG}/totals", f"/api/campaigns/{SLUG}/export.xlsx"])
def test_the_api_routes_refuse_a_missing_or_wrong_token(june: June, path: str) -> None:
    client = june.campaign.bot.side.client
    missing = client.get(path)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 403
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get(path.replace(SLUG, "no-such-campaign"), headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_the_totals_api_gives_the_sums_the_chat_shows(june: June) -> None:
    client = june.campaign.bot.side.client
    body = client.get(f"/api/campaigns/{SLUG}/totals", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert (body["campaign"], body["deadline"], body["units"], body["submitted"], body["drafts"]) == (SLUG, "statistics", 6, 3, 1)
    shown = june.read(COORDINATOR, "合计", ALL_SHOWN)
    sums = expected_sums()
    for item in body["items"]:
        for f in item["fields"]:
            if f["type"] == "count":
                assert (f["total"], f["approximate"], f["units"]) == (*sums[f["key"]], len(SUBMITTED))
                assert f"（{'约' if f['approximate'] else ''}{f['total']}）{f['unit']}" in shown
            else:
                assert (f["total"], f["answered"]) == (None, len(SUBMITTED))


def test_sheet_names_are_valid_unique_and_short() -> None:
    names = sheet_names(["合计", "合计", "a/b:c*d?[e]\\", "晋" * 40, "晋" * 40, "'", "ABC", "abc"])
    assert names == ["合计", "合计(2)", "a_b_c_d__e__", "晋" * 31, "晋" * 28 + "(2)", "表", "ABC", "abc(2)"]
    assert all(len(n) <= 31 for n in names)
