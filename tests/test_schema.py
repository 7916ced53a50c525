"""The migrations build exactly the schema the models declare.

Alembic's comparison of the migrated database with ``Base.metadata`` (tables, columns, types,
nullability, indexes, foreign keys): a model changed without its migration, or a migration
that differs from its model, shows here instead of as a failure on one database only (a
column 32-bit on PostgreSQL while the model holds amounts up to 10**12, say).
"""

from __future__ import annotations

import warnings
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Index

import gonghui.models  # noqa: F401  (every model on Base.metadata)
from gonghui.db import Base, get_engine


def _expression_index(obj: Any) -> bool:
    return isinstance(obj, Index) and any(not isinstance(e, Column) for e in obj.expressions)


def _columns_only(obj: Any, name: str | None, type_: str, reflected: bool, to: Any) -> bool:
    """Leave expression indexes to the test below: SQLite's reflection skips them."""
    return not (type_ == "index" and (_expression_index(obj) or obj is None))


def test_the_migrated_database_matches_the_models(database: str) -> None:
    with get_engine().connect() as conn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression")
        warnings.filterwarnings("ignore", message="autogenerate skipping metadata-specified")
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _columns_only}
        )
        diff: list[Any] = compare_metadata(context, Base.metadata)
    assert diff == []


def test_every_expression_index_of_the_models_is_in_the_database(database: str) -> None:
    wanted = {
        (table.name, index.name)
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if _expression_index(index)
    }
    assert wanted, "the models declare expression indexes (the roster's name prefix)"
    engine = get_engine()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(
                "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'"
            )
        else:
            rows = conn.exec_driver_sql("SELECT tablename, indexname FROM pg_indexes")
        present = {(table, name) for table, name in rows}
    assert wanted <= present
