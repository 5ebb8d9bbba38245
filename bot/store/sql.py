"""SQL the two supported databases write differently, chosen once here.

Both SQLite (3.24 and later) and PostgreSQL say ``INSERT … ON CONFLICT (…) DO NOTHING`` and
``… DO UPDATE SET …``, but SQLAlchemy builds each through its dialect's own ``insert``
(https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#insert-on-conflict-upsert,
https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#upsert).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

Insert = postgresql.Insert | sqlite.Insert


def insert_on_conflict(bind: sa.Connection | sa.Engine | sa.Dialect, table: sa.Table) -> Insert:
    """An INSERT into ``table`` that can say ``.on_conflict_do_nothing(index_elements=[…])`` (insert
    or ignore) or ``.on_conflict_do_update(index_elements=[…], set_={…})`` (upsert), in the
    dialect of ``bind`` (a connection, an engine or the dialect itself).

    Raises ValueError for a database other than SQLite and PostgreSQL.
    """
    dialect = bind if isinstance(bind, sa.Dialect) else bind.dialect
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    if dialect.name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"no INSERT … ON CONFLICT for the {dialect.name} database, only for SQLite and PostgreSQL")
