"""The ASGI entry point uvicorn workers import."""

from gonghui.app import create_app
from gonghui.observability import configure_logging
from gonghui.settings import get_settings

configure_logging(get_settings().log_level, json_lines=get_settings().log_json)
app = create_app()
