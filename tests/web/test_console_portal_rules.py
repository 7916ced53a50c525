"""The developer portal's rules, over HTTP without a browser: who may open an app's pages,
a key shown once, destructive changes previewed and confirmed, and the copy's preview."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.baas import apps
from gonghui.baas.models import App
from gonghui.baas.schemas import FieldSpec
from gonghui.baas.tables import schema
from gonghui.baas.tables.types import FieldType
from gonghui.db import unit_of_work
from gonghui.errors import Unauthenticated
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from gonghui.web.i18n import LOCALES, catalogue
from gonghui.web.session import ACCESS_COOKIE
from tests.baas.conftest import signed_in_user
from tests.console.helpers import Console, console
from tests.fixtures import Tree

CLIENT_KEY = re.compile(r"ghc_[A-Za-z0-9_-]{43}")
SERVER_KEY = re.compile(r"ghs_[A-Za-z0-9_-]{43}")


def _app_id(page: httpx.Response) -> int:
    found = re.search(r'action="/console/apps/(\d+)/keys/', page.text)
    assert found is not None, page.text
    return int(found.group(1))


@pytest.fixture
def developer(api: httpx.Client, tree: Tree) -> Console:
    return console(api, signed_in_user(tree.city_a, Role.DEVELOPER))


def _fill(app_id: int, table: str, items: list[dict[str, object]]) -> None:
    from gonghui.baas.records import write

    with unit_of_work() as session:
        caller = apps.staff_caller(session, actor=SYSTEM, app_id=app_id)
        write.create_records(session, caller=caller, table=table, items=items)


def _table(app_id: int, name: str, fields: list[FieldSpec]) -> None:
    with unit_of_work() as session:
        schema.create_table(
            session, actor=SYSTEM, app_id=app_id, name=name, fields=fields, permissions={}
        )


def test_a_new_apps_keys_are_shown_once_and_a_rotation_needs_confirming(
    developer: Console, tree: Tree
) -> None:
    created = developer.post("/console/apps", {"org_id": str(tree.city_a), "name": "工会积分"})
    assert created.status_code == 201
    client_key = CLIENT_KEY.search(created.text)
    server_key = SERVER_KEY.search(created.text)
    assert client_key is not None
    assert server_key is not None
    assert "只显示这一次" in created.text
    app_id = _app_id(created)
    with unit_of_work(read_only=True) as session:
        assert apps.resolve_key(session, server_key.group(0)).app_id == app_id

    again = developer.get(f"/console/apps/{app_id}")
    assert again.status_code == 200
    assert CLIENT_KEY.search(again.text) is None
    assert SERVER_KEY.search(again.text) is None
    assert "ghs_••••••••••••" in again.text

    unconfirmed = developer.post(f"/console/apps/{app_id}/keys/server/rotate")
    assert unconfirmed.status_code == 422
    assert "请先勾选确认" in unconfirmed.text
    assert SERVER_KEY.search(unconfirmed.text) is None
    with unit_of_work(read_only=True) as session:  # the old key still works
        assert apps.resolve_key(session, server_key.group(0)).app_id == app_id

    rotated = developer.post(f"/console/apps/{app_id}/keys/server/rotate", {"confirm": "yes"})
    assert rotated.status_code == 200
    new_key = SERVER_KEY.search(rotated.text)
    assert new_key is not None
    assert new_key.group(0) != server_key.group(0)
    assert CLIENT_KEY.search(rotated.text) is None  # only the rotated key is shown
    with unit_of_work(read_only=True) as session:
        assert apps.resolve_key(session, new_key.group(0)).app_id == app_id
        with pytest.raises(Unauthenticated):
            apps.resolve_key(session, server_key.group(0))
    assert SERVER_KEY.search(developer.get(f"/console/apps/{app_id}").text) is None


def test_staff_without_the_right_and_members_are_refused(
    api: httpx.Client, developer: Console, tree: Tree
) -> None:
    created = developer.post("/console/apps", {"org_id": str(tree.district_a1), "name": "书屋"})
    app_id = _app_id(created)
    _table(app_id, "books", [FieldSpec(name="title", type=FieldType.STRING)])
    with unit_of_work(read_only=True) as session:
        hashes = session.execute(
            select(App.client_key_hash, App.server_key_hash).where(App.id == app_id)
        ).one()

    outsider = console(api, signed_in_user(tree.city_b, Role.DEVELOPER))
    operator = console(api, signed_in_user(tree.city_a, Role.OPERATOR))
    # A developer of another subtree does not find the app; an operator, whose roles do not
    # open the developer centre at all, is refused every page of it alike.
    for staff, hidden, not_yours in ((outsider, 404, 422), (operator, 403, 403)):
        assert "书屋" not in staff.get("/console/apps").text
        for path in ("", "/tables/books", "/tables/books/data", "/functions", "/copy",
                     "/triggers", "/files", "/tables/books/fields/title/drop"):  # fmt: skip
            page = staff.get(f"/console/apps/{app_id}{path}")
            assert page.status_code == hidden, (path, page.status_code)
        refused = staff.post(f"/console/apps/{app_id}/keys/server/rotate", {"confirm": "yes"})
        assert refused.status_code == hidden
        dropped = staff.post(f"/console/apps/{app_id}/tables/books/drop", {"confirm": "yes"})
        assert dropped.status_code == hidden
        made = staff.post("/console/apps", {"org_id": str(tree.city_a), "name": "偷建"})
        assert made.status_code == not_yours
    with unit_of_work(read_only=True) as session:
        after = session.execute(
            select(App.client_key_hash, App.server_key_hash).where(App.id == app_id)
        ).one()
        assert after == hashes
        assert schema.describe_table(session, actor=SYSTEM, app_id=app_id, name="books")
        assert session.scalar(select(func.count()).select_from(App)) == 1

    member = signed_in_user()  # a member-side (H5) session, no staff role
    token = member.headers["Authorization"].removeprefix("Bearer ")
    page = api.get(f"/console/apps/{app_id}", headers={"Cookie": f"{ACCESS_COOKIE}={token}"})
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/login?next=")
    forged = api.post(
        f"/console/apps/{app_id}/keys/server/rotate",
        data={"confirm": "yes"},
        headers={"Cookie": f"{ACCESS_COOKIE}={token}"},
    )
    assert forged.status_code == 303
    # A developer's form without their session's CSRF token is refused too.
    no_csrf = api.post(
        f"/console/apps/{app_id}/keys/server/rotate",
        data={"confirm": "yes", "csrf": "forged"},
        headers=developer.cookie,
    )
    assert no_csrf.status_code == 403


def test_dropping_or_retyping_shows_what_it_touches_and_waits_for_confirmation(
    developer: Console, tree: Tree
) -> None:
    app_id = _app_id(developer.post("/console/apps", {"org_id": str(tree.city_a), "name": "a"}))
    fields = [
        FieldSpec(name="name", type=FieldType.STRING),
        FieldSpec(name="age", type=FieldType.INTEGER),
    ]
    _table(app_id, "people", fields)
    _fill(app_id, "people", [{"name": "甲", "age": 30}, {"name": "乙", "age": 41}, {"name": "丙"}])
    base = f"/console/apps/{app_id}/tables/people"

    preview = developer.get(f"{base}/fields/age/drop")
    assert preview.status_code == 200
    assert "将永久删除 2 条记录中该字段的值（共 3 条记录）" in preview.text
    unconfirmed = developer.post(f"{base}/fields/age/drop")
    assert "将永久删除 2 条记录中该字段的值" in unconfirmed.text
    retype = developer.post(f"{base}/fields/age", {"name": "age", "type": "number"})
    assert "字段 age 将从 integer 改为 number：2 条记录中的值会被转换（共 3 条记录）" in retype.text
    assert 'name="type" value="number"' in retype.text  # the change waits in the form
    with unit_of_work(read_only=True) as session:
        info = schema.describe_table(session, actor=SYSTEM, app_id=app_id, name="people")
        assert info.by_name["age"].type is FieldType.INTEGER

    confirmed = developer.post(
        f"{base}/fields/age", {"name": "age", "type": "number", "confirm": "yes"}
    )
    assert confirmed.status_code == 303
    with unit_of_work(read_only=True) as session:
        info = schema.describe_table(session, actor=SYSTEM, app_id=app_id, name="people")
        assert info.by_name["age"].type is FieldType.NUMBER

    table_preview = developer.get(f"{base}/drop")
    assert "删除数据表 people 将永久删除其全部 3 条记录" in table_preview.text
    developer.post(f"{base}/drop")
    assert developer.get(base).status_code == 200  # still there
    dropped = developer.post(f"{base}/fields/age/drop", {"confirm": "yes"})
    assert dropped.status_code == 303
    gone = developer.post(f"{base}/drop", {"confirm": "yes"})
    assert gone.status_code == 303
    assert developer.get(base).status_code == 404


def test_the_copy_preview_lists_the_configuration_and_copies_no_data(
    api: httpx.Client, developer: Console, tree: Tree
) -> None:
    from gonghui.baas.functions import service as functions

    app_id = _app_id(developer.post("/console/apps", {"org_id": str(tree.city_a), "name": "源"}))
    _table(app_id, "scores", [FieldSpec(name="points", type=FieldType.INTEGER, required=True)])
    with unit_of_work() as session:
        schema.set_permissions(
            session, actor=SYSTEM, app_id=app_id, name="scores", permissions={"read": ["members"]}
        )
        functions.deploy(
            session,
            actor=SYSTEM,
            app_id=app_id,
            name="total",
            spec=functions.FunctionSpec(source="def handler(event, context):\n    return 1\n"),
        )
    _fill(app_id, "scores", [{"points": 3}, {"points": 4}])

    preview = developer.get(f"/console/apps/{app_id}/copy")
    assert preview.status_code == 200
    assert "<code>scores</code>" in preview.text
    assert "<code>points</code> integer*" in preview.text
    assert "读取 members" in preview.text
    assert "<code>total</code>" in preview.text
    assert "不复制任何数据：记录、文件都不会复制" in preview.text

    copied = developer.post(
        f"/console/apps/{app_id}/copy", {"org_id": str(tree.district_a1), "name": "副本"}
    )
    assert copied.status_code == 201
    assert SERVER_KEY.search(copied.text) is not None  # the new app's keys, once
    new_id = _app_id(copied)
    assert new_id != app_id
    with unit_of_work(read_only=True) as session:
        info = schema.describe_table(session, actor=SYSTEM, app_id=new_id, name="scores")
        assert [f.name for f in info.fields] == ["points"]
        assert info.permissions["read"] == ["members"]
        assert session.scalar(select(func.count()).select_from(info.sql)) == 0
        assert [f.name for f in functions.list_functions(session, actor=SYSTEM, app_id=new_id)] == [
            "total"
        ]
    outside = developer.post(
        f"/console/apps/{app_id}/copy", {"org_id": str(tree.city_b), "name": "越界"}
    )
    assert outside.status_code == 422


def test_keys_the_portal_builds_from_its_enums_exist() -> None:
    from gonghui.baas.triggers.models import DeliveryStatus, TargetKind

    families = {
        "baasc.type.": [t.value for t in FieldType],
        "baasc.grant.": ["public", "users", "members", "creator", *(f"staff_{r}" for r in Role)],
        "baasc.action.": ["read", "create", "update", "delete"],
        "baasc.run_status.": ["ok", "error", "timeout", "crashed"],
        "baasc.delivery.": [s.value for s in DeliveryStatus],
        "baasc.target.": [k.value for k in TargetKind],
        "baasc.tab.": ["overview", "functions", "triggers", "files", "copy"],
        "baasc.confirm.": ["drop_table", "drop_field", "retype_field"],
    }
    for locale in LOCALES:
        missing = [
            prefix + value
            for prefix, values in families.items()
            for value in values
            if prefix + value not in catalogue(locale)
        ]
        assert missing == []


def test_a_records_form_and_imports_show_the_services_refusals_by_field(
    api: httpx.Client, developer: Console, tree: Tree
) -> None:
    import io

    from openpyxl import Workbook

    app_id = _app_id(developer.post("/console/apps", {"org_id": str(tree.city_a), "name": "a"}))
    fields = [
        FieldSpec(name="name", type=FieldType.STRING, required=True),
        FieldSpec(name="age", type=FieldType.INTEGER, rules={"min": 16}),
    ]
    _table(app_id, "people", fields)
    base = f"/console/apps/{app_id}/tables/people"

    refused = developer.post(f"{base}/data/new", {"name": "甲", "age": "12"})
    assert refused.status_code == 422
    assert re.search(
        r'id="e-age" class="field-error">请检查填写的内容（must be at least 16）<', refused.text
    )
    assert 'value="12"' in refused.text  # what was typed is kept
    not_a_number = developer.post(f"{base}/data/new", {"name": "甲", "age": "十二"})
    assert re.search(
        r'id="e-age" class="field-error">请检查填写的内容（not a integer）<', not_a_number.text
    )
    assert developer.post(f"{base}/data/new", {"name": "甲", "age": "30"}).status_code == 303
    edited = developer.post(f"{base}/data/1", {"name": "", "age": "31"})
    assert re.search(r'id="e-name" class="field-error">[^<]+<', edited.text)

    bad_csv = "name,age\n乙,20\n丙,3\n"
    imported = api.post(
        f"{base}/import",
        data={"csrf": developer.csrf},
        files={"file": ("people.csv", bad_csv.encode(), "text/csv")},
        headers=developer.cookie,
    )
    assert imported.status_code == 422
    assert "<code>1.age</code> 请检查填写的内容（must be at least 16）" in imported.text
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["name", "age"], ["乙", 20], ["丙", 33]):
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    imported = api.post(
        f"{base}/import",
        data={"csrf": developer.csrf},
        files={"file": ("people.xlsx", buffer.getvalue(), "application/octet-stream")},
        headers=developer.cookie,
    )
    assert imported.status_code == 200
    assert "已导入 2 条记录" in imported.text
    listed = developer.get(f"{base}/data?where=%7B%22age%22%3A%7B%22gt%22%3A25%7D%7D&sort=-age")
    assert "共 2 条" in listed.text
    exported = developer.get(f"{base}/export.csv")
    assert exported.text.splitlines()[0] == "id,created_by,created_at,updated_at,name,age"
    assert len(exported.text.splitlines()) == 4

    saved = developer.post(f"{base}/permissions", {"read": "members", "create": "users"})
    assert saved.status_code == 303
    with unit_of_work(read_only=True) as session:
        info = schema.describe_table(session, actor=SYSTEM, app_id=app_id, name="people")
    assert info.permissions == {
        "read": ["members"],
        "create": ["users"],
        "update": [],
        "delete": [],
    }


def test_a_webhook_triggers_secret_is_shown_once(
    api: httpx.Client, developer: Console, tree: Tree
) -> None:
    app_id = _app_id(developer.post("/console/apps", {"org_id": str(tree.city_a), "name": "a"}))
    _table(app_id, "people", [FieldSpec(name="name", type=FieldType.STRING)])
    form = {
        "name": "to-crm",
        "event": "record.created",
        "target_kind": "webhook",
        "table_name": "people",
        "filter": '{"name": {"startswith": "王"}}',
        "webhook_url": "https://crm.example.com/hook",
        "max_attempts": "3",
    }
    created = developer.post(f"/console/apps/{app_id}/triggers", form)
    assert created.status_code == 201
    assert re.search(r"whsec_[A-Za-z0-9_-]{32}", created.text)
    listed = developer.get(f"/console/apps/{app_id}/triggers")
    assert "to-crm" in listed.text
    assert "whsec_" not in listed.text

    bad = developer.post(
        f"/console/apps/{app_id}/triggers", {**form, "name": "x", "filter": '{"nope": 1}'}
    )
    assert bad.status_code == 422
    assert "unknown field" in bad.text
    outsider = console(api, signed_in_user(tree.city_b, Role.DEVELOPER))
    refused = outsider.post(f"/console/apps/{app_id}/triggers", {**form, "name": "steal"})
    assert refused.status_code == 404
    assert "whsec_" not in refused.text
    with unit_of_work(read_only=True) as session:
        from gonghui.baas.triggers import service as triggers

        names = [t.name for t in triggers.list_triggers(session, actor=SYSTEM, app_id=app_id)]
    assert names == ["to-crm"]


def test_the_data_browser_pages_by_cursor_in_the_chosen_order(
    developer: Console, tree: Tree
) -> None:
    app_id = _app_id(developer.post("/console/apps", {"org_id": str(tree.city_a), "name": "a"}))
    _table(app_id, "n", [FieldSpec(name="v", type=FieldType.INTEGER)])
    _fill(app_id, "n", [{"v": i} for i in range(25)])
    base = f"/console/apps/{app_id}/tables/n/data"
    first = developer.get(f"{base}?where=&sort=-v")
    assert "共 25 条" in first.text
    values = [int(v) for v in re.findall(r"</a></th>\s*<td>(\d+)</td>", first.text)]
    assert values == list(range(24, 4, -1))
    found = re.search(r'<a href="([^"]+cursor=[^"]+)">下一页</a>', first.text)
    assert found is not None
    second = developer.get(html.unescape(found.group(1)))
    values = [int(v) for v in re.findall(r"</a></th>\s*<td>(\d+)</td>", second.text)]
    assert values == [4, 3, 2, 1, 0]
    assert "下一页" not in second.text
    assert "第一页" in second.text
    english = developer.get(f"{base}?lang=en")
    assert "25 in all" in english.text


def _alert(page: httpx.Response) -> str:
    found = re.search(r'class="alert" role="alert">([^<]+)<', page.text)
    assert found is not None, page.text
    return html.unescape(found.group(1))


def test_a_refusal_above_a_form_is_in_the_readers_language_with_the_services_words(
    api: httpx.Client, developer: Console, tree: Tree
) -> None:
    app_id = _app_id(developer.post("/console/apps", {"org_id": str(tree.city_a), "name": "a"}))
    _table(app_id, "people", [FieldSpec(name="name", type=FieldType.STRING)])
    base = f"/console/apps/{app_id}/tables/people"

    refused = developer.post(f"{base}/permissions", {"read": "everyone"})
    assert (refused.status_code, _alert(refused)) == (
        422,
        "权限设置无效（unknown grant 'everyone'）",
    )
    english = developer.post(f"{base}/permissions?lang=en", {"read": "everyone"})
    assert _alert(english) == "The permissions are not valid (unknown grant 'everyone')"

    # An org-tree refusal on the staff's own page: the code's text, no service words.
    admin = console(api, signed_in_user(tree.province, Role.ADMIN))
    taken = admin.post(
        "/console/orgs",
        {"parent_id": str(tree.province), "name": "重复", "code": "GZ", "level": "city"},
    )
    assert _alert(taken) == "组织代码已被使用"


def test_every_refusal_the_portal_and_the_org_tree_can_show_has_its_own_text() -> None:
    """Not the generic or per-status fallback: each code of the BaaS, functions, triggers
    and org-tree services is worded in both languages."""
    from gonghui.baas.errors import BaasError
    from gonghui.baas.functions.errors import FunctionsError
    from gonghui.baas.triggers.errors import TriggersError
    from gonghui.orgs.errors import OrgsError

    codes = [
        c.value for enum in (BaasError, FunctionsError, TriggersError, OrgsError) for c in enum
    ]
    for locale in LOCALES:
        missing = [c for c in codes if f"error.{c}" not in catalogue(locale)]
        assert missing == [], locale
