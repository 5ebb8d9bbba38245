"""The demo in a real browser (headless Chromium driven by Playwright), as issue 20 asks: in /sim a
liaison registers, fills part of the statistics table and sends a picture with the weekly report;
the demo clock moves past the week's deadline and the coordinator's conversation shows what the
reminders found and the deadline's digest; the coordinator opens /dashboard from the 后台 link, sees the unit with its
answers and the picture's thumbnail, and downloads the Excel file. Screenshots of each page go to
``var/screenshots/`` (the README shows two of them)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import openpyxl
import pytest

from simulator.demo import demo_codes
from simulator.replay import QINSHUI, drill_picture
from simulator.sim import Persona
from tests.test_sim import served_demo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")
if CHROMIUM is None:
    pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)", allow_module_level=True)


@dataclass
class Demo:
    base: str
    join_code: str
    coordinator_code: str


@pytest.fixture
def demo(tmp_path: Path, sqlite_url: str) -> Iterator[Demo]:
    """`safetybot demo` in-process (tests/test_sim.py's served_demo) with a liaison and a coordinator in /sim."""
    personas = [Persona("liaison", "沁水联络员", "o_browser_liaison", "登记，再发加入码"),
                Persona("coordinator", "协调员", "o_browser_coordinator", "登记，再发协调员码")]
    with served_demo(tmp_path, sqlite_url, personas) as served:
        codes = demo_codes(served.engine, served.clock.now())
        yield Demo(served.base, served.campaign.join_codes[QINSHUI],
                   next(c.code for c in codes if c.role == "coordinator"))


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


def _say(page: Any, text: str, answer: str) -> None:
    """Type ``text`` and send it as a person would; wait until a reply with ``answer`` shows."""
    shown = page.locator(".bubble", has_text=answer).count()
    page.fill("#text", text)
    page.click("#send")
    try:
        page.wait_for_function(
            "([answer, shown]) => [...document.querySelectorAll('.bubble')]"
            ".filter(b => b.textContent.includes(answer)).length > shown", arg=[answer, shown], timeout=15_000)
    except sync_api.TimeoutError:
        raise AssertionError(f"after {text!r} no reply with {answer!r}; last: {page.locator('.bubble').last.inner_text()!r}")


def test_a_liaison_reports_in_sim_and_the_coordinator_sees_it_in_the_dashboard(
        demo: Demo, browser: Any, tmp_path: Path) -> None:
    liaison = browser.new_page(viewport=PHONE)
    liaison.goto(f"{demo.base}/sim?persona=liaison")
    _say(liaison, "登记", "加入码")
    _say(liaison, demo.join_code, "沁水县商务局")
    for text, asked in (("孙丽", "办公电话"), ("0356-2056819", "手机"), ("13800000009", "传真"), ("跳过", "微信"),
                        ("跳过", "邮箱"), ("sun@163.com", "地址"), ("晋城市沁水县1号", "确认"), ("确认", "提醒"),
                        ("是", "登记完成")):
        _say(liaison, text, asked)
    _say(liaison, "填报", "（5/40）")  # the header lines come filled from the registration
    _say(liaison, "3 120", "（7/40）")  # 宣讲活动（3）场，参与（120）人次
    _say(liaison, "周报", "开始报送")
    picture = tmp_path / "drill.png"
    picture.write_bytes(drill_picture())
    liaison.set_input_files("#picture", str(picture))
    liaison.locator(".me img").first.wait_for(timeout=15_000)
    _say(liaison, "完成", "已")
    _shot(liaison, "sim")

    coordinator = browser.new_page(viewport=PHONE)
    coordinator.goto(f"{demo.base}/sim?persona=coordinator")
    _say(coordinator, "登记", "加入码")
    _say(coordinator, demo.coordinator_code, "协调人")
    coordinator.click("#next")  # the demo clock to Tuesday 18:00: the weekly reminders, and the note on them
    coordinator.locator(".bubble", has_text="报送一周活动开展情况").last.wait_for(timeout=20_000)
    # On past Wednesday 18:00, the week's deadline: the digest says 沁水 reported and who did not.
    digest = coordinator.locator(".bubble", has_text="已于6月9日 18:00截止：1/6个单位已报送")
    for _ in range(4):
        if digest.count():
            break
        coordinator.click("#next")
        coordinator.wait_for_timeout(2_500)  # the page polls its conversation every 2 s
    digest.first.wait_for(timeout=10_000)
    assert "沁水县商务局" not in digest.first.inner_text().split("未报送：")[1]
    _shot(coordinator, "sim-coordinator")

    _say(coordinator, "后台", "管理后台")
    link = coordinator.locator(".bubble", has_text="管理后台").last.inner_text()
    url = next(word for word in link.split() if word.startswith(demo.base + "/dashboard"))
    dashboard = browser.new_page(viewport=PHONE, accept_downloads=True)
    dashboard.goto(url)
    dashboard.get_by_text("沁水县商务局").first.wait_for(timeout=10_000)
    _shot(dashboard, "dashboard")
    dashboard.get_by_role("link", name="沁水县商务局").first.click()
    # The worker fetches the picture from WeChat into MEDIA_DIR within seconds; until then the
    # thumbnail has nothing to show.
    thumbnail = dashboard.locator("img.thumb").first
    deadline = time.monotonic() + 30
    while True:
        thumbnail.scroll_into_view_if_needed()
        if thumbnail.evaluate("img => img.complete && img.naturalWidth") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
        dashboard.reload()
    assert thumbnail.evaluate("img => img.naturalWidth") == 240  # the drill picture, as the liaison sent it
    _shot(dashboard, "dashboard-unit")

    with dashboard.expect_download() as download:
        dashboard.goto(f"{demo.base}/dashboard")
        dashboard.get_by_text("沁水县商务局").first.wait_for(timeout=10_000)
        dashboard.locator("a[href$='export.xlsx']").first.click()
    saved = tmp_path / "export.xlsx"
    download.value.save_as(saved)
    book = openpyxl.load_workbook(saved)
    assert "合计" in book.sheetnames and "报送情况" in book.sheetnames
