"""A member uses the H5 app on a 375×667 phone in a real browser."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from gonghui.accounts.models import Identity
from gonghui.activities.quiz.models import Question
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import (
    add_questions,
    create_activity,
    id_number,
    quiz_lottery_config,
)
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_by_phone, verify_membership


def test_member_signs_in_verifies_draws_and_claims_a_physical_prize(
    phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    create_activity(
        api,
        op.headers,
        tree.city_a,
        title="工会暖心抽奖",
        config={
            "kind": "lottery",
            "lottery": {
                "prizes": [{"name": "保温杯", "kind": "physical", "weight": 1, "stock": 1}],
                "free_draws_per_day": 1,
            },
        },
    )
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="李娜", id_number=id_number(7)
        )

    sign_in_by_phone(phone, "13912345678")
    expect(phone).to_have_url("/h5/verify")
    shot(phone, "h5-verify")
    assert axe(phone) == []
    phone.get_by_label("姓名").fill("李四")
    phone.get_by_label("身份证号").fill(id_number(7))
    phone.get_by_role("button", name="提交认证").click()
    # One answer for every mismatch: it tells no one who is on the roster.
    expect(phone.get_by_role("alert")).to_have_text("姓名或身份证号与会员名册不符")
    assert axe(phone) == []
    phone.get_by_label("身份证号").fill("11010119900101123")
    phone.get_by_role("button", name="提交认证").click()
    expect(phone.locator("#id-error")).to_have_text("身份证号应为 17 位数字加 1 位数字或 X")

    verify_membership(phone, "李娜", id_number(7))
    phone.get_by_role("link", name="工会暖心抽奖").click()
    expect(phone.locator("#chances")).to_have_text("剩余抽奖次数：1")
    phone.get_by_role("button", name="立即抽奖").click()
    expect(phone.locator(".won")).to_have_text("恭喜您抽中：保温杯")
    phone.get_by_role("button", name="立即抽奖").click()
    expect(phone.get_by_role("alert")).to_have_text("抽奖次数已用完")

    phone.get_by_role("link", name="我的", exact=True).click()
    expect(phone.locator(".prize")).to_contain_text("待填写地址")
    phone.get_by_role("link", name="填写收货地址").click()
    phone.get_by_label("收货人").fill("李娜")
    phone.get_by_label("联系电话").fill("12ab")
    phone.get_by_label("详细地址").fill("广州市天河区软件路 1 号")
    phone.get_by_role("button", name="提交地址").click()
    expect(phone.locator("#addr-phone-error")).to_have_text("请填写有效的电话号码（6–15 位数字）")
    shot(phone, "h5-address")
    assert axe(phone) == []
    phone.get_by_label("联系电话").fill("13912345678")
    phone.get_by_role("button", name="提交地址").click()
    expect(phone.get_by_role("status")).to_have_text("收货地址已提交，我们会尽快寄出")
    expect(phone.locator(".prize")).to_contain_text("待发货")

    # Five tabs fit a phone's width; signing out is on 我的, below her cards.
    tabs = phone.get_by_role("navigation", name="主导航")
    expect(tabs.get_by_role("link")).to_have_text(["活动", "消费券", "商城", "消息", "我的"])
    for link in tabs.get_by_role("link").all():
        assert link.bounding_box()["height"] < 60, link.inner_text()  # one line each
    tabs.get_by_role("link", name="我的", exact=True).click()
    shot(phone, "h5-wallet")
    assert axe(phone) == []
    phone.get_by_role("button", name="退出登录").click()
    expect(phone).to_have_url("/h5/login")
    phone.goto("/h5/wallet")
    expect(phone).to_have_url("/h5/login")


def test_wrong_code_is_refused_in_english(phone: Page) -> None:
    phone.goto("/h5/login?lang=en")
    phone.get_by_label("Phone number").fill("13900001111")
    phone.get_by_role("button", name="Send code").click()
    code = phone.get_by_role("note").inner_text().split()[-1]
    phone.get_by_label("Verification code").fill(f"{(int(code) + 1) % 1_000_000:06d}")
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.get_by_role("alert")).to_have_text("The code is not correct")
    shot(phone, "h5-login-en")
    assert axe(phone) == []
    phone.goto("/h5/wallet")
    expect(phone).to_have_url("/h5/login")


def test_member_passes_a_timed_quiz_and_draws_the_chance_it_earned(
    phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    add_questions(api, op.headers, tree.city_a)
    create_activity(
        api,
        op.headers,
        tree.city_a,
        title="学法答题抽好礼",
        config=quiz_lottery_config(),
    )
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="陈静", id_number=id_number(9)
        )
        right = {q.id: q.answer for q in session.scalars(select(Question))}
    sign_in_by_phone(phone, "13912340009")
    phone.get_by_label("姓名").fill("陈静")
    phone.get_by_label("身份证号").fill(id_number(9))
    phone.get_by_role("button", name="提交认证").click()
    phone.get_by_role("link", name="学法答题抽好礼").click()
    expect(phone.locator("#chances")).to_have_text("剩余抽奖次数：0")
    phone.get_by_role("button", name="开始答题").click()
    expect(phone.get_by_role("timer")).to_contain_text("剩余时间 2:")
    questions = phone.locator("fieldset.question")
    expect(questions).to_have_count(3)
    shot(phone, "h5-quiz")
    assert axe(phone) == []
    names = {
        phone.locator("fieldset.question").nth(i).locator("input").first.get_attribute("name")
        for i in range(3)
    }
    for name in names:
        assert name is not None
        for index in right[int(name.removeprefix("q_"))]:
            phone.locator(f'input[name="{name}"][value="{index}"]').check()
    phone.get_by_role("button", name="交卷").click()
    expect(phone.get_by_role("status")).to_contain_text("100 分")
    expect(phone.get_by_role("status")).to_contain_text("恭喜通过！")
    shot(phone, "h5-quiz-result")
    assert axe(phone) == []
    phone.get_by_role("link", name="返回活动", exact=True).click()
    expect(phone.locator("#chances")).to_have_text("剩余抽奖次数：1")
    phone.get_by_role("button", name="立即抽奖").click()
    expect(phone.locator(".won")).to_have_text("恭喜您抽中：二十元券")


def test_member_signs_in_with_wechat_through_the_simulator(phone: Page) -> None:
    phone.goto("/h5/login")
    phone.get_by_role("link", name="微信登录").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("微信授权（模拟）")
    shot(phone, "h5-wechat-consent")
    assert axe(phone) == []
    phone.get_by_label("模拟微信用户昵称").fill("小王")
    phone.get_by_role("button", name="允许").click()
    expect(phone).to_have_url("/h5/verify")
    # A callback whose state is not this browser's is refused.
    phone.goto("/h5/login/wechat/callback?code=abc&state=forged")
    expect(phone.get_by_role("alert")).to_have_text("微信登录已过期，请重试")


def test_member_signs_in_through_their_unions_own_official_account(
    phone: Page, server: str, tree: Tree, make_staff: StaffFactory
) -> None:
    appid, secret = "wx00000000000c0003", "c" * 32
    developer = make_staff(tree.city_a, Role.DEVELOPER)
    httpx.post(
        f"{server}/api/v1/wechat-apps",
        json={"org_id": tree.city_a, "kind": "official", "appid": appid, "secret": secret,
              "name": "广州职工之家"},
        headers=developer.headers,
    ).raise_for_status()  # fmt: skip
    httpx.post(
        f"{server}/_sim/wechat/_control/apps", json={"appid": appid, "secret": secret}
    ).raise_for_status()
    # The union's menu opens the H5 with its appid: the code is its app's.
    phone.goto(f"/h5/login/wechat?appid={appid}")
    phone.get_by_label("模拟微信用户昵称").fill("小赵")
    phone.get_by_role("button", name="允许").click()
    expect(phone).to_have_url("/h5/verify")
    with unit_of_work(read_only=True) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Identity).where(Identity.app_id == appid)
            )
            == 1
        )
    # An entry no union registered is refused on the sign-in page.
    phone.goto("/h5/login/wechat?appid=wx0000000000000bad")
    expect(phone.get_by_role("alert")).to_have_text(
        "这个微信入口未在工会登记或已停用，请从工会公众号重新进入"
    )
