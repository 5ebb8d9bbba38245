"""`pip install .` gives a bot that runs: the wheel, installed in a fresh virtualenv and run from a
folder outside the checkout, finds its templates and migrations and serves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.conftest import free_port, wait_until_served

pytestmark = pytest.mark.slow  # builds a wheel (pip's isolated build) and starts the installed bot: ~10 s

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token-0123456789"
# Run inside the installed bot: where each part comes from, and every template a route or a
# reminder needs (what create_app and the worker role check at start-up).
CHECK = """
import bot, handlers, messages, scheduler
from bot.store.engine import MIGRATIONS_DIR
from bot.texts import Texts
from scheduler.run import template_names

Texts().check([*handlers.TEMPLATES, *template_names()])
for where in (bot.__file__, handlers.__file__, messages.__file__, scheduler.__file__, MIGRATIONS_DIR):
    print(where)
"""


@pytest.fixture
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel built from this checkout installed in it; its ``bin``.

    Only the bot comes from the wheel: the virtualenv sees the project's installed dependencies
    (not the bot itself) through a ``.pth`` line naming this interpreter's site-packages.
    """
    work = tmp_path_factory.mktemp("packaging")
    # Built from a copy, so that setuptools' build/ and egg-info/ land there and not in the checkout.
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".env"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", str(work / "dist"), str(source)], check=True)
    (wheel,) = (work / "dist").glob("safetybot-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", str(wheel)],
                   check=True)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([str(venv / "bin" / "python"), "-c", purelib], check=True, capture_output=True,
                          text=True).stdout.strip()
    (Path(site) / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


@pytest.fixture
def outside(tmp_path: Path) -> dict[str, str]:
    """The environment of a command run from ``tmp_path``, nothing borrowed from the checkout; the
    bot's settings point at a SQLite file there and a free port."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "WECHAT_TOKEN": "safetybottest",
            "WECHAT_APP_ID": "wx0123456789abcdef", "WECHAT_APP_SECRET": "test-secret-0123456789abcdef0123",
            "ADMIN_TOKEN": ADMIN_TOKEN, "WECHAT_API_BASE_URL": "http://127.0.0.1:9",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "MEDIA_DIR": str(tmp_path / "media"),
            "PORT": str(free_port()), "LOG_LEVEL": "WARNING"}


def run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_installed_bot_has_its_commands_and_templates_migrates_its_database_and_serves(
        installed: Path, outside: dict[str, str], tmp_path: Path) -> None:
    # One test, so the wheel is built once however the suite is spread over workers.
    safetybot = str(installed / "safetybot")
    assert "serve" in run([safetybot, "--help"], outside, tmp_path)
    sources = run([str(installed / "python"), "-c", CHECK], outside, tmp_path).split()
    venv = installed.parent
    assert len(sources) == 5 and all(Path(where).is_relative_to(venv) for where in sources), sources

    run([safetybot, "--env-file", os.devnull, "db", "upgrade"], outside, tmp_path)
    campaign = ROOT / "campaigns" / "jincheng-commerce-2023.toml"
    run([safetybot, "--env-file", os.devnull, "campaign", "load", str(campaign)], outside, tmp_path)
    for answer in _served(safetybot, outside, tmp_path):
        assert answer.get("/healthz").json()["database"] == "ok"
        campaigns = answer.get("/api/campaigns", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert [c["key"] for c in campaigns["campaigns"]] == ["jincheng-commerce-2023"]


def _served(safetybot: str, env: dict[str, str], cwd: Path) -> Iterator[httpx.Client]:
    process = subprocess.Popen([safetybot, "--env-file", os.devnull, "serve"], env=env, cwd=cwd)
    try:
        base_url = f"http://127.0.0.1:{env['PORT']}"
        wait_until_served(process, base_url)
        with httpx.Client(base_url=base_url, timeout=10) as client:
            yield client
    finally:
        process.terminate()
        process.wait(timeout=60)
