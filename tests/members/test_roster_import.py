"""Roster imports: bad rows are reported and never block good ones; every encoding Excel
writes in China; XLSX; re-import updates; progress and the error report over HTTP."""

from __future__ import annotations

import io
import random
from datetime import date

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.members import roster_import
from gonghui.members.models import ImportJob, Membership, RosterEntry, Transfer
from gonghui.orgs.models import Role
from gonghui.pii import PiiField, unseal
from gonghui.settings import get_settings
from gonghui.storage import get_store
from gonghui.tenancy import SYSTEM
from tests.fixtures import StaffFactory, Tree, xlsx_with_blank_rows
from tests.members.conftest import (
    HEADER,
    MemberFactory,
    Uploader,
    bad_checksum,
    csv_bytes,
    report_rows,
)
from tests.members.helpers import GOOD_1, GOOD_2, GOOD_3, GOOD_4, broken_rows

EXPECTED_ERRORS = [
    (4, "id_number", "id_number.checksum"),
    (5, "org_code", "org.not_found"),
    (6, "org_code", "org.not_found"),
    (7, "id_number", "id_number.duplicate"),
    (8, "phone", "phone.format"),
    (9, "join_date", "join_date.format"),
    (10, "id_number", "id_number.birth_date"),
    (12, "name", "name.required"),
    (14, "id_number", "id_number.checksum"),
    (14, "phone", "phone.format"),
]


def roster_of(org_id: int) -> dict[str, tuple[str, int]]:
    """ID number -> (name, org id) for every entry (decrypted: test-side check)."""
    with unit_of_work(read_only=True) as session:
        entries = session.scalars(select(RosterEntry)).all()
        return {
            unseal(PiiField.ID_NUMBER, e.id_number_enc): (
                unseal(PiiField.NAME, e.name_enc),
                e.org_id,
            )
            for e in entries
        }


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_broken_file_imports_good_rows_and_reports_each_bad_one(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader, encoding: str
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    job = upload(tree.city_a, csv_bytes(broken_rows(), encoding=encoding), operator.headers)
    assert job["status"] == "done"
    assert job["error"] is None
    assert (job["rows_done"], job["rows_ok"], job["rows_failed"]) == (13, 4, 9)
    assert (job["rows_created"], job["rows_updated"]) == (4, 0)
    assert job["bytes_done"] == job["bytes_total"] > 0
    assert report_rows(api, job["id"], operator.headers) == EXPECTED_ERRORS
    assert roster_of(tree.city_a) == {
        GOOD_1: ("张三", tree.grassroots_a1x),
        GOOD_2: ("李四", tree.district_a1),
        GOOD_3: ("郑一", tree.grassroots_a1x),
        GOOD_4: ("冯二", tree.city_a),
    }
    # The import is audited, and the uploaded file (plain personal data) is gone.
    with unit_of_work(read_only=True) as session:
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "members.roster_import")
        ).all()
    assert [(a.actor_user_id, a.org_id, a.details["rows_ok"]) for a in audit] == [
        (operator.user_id, tree.city_a, 4)
    ]
    assert not get_store().exists(f"roster-imports/{job['id']}/upload")


def test_empty_file_fails_with_one_reported_reason(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    job = upload(tree.city_a, b"", operator.headers)
    assert (job["status"], job["error"], job["rows_done"]) == ("failed", "file.empty", 0)
    assert report_rows(api, job["id"], operator.headers) == [(0, "file", "file.empty")]
    header_only = upload(tree.city_a, csv_bytes([]), operator.headers)
    assert (header_only["status"], header_only["rows_done"]) == ("done", 0)
    assert report_rows(api, header_only["id"], operator.headers) == []


def test_ten_megabytes_of_junk_imports_nothing_and_says_so(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    junk = random.Random(11643).randbytes(10 * 1024 * 1024)
    job = upload(tree.city_a, junk, operator.headers, filename="junk.csv")
    assert job["status"] == "failed"
    assert job["error"] in {"file.missing_columns", "file.not_csv"}
    assert (job["rows_ok"], job["rows_created"]) == (0, 0)
    assert report_rows(api, job["id"], operator.headers) == [(1, "file", job["error"])]
    assert roster_of(tree.city_a) == {}


def test_file_without_name_or_id_columns_is_refused(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    data = csv_bytes([["a", "b"]], header=["foo", "bar"])
    job = upload(tree.city_a, data, operator.headers)
    assert (job["status"], job["error"]) == ("failed", "file.missing_columns")
    assert report_rows(api, job["id"], operator.headers) == [(1, "file", "file.missing_columns")]


def test_xlsx_roster_with_english_headers_and_typed_cells(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Name", "ID Number", "Phone", "Member No", "Org Code", "Join Date"])
    sheet.append(["张三", GOOD_1, 13812345678, "M1", "GZ-TH-01", date(2020, 5, 1)])
    sheet.append(["李四", GOOD_2, None, None, "GZ-TH", "2021-06-01"])
    sheet.append([None, None, None, None, None, None])
    sheet.append(["王五", bad_checksum(GOOD_4), None, None, "GZ", None])
    out = io.BytesIO()
    workbook.save(out)
    job = upload(tree.city_a, out.getvalue(), operator.headers, filename="花名册.xlsx")
    assert (job["status"], job["rows_ok"], job["rows_failed"]) == ("done", 2, 1)
    assert report_rows(api, job["id"], operator.headers) == [(5, "id_number", "id_number.checksum")]
    page = api.get(f"/api/v1/orgs/{tree.city_a}/roster", headers=operator.headers).json()
    assert [(i["name"], i["phone"], i["join_date"]) for i in page["items"]] == [
        ("张*", "138****5678", "2020-05-01"),
        ("李*", None, "2021-06-01"),
    ]


def test_reimport_updates_instead_of_duplicating(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    rows = [
        ["张三", GOOD_1, "13812345678", "M1", "GZ-TH-01", ""],
        ["李四", GOOD_2, "", "M2", "GZ-TH-01", ""],
        ["郑一", GOOD_3, "", "M3", "GZ-TH-01", ""],
    ]
    first = upload(tree.city_a, csv_bytes(rows), operator.headers)
    assert (first["rows_created"], first["rows_updated"]) == (3, 0)
    rows[1][0] = "李四娘"
    rows[2][4] = "GZ-TH"
    second = upload(tree.city_a, csv_bytes(rows), operator.headers)
    assert (second["rows_ok"], second["rows_created"], second["rows_updated"]) == (3, 0, 3)
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(RosterEntry)) == 3
    assert roster_of(tree.city_a) == {
        GOOD_1: ("张三", tree.grassroots_a1x),
        GOOD_2: ("李四娘", tree.grassroots_a1x),
        GOOD_3: ("郑一", tree.district_a1),
    }


def test_reimport_cannot_take_over_a_person_on_another_citys_roster(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    operator_b = make_staff(tree.city_b, Role.OPERATOR)
    upload(tree.city_b, csv_bytes([["张三", GOOD_1, "", "", "SZ-NS-01", ""]]), operator_b.headers)
    operator_a = make_staff(tree.city_a, Role.OPERATOR)
    job = upload(tree.city_a, csv_bytes([["张三", GOOD_1, "", "", "GZ", ""]]), operator_a.headers)
    assert (job["rows_ok"], job["rows_failed"]) == (0, 1)
    assert report_rows(api, job["id"], operator_a.headers) == [
        (2, "id_number", "id_number.on_other_roster")
    ]
    assert roster_of(tree.city_b) == {GOOD_1: ("张三", tree.grassroots_b1)}


def test_progress_and_report_are_scoped_to_the_importers_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    operator_a = make_staff(tree.city_a, Role.OPERATOR)
    job = upload(tree.city_a, csv_bytes(broken_rows()), operator_a.headers)
    operator_b = make_staff(tree.city_b, Role.OPERATOR)
    for path in (
        f"/api/v1/roster/imports/{job['id']}",
        f"/api/v1/roster/imports/{job['id']}/errors",
    ):
        resp = api.get(path, headers=operator_b.headers)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "import_job.not_found"
    province_admin = make_staff(tree.province, Role.ADMIN)
    seen = api.get(f"/api/v1/roster/imports/{job['id']}", headers=province_admin.headers).json()
    assert (seen["status"], seen["rows_ok"], seen["has_error_report"]) == ("done", 4, True)


def test_importing_into_another_citys_org_is_not_found(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    operator_a = make_staff(tree.city_a, Role.OPERATOR)
    resp = api.post(
        f"/api/v1/orgs/{tree.city_b}/roster/imports",
        files={"file": ("r.csv", csv_bytes(broken_rows()), "text/csv")},
        headers=operator_a.headers,
    )
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "org.not_found"
    assert roster_of(tree.city_b) == {}


def test_upload_over_the_size_limit_is_refused_whole(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    monkeypatch.setattr(get_settings(), "upload_max_bytes", 200)
    resp = api.post(
        f"/api/v1/orgs/{tree.city_a}/roster/imports",
        files={"file": ("r.csv", csv_bytes(broken_rows()), "text/csv")},
        headers=operator.headers,
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "members.upload_too_large"
    assert roster_of(tree.city_a) == {}


def test_an_xlsx_roster_of_endless_blank_rows_fails_at_the_row_cap(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    upload: Uploader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    monkeypatch.setattr(get_settings(), "roster_xlsx_max_rows", 10_000)
    bomb = xlsx_with_blank_rows(HEADER, 1_000_000)
    job = upload(tree.city_a, bomb, operator.headers, filename="r.xlsx")
    assert (job["status"], job["error"], job["rows_done"]) == ("failed", "file.too_many_rows", 0)
    assert report_rows(api, job["id"], operator.headers) == [(1, "file", "file.too_many_rows")]
    assert roster_of(tree.city_a) == {}


def test_reimport_into_another_org_moves_the_membership_too(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
    upload: Uploader,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    upload(tree.city_a, csv_bytes([["张三", GOOD_1, "", "", "GZ-TH-01", ""]]), operator.headers)
    member = make_member()
    body = {"name": "张三", "id_number": GOOD_1}
    assert api.post("/api/v1/members/verify", json=body, headers=member.headers).status_code == 201
    job = upload(tree.city_a, csv_bytes([["张三", GOOD_1, "", "", "GZ-TH", ""]]), operator.headers)
    assert (job["rows_updated"], job["rows_failed"]) == (1, 0)
    with unit_of_work(read_only=True) as session:
        membership = session.scalars(select(Membership)).one()
        transfer = session.scalars(select(Transfer)).one()
    assert membership.org_id == tree.district_a1
    assert (transfer.from_org_id, transfer.to_org_id, transfer.by_user_id) == (
        tree.grassroots_a1x,
        tree.district_a1,
        operator.user_id,
    )
    me = api.get("/api/v1/members/me", headers=member.headers).json()
    assert me["org"]["code"] == "GZ-TH"


def test_import_list_shows_the_subtree_newest_first(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    operator_a = make_staff(tree.city_a, Role.OPERATOR)
    operator_b = make_staff(tree.city_b, Role.OPERATOR)
    first = upload(tree.district_a1, csv_bytes([]), operator_a.headers)
    second = upload(tree.city_a, csv_bytes([]), operator_a.headers)
    upload(tree.city_b, csv_bytes([]), operator_b.headers)
    listed = api.get(f"/api/v1/orgs/{tree.city_a}/roster/imports", headers=operator_a.headers)
    assert [j["id"] for j in listed.json()] == [second["id"], first["id"]]
    narrow = api.get(f"/api/v1/orgs/{tree.district_a1}/roster/imports", headers=operator_a.headers)
    assert [j["id"] for j in narrow.json()] == [first["id"]]
    foreign = api.get(f"/api/v1/orgs/{tree.city_b}/roster/imports", headers=operator_a.headers)
    assert foreign.status_code == 404


def test_an_upload_whose_job_never_commits_is_deleted(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_commit(self: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    keys: list[str] = []

    def upload_then_fail_to_commit() -> None:
        with unit_of_work() as session:
            job = roster_import.accept_upload(
                session,
                actor=SYSTEM,
                org_id=tree.city_a,
                filename="r.csv",
                chunks=[csv_bytes([["张三", GOOD_1, "", "", "", ""]])],
                max_bytes=1 << 20,
            )
            keys.append(roster_import.upload_key(job.id))
            assert get_store().exists(keys[0])
            monkeypatch.setattr(Session, "commit", fail_commit)

    with pytest.raises(OperationalError):
        upload_then_fail_to_commit()
    monkeypatch.undo()
    assert not get_store().exists(keys[0])
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(ImportJob)) == 0
