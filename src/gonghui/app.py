"""Builds the FastAPI app: routers, middleware, error handlers; nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from gonghui import (
    db,
    heap,
    invalidation,
    metrics,
    models,  # noqa: F401  (complete metadata)
    readiness,
)
from gonghui.accounts.router import apps_router as wechat_apps_router
from gonghui.accounts.router import router as auth_router
from gonghui.activities.competition.router import router as competition_router
from gonghui.activities.lottery.router import router as lottery_router
from gonghui.activities.quiz.router import router as quiz_router
from gonghui.activities.router import hub_router
from gonghui.activities.router import router as activities_router
from gonghui.activities.templates.router import router as activity_templates_router
from gonghui.activities.vote.router import router as vote_router
from gonghui.activities.voucher_grab.router import router as vouchers_router
from gonghui.analytics.router import router as analytics_router
from gonghui.audit.router import router as audit_router
from gonghui.baas.functions.router import gallery_router
from gonghui.baas.functions.router import router as functions_router
from gonghui.baas.router import router as baas_router
from gonghui.baas.triggers.router import router as triggers_router
from gonghui.benefits.router import router as benefits_router
from gonghui.bodylimit import BodyLimitMiddleware
from gonghui.deployment import dev_conveniences_allowed
from gonghui.deps import CurrentUser
from gonghui.errors import DomainError, envelope
from gonghui.mall.router import router as mall_router
from gonghui.members.router import router as members_router
from gonghui.merchants.router import router as merchants_router
from gonghui.news.router import router as news_router
from gonghui.notifications.router import router as notifications_router
from gonghui.observability import RequestContextMiddleware
from gonghui.openplatform.router import router as openplatform_router
from gonghui.operations.router import router as operations_router
from gonghui.orgs.router import router as orgs_router
from gonghui.payments.router import router as payments_router
from gonghui.reconciliation.router import router as reconciliation_router
from gonghui.request_text import refuse_unstorable_text
from gonghui.risk.router import router as risk_router
from gonghui.routing import flatten_included_routers, index_routes
from gonghui.settings import get_settings
from gonghui.web import errors as web_errors

log = logging.getLogger("gonghui.app")

_HTTP_CODES = {
    400: "request.bad",
    401: "auth.required",
    403: "auth.forbidden",
    404: "request.not_found",
    405: "request.method_not_allowed",
    413: "request.too_large",
    415: "request.unsupported_media_type",
}


def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if web_errors.wants_page(request):
        key = web_errors.error_key(exc)
        return web_errors.error_page(
            request, status=exc.status_code, key=key, headers=exc.headers()
        )
    return JSONResponse(exc.envelope(), status_code=exc.status_code, headers=exc.headers())


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if web_errors.wants_page(request):  # a page's link or form the server cannot read
        key = "error.bad_link" if request.method == "GET" else "error.status.422"
        return web_errors.error_page(request, status=422, key=key)
    details: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        details.append(
            {
                "field": ".".join(loc) or "body",
                "code": f"validation.{err.get('type', 'invalid')}",
                "message": err.get("msg", "invalid"),
            }
        )
    return JSONResponse(
        envelope("request.invalid", "the request is not valid", details), status_code=422
    )


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if web_errors.wants_page(request):  # a page that does not exist, most often
        key = web_errors.status_key(exc.status_code)
        return web_errors.error_page(request, status=exc.status_code, key=key, headers=exc.headers)
    code = _HTTP_CODES.get(exc.status_code, f"http.{exc.status_code}")
    return JSONResponse(
        envelope(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def _database_error(request: Request, exc: Exception) -> Response:
    refusal = db.unavailable(exc)
    if refusal is None:
        return _unexpected_error(request, exc)
    # Expected while the database restarts: one line, not a traceback per request.
    log.warning("database unavailable: %s", str(exc).splitlines()[0])
    return _domain_error(request, refusal)


def _unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(envelope("internal", "internal server error"), status_code=500)


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    from gonghui import background

    heap.freeze_startup_objects()
    # With Redis: this process listens for cache changes from the start.
    invalidation.start_transport()
    background.start()
    yield
    background.stop()


def create_app() -> FastAPI:
    from gonghui import background

    settings = get_settings()
    background.load()  # every kind of task this process may defer, registered
    app = FastAPI(
        title="gonghui",
        lifespan=_lifespan,
        version="0.1.0",
        description="Member-services cloud for trade unions",
        docs_url="/docs",
        openapi_url="/openapi.json",
        dependencies=[Depends(refuse_unstorable_text)],
    )
    # Added first, so it runs inside the request context: a 413 has its request id.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)
    # Outermost: a request's time includes everything the app does for it.
    app.add_middleware(metrics.RequestMetricsMiddleware)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)

    # Routes are matched in order of inclusion: the members' hot paths (draws, quiz
    # answers, the hub) first, so that the burst at an activity's opening is matched
    # without scanning the rest. No two API routes match the same path and method.
    for router in (
        lottery_router,
        quiz_router,
        vouchers_router,
        vote_router,
        competition_router,
        hub_router,
    ):
        app.include_router(router)
    for router in (auth_router, wechat_apps_router, orgs_router, audit_router):
        app.include_router(router)
    app.include_router(members_router)
    for router in (activities_router, activity_templates_router, benefits_router, merchants_router):
        app.include_router(router)
    app.include_router(baas_router)
    app.include_router(functions_router)
    app.include_router(gallery_router)
    app.include_router(triggers_router)
    app.include_router(operations_router)
    app.include_router(payments_router)
    app.include_router(reconciliation_router)
    app.include_router(mall_router)
    app.include_router(notifications_router)
    app.include_router(news_router)
    app.include_router(risk_router)
    app.include_router(openplatform_router)
    app.include_router(analytics_router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (it checks nothing else)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """Readiness: each dependency's check, ``ok`` or ``failed``; 503 unless all are ok."""
        report = await readiness.report()
        body = {
            "status": "ready" if report.ready else "unready",
            "checks": {name: "ok" if ok else "failed" for name, ok in report.checks.items()},
        }
        return JSONResponse(body, status_code=200 if report.ready else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        """Prometheus metrics, for a caller on this machine or one with the metrics token;
        anyone else is told there is no such route."""
        if not metrics.scrape_allowed(request.scope):
            raise StarletteHTTPException(404, "Not Found")
        body, content_type = await run_in_threadpool(metrics.exposition)
        return Response(body, media_type=content_type)

    @app.get("/api/v1/ping", tags=["ops"])
    async def ping(user: CurrentUser) -> dict[str, int | None]:
        """The trivial authenticated endpoint benchmarks compare against."""
        return {"user_id": user.user_id}

    from gonghui import web

    web.install(app)

    if dev_conveniences_allowed(settings):
        from gonghui.integrations.simulators import mount_simulators

        mount_simulators(app)
    # One level of routes, then matching descends by the path's first segments instead
    # of trying every route.
    flatten_included_routers(app.router)
    index_routes(app.router)
    return app
