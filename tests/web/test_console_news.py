"""Information release in a real browser: an editor writes a news item with an image and
submits it; they cannot approve it themselves; a second staff member approves it in the
review queue; a member reads it on the H5 and the item's read count rises, once."""

from __future__ import annotations

import io
import re

from PIL import Image
from playwright.sync_api import Page, expect

from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import id_number
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, loaded_width, shot
from tests.web.pages import sign_in_by_phone, sign_in_to_console, verify_membership

TITLE = "关于举办2027年职工运动会的通知"


def venue_png() -> bytes:
    """A 320×180 picture of a green field with a red track."""
    image = Image.new("RGB", (320, 180), (46, 139, 87))
    image.paste((178, 34, 34), (20, 60, 300, 120))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_an_editor_writes_a_second_staff_member_approves_and_a_member_reads(
    desktop: Page, phone: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    reviewer = make_staff(tree.city_a, Role.OPERATOR)

    sign_in_to_console(desktop, editor.username)
    desktop.get_by_role("link", name="信息发布").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("信息发布")
    desktop.get_by_role("link", name="撰写新稿").click()
    desktop.get_by_label("类别").select_option(label="通知公告")
    desktop.get_by_role("textbox", name="标题").fill(TITLE)
    assert axe(desktop) == []  # the visual editor first
    desktop.get_by_role("button", name="编辑 HTML 源代码").click()
    desktop.get_by_role("textbox", name="正文").fill(
        "<p>各基层工会：</p><p>运动会将于<strong>明年三月</strong>举行。</p>"
        '<script>alert("x")</script><p onclick="x()">欢迎报名。</p>'
    )
    assert axe(desktop) == []
    desktop.get_by_role("button", name="保存草稿").click()
    expect(desktop.get_by_role("status")).to_have_text("已保存为草稿")
    expect(desktop.locator("article.article-body")).to_have_text(
        "各基层工会：运动会将于明年三月举行。欢迎报名。"
    )
    expect(desktop.locator("#body_html")).not_to_contain_text("script")
    expect(desktop.locator("#body_html")).not_to_contain_text("onclick")

    desktop.get_by_label("图片（JPEG、PNG 或 WebP）").set_input_files(
        files=[{"name": "场馆.png", "mimeType": "image/png", "buffer": venue_png()}]
    )
    desktop.get_by_label("图片说明").fill("运动会场馆")
    desktop.get_by_role("button", name="上传并插入正文末尾").click()
    expect(desktop.get_by_role("status")).to_have_text("图片已插入正文末尾")
    image = desktop.locator("article.article-body").get_by_role("img", name="运动会场馆")
    expect(image).to_be_visible()
    assert loaded_width(image) == 320
    # Saved again through the toolbar's editor: the image and its text survive the trip.
    desktop.get_by_role("button", name="保存草稿").click()
    expect(desktop.get_by_role("status")).to_have_text("已保存为草稿")
    expect(image).to_be_visible()
    expect(desktop.locator("article.article-body strong")).to_have_text("明年三月")
    desktop.get_by_role("button", name="提交审核").click()
    expect(desktop.get_by_role("status")).to_have_text("已提交审核")
    expect(desktop.locator("#news-status")).to_have_text("待审核")
    assert axe(desktop) == []
    shot(desktop, "console-news-item")

    # The author sees their item in the queue but cannot approve it.
    desktop.goto("/console/news/reviews")
    expect(desktop.get_by_text("这是您撰写的稿件，须由其他工作人员审核。")).to_be_visible()
    expect(desktop.get_by_role("button", name="通过并发布")).to_have_count(0)
    desktop.get_by_role("button", name="退出登录").click()

    sign_in_to_console(desktop, reviewer.username)
    desktop.goto("/console/news")
    desktop.get_by_role("link", name=re.compile("待审核（1）")).click()
    expect(desktop.get_by_role("heading", level=2, name=re.compile(TITLE))).to_be_visible()
    assert axe(desktop) == []
    shot(desktop, "console-news-review")
    desktop.get_by_label("审核意见").fill("同意发布")
    desktop.get_by_role("button", name="通过并发布").click()
    expect(desktop.get_by_role("status")).to_have_text("已审核通过并发布")
    expect(desktop.get_by_text("没有待审核的稿件。")).to_be_visible()

    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="王芳", id_number=id_number(71)
        )
    sign_in_by_phone(phone, "13900000071")
    verify_membership(phone, "王芳", id_number(71))
    phone.get_by_role("link", name="工会资讯：新闻与通知公告").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("工会资讯")
    assert axe(phone) == []
    shot(phone, "h5-news-list")
    phone.get_by_role("link", name=TITLE).click()
    expect(phone.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(phone.get_by_text("运动会将于明年三月举行。")).to_be_visible()
    expect(phone.get_by_role("img", name="运动会场馆")).to_be_visible()
    assert axe(phone) == []
    shot(phone, "h5-news-article")
    phone.reload()  # a second look is not a second reader

    desktop.goto("/console/news")
    row = desktop.locator("#news-list tr").filter(has_text=TITLE)
    expect(row).to_contain_text("已发布")
    expect(row.locator("td").last).to_have_text("1")
    assert axe(desktop) == []
    shot(desktop, "console-news-list")


def test_an_editor_formats_the_body_with_the_toolbar_and_sees_the_html_it_makes(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    editor = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, editor.username)
    desktop.goto("/console/news/new")
    desktop.get_by_role("textbox", name="标题").fill("职工书屋开放时间")
    body = desktop.get_by_role("textbox", name="正文")
    body.click()
    toolbar = desktop.get_by_role("toolbar", name="正文格式")
    toolbar.get_by_role("button", name="小标题").click()
    desktop.keyboard.type("开放时间")
    desktop.keyboard.press("Enter")
    desktop.keyboard.type("每周一至周五 ")
    toolbar.get_by_role("button", name="加粗").click()
    desktop.keyboard.type("9:00 至 17:00")
    toolbar.get_by_role("button", name="加粗").click()
    desktop.keyboard.press("Enter")
    toolbar.get_by_role("button", name="项目符号列表").click()
    desktop.keyboard.type("凭会员码入场")
    desktop.keyboard.press("Enter")
    desktop.keyboard.type("图书可借两周")
    assert axe(desktop) == []
    shot(desktop, "console-news-editor")

    desktop.get_by_role("button", name="保存草稿").click()
    expect(desktop.get_by_role("status")).to_have_text("已保存为草稿")
    preview = desktop.locator("article.article-body")
    expect(preview.get_by_role("heading", level=3)).to_have_text("开放时间")
    expect(preview.locator("strong")).to_have_text("9:00 至 17:00")
    expect(preview.locator("ul > li")).to_have_text(["凭会员码入场", "图书可借两周"])
    # What was saved, in the source: plain spaces, the list as a list.
    desktop.get_by_role("button", name="编辑 HTML 源代码").click()
    source = desktop.get_by_role("textbox", name="正文")
    expect(source).to_have_value(
        "<h3>开放时间</h3><p>每周一至周五 <strong>9:00 至 17:00</strong></p>"
        "<ul><li>凭会员码入场</li><li>图书可借两周</li></ul>"
    )
    # Back to the toolbar: the source's edits carry over.
    source.fill("<p>暂停开放一周。</p>")
    desktop.get_by_role("button", name="编辑 HTML 源代码").click()
    expect(desktop.get_by_role("textbox", name="正文")).to_have_text("暂停开放一周。")

    # A link: select the words, the toolbar's link, the address (its prompt in Chinese).
    desktop.get_by_role("textbox", name="正文").click()
    desktop.keyboard.press("Control+A")
    toolbar.get_by_role("button", name="链接").click()
    tooltip = desktop.locator("#body-editor .ql-tooltip")
    prompt = tooltip.evaluate("node => getComputedStyle(node, '::before').content")
    assert prompt == '"输入链接地址："'
    tooltip.get_by_role("textbox", name="链接地址").fill("https://example.org/reading")
    shot(desktop, "console-news-link", full_page=False)
    desktop.keyboard.press("Enter")
    assert axe(desktop) == []
    desktop.get_by_role("button", name="保存草稿").click()
    expect(desktop.get_by_role("status")).to_have_text("已保存为草稿")
    link = desktop.locator("article.article-body").get_by_role("link", name="暂停开放一周。")
    expect(link).to_have_attribute("href", "https://example.org/reading")

    # A body with a table is edited as HTML only: the toolbar would flatten the table.
    desktop.get_by_role("button", name="编辑 HTML 源代码").click()
    desktop.get_by_role("textbox", name="正文").fill(
        "<table><tr><th>周一</th><td>9:00</td></tr></table>"
    )
    desktop.get_by_role("button", name="保存草稿").click()
    expect(desktop.get_by_role("status")).to_have_text("已保存为草稿")
    expect(desktop.locator("article.article-body td")).to_have_text("9:00")
    expect(desktop.get_by_role("toolbar", name="正文格式")).to_have_count(0)
    expect(desktop.locator("textarea#body_html")).to_contain_text("<th>周一</th>")
