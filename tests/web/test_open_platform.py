"""A union's developer registers an app in the console; a member on a phone signs in to it
with their union account: sign-in, verification, consent, and the app gets its tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.openplatform import usage
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_by_phone, sign_in_to_console, verify_membership

ID_NUMBER = "440106199003071020"


class _App(BaseHTTPRequestHandler):
    """The app's callback page: records where the member arrived."""

    arrived: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _App.arrived.append(self.path)
        body = b"signed in"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _callback(paths: list[str]) -> str:
    (path,) = [p for p in paths if p.startswith("/callback?")]  # not the favicon
    return path


@pytest.fixture
def app_callback() -> Iterator[str]:
    """A union app's redirect URI, served on loopback for the test."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _App.arrived.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/callback"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.expected_console_errors("status of 422")  # the refused form, answered 422
def test_developer_registers_an_app_and_a_member_signs_in_to_it(
    desktop: Page,
    phone: Page,
    server: str,
    tree: Tree,
    make_staff: StaffFactory,
    app_callback: str,
) -> None:
    CALLBACK = app_callback  # noqa: N806
    developer = make_staff(tree.city_a, Role.DEVELOPER)
    sign_in_to_console(desktop, developer.username)
    desktop.get_by_role("link", name="开放平台").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("开放平台应用")
    desktop.get_by_label("应用名称").fill("职工书屋")
    desktop.get_by_label("H5、小程序或手机应用（无密钥）").check()
    desktop.get_by_label("回调地址（每行一个）").fill("http://example.com/cb")
    desktop.get_by_label(re.compile("membership ·")).check()
    desktop.get_by_role("button", name="登记", exact=True).click()
    expect(desktop.get_by_role("alert")).to_contain_text("回调地址必须是 https")
    expect(desktop.get_by_label("应用名称")).to_have_value("职工书屋")  # the form is kept
    desktop.get_by_label("回调地址（每行一个）").fill(CALLBACK)
    desktop.get_by_role("button", name="登记", exact=True).click()
    created = desktop.locator("section.secret")
    expect(created).to_contain_text("“职工书屋”的凭据")
    expect(created).to_contain_text("这类应用没有密钥")
    client_id = created.locator("code").first.inner_text()
    assert client_id.startswith("ghoc_")
    expect(desktop.get_by_role("row", name=re.compile("职工书屋"))).to_contain_text("启用中")
    assert axe(desktop) == []
    shot(desktop, "console-open-platform")

    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="王芳", id_number=ID_NUMBER
        )
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    authorize = "/h5/oauth/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid membership",
            "state": "xyz",
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
    )
    # Not signed in: the H5's sign-in, then back; not yet verified: verify first.
    phone.goto(authorize)
    expect(phone).to_have_url(re.compile(r"/h5/login\?next="))
    phone.get_by_label("手机号").fill("13800138000")
    phone.get_by_role("button", name="获取验证码").click()
    code = phone.get_by_role("note").inner_text().split()[-1]
    phone.get_by_label("验证码").fill(code)
    phone.get_by_role("button", name="登录").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("请先完成会员认证")
    phone.get_by_role("link", name="去认证").click()
    verify_membership(phone, "王芳", ID_NUMBER)

    phone.goto(authorize)
    expect(phone.get_by_role("heading", level=2)).to_have_text(
        "“职工书屋”请求使用你的工会会员账号登录"
    )
    expect(phone.get_by_role("listitem")).to_have_text(
        ["确认你的身份（一个只对该应用有效的编号，不含姓名、手机号、身份证号）",
         "读取你的会员认证状态和所属工会"]
    )  # fmt: skip
    assert axe(phone) == []
    shot(phone, "h5-oauth-consent")
    phone.get_by_role("button", name="同意并继续").click()
    expect(phone.locator("body")).to_have_text("signed in")

    params = {k: v[0] for k, v in parse_qs(urlsplit(_callback(_App.arrived)).query).items()}
    assert params["state"] == "xyz"
    token = httpx.post(
        f"{server}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": CALLBACK,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    me = httpx.get(
        f"{server}/open/v1/me",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert me.json()["membership"]["union"] == {"code": "GZ-TH-01", "name": "天河软件园工会"}
    assert "nickname" not in me.json()  # profile was not asked for
    assert usage.flush() == 1
    desktop.goto("/console/oauth-clients")
    calls = desktop.get_by_role("row", name=re.compile("职工书屋")).get_by_role("cell").nth(4)
    expect(calls).to_have_text("1")  # 近7日调用
    # The 30-day chart: a line per app, today's point the call just made.
    chart = json.loads(desktop.locator("#usage-data").text_content() or "{}")
    (line,) = [c for c in chart["clients"] if c["name"] == "职工书屋"]
    assert len(line["calls"]) == 30
    assert line["calls"][-1] == 1
    assert sum(line["calls"]) == 1
    drawn = desktop.evaluate("() => Chart.getChart('usage-chart').data.datasets.map(d => d.label)")
    assert drawn == [c["name"] for c in chart["clients"]]

    # Disabled in the console: the app's token stops working.
    desktop.get_by_role("button", name="停用").click()
    expect(desktop.get_by_role("status")).to_have_text("已停用，该应用的令牌全部失效")
    again = httpx.get(
        f"{server}/open/v1/me",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert again.status_code == 401

    # The member sees the app among those they signed in to, and withdraws its access.
    phone.goto("/h5/wallet")
    phone.get_by_role("link", name="已授权的应用").click()
    card = phone.locator("section.card", has_text="职工书屋")
    expect(card).to_contain_text("读取你的会员认证状态和所属工会")
    assert axe(phone) == []
    shot(phone, "h5-oauth-apps")
    card.get_by_role("button", name="取消授权").click()
    expect(phone.get_by_role("status")).to_have_text("已取消授权，该应用的登录已失效")
    expect(phone.get_by_text("你还没有授权任何应用")).to_be_visible()


def test_developer_reads_the_open_api_reference_rendered_from_its_document(
    desktop: Page, server: str, tree: Tree, make_staff: StaffFactory
) -> None:
    developer = make_staff(tree.city_a, Role.DEVELOPER)
    sign_in_to_console(desktop, developer.username)
    desktop.goto(f"{server}/console/oauth-clients")
    desktop.get_by_role("link", name="接口参考").click()
    expect(desktop.get_by_role("heading", level=1)).to_contain_text("开放接口参考")
    document = httpx.get(f"{server}/open/v1/openapi.json").json()
    paths = [p for p in document["paths"] if p.startswith("/open/v1/")]
    assert "/open/v1/me" in paths
    for path in paths:  # every open API of the document has its section
        expect(desktop.locator("section.api-op h3", has_text=path).first).to_be_visible()
    me = desktop.locator("section.api-op", has=desktop.locator("h3", has_text="/open/v1/me")).first
    expect(me).to_contain_text("GET")
    scopes = desktop.get_by_role("table").first
    expect(scopes.get_by_role("row", name=re.compile("benefits:read"))).to_contain_text(
        "会员同意（授权码）"
    )
    expect(scopes.get_by_role("row", name=re.compile("activities:read"))).to_contain_text(
        "应用自身令牌（客户端凭证）"
    )
    # The request's parameters come from the document: the activities page's cursor.
    activities = desktop.locator(
        "section.api-op", has=desktop.locator("h3", has_text="/open/v1/activities")
    ).first
    expect(activities.get_by_role("row", name=re.compile("before"))).to_be_visible()
    assert axe(desktop) == []
    shot(desktop, "console-open-api-reference")


@pytest.mark.expected_console_errors("status of 422")  # the refused form, answered 422
def test_developer_registers_the_unions_own_wechat_official_account(
    desktop: Page, server: str, tree: Tree, make_staff: StaffFactory
) -> None:
    developer = make_staff(tree.city_a, Role.DEVELOPER)
    sign_in_to_console(desktop, developer.username)
    desktop.goto(f"{server}/console/oauth-clients")
    desktop.get_by_role("link", name="本会微信公众号、小程序和 App").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("本会微信应用")
    desktop.get_by_label("公众号（网页授权）").check()
    desktop.get_by_label("应用名称").fill("广州职工之家")
    desktop.get_by_label("AppID").fill("wx123")
    desktop.get_by_label("AppSecret").fill("d" * 32)
    desktop.get_by_role("button", name="登记", exact=True).click()
    expect(desktop.get_by_role("alert")).to_have_text("AppID 或 AppSecret 格式不正确")
    expect(desktop.get_by_label("应用名称")).to_have_value("广州职工之家")  # the form is kept
    expect(desktop.get_by_label("AppSecret")).to_have_value("")  # but never the secret
    desktop.get_by_label("AppID").fill("wx00000000000d0004")
    desktop.get_by_label("AppSecret").fill("d" * 32)
    desktop.get_by_role("button", name="登记", exact=True).click()
    expect(desktop.get_by_role("status")).to_have_text("已登记")
    row = desktop.get_by_role("row", name=re.compile("广州职工之家"))
    expect(row).to_contain_text("wx00000000000d0004")
    expect(row).to_contain_text("启用中")
    assert "d" * 32 not in desktop.content()
    assert axe(desktop) == []
    shot(desktop, "console-wechat-apps")
    row.get_by_role("button", name="停用").click()
    expect(desktop.get_by_role("status")).to_contain_text("已停用")
    expect(desktop.get_by_role("row", name=re.compile("广州职工之家"))).to_contain_text("已停用")


@pytest.mark.expected_console_errors("status of 422")  # the refused form, answered 422
def test_a_union_lists_a_service_and_a_member_opens_it_from_the_h5(
    desktop: Page,
    phone: Page,
    server: str,
    tree: Tree,
    make_staff: StaffFactory,
    app_callback: str,
) -> None:
    developer = make_staff(tree.city_a, Role.DEVELOPER)
    registered = httpx.post(
        f"{server}/api/v1/oauth-clients",
        json={"org_id": tree.city_a, "name": "羊城就业通", "kind": "confidential",
              "redirect_uris": [app_callback], "scope": "openid membership"},
        headers=developer.headers,
    )  # fmt: skip
    registered.raise_for_status()
    launch = app_callback.replace("/callback", "/launch")
    sign_in_to_console(desktop, developer.username)
    desktop.goto(f"{server}/console/oauth-clients")
    desktop.get_by_role("link", name="职工服务目录").click()
    card = desktop.locator(
        "section.card", has=desktop.get_by_role("heading", name=re.compile("羊城就业通"))
    )
    expect(card).to_contain_text("尚无卡片")
    card.get_by_label("类别").select_option(label="就业")
    card.get_by_label("简介").fill("岗位推荐与技能培训")
    card.get_by_label("登录发起地址（launch URI）").fill("https://jobs.example.com/launch")
    card.get_by_label("上架，会员可见").check()
    card.get_by_role("button", name="保存卡片").click()
    expect(desktop.get_by_role("alert")).to_contain_text("登录发起地址须与应用的回调地址同源")
    card.get_by_label("登录发起地址（launch URI）").fill(launch)
    card.get_by_role("button", name="保存卡片").click()
    expect(desktop.get_by_role("status")).to_have_text("卡片已保存")
    expect(card).to_contain_text("已上架")
    assert axe(desktop) == []
    shot(desktop, "console-services")

    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="王芳", id_number=ID_NUMBER
        )
    sign_in_by_phone(phone, "13800138001")
    verify_membership(phone, "王芳", ID_NUMBER)
    phone.goto("/h5/")
    phone.get_by_role("link", name="职工服务：就业、出行、教育、生活").click()
    expect(phone.get_by_role("heading", level=2)).to_have_text("就业")
    expect(phone.get_by_role("listitem")).to_contain_text("岗位推荐与技能培训")
    assert axe(phone) == []
    shot(phone, "h5-services")
    phone.get_by_role("button", name="打开羊城就业通").click()
    expect(phone.locator("body")).to_have_text("signed in")  # the provider's launch page
    (arrived,) = [p for p in _App.arrived if p.startswith("/launch?")]
    assert parse_qs(urlsplit(arrived).query)["target_link_uri"] == [launch]

    desktop.reload()
    expect(desktop.locator("#service-usage")).to_contain_text("天河软件园工会")
    expect(desktop.get_by_role("heading", name=re.compile("近 30 天打开次数"))).to_contain_text(
        "共 1 次"
    )
