"""The migrations build exactly the schema the models declare.

Alembic's comparison of the migrated database with ``Base.metadata`` (tables, columns, types,
nullability, indexes, foreign keys): a model changed without its migration, or a migration
that differs from its model, shows here instead of as a failure on one database only (a
column 32-bit on PostgreSQL while the model holds amounts up to 10**12, say).
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import gonghui.models  # noqa: F401  (every model on Base.metadata)
from gonghui.db import Base, get_engine


def test_the_migrated_database_matches_the_models(database: str) -> None:
    with get_engine().connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff: list[Any] = compare_metadata(context, Base.metadata)
    assert diff == []
