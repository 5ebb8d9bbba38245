"""The demo in a real browser (headless Chromium driven by Playwright): in /sim a person asks for
help and a liaison sees the reminder the moved clock brought; in /dashboard the admin logs in, sees
the campaign and downloads its Excel file. Screenshots of each page go to ``var/screenshots/``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import openpyxl
import pytest

from tests.conftest import make_settings
from tests.test_sim import Demo, demo  # noqa: F401  (the fixture: /sim and the bot on a demo clock)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
ADMIN_TOKEN = make_settings(Path("/nonexistent")).admin_token
PHONE = {"width": 390, "height": 844}

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")
if CHROMIUM is None:
    pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)", allow_module_level=True)


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_in_sim_a_newcomer_asks_for_help_and_a_liaison_sees_the_reminder_the_clock_brought(
        demo: Demo, browser: Any) -> None:  # noqa: F811
    base = str(demo.page.base_url)
    page = browser.new_page(viewport=PHONE)
    page.goto(f"{base}/sim?persona=newcomer")
    page.fill("#text", "帮助")
    page.click("#send")
    page.locator(".bubble", has_text="登记").first.wait_for(timeout=10_000)
    _shot(page, "sim-help")

    for text in ("登记", demo.join_code, "孙丽", "0356-2056819", "13800000009", "跳过", "跳过", "sun@163.com",
                 "晋城市沁水县1号", "确认", "是"):
        demo.say("liaison", text)
    page.goto(f"{base}/sim?persona=liaison")
    page.locator(".bubble", has_text="登记完成").first.wait_for(timeout=10_000)
    page.click("#next")  # the demo clock to the next reminder: Tuesday 18:00, the weekly report's
    page.locator(".bubble", has_text="报送一周活动开展情况").last.wait_for(timeout=15_000)
    _shot(page, "sim")


def test_in_dashboard_the_admin_logs_in_sees_the_campaign_and_downloads_its_excel(
        demo: Demo, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    base = str(demo.page.base_url)
    page = browser.new_page(viewport=PHONE, accept_downloads=True)
    page.goto(f"{base}/dashboard")
    page.fill("input[name=token]", ADMIN_TOKEN or "")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/dashboard**")
    campaign = page.locator("a", has_text="安全生产月").first
    campaign.click()
    page.get_by_text("沁水县商务局").first.wait_for(timeout=10_000)
    _shot(page, "dashboard")

    with page.expect_download() as download:
        page.locator("a[href$='export.xlsx']").first.click()
    saved = tmp_path / "export.xlsx"
    download.value.save_as(saved)
    book = openpyxl.load_workbook(saved)
    assert "合计" in book.sheetnames and "报送情况" in book.sheetnames
