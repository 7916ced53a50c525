"""``make run``'s demo: on an empty database ``gonghui demo --if-empty`` seeds a living
platform, and its printed demo member signs in by SMS code and draws in the live lottery,
finds produce on the mall's shelf and claims a consumer voucher that WeChat Pay (the
simulator) sends; the printed cashier signs in."""

from __future__ import annotations

import stat

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from gonghui import demo, tasks
from gonghui.activities.models import Activity, ActivityStatus
from gonghui.activities.service import effective_status
from gonghui.baas.functions.models import Function
from gonghui.baas.models import App, DataTable
from gonghui.baas.triggers.models import Trigger
from gonghui.cli import app
from gonghui.db import unit_of_work
from gonghui.settings import get_settings
from tests.accounts.helpers import bearer, last_dev_code, send_code, sms_login


def test_the_demo_member_signs_in_and_draws_within_a_minute(api: httpx.Client) -> None:
    result = CliRunner().invoke(app, ["demo", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert f"demo member: {demo.DEMO_MEMBER_NAME}, phone {demo.DEMO_MEMBER_PHONE}" in result.output
    with unit_of_work(read_only=True) as session:
        states = {a.title: effective_status(a) for a in session.scalars(select(Activity))}
    assert states == {
        "工会暖心抽奖": ActivityStatus.LIVE,
        "工会法知识竞答": ActivityStatus.LIVE,
        "学法答题抽好礼": ActivityStatus.LIVE,
        "2026年度最美职工评选": ActivityStatus.LIVE,
        "元旦迎新抽奖": ActivityStatus.SCHEDULED,
        demo.DEMO_RESULT_VOTE: ActivityStatus.ENDED,
        demo.DEMO_MALL_SALE: ActivityStatus.LIVE,
        demo.DEMO_VOUCHER_GRAB: ActivityStatus.LIVE,
    }
    assert f"published result: {demo.DEMO_RESULT_VOTE} (22 votes, frozen)" in result.output
    # A developer finds an app with a table, a function and the trigger that runs it.
    with unit_of_work(read_only=True) as session:
        app_row = session.scalars(select(App).where(App.name == demo.DEMO_APP)).one()
        tables = [
            t.name for t in session.scalars(select(DataTable).where(DataTable.app_id == app_row.id))
        ]
        functions = [
            f.name for f in session.scalars(select(Function).where(Function.app_id == app_row.id))
        ]
        triggers = [
            (t.function_name, t.enabled)
            for t in session.scalars(select(Trigger).where(Trigger.app_id == app_row.id))
        ]
    assert tables == ["suggestions"]
    assert functions == ["award-points"]
    assert triggers == [("award-points", True)]
    # The accounts are kept in a file only its owner reads.
    saved = get_settings().data_dir / "demo-accounts.txt"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    text = saved.read_text(encoding="utf-8")
    assert "admin\t" in text
    assert demo.DEMO_MEMBER_PHONE in text

    assert send_code(api, demo.DEMO_MEMBER_PHONE).status_code == 200
    signed_in = sms_login(api, demo.DEMO_MEMBER_PHONE, last_dev_code(api, demo.DEMO_MEMBER_PHONE))
    assert signed_in.status_code == 200, signed_in.text
    member = bearer(signed_in.json())
    hub = api.get("/api/v1/hub", headers=member)
    assert hub.status_code == 200, hub.text
    titles = {item["title"]: item for item in hub.json()["items"]}
    assert set(titles) == {t for t, state in states.items() if state != ActivityStatus.ENDED}
    # The past vote's frozen result is published to the hub and on its public page.
    published = api.get("/api/v1/hub/results", headers=member)
    assert published.status_code == 200, published.text
    (item,) = published.json()["items"]
    assert (item["title"], [(n["rank"], n["name"], n["votes"]) for n in item["top"]]) == (
        demo.DEMO_RESULT_VOTE,
        [(1, "刘班长", 12), (2, "周技师", 6), (3, "吴医生", 4)],
    )
    public = api.get(f"/api/v1/public/votes/{item['id']}/results")
    assert public.status_code == 200, public.text
    assert (public.json()["entries"], public.json()["voided"]) == (22, 0)
    # The union's pinned notice is there to read.
    notices = api.get("/api/v1/me/news", headers=member)
    assert notices.status_code == 200, notices.text
    assert [n["title"] for n in notices.json()] == [demo.DEMO_NEWS]
    lottery = titles["工会暖心抽奖"]["id"]
    drawn = api.post(
        f"/api/v1/activities/{lottery}/draws",
        json={"entropy": "demo"},
        headers={**member, "X-Device-Id": "demo-device-1"},
    )
    assert drawn.status_code == 200, drawn.text
    assert drawn.json()["chances_left"] == 2
    # The mall's shelf holds the regions' produce, pictures and all.
    shelf = api.get("/api/v1/mall/shelf", headers=member)
    assert shelf.status_code == 200, shelf.text
    products = {p["name"]: p for p in shelf.json()}
    assert set(products) == {name for name, *_ in demo.DEMO_PRODUCTS}
    mango = products["百色芒果"]
    assert (mango["origin_region"], [s["name"] for s in mango["skus"]]) == (
        "广西壮族自治区百色市",
        ["5斤装", "10斤装"],
    )
    picture = api.get(mango["image_urls"][0], follow_redirects=True)
    assert (picture.status_code, picture.headers["content-type"]) == (200, "image/png")
    # The voucher grab's stock opens at WeChat Pay (the task queue's work), the member
    # claims a coupon, and it is sent to their WeChat.
    assert tasks.run_due() >= 1
    grab = titles[demo.DEMO_VOUCHER_GRAB]["id"]
    stocks = api.get(f"/api/v1/activities/{grab}/voucher-stocks", headers=member)
    assert stocks.status_code == 200, stocks.text
    (stock,) = stocks.json()
    claimed = api.post(
        f"/api/v1/activities/{grab}/voucher-stocks/{stock['id']}/claims", headers=member
    )
    assert claimed.status_code in (200, 201), claimed.text
    assert tasks.run_due() >= 1
    sent = api.get("/api/v1/me/voucher-claims", headers=member)
    assert sent.status_code == 200, sent.text
    assert [c["state"] for c in sent.json()] == ["sent"]
    # The app's trigger ran its function for each time the member took part: 10 points
    # each, from the activity's points budget.
    ledger = api.get("/api/v1/me/ledger", headers=member)
    assert ledger.status_code == 200, ledger.text
    awarded = sorted(
        (e["activity_id"], e["amount"])
        for e in ledger.json()["items"]
        if e["source"].startswith("app:")
    )
    assert awarded == sorted([(lottery, 10), (grab, 10)])
    # The printed cashier signs in with the printed password.
    username, password = next(
        line.split("\t")[:2] for line in text.splitlines() if line.startswith(demo.DEMO_CASHIER)
    )
    assert f"cashier account: {username} / {password}" in result.output
    signed = api.post("/api/v1/auth/password", json={"username": username, "password": password})
    assert signed.status_code == 200, signed.text
    # Running it again leaves the data as it is.
    again = CliRunner().invoke(app, ["demo", "--if-empty"])
    assert again.exit_code == 0
    assert "skipping" in again.output
