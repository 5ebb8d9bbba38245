"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
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
