"""A union's developer builds a BaaS app by hand in the console's 开发者中心: creates the app
(its keys shown once), designs a table and adds a field, imports rows from a CSV file,
filters them in the query language, deploys a function, runs it and reads its log."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, loaded_width, shot
from tests.web.pages import sign_in_to_console

ROWS = "member,points,team\n王芳,12,研发\n李雷,7,测试\n韩梅梅,25,研发\n张伟,10,行政\n"

TOP = """def handler(event, context):
    found = context.table("scores").query({"points": {"gte": event["min"]}}, sort=["-points"])
    names = [r["member"] for r in found["items"]]
    context.log.info("达标人数 " + str(len(names)))
    return {"members": names}
"""


def _accessible(page: Page) -> None:
    assert axe(page) == []


@pytest.mark.expected_console_errors("status of 422")  # the refused forms, answered 422
def test_developer_builds_an_app_by_hand(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    page = desktop
    developer = make_staff(tree.city_a, Role.DEVELOPER)
    sign_in_to_console(page, developer.username)

    page.get_by_role("link", name="开发者中心").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("开发者中心")
    expect(page.get_by_text("还没有应用。")).to_be_visible()
    _accessible(page)
    page.get_by_label("应用名称").fill("职工积分")
    page.get_by_role("button", name="创建应用").click()

    # The app's page, with both keys shown this once.
    expect(page.get_by_role("heading", level=1)).to_have_text("职工积分")
    expect(page.get_by_role("status")).to_have_text("应用已创建")
    server_key = page.locator('code.shown-key[data-kind="server"]')
    expect(server_key).to_have_text(re.compile(r"^ghs_[A-Za-z0-9_-]{43}$"))
    expect(page.get_by_text("此密钥只显示这一次").first).to_be_visible()
    _accessible(page)
    shot(page, "console-portal-app-keys")

    # Design a table.
    page.get_by_label("表名").fill("scores")
    page.get_by_role("button", name="创建数据表").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("数据表 scores")
    expect(page.get_by_role("status")).to_have_text("数据表已创建")
    add = page.get_by_role("region", name="添加字段")
    add.get_by_label("字段名").fill("member")
    add.get_by_label("类型", exact=True).select_option("string")
    add.get_by_label("必填").check()
    add.get_by_role("button", name="添加字段").click()
    expect(page.get_by_role("status")).to_have_text("字段已添加")
    add.get_by_label("字段名").fill("points")
    add.get_by_label("类型", exact=True).select_option("integer")
    add.get_by_label("最小值").fill("0")
    add.get_by_role("button", name="添加字段").click()
    # A rule the service refuses is shown by the field it names.
    add.get_by_label("字段名").fill("team")
    add.get_by_label("类型", exact=True).select_option("string")
    add.get_by_label("最小值").fill("1")
    add.get_by_role("button", name="添加字段").click()
    expect(page.get_by_role("alert").first).to_contain_text("min applies to numbers")
    add.get_by_label("最小值").fill("")
    add.get_by_label("建索引").check()
    add.get_by_role("button", name="添加字段").click()
    expect(page.get_by_role("status")).to_have_text("字段已添加")
    fields = page.get_by_role("region", name="字段", exact=True)
    expect(fields.locator("tbody tr")).to_have_count(3)
    expect(fields.get_by_role("row", name=re.compile("points"))).to_contain_text("min=0")
    _accessible(page)
    shot(page, "console-portal-table-designer")

    # Import rows from a CSV file, then filter them in the query language.
    page.get_by_role("link", name="浏览和编辑数据").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("scores 的数据")
    page.get_by_label("选择文件").set_input_files(
        {"name": "scores.csv", "mimeType": "text/csv", "buffer": ROWS.encode()}
    )
    page.get_by_role("button", name="导入", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("已导入 4 条记录")
    records = page.get_by_role("region", name=re.compile("^记录"))
    expect(records.locator("tbody tr")).to_have_count(4)
    page.get_by_label("查询条件（where，JSON）").fill('{"points": {"gte": 10}, "team": "研发"}')
    page.get_by_label("排序").fill("-points")
    page.get_by_role("button", name="查询").click()
    expect(records).to_contain_text("共 2 条")
    expect(records.locator("tbody tr td:nth-child(2)")).to_have_text(["韩梅梅", "王芳"])
    _accessible(page)
    shot(page, "console-portal-data")
    page.get_by_label("查询条件（where，JSON）").fill('{"points": {"between": 1}}')
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#where-err")).to_contain_text("between")

    # Deploy a function, run it with an event and read its log.
    page.get_by_role("link", name="云函数").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("职工积分 的云函数")
    _accessible(page)
    page.get_by_label("函数名").fill("top")
    page.get_by_label("代码（Python）").fill(TOP)
    page.get_by_role("button", name="部署").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("云函数 top")
    expect(page.get_by_role("status")).to_have_text("已部署为 v1")
    page.get_by_label("事件（JSON）").fill('{"min": 10}')
    page.get_by_role("button", name="运行", exact=True).click()
    result = page.get_by_role("region", name="运行结果")
    expect(result.get_by_role("status")).to_contain_text("成功")
    expect(result.locator("#run-value")).to_contain_text('"韩梅梅"')
    expect(result.locator("#run-logs")).to_have_text("[info] 达标人数 3")
    invocations = page.get_by_role("region", name="最近调用")
    expect(invocations.locator("tbody tr")).to_have_count(1)
    expect(invocations.locator("tbody tr")).to_contain_text("达标人数 3")
    _accessible(page)
    shot(page, "console-portal-function")

    # A second version, the diff between them, and back to the first.
    page.get_by_label("代码（Python）").fill(TOP.replace("达标人数", "人数"))
    page.get_by_role("button", name="部署新版本").click()
    expect(page.get_by_role("status")).to_have_text("已部署为 v2")
    page.get_by_role("button", name="查看差异").click()
    diff = page.locator("pre.diff")
    expect(diff.locator(".del")).to_contain_text("达标人数")
    expect(diff.locator(".add")).to_contain_text('"人数 "')
    _accessible(page)
    page.get_by_role("button", name="回滚到 v1").click()
    expect(page.get_by_role("status")).to_have_text("已回滚到 v1")


NOTE = """def handler(event, context):
    context.log.info("new score " + str(event["data"]["record"]["points"]))
    return event["data"]["record"]["id"]
"""


def test_developer_wires_a_trigger_uploads_a_file_and_copies_the_app(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    """Triggers (a record event running a function, its delivery), files (an image and its
    thumbnail), a destructive change's preview, a record's form, and the copy's preview."""
    from gonghui.baas import apps
    from gonghui.baas.functions import service as functions
    from gonghui.baas.schemas import FieldSpec
    from gonghui.baas.tables import schema
    from gonghui.baas.tables.types import FieldType
    from gonghui.db import unit_of_work
    from gonghui.tenancy import SYSTEM
    from tests.fixtures import proof_png

    page = desktop
    developer = make_staff(tree.city_a, Role.DEVELOPER)
    with unit_of_work() as session:
        app, _ = apps.create_app(
            session, actor=SYSTEM, org_id=tree.city_a, name="积分", settings={}
        )
        app_id = app.id
        schema.create_table(
            session,
            actor=SYSTEM,
            app_id=app_id,
            name="scores",
            fields=[FieldSpec(name="points", type=FieldType.INTEGER)],
            permissions={},
        )
        functions.deploy(
            session,
            actor=SYSTEM,
            app_id=app_id,
            name="note",
            spec=functions.FunctionSpec(source=NOTE),
        )
    sign_in_to_console(page, developer.username)
    base = f"/console/apps/{app_id}"

    page.goto(base + "/triggers")
    expect(page.get_by_role("heading", level=1)).to_have_text("积分 的触发器")
    page.get_by_label("名称").fill("on-score")
    page.get_by_label("事件", exact=True).select_option("record.created")
    page.get_by_label("数据表（记录事件）").select_option("scores")
    page.get_by_role("radio", name="云函数").check()
    page.get_by_label("要运行的云函数").select_option("note")
    page.get_by_role("button", name="创建触发器").click()
    expect(page.get_by_role("heading", level=2, name="触发器“on-score”已创建")).to_be_visible()
    expect(page.get_by_role("region", name="触发器", exact=True)).to_contain_text("启用中")
    assert axe(page) == []

    # A record typed into its form fires the trigger.
    page.goto(base + "/tables/scores/data/new")
    page.get_by_label(re.compile("^points")).fill("42")
    assert axe(page) == []
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_have_text("记录已保存")
    page.goto(base + "/triggers")
    deliveries = page.get_by_role("region", name="投递记录")
    for _ in range(50):
        if "已送达" in deliveries.inner_text():
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(deliveries.locator("tbody tr")).to_contain_text("已送达")
    shot(page, "console-portal-triggers")
    deliveries.get_by_role("button", name=re.compile("重新投递")).click()
    expect(page.get_by_role("status")).to_have_text("已重新投递")
    page.get_by_role("button", name="停用 on-score").click()
    expect(page.get_by_role("status")).to_have_text("触发器已停用")

    # Files: an image, previewed by its thumbnail, downloaded by a signed link.
    page.get_by_role("link", name="文件", exact=True).click()
    page.get_by_label("选择文件").set_input_files(
        {"name": "徽章.png", "mimeType": "image/png", "buffer": proof_png()}
    )
    page.get_by_role("button", name="上传", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("已上传 徽章.png")
    thumb = page.get_by_role("img", name="徽章.png")
    expect(thumb).to_be_visible()
    assert loaded_width(thumb) > 0
    link = page.get_by_role("link", name="徽章.png").get_attribute("href")
    assert link is not None
    assert "sig=" in link
    assert page.request.get(link).body() == proof_png()
    assert axe(page) == []
    shot(page, "console-portal-files")

    # A destructive change shows what it takes before it runs.
    page.goto(base + "/tables/scores/fields/points/drop")
    expect(page.get_by_role("alert")).to_have_text(
        "删除字段 scores.points 将永久删除 1 条记录中该字段的值（共 1 条记录）。"
    )
    assert axe(page) == []
    page.get_by_role("link", name="取消").click()

    # The copy's preview, then the copy with new keys.
    page.get_by_role("link", name="复制应用").click()
    expect(page.locator("#no-data")).to_contain_text("不复制任何数据")
    expect(page.get_by_role("region", name="将复制的内容")).to_contain_text("on-score")
    assert axe(page) == []
    shot(page, "console-portal-copy")
    page.get_by_label("新应用名称").fill("积分二")
    page.get_by_role("button", name="复制应用").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("积分二")
    expect(page.locator('code.shown-key[data-kind="client"]')).to_have_text(re.compile("^ghc_"))
