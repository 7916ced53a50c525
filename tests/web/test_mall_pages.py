"""The help-the-farmers mall in real browsers: an operator lists a product and opens a
mall sale in the console; a member on her phone buys with the union's subsidy and a
voucher, pays through the WeChat Pay simulator's pay step, and confirms receipt once the
operator has shipped; another order is refunded; refunds WeChat Pay closed or could not pay
out are sent again or applied to a bank card from the order's page."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gonghui.accounts.models import Identity, Provider
from gonghui.benefits import service as benefits
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.members import service as members
from gonghui.members.models import Membership
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import create_member, id_number
from tests.fixtures import StaffFactory, Tree
from tests.mall.conftest import checkout, link_wechat, pay, sale
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_by_phone, sign_in_to_console, verify_membership


@pytest.fixture(autouse=True)
def _simulator(api: httpx.Client) -> None:
    sim.reset()
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0})


def _png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (240, 240), color).save(buffer, "PNG")
    return buffer.getvalue()


def _verified_member(page: Page, tree: Tree, n: int, name: str) -> int:
    """A member verified on her phone, with WeChat linked and a ten-yuan voucher; her
    membership id."""
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name=name, id_number=id_number(n)
        )
    sign_in_by_phone(page, f"139000090{n:02d}")
    verify_membership(page, name, id_number(n))
    with unit_of_work() as session:
        membership = session.scalars(select(Membership).order_by(Membership.id.desc())).first()
        assert membership is not None
        benefits.issue_vouchers(
            session,
            members=[membership.id],
            activity_id=None,
            name="助农十元券",
            value_cents=1000,
            threshold_cents=5000,
            valid_days=30,
            source="test",
        )
        return membership.id


def _link_wechat(membership_id: int) -> None:
    with unit_of_work() as session:
        membership = session.get(Membership, membership_id)
        assert membership is not None
        session.add(
            Identity(
                user_id=membership.user_id,
                provider=Provider.WECHAT_MINI,
                app_id="wx_sim_mini",
                subject=f"o-sim-{membership.user_id}",
            )
        )


def _product(api: httpx.Client, headers: dict[str, str], org_id: int) -> int:
    image = api.post(
        "/api/v1/mall/images",
        files={"file": ("tea.png", _png("#3a7d44"), "image/png")},
        headers=headers,
    )
    assert image.status_code == 201, image.text
    body = {
        "org_id": org_id,
        "name": "高山云雾茶",
        "origin_region": "贵州省黔东南州",
        "description": "海拔一千米茶园，明前采摘。",
        "images": [image.json()["key"]],
        "skus": [
            {"name": "250克", "price_cents": 5000, "stock": 10},
            {"name": "500克", "price_cents": 9000, "stock": 5},
        ],
        "on_shelf": True,
    }
    created = api.post("/api/v1/mall/products", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _buy(phone: Page, product_id: int, *, quantity: str, screenshots: bool = False) -> str:
    """Add the 250 g tea to the cart, check out with the sale and the voucher, and pay at
    the simulator's pay step; the order page's URL."""
    phone.goto("/h5/mall")
    phone.get_by_role("link", name="高山云雾茶").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("高山云雾茶")
    expect(phone.get_by_text("剩 10 件")).to_be_visible()
    if screenshots:
        shot(phone, "h5-mall-product")
        assert axe(phone) == []
    phone.get_by_label("250克").check()
    phone.get_by_label("数量").fill(quantity)
    phone.get_by_role("button", name="加入购物车").click()
    expect(phone.get_by_role("status")).to_have_text("已加入购物车")
    phone.get_by_label("收货人").fill("李娜")
    phone.get_by_label("联系电话").fill("13900009001")
    phone.get_by_label("详细地址").fill("广东省广州市天河区软件路 1 号")
    if screenshots:
        shot(phone, "h5-mall-checkout")
        assert axe(phone) == []
    phone.get_by_role("button", name="提交订单").click()
    expect(phone.locator("#order-state")).to_have_text("待支付")
    order_url = phone.url
    phone.get_by_role("button", name="微信支付").click()
    expect(phone.get_by_role("heading", name="微信支付（模拟）")).to_be_visible()
    phone.get_by_role("button", name="确认支付").click()
    expect(phone.locator("#order-state")).to_have_text("已支付")
    return order_url


def test_an_operator_lists_a_product_with_two_skus_and_opens_a_mall_sale(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory, tmp_path: Path
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, op.username)
    desktop.get_by_role("link", name="助农商城").click()
    expect(desktop.get_by_text("还没有商品")).to_be_visible()
    desktop.get_by_label("所属工会").select_option(label="天河区总工会")
    desktop.get_by_label("商品名称").fill("高山云雾茶")
    desktop.get_by_label("帮扶地区（产地）").fill("贵州省黔东南州")
    desktop.get_by_label("商品介绍").fill("海拔一千米茶园，明前采摘。")
    picture = tmp_path / "tea.png"
    picture.write_bytes(_png("#3a7d44"))
    desktop.get_by_label("商品图片（JPEG、PNG 或 WebP，最多 9 张）").set_input_files(picture)
    desktop.get_by_label("规格 1 名称").fill("250克")
    desktop.get_by_label("规格 1 价格（元）").fill("50")
    desktop.get_by_label("规格 1 库存").fill("10")
    desktop.get_by_label("规格 2 名称").fill("500克")
    desktop.get_by_label("规格 2 价格（元）").fill("89.9")
    desktop.get_by_label("规格 2 库存").fill("5")
    desktop.get_by_label("上架销售").check()
    assert axe(desktop) == []
    desktop.get_by_role("button", name="创建商品").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("高山云雾茶")
    expect(desktop.get_by_role("status")).to_have_text("已保存")
    expect(desktop.get_by_role("img", name="高山云雾茶 图片 1")).to_be_visible()
    expect(desktop.get_by_role("row", name="500克")).to_contain_text("¥89.90")
    desktop.get_by_label("500克 增加库存（负数为减少）").fill("3")
    desktop.get_by_role("button", name="保存500克").click()
    expect(desktop.get_by_role("row", name="500克")).to_contain_text("8")
    shot(desktop, "console-mall-product")
    assert axe(desktop) == []
    product_id = int(desktop.url.split("?")[0].rsplit("/", 1)[-1])
    stored = api.get(f"/api/v1/mall/products/{product_id}", headers=op.headers).json()
    assert (stored["org_id"], stored["origin_region"], stored["on_shelf"]) == (
        tree.district_a1,
        "贵州省黔东南州",
        True,
    )
    assert [(s["name"], s["price_cents"], s["stock"]) for s in stored["skus"]] == [
        ("250克", 5000, 10),
        ("500克", 8990, 8),
    ]
    assert len(stored["images"]) == 1

    desktop.get_by_role("link", name="活动管理").click()
    desktop.get_by_role("link", name="新建活动").click()
    desktop.get_by_label("活动类型").select_option(label="助农商城")
    expect(desktop.get_by_label("奖品 1 名称")).to_be_hidden()
    desktop.get_by_label("活动名称").fill("助农消费月")
    desktop.get_by_label("补贴比例（%）").fill("20")
    desktop.get_by_label("每人每月补贴上限（元）").fill("30")
    desktop.get_by_label("预算（元，可不填）").fill("5000")
    assert axe(desktop) == []
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.locator("#kpi-status")).to_have_text("草稿")
    desktop.get_by_role("button", name="发布活动").click()
    expect(desktop.locator("#kpi-status")).to_have_text("进行中")
    activity_id = int(desktop.url.split("?")[0].rsplit("/", 1)[-1])
    activity = api.get(f"/api/v1/activities/{activity_id}", headers=op.headers).json()
    assert activity["config"]["mall"] == {
        "subsidy_percent": 20,
        "member_cap_cents_per_month": 3000,
    }
    assert activity["budget_cents"] == 500000


def test_an_operator_edits_a_products_details_and_pages_through_the_products(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory, tmp_path: Path
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    first = _product(api, op.headers, tree.district_a1)
    for n in range(50):
        body = {
            "org_id": tree.district_a1,
            "name": f"土鸡蛋 {n + 1}",
            "origin_region": "广西百色市",
            "skus": [{"name": "30枚", "price_cents": 4500, "stock": 20}],
        }
        assert api.post("/api/v1/mall/products", json=body, headers=op.headers).status_code == 201
    sign_in_to_console(desktop, op.username)
    desktop.get_by_role("link", name="助农商城").click()
    rows = desktop.locator("#products-h ~ table tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("土鸡蛋 50")
    expect(desktop.get_by_role("link", name="高山云雾茶")).to_have_count(0)
    desktop.get_by_role("link", name="更早的商品 ›").click()
    expect(rows).to_have_count(1)
    expect(desktop.get_by_role("link", name="更早的商品 ›")).to_have_count(0)
    desktop.get_by_role("link", name="高山云雾茶").click()

    desktop.get_by_text("编辑商品信息").click()
    desktop.get_by_label("商品名称").fill("高山云雾绿茶")
    desktop.get_by_label("帮扶地区（产地）").fill("贵州省黔南州")
    desktop.get_by_label("商品介绍").fill("明前采摘，一芽一叶。")
    desktop.get_by_role("checkbox").uncheck()  # the old picture goes
    pictures = [tmp_path / "a.png", tmp_path / "b.png"]
    for picture, colour in zip(pictures, ("#2e7d32", "#f9a825"), strict=True):
        picture.write_bytes(_png(colour))
    desktop.get_by_label("添加图片（JPEG、PNG 或 WebP，合计最多 9 张）").set_input_files(pictures)
    assert axe(desktop) == []
    desktop.get_by_role("button", name="保存商品信息").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("高山云雾绿茶")
    expect(desktop.get_by_role("status")).to_have_text("已保存")
    shot(desktop, "console-mall-product-edited")
    stored = api.get(f"/api/v1/mall/products/{first}", headers=op.headers).json()
    assert (stored["name"], stored["origin_region"], stored["description"]) == (
        "高山云雾绿茶",
        "贵州省黔南州",
        "明前采摘，一芽一叶。",
    )
    assert len(stored["images"]) == 2
    before = stored["images"]

    # A name left empty is refused with the field named, and nothing changes.
    desktop.get_by_text("编辑商品信息").click()
    desktop.get_by_label("商品名称").fill(" ")
    desktop.get_by_role("button", name="保存商品信息").click()
    expect(desktop.get_by_role("alert")).to_contain_text("name")
    again = api.get(f"/api/v1/mall/products/{first}", headers=op.headers).json()
    assert (again["name"], again["images"]) == ("高山云雾绿茶", before)


def test_a_member_buys_with_subsidy_and_voucher_and_confirms_receipt(
    desktop: Page, phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    product_id = _product(api, op.headers, tree.city_a)
    sale(api, op.headers, tree.city_a, percent=20, cap_cents=3000)
    membership_id = _verified_member(phone, tree, 1, "李娜")

    phone.get_by_role("link", name="商城").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("助农商城")
    card = phone.get_by_role("article", name="高山云雾茶")
    expect(card).to_contain_text("产地：贵州省黔东南州")
    expect(card).to_contain_text("¥50.00 起")
    shot(phone, "h5-mall")
    assert axe(phone) == []
    # Not linked to WeChat yet: the cart says how, and offers no checkout.
    phone.goto(f"/h5/mall/products/{product_id}")
    phone.get_by_role("button", name="加入购物车").click()
    expect(phone.get_by_role("note")).to_contain_text("请先通过工会微信小程序登录一次")
    expect(phone.get_by_role("button", name="提交订单")).to_have_count(0)
    phone.get_by_role("button", name="移除 高山云雾茶 · 250克").click()
    expect(phone.get_by_text("购物车是空的")).to_be_visible()
    _link_wechat(membership_id)

    order_url = _buy(phone, product_id, quantity="2", screenshots=True)
    # 2 × 50.00: the union pays 20 % (20.00), the voucher 10.00, the member 70.00.
    amounts = phone.locator(".amounts")
    expect(amounts).to_contain_text("商品金额¥100.00")
    expect(amounts).to_contain_text("工会补贴−¥20.00")
    expect(amounts).to_contain_text("消费券抵扣−¥10.00")
    expect(amounts).to_contain_text("实付金额¥70.00")
    expect(phone.get_by_text("广东省广州市***")).to_be_visible()  # the address, masked

    sign_in_to_console(desktop, op.username)
    desktop.goto("/console/mall/orders")
    desktop.get_by_label("订单状态").select_option(label="已支付")
    desktop.get_by_role("button", name="筛选").click()
    expect(desktop.get_by_role("heading", name="共 1 个订单")).to_be_visible()
    shot(desktop, "console-mall-orders")
    assert axe(desktop) == []
    desktop.get_by_role("link", name=f"订单 {order_url.rsplit('/', 1)[-1]}").click()
    expect(desktop.locator(".address")).to_contain_text("广东省广州市***")
    desktop.get_by_role("button", name="查看完整地址").click()
    expect(desktop.locator(".address")).to_contain_text("广东省广州市天河区软件路 1 号")
    desktop.get_by_label("快递公司").fill("顺丰速运")
    desktop.get_by_label("运单号").fill("SF1234567890")
    desktop.get_by_role("button", name="发货").click()
    expect(desktop.get_by_role("status")).to_have_text("已发货")
    shot(desktop, "console-mall-order")
    assert axe(desktop) == []

    phone.goto("/h5/mall/orders")
    expect(phone.get_by_text("顺丰速运 运单号 SF1234567890")).to_be_visible()
    shot(phone, "h5-mall-orders")
    assert axe(phone) == []
    phone.goto(order_url)
    phone.get_by_role("button", name="确认收货").click()
    expect(phone.get_by_role("status")).to_have_text("已确认收货")
    expect(phone.locator("#order-state")).to_have_text("已收货")


def test_a_member_asks_for_a_refund_and_the_operator_approves_it(
    desktop: Page, phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    product_id = _product(api, op.headers, tree.city_a)
    sale(api, op.headers, tree.city_a)
    _link_wechat(_verified_member(phone, tree, 2, "王芳"))
    order_url = _buy(phone, product_id, quantity="1")
    order_id = order_url.rsplit("/", 1)[-1]
    phone.get_by_label("退款原因").fill("买错规格了")
    phone.get_by_role("button", name="提交退款申请").click()
    expect(phone.get_by_role("status")).to_have_text("退款申请已提交，等待工会审核")
    expect(phone.locator("#order-state")).to_have_text("退款审核中")

    sign_in_to_console(desktop, op.username)
    desktop.goto(f"/console/mall/orders/{order_id}")
    expect(desktop.get_by_text("退款原因：买错规格了")).to_be_visible()
    desktop.get_by_role("button", name="同意退款").click()
    expect(desktop.get_by_role("status")).to_have_text("已同意退款，退款已提交微信支付")
    expect(desktop.locator("#order-state")).to_have_text("退款中")
    out_trade_no = desktop.locator("code").first.inner_text()
    # The worker sends the refund to WeChat Pay; then the money reaches the member and
    # WeChat Pay says so (REFUND.SUCCESS).
    for _ in range(50):
        done = api.post(f"/_sim/wechatpay/_control/refunds/{out_trade_no}R/succeed", json={})
        if done.json()["ended"]:
            break
        desktop.wait_for_timeout(200)
    else:
        pytest.fail("the refund never reached WeChat Pay")
    desktop.reload()
    expect(desktop.locator("#order-state")).to_have_text("已退款")
    phone.goto(order_url)
    expect(phone.locator("#order-state")).to_have_text("已退款")
    phone.goto("/h5/wallet")
    expect(phone.get_by_role("article", name="助农十元券")).to_contain_text("可使用")


def _ended(api: httpx.Client, page: Page, out_refund_no: str, ending: str) -> None:
    """WeChat Pay ends the refund once the worker has sent it."""
    for _ in range(50):
        if api.post(f"/_sim/wechatpay/_control/refunds/{out_refund_no}/{ending}", json={}).json()[
            "ended"
        ]:
            return
        page.wait_for_timeout(200)
    pytest.fail(f"the refund {out_refund_no} never reached WeChat Pay")


def _refunding(api: httpx.Client, tree: Tree, operator: dict[str, str], product_id: int) -> str:
    """A member's paid order whose refund an operator approved; its out_trade_no."""
    member = create_member(tree.district_a1)
    link_wechat(member)
    sku = api.get(f"/api/v1/mall/products/{product_id}", headers=operator).json()["skus"][0]["id"]
    placed = checkout(api, member, items=[{"sku_id": sku, "quantity": 1}]).json()
    pay(api, member, placed["id"])
    asked = api.post(
        f"/api/v1/me/mall/orders/{placed['id']}/refund",
        json={"reason": "发错货了"},
        headers=member.headers,
    )
    assert asked.status_code == 200, asked.text
    approved = api.post(f"/api/v1/mall/orders/{placed['id']}/refund/approve", headers=operator)
    assert approved.status_code == 200, approved.text
    return str(placed["out_trade_no"])


def test_an_operator_sends_a_closed_refund_again_and_applies_an_abnormal_one_to_a_card(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    product_id = _product(api, op.headers, tree.city_a)
    closed = _refunding(api, tree, op.headers, product_id)
    abnormal = _refunding(api, tree, op.headers, product_id)
    _ended(api, desktop, f"{closed}R", "close")
    _ended(api, desktop, f"{abnormal}R", "abnormal")

    sign_in_to_console(desktop, op.username)
    desktop.goto("/console/mall/orders?state=refund_failed")
    expect(desktop.get_by_role("heading", name="共 2 个订单")).to_be_visible()
    desktop.locator("tbody a").last.click()  # the older order: the one closed
    expect(desktop.locator("#order-state")).to_have_text("退款未成功")
    expect(desktop.locator("#refund-failure")).to_contain_text("退款已被微信支付关闭")
    expect(desktop.locator("#out-refund-no")).to_have_text(f"{closed}R")
    shot(desktop, "console-mall-refund-closed")
    assert axe(desktop) == []
    desktop.get_by_role("button", name="重新发起退款").click()
    expect(desktop.get_by_role("status")).to_have_text("已重新发起退款")
    expect(desktop.locator("#order-state")).to_have_text("退款中")
    expect(desktop.locator("#out-refund-no")).to_have_text(f"{closed}R2")
    _ended(api, desktop, f"{closed}R2", "succeed")
    desktop.reload()
    expect(desktop.locator("#order-state")).to_have_text("已退款")
    expect(desktop.get_by_text("退款入账账户：支付用户零钱")).to_be_visible()

    desktop.goto("/console/mall/orders?state=refund_failed")
    desktop.locator("tbody a").first.click()
    expect(desktop.locator("#refund-failure")).to_contain_text("退款异常")
    expect(desktop.get_by_role("button", name="重新发起退款")).to_have_count(0)
    shot(desktop, "console-mall-refund-abnormal")
    assert axe(desktop) == []
    desktop.get_by_label("开户银行").fill("ICBC_DEBIT")
    desktop.get_by_label("银行卡号").fill("6222 0202 0000 1234")
    desktop.get_by_label("收款人姓名").fill("李四")
    desktop.get_by_role("button", name="申请异常退款").click()
    expect(desktop.get_by_role("status")).to_have_text("已申请异常退款，等待微信支付处理")
    expect(desktop.locator("#order-state")).to_have_text("退款中")
    expect(desktop.get_by_text("已申请退至会员银行卡，等待微信支付处理。")).to_be_visible()
    _ended(api, desktop, f"{abnormal}R", "succeed")
    desktop.reload()
    expect(desktop.get_by_text("退款入账账户：ICBC_DEBIT借记卡1234")).to_be_visible()
