"""The ASGI entry point uvicorn workers import."""

from gonghui.app import create_app
from gonghui.deployment import check_deployment
from gonghui.observability import configure_logging
from gonghui.settings import get_settings

# Every way of serving loads this module: refuse here too, not only in ``gonghui serve``
# (another ASGI server must be given its bind address as GONGHUI_HOST).
check_deployment()
configure_logging(get_settings().log_level, json_lines=get_settings().log_json)
# The app's lifespan freezes what it built (gonghui.heap) before it serves.
app = create_app()
