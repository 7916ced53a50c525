"""The roster import's error report with files in a bucket: a redirect to a presigned URL,
and only for staff the report is scoped to."""

from __future__ import annotations

import httpx

from gonghui.orgs.models import Role
from gonghui.storage import S3Store, attachment
from tests.fixtures import PASSWORD, StaffFactory, Tree
from tests.members.conftest import Uploader, csv_bytes, report_rows
from tests.members.helpers import broken_rows


def test_import_error_reports_redirect_only_for_staff_who_may_read_them(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader, s3_backend: S3Store
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    job = upload(tree.city_a, csv_bytes(broken_rows()), operator.headers)
    assert job["status"] == "done"
    assert not s3_backend.exists(f"roster-imports/{job['id']}/upload")  # deleted once read
    path = f"/api/v1/roster/imports/{job['id']}/errors"
    redirect = api.get(path, headers=operator.headers)
    assert redirect.status_code == 302
    got = httpx.get(redirect.headers["location"])
    assert got.status_code == 200
    assert got.headers["content-type"] == "text/csv; charset=utf-8"
    assert got.headers["content-disposition"] == attachment(f"roster-import-{job['id']}-errors.csv")
    assert got.content == b"".join(s3_backend.iter_bytes(f"roster-imports/{job['id']}/errors.csv"))
    assert len(report_rows(api, job["id"], operator.headers)) == 9 + 1  # row 14 twice

    outsider = make_staff(tree.city_b, Role.OPERATOR)
    refused = api.get(path, headers=outsider.headers)
    assert refused.status_code == 404
    assert "location" not in refused.headers
    assert api.get(path).status_code == 401


def test_the_console_download_redirects_only_for_staff_who_may_read_it(
    api: httpx.Client,
    server: str,
    tree: Tree,
    make_staff: StaffFactory,
    upload: Uploader,
    s3_backend: S3Store,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    outsider = make_staff(tree.city_b, Role.OPERATOR)
    job = upload(tree.city_a, csv_bytes(broken_rows()), operator.headers)
    path = f"/console/roster/imports/{job['id']}/errors"
    seen = {}
    for staff in (operator, outsider):
        with httpx.Client(base_url=server) as browser:
            signed_in = browser.post(
                "/console/login", data={"username": staff.username, "password": PASSWORD}
            )
            assert signed_in.status_code == 303, signed_in.text
            seen[staff.username] = browser.get(path)
    mine = seen[operator.username]
    assert mine.status_code == 302
    got = httpx.get(mine.headers["location"])
    assert got.status_code == 200
    assert got.content == b"".join(s3_backend.iter_bytes(f"roster-imports/{job['id']}/errors.csv"))
    theirs = seen[outsider.username]
    assert theirs.status_code == 404
    assert "location" not in theirs.headers
