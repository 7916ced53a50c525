"""The same import from the command line and from the demo seeding, and the process-pool
path that large files take."""

from __future__ import annotations

import io
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from gonghui.cli import app
from gonghui.db import unit_of_work
from gonghui.demo import roster_csv, seed_orgs_and_staff, seed_roster
from gonghui.members import roster_import
from gonghui.members.models import ImportStatus, RosterEntry
from gonghui.tenancy import SYSTEM
from tests.fixtures import Tree
from tests.members.conftest import bad_checksum, csv_bytes, id_number


def _count() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(RosterEntry)) or 0)


def test_cli_imports_a_file_and_writes_the_error_report(tree: Tree, tmp_path: Path) -> None:
    good = id_number("44010619900307123")
    data = csv_bytes(
        [
            ["张三", good, "13812345678", "", "GZ-TH-01", ""],
            ["李四", bad_checksum(good), "", "", "GZ-TH-01", ""],
            ["王五", id_number("44010619850611004"), "", "", "SZ-NS-01", ""],
        ],
        encoding="gbk",
    )
    roster = tmp_path / "花名册.csv"
    roster.write_bytes(data)
    report = tmp_path / "errors.csv"
    result = CliRunner().invoke(
        app, ["roster", "import", str(roster), "--org", "GZ", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert "1 imported (1 new, 0 updated), 2 rejected" in result.output
    lines = report.read_text(encoding="utf-8-sig").splitlines()
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["3", "id_number", "id_number.checksum"],
        ["4", "org_code", "org.not_found"],
    ]
    assert _count() == 1


def test_cli_refuses_an_unknown_org(tree: Tree, tmp_path: Path) -> None:
    roster = tmp_path / "r.csv"
    roster.write_bytes(csv_bytes([]))
    result = CliRunner().invoke(app, ["roster", "import", str(roster), "--org", "NOPE"])
    assert result.exit_code == 1
    assert "org.not_found" in result.output


def test_demo_seeds_ten_thousand_roster_entries_through_the_import() -> None:
    with unit_of_work() as session:
        seed_orgs_and_staff(session)
    job = seed_roster()
    assert (job.status, job.rows_ok, job.rows_failed) == (ImportStatus.DONE, 10_000, 0)
    assert _count() == 10_000


def test_worker_process_path_gives_the_same_result(tree: Tree) -> None:
    data = roster_csv(3000, ["GZ-TH-01", "GZ-TH", "SZ-NS-01"], seed=7)
    with unit_of_work() as session:
        job_id = roster_import.create_job(
            session, actor=SYSTEM, org_id=tree.city_a, filename="r.csv", bytes_total=len(data)
        ).id
    job = roster_import.run_import(
        job_id=job_id, actor=SYSTEM, source=io.BytesIO(data), workers=1, transaction_rows=5000
    )
    assert (job.status, job.rows_done, job.rows_ok, job.rows_failed) == ("done", 3000, 2000, 1000)
    assert _count() == 2000
