"""Alembic, configured from settings; ``gonghui migrate`` and server start call :func:`upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from gonghui.settings import get_settings

_HERE = Path(__file__).parent


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.set_main_option("sqlalchemy.url", get_settings().resolved_database_url)
    return config


def upgrade(revision: str = "head") -> None:
    command.upgrade(alembic_config(), revision)
