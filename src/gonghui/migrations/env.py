from __future__ import annotations

from alembic import context
from sqlalchemy import text

from gonghui import models  # noqa: F401  (complete metadata)
from gonghui.db import Base, dispose_engine, get_engine

target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = get_engine()
    with engine.connect() as connection:
        is_pg = connection.dialect.name == "postgresql"
        if is_pg:
            # Several machines starting at once: one migrates, the others wait.
            connection.execute(text("SELECT pg_advisory_lock(774411)"))
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if is_pg:
            connection.execute(text("SELECT pg_advisory_unlock(774411)"))
            connection.commit()
    dispose_engine()


run_migrations_online()
