"""Running `safetybot` sub-commands in tests as an operator would, with a settings file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.fixtures_fake import APP_ID, APP_SECRET, ServedFake


def safetybot(env_file: Path, *argv: str) -> int:
    """Run ``safetybot --env-file ENV_FILE ARGV...`` in this process; its exit status."""
    return main(["--env-file", str(env_file), *argv])


@pytest.fixture
def env_file(tmp_path: Path, database_url: str, fake_wechat: ServedFake) -> Path:
    """A settings file for the test's database and the served fake WeChat."""
    path = tmp_path / "test.env"
    path.write_text(
        f"WECHAT_TOKEN=safetybottest\nWECHAT_APP_ID={APP_ID}\nWECHAT_APP_SECRET={APP_SECRET}\n"
        f"ADMIN_TOKEN=test-admin-token-0123456789\nWECHAT_API_BASE_URL={fake_wechat.base_url}\n"
        f"DATABASE_URL={database_url}\n",
        encoding="utf-8",
    )
    return path
