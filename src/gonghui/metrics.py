"""Prometheus metrics: what every request costs, read at ``GET /metrics``.

- :class:`RequestMetricsMiddleware` times every HTTP request into one histogram labelled
  by method, route *template* (``/api/v1/activities/{activity_id}/draws``, never the raw
  path, so the series stay bounded by the routes; a path no route matches is
  ``unmatched``) and status class (``2xx``). Its ``_count`` is the request rate.
- Domains define their own counters next to the rule they count (draws: in
  ``activities/lottery/draw.py``, counted once committed).
- :func:`at_scrape` registers a reading taken when ``/metrics`` is scraped (the delivery
  queue's depth and lag read the database); :func:`sample` registers one each process
  takes every second (its database pool), so that no request pays for it.

``gonghui serve`` runs several server processes and a writer process: it gives them one
directory of their own for the run (``PROMETHEUS_MULTIPROC_DIR``, made and removed by
``gonghui serve``), prometheus-client's multiprocess mode keeps each
process's values there in a memory-mapped file, and a scrape, answered by any one process,
sums them. Without that variable (tests, a single process) the values are this process's.

``/metrics`` is not public (:func:`scrape_allowed`): it answers a caller on this machine
that came through no proxy, or one that presents ``GONGHUI_METRICS_TOKEN`` as a bearer
token; anyone else gets the 404 of an unknown route.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gonghui.db import current_engine
from gonghui.settings import Settings, get_settings

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"

REQUEST_SECONDS = Histogram(
    "gonghui_http_request_duration_seconds",
    "HTTP requests by method, route template and status class: latency, and (_count) rate",
    ["method", "route", "status_class"],
)
POOL_CHECKED_OUT = Gauge(
    "gonghui_db_pool_checked_out",
    "Database connections in use, summed over the live processes (sampled each second)",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "gonghui_db_pool_size",
    "Database connections the live processes' pools may open (pool size plus overflow)",
    multiprocess_mode="livesum",
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}


# -- requests -------------------------------------------------------------------------------


class _Templates:
    """The route template of a request, from what routing left in its scope: FastAPI's
    effective route (with its router's prefix), an app-level route, or the endpoint of a
    Starlette route or mount (looked up in the app's routes once)."""

    def __init__(self) -> None:
        self._by_endpoint: dict[int, tuple[object, str]] | None = None

    def of(self, scope: Scope) -> str:
        routed = scope.get("fastapi")
        if routed is not None:
            effective = routed.get("effective_route_context")
            if effective is not None and effective.path:
                return str(effective.path)
        route = scope.get("route")
        if route is not None:
            return str(route.path)
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED
        if self._by_endpoint is None:
            self._by_endpoint = _endpoint_templates(scope.get("app"))
        # Keyed by identity: endpoints (functions, mounted apps) live as long as the app.
        found = self._by_endpoint.get(id(endpoint))
        return found[1] if found is not None else UNMATCHED


def _endpoint_templates(app: Any) -> dict[int, tuple[object, str]]:
    templates: dict[int, tuple[object, str]] = {}
    for route in getattr(app, "routes", ()):
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        if hasattr(route, "endpoint"):
            templates[id(route.endpoint)] = (route.endpoint, path)
        elif hasattr(route, "app"):  # a mount: its app answers every path below it
            templates[id(route.app)] = (route.app, f"{path}/{{path:path}}")
    return templates


class RequestMetricsMiddleware:
    """Observes each HTTP request's duration under (method, route template, status class).
    Cheap on purpose: one clock read each side, one look-up of the labelled series (kept
    here, not in prometheus-client's locked table), one observation."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates = _Templates()
        self._series: dict[tuple[str, str, str], Any] = {}
        start_sampling()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            method = scope["method"]
            key = (
                method if method in _METHODS else "other",
                self._templates.of(scope),
                _STATUS_CLASSES.get(status // 100, "other"),
            )
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = REQUEST_SECONDS.labels(*key)
            series.observe(time.perf_counter() - started)


# -- readings at scrape time, and samples each process takes ---------------------------------

Reading = Callable[[], Iterable[Metric]]
_readings: list[Reading] = []
_samples: list[Callable[[], None]] = []
SAMPLE_S = 1.0


def at_scrape(reading: Reading) -> Reading:
    """Register ``reading``: metric families it reads when ``/metrics`` is scraped (by the
    one process that answers; e.g. a count from the database). A reading that fails is
    logged and left out of that scrape."""
    _readings.append(reading)
    return reading


def sample(take: Callable[[], None]) -> Callable[[], None]:
    """Register ``take``: called each :data:`SAMPLE_S` by every server process, to set its
    live-process gauges (multiprocess mode ``livesum`` and the like)."""
    _samples.append(take)
    return take


class _AtScrape(Collector):
    def collect(self) -> Iterable[Metric]:
        for reading in list(_readings):
            try:
                families = list(reading())
            except Exception:
                log.warning("metrics reading %s failed", reading.__qualname__, exc_info=True)
                continue
            yield from families


_sampler_pid = 0
_sampler_lock = threading.Lock()


def start_sampling() -> None:
    """Start this process's sampling thread (once per process)."""
    global _sampler_pid
    with _sampler_lock:
        if _sampler_pid == os.getpid():
            return
        _sampler_pid = os.getpid()
        threading.Thread(target=_sample_forever, name="metrics-sampler", daemon=True).start()


def sample_now() -> None:
    for take in list(_samples):
        try:
            take()
        except Exception:
            log.warning("metrics sample %s failed", take.__qualname__, exc_info=True)


def _sample_forever() -> None:
    while True:
        sample_now()
        time.sleep(SAMPLE_S)


@sample
def _database_pool() -> None:
    engine = current_engine()
    pool = engine.pool if engine is not None else None
    if isinstance(pool, QueuePool):
        POOL_CHECKED_OUT.set(pool.checkedout())
        POOL_SIZE.set(pool.size() + max(int(getattr(pool, "_max_overflow", 0)), 0))


# -- exposition -------------------------------------------------------------------------------


def exposition() -> tuple[bytes, str]:
    """The metrics as text, and their content type: every process's, summed, in
    multiprocess mode; this process's otherwise."""
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_AtScrape())
    read_now = generate_latest(extra)
    sample_now()  # the answering process's own samples, current
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        _forget_dead_processes(Path(directory))
        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry) + read_now, CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY) + read_now, CONTENT_TYPE_LATEST


_LIVE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def _forget_dead_processes(directory: Path) -> None:
    """Drop the live-process gauges of processes that are gone (a server process that was
    killed and replaced): ``livesum`` must not count a dead process's pool."""
    pids = set()
    for entry in os.scandir(directory):
        match = _LIVE_FILE.match(entry.name)
        if match:
            pids.add(int(match.group(1)))
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- who may scrape -------------------------------------------------------------------------

# A request that came through a proxy says so; one from this machine's proxy is not local.
_FORWARDED = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})


def scrape_allowed(scope: Scope, settings: Settings | None = None) -> bool:
    """Whether this request may read ``/metrics``: it presents ``GONGHUI_METRICS_TOKEN``
    as a bearer token, or it comes from loopback, through no proxy (no forwarding header,
    and not from an address in ``GONGHUI_TRUSTED_PROXIES``)."""
    settings = settings or get_settings()
    headers = scope["headers"]
    token = settings.metrics_token
    if token:
        for name, value in headers:
            if name == b"authorization":
                scheme, _, given = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and hmac.compare_digest(
                    given.strip().encode(), token.encode()
                ):
                    return True
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False  # a Unix socket's peer, say: it cannot be told from a proxy
    if not address.is_loopback or _is_proxy(address, settings.trusted_proxies):
        return False
    return not any(name in _FORWARDED for name, _ in headers)


def _is_proxy(address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: list[str]) -> bool:
    for proxy in proxies:
        if proxy == "*":
            return True
        try:
            if address in ipaddress.ip_network(proxy, strict=False):
                return True
        except ValueError:
            continue  # a name (uvicorn accepts some): not an address to compare with
    return False
