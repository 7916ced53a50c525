"""A member claims a consumer voucher on its H5 activity page, in a real browser, and
sees it arrive: after linking WeChat, as the page tells her to."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gonghui.accounts.models import Identity, Provider
from gonghui.db import unit_of_work
from gonghui.h5 import vouchers
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.members import service as members
from gonghui.members.models import Membership
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from gonghui.web.i18n import translator
from gonghui.web.templating import templates
from tests.activities.conftest import create_activity, id_number
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.helpers import GRAB
from tests.web.pages import sign_in_by_phone, verify_membership


def verified_member(phone: Page, org_id: int, name: str, n: int) -> None:
    """A member on the roster of ``org_id`` signs in on the phone and verifies."""
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=org_id, name=name, id_number=id_number(n)
        )
    sign_in_by_phone(phone, f"139000090{n:02d}")
    verify_membership(phone, name, id_number(n))


def link_latest_members_wechat(openid: str) -> None:
    """The member who verified last signs in once through the mini program."""
    with unit_of_work() as session:
        user_id = session.scalar(select(Membership.user_id).order_by(Membership.id.desc()))
        assert user_id is not None
        session.add(
            Identity(
                user_id=user_id, provider=Provider.WECHAT_MINI, app_id="wx_sim_mini", subject=openid
            )
        )


def test_member_claims_a_voucher_and_sees_it_arrive(
    phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    sim.reset()
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0})
    op = make_staff(tree.city_a, Role.OPERATOR)
    grab = create_activity(api, op.headers, tree.city_a, title="年终消费券", config=GRAB)
    verified_member(phone, tree.grassroots_a1x, "李娜", 31)

    phone.goto(f"/h5/activities/{grab['id']}")
    expect(phone.get_by_role("heading", level=2, name="消费券")).to_be_visible()
    # Her coupons are a section of their own, each coupon a heading below it.
    expect(phone.get_by_role("heading", level=2, name="我领取的券")).to_be_attached()
    expect(phone.get_by_text("¥10.00 · 满 ¥50.00 可用")).to_be_visible()
    # The worker opens the stock at WeChat Pay; then the button shows.
    claim = phone.get_by_role("button", name="立即领取")
    for _ in range(50):
        if claim.count():
            break
        phone.wait_for_timeout(200)
        phone.reload()
    expect(phone.get_by_text("剩余 100 张")).to_be_visible()
    expect(phone.get_by_text("还没有领取消费券")).to_be_visible()
    claim.click()
    expect(phone.get_by_role("alert")).to_contain_text("请先通过工会微信小程序登录一次")

    link_latest_members_wechat("o-sim-lina")
    claim.click()
    # No reload from here on: the answer brings the stock's card up to date (her one
    # coupon of it is claimed, so no button invites her to claim again) ...
    expect(phone.get_by_role("status")).to_have_text("领取成功，券正在发放到您的微信卡包")
    expect(phone.get_by_text("剩余 99 张")).to_be_visible()
    expect(phone.get_by_text("您已领取 1 张，已达每人领取上限")).to_be_visible()
    expect(phone.get_by_role("button", name="立即领取")).to_have_count(0)
    expect(phone.get_by_role("button", name="立即抽奖")).to_have_count(0)
    expect(phone.get_by_role("article", name="十元消费券")).to_be_visible()
    expect(phone.get_by_text("还没有领取消费券")).to_have_count(0)
    # ... and the claim's line asks until the coupon has arrived, with its number; her
    # list of the grab's coupons follows.
    expect(phone.get_by_role("status")).to_have_text("已到账（微信卡包）", timeout=20_000)
    number = phone.locator(".voucher-claim").get_by_text(re.compile(r"^券号 \S+$"))
    expect(number).to_be_visible()
    coupon = phone.get_by_role("article", name="十元消费券")
    expect(coupon).to_contain_text("已到账（微信卡包）")
    expect(coupon).to_contain_text(number.inner_text())
    shot(phone, "h5-voucher-grab")
    assert axe(phone) == []
    phone.reload()
    expect(coupon).to_contain_text("已到账（微信卡包）")


def test_member_finds_grabs_in_the_voucher_centre_claims_and_follows_her_coupons(
    phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    sim.reset()
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0})
    op = make_staff(tree.city_a, Role.OPERATOR)
    live = create_activity(api, op.headers, tree.city_a, title="周末消费券", config=GRAB)
    upcoming = create_activity(
        api, op.headers, tree.city_a, title="元旦消费券", config=GRAB, starts_in_hours=2
    )
    lottery = create_activity(api, op.headers, tree.city_a, title="幸运抽奖")
    verified_member(phone, tree.grassroots_a1x, "王芳", 32)
    link_latest_members_wechat("o-sim-wangfang")

    phone.get_by_role("link", name="消费券", exact=True).click()
    expect(phone.get_by_role("heading", level=1, name="消费券中心")).to_be_visible()
    expect(phone.get_by_role("heading", level=2, name="周末消费券")).to_be_visible()
    expect(phone.get_by_role("heading", level=2, name="元旦消费券")).to_be_visible()
    expect(phone.get_by_role("heading", name=lottery["title"])).to_have_count(0)
    countdown = phone.get_by_role("timer")
    expect(countdown).to_have_text(re.compile(r"^距开抢 01:5\d:\d\d$"))
    expect(phone.get_by_text("还没有领取消费券")).to_be_visible()

    grab = phone.get_by_role("region", name="周末消费券")
    claim = grab.get_by_role("button", name="立即领取")
    for _ in range(50):  # the worker opens the stock at WeChat Pay
        if claim.count():
            break
        phone.wait_for_timeout(200)
        phone.reload()
    expect(grab.get_by_text("剩余 100 张")).to_be_visible()
    claim.click()
    expect(grab.get_by_role("status")).to_have_text("领取成功，券正在发放到您的微信卡包")
    # Her coupons follow the claim without a reload: listed at once, then arrived.
    expect(phone.get_by_text("还没有领取消费券")).to_have_count(0)
    coupon = phone.get_by_role("article", name="十元消费券")
    expect(coupon).to_contain_text("已到账（微信卡包）", timeout=20_000)
    expect(coupon).to_contain_text("券号")
    expect(grab.get_by_text("剩余 99 张")).to_be_visible()
    expect(grab.get_by_text("您已领取 1 张，已达每人领取上限")).to_be_visible()
    expect(grab.get_by_role("button", name="立即领取")).to_have_count(0)
    shot(phone, "h5-voucher-centre")
    assert axe(phone) == []

    coupon_id = coupon.locator("code").inner_text()
    spent = api.post(f"/_sim/wechatpay/_control/coupons/{coupon_id}/use", json={})
    assert spent.status_code == 200, spent.text
    phone.reload()
    expect(coupon).to_contain_text("已使用")
    assert upcoming["id"] != live["id"]
    shot(phone, "h5-voucher-centre-used", full_page=False)


def _stock(**fields: object) -> dict[str, object]:
    card: dict[str, object] = {
        "id": 1,
        "name": "十元消费券",
        "amount": 1000,
        "threshold": 5000,
        "left": 10,
        "status": "running",
        "mine": 0,
        "max_per_member": 2,
    }
    return card | fields


def test_a_stock_offers_its_claim_button_until_it_is_gone_or_the_member_has_her_share() -> None:
    partial = templates.env.get_template("h5/_voucher_stocks.html")

    def shown(stock: dict[str, object]) -> str:
        html = partial.render(
            t=translator("zh"), activity_id=7, stocks=[stock], claim_key="k", csrf_token="c"
        )
        return " ".join(re.sub(r"<[^>]+>", " ", html).split())

    assert "立即领取" in shown(_stock(mine=1))
    assert "剩余 10 张" in shown(_stock(mine=1))
    gone = shown(_stock(left=0))
    assert ("已抢光" in gone, "立即领取" in gone) == (True, False)
    have = shown(_stock(mine=2))
    assert ("您已领取 2 张，已达每人领取上限" in have, "立即领取" in have) == (True, False)
    paused = shown(_stock(status="paused", mine=2))
    assert ("已暂停发放，请稍后再来" in paused, "已达每人领取上限" in paused) == (True, False)


def test_a_claims_line_asks_again_until_its_coupon_has_arrived() -> None:
    line = templates.env.get_template("h5/_voucher_claim.html")

    def shown(state: str, asked: int) -> str:
        claim = {"id": 5, "state": state, "coupon_id": "C9" if state == "sent" else None}
        return line.render(t=translator("zh"), **vouchers._claim_line(claim, asked=asked))

    sending = shown("sending", 0)
    assert 'hx-get="/h5/voucher-claims/5?n=1"' in sending
    assert 'hx-trigger="load delay:1s"' in sending
    assert "领取成功，券正在发放到您的微信卡包" in sending
    # A send that waits (its stock paused, WeChat Pay slow) is asked after less often.
    assert 'hx-trigger="load delay:30s"' in shown("waiting", 40)
    assert 'n=1000"' in shown("waiting", 5_000)
    sent = shown("sent", 3)
    assert ("hx-get" in sent, "已到账（微信卡包）" in sent, "C9" in sent) == (False, True, True)
    assert "hx-get" not in shown("failed", 3)
