"""Alembic environment: runs the migrations against the URL ``bot.store.engine.upgrade`` passes in."""

from alembic import context
from sqlmodel import SQLModel

import bot.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bot.store.engine import make_engine

config = context.config
database_url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
if not database_url:
    # Alembic run by hand (not through bot.store.engine.upgrade) with no sqlalchemy.url set.
    raise RuntimeError("no database URL: migrate with bot.store.engine.upgrade(url) or set sqlalchemy.url")
engine = make_engine(database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
