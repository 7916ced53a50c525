"""Server-rendered web pages (operators' console, members' H5 app): shared plumbing."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from gonghui.web.session import LoginRequired, RenewedSignInCookies

STATIC_DIR = Path(__file__).parent / "static"


def _login_redirect(_request: Request, exc: Exception) -> RedirectResponse:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(exc.login_url, status_code=303)


def install(app: FastAPI) -> None:
    from gonghui.cashier.router import router as cashier_router
    from gonghui.console.activities import router as console_activities_router
    from gonghui.console.activity_edit import router as console_activity_edit_router
    from gonghui.console.activity_templates import router as console_activity_templates_router
    from gonghui.console.analytics import router as console_analytics_router
    from gonghui.console.baas_apps import router as console_baas_apps_router
    from gonghui.console.baas_data import router as console_baas_data_router
    from gonghui.console.baas_files import router as console_baas_files_router
    from gonghui.console.baas_functions import router as console_baas_functions_router
    from gonghui.console.baas_tables import router as console_baas_tables_router
    from gonghui.console.baas_triggers import router as console_baas_triggers_router
    from gonghui.console.competitions import router as console_competitions_router
    from gonghui.console.judging import router as console_judging_router
    from gonghui.console.mall import router as console_mall_router
    from gonghui.console.members import router as console_members_router
    from gonghui.console.membership_requests import router as console_membership_requests_router
    from gonghui.console.merchants import router as console_merchants_router
    from gonghui.console.news import router as console_news_router
    from gonghui.console.notifications import router as console_notifications_router
    from gonghui.console.oauth_clients import router as console_oauth_clients_router
    from gonghui.console.oauth_webhooks import router as console_oauth_webhooks_router
    from gonghui.console.open_reference import router as console_open_reference_router
    from gonghui.console.prizes import router as console_prizes_router
    from gonghui.console.questions import router as console_questions_router
    from gonghui.console.queue import router as console_queue_router
    from gonghui.console.reconciliation import router as console_reconciliation_router
    from gonghui.console.risk import router as console_risk_router
    from gonghui.console.risk_limits import router as console_risk_limits_router
    from gonghui.console.roster_entries import router as console_roster_entries_router
    from gonghui.console.router import router as console_router
    from gonghui.console.security import router as console_security_router
    from gonghui.console.services import router as console_services_router
    from gonghui.console.staff import router as console_staff_router
    from gonghui.console.votes import router as console_votes_router
    from gonghui.console.wechat_apps import router as console_wechat_apps_router
    from gonghui.h5.router import router as h5_router

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(LoginRequired, _login_redirect)
    app.add_middleware(RenewedSignInCookies)
    app.include_router(console_router)
    app.include_router(console_members_router)
    app.include_router(console_membership_requests_router)
    app.include_router(console_roster_entries_router)
    app.include_router(console_staff_router)
    # Before the activities router: its POST /{id}/{action} would take /{id}/edit,
    # /{id}/repeat, /{id}/clone, /{id}/risk-limits and /{id}/prizes.
    app.include_router(console_activity_edit_router)
    app.include_router(console_risk_limits_router)
    app.include_router(console_prizes_router)
    app.include_router(console_activity_templates_router)
    app.include_router(console_activities_router)
    app.include_router(console_votes_router)
    app.include_router(console_risk_router)
    app.include_router(console_judging_router)
    app.include_router(console_competitions_router)
    app.include_router(console_questions_router)
    app.include_router(console_security_router)
    app.include_router(console_queue_router)
    app.include_router(console_merchants_router)
    app.include_router(console_reconciliation_router)
    app.include_router(console_mall_router)
    app.include_router(console_analytics_router)
    app.include_router(console_oauth_webhooks_router)
    app.include_router(console_oauth_clients_router)
    app.include_router(console_open_reference_router)
    app.include_router(console_wechat_apps_router)
    app.include_router(console_services_router)
    for portal in (
        console_baas_apps_router,
        console_baas_tables_router,
        console_baas_data_router,
        console_baas_functions_router,
        console_baas_triggers_router,
        console_baas_files_router,
    ):
        app.include_router(portal)
    app.include_router(console_notifications_router)
    app.include_router(console_news_router)
    app.include_router(h5_router)
    app.include_router(cashier_router)
