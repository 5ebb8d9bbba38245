"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import bot.store.models  # noqa: F401  (registers every table)
from bot.store.engine import make_engine, upgrade


def test_an_upgraded_database_matches_the_models(empty_database_url: str) -> None:
    upgrade(empty_database_url)

    engine = make_engine(empty_database_url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_migrations_without_a_database_url_say_so() -> None:
    from alembic import command
    from alembic.config import Config

    from bot.store.engine import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with pytest.raises(RuntimeError, match="no database URL"):
        command.upgrade(config, "head")
