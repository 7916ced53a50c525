"""CSV files cut into chunks for the worker processes: whatever the chunk size, the rows
(their numbers and cells) are the ones a single csv reader over the whole file reads, and
an import through the pool gives the same roster and error report as one in-process."""

from __future__ import annotations

import codecs
import csv
import io
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from gonghui.db import unit_of_work
from gonghui.members import roster_import
from gonghui.members.models import RosterEntry
from gonghui.members.roster_file import (
    Layout,
    RosterFileError,
    RosterReader,
    detect_encoding,
    parse_chunk,
)
from gonghui.members.roster_import import run as import_run
from gonghui.pii import PiiField, unseal
from gonghui.storage import get_store
from gonghui.tenancy import SYSTEM
from tests.fixtures import Tree
from tests.members.conftest import HEADER, bad_checksum, id_number

NUMBERS = [id_number(f"440106199{i % 10}0307{i:03d}") for i in range(40)]


def reference_rows(data: bytes) -> list[tuple[int, tuple[Any, ...]]]:
    """One csv reader over the whole file, as the import read it before it had chunks."""
    encoding = detect_encoding(data[:65536])
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding, "replace", newline=""))
    pick = Layout.from_header(next(reader)).picker()
    return [(reader.line_num, pick(row)) for row in reader if any(row)]


def chunked_rows(data: bytes, chunk_bytes: int) -> list[tuple[int, tuple[Any, ...]]]:
    reader = RosterReader(io.BytesIO(data), "roster.csv")
    marks: list[int] = []
    rows: list[tuple[int, tuple[Any, ...]]] = []
    for piece, mark in reader.pieces(rows=2000, chunk_bytes=chunk_bytes):
        marks.append(mark)
        assert not isinstance(piece, list)
        rows.extend(parse_chunk(piece))
    assert marks == sorted(marks)
    assert not marks or marks[-1] == len(data)
    return rows


def tricky_text(newline: str) -> str:
    """Quoted fields with line breaks, commas and doubled quotes, blank lines, a row of
    separators, and a last line without a line break."""
    lines = [",".join(HEADER)]
    for i, number in enumerate(NUMBERS):
        name = ["张三", '"李\n四"', '"王,五"', '"赵""六"', "钱七"][i % 5]
        member = ['"M\r\n1"', "M2", '"M""3"', "", '"多\n\n行"'][i % 7 % 5]
        lines.append(f"{name},{number},1381234{i:04d},{member},GZ-TH-01,2020-01-{i % 28 + 1:02d}")
        if i % 11 == 3:
            lines.append("")
        if i % 13 == 5:
            lines.append(",,,,,")
    return newline.join(lines)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 333, 1 << 20])
def test_chunks_read_the_rows_one_reader_reads(
    newline: str, encoding: str, chunk_bytes: int
) -> None:
    data = tricky_text(newline).encode(encoding)
    expected = reference_rows(data)
    assert len(expected) == len(NUMBERS)
    assert chunked_rows(data, chunk_bytes) == expected


def test_a_stray_quote_in_an_unquoted_field_and_an_unclosed_quote() -> None:
    # A quote inside an unquoted field is a literal character for the csv module; an
    # unclosed quote runs to the end of the file.
    text = ",".join(HEADER) + '\n张"三,1,2,3,4,5\n李四,1,2,3,4,5\n"王五,1\n2,3\n'
    data = text.encode()
    for chunk_bytes in (1, 5, 16, 1000):
        assert chunked_rows(data, chunk_bytes) == reference_rows(data)


def test_a_header_split_by_a_quoted_line_break_and_a_bom_only_file() -> None:
    header = ["姓名", "身份证号", '"备\n注"', "手机号"]
    data = (",".join(header) + "\n张三,1,x,2\n").encode("utf-8-sig")
    for chunk_bytes in (1, 3, 100):
        assert chunked_rows(data, chunk_bytes) == [(3, ("张三", "1", "2", None, None, None, None))]
    with pytest.raises(RosterFileError) as caught:
        chunked_rows(codecs.BOM_UTF8, 10)
    assert caught.value.code == "file.empty"


def _roster() -> dict[str, tuple[str, str | None]]:
    with unit_of_work(read_only=True) as session:
        return {
            unseal(PiiField.ID_NUMBER, e.id_number_enc): (
                unseal(PiiField.NAME, e.name_enc),
                e.member_no,
            )
            for e in session.scalars(select(RosterEntry))
        }


def _import(tree: Tree, data: bytes, filename: str, workers: int) -> tuple[Any, bytes]:
    with unit_of_work() as session:
        job_id = roster_import.create_job(
            session, actor=SYSTEM, org_id=tree.city_a, filename=filename, bytes_total=len(data)
        ).id
    job = roster_import.run_import(
        job_id=job_id,
        actor=SYSTEM,
        source=io.BytesIO(data),
        workers=workers,
        transaction_rows=7,
    )
    with get_store().open(roster_import.report_key(job_id)) as report:
        return job, report.read()


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_pool_import_across_tiny_chunks_matches_the_in_process_one(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    rows = [
        ["张三", NUMBERS[0], "13812345678", "M\n1", "GZ-TH-01", "2020-01-15"],
        ["李四", NUMBERS[1], "", 'M"2', "GZ-TH", ""],
        ["王五", bad_checksum(NUMBERS[2]), "", "", "GZ", ""],
        ["赵,六", NUMBERS[3], "", "多\r\n行", "GZ", ""],
        ["张三", NUMBERS[0], "", "", "GZ", ""],  # a duplicate of the first row
        ["钱七", NUMBERS[4], "", "", "", ""],
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([HEADER, *rows])
    data = out.getvalue().encode(encoding)
    monkeypatch.setattr(import_run, "CHUNK_BYTES", 16)
    in_process, in_process_report = _import(tree, data, "a.csv", workers=0)
    expected = _roster()
    with unit_of_work() as session:
        for entry in session.scalars(select(RosterEntry)):
            session.delete(entry)
    pooled, pooled_report = _import(tree, data, "b.csv", workers=1)
    assert (
        _roster()
        == expected
        == {
            NUMBERS[0]: ("张三", "M\n1"),
            NUMBERS[1]: ("李四", 'M"2'),
            NUMBERS[3]: ("赵,六", "多\r\n行"),
            NUMBERS[4]: ("钱七", None),
        }
    )
    counts = ("rows_done", "rows_ok", "rows_failed", "rows_created")
    assert [getattr(pooled, c) for c in counts] == [getattr(in_process, c) for c in counts]
    assert [getattr(pooled, c) for c in counts] == [6, 4, 2, 4]
    assert pooled_report == in_process_report
    reported = list(csv.reader(io.StringIO(pooled_report.decode("utf-8-sig"))))
    # Row numbers count lines as a spreadsheet does: the quoted line breaks too.
    assert [(r[0], r[2]) for r in reported[1:]] == [
        ("5", "id_number.checksum"),
        ("8", "id_number.duplicate"),
    ]


def test_pool_import_of_an_xlsx_file(tree: Tree) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for i, number in enumerate(NUMBERS[:10]):
        sheet.append([f"名{i}", number, None, f"M{i}", "GZ-TH-01", None])
    out = io.BytesIO()
    workbook.save(out)
    job, _report = _import(tree, out.getvalue(), "r.xlsx", workers=1)
    assert (job.rows_ok, job.rows_failed) == (10, 0)
    assert _roster() == {n: (f"名{i}", f"M{i}") for i, n in enumerate(NUMBERS[:10])}


def test_a_csv_error_after_good_rows_keeps_them_and_fails_the_import(tree: Tree) -> None:
    # A field over the csv module's limit (131,072 characters) is a file-level error.
    good = f"张三,{NUMBERS[0]},,,GZ-TH-01,\n"
    data = (",".join(HEADER) + "\n" + good + f"李四,{NUMBERS[1]},,{'x' * 140_000},,\n").encode()
    for workers in (0, 1):
        job, report = _import(tree, data, "r.csv", workers=workers)
        assert (job.status, job.error, job.rows_ok) == ("failed", "file.not_csv", 1)
        assert report.decode("utf-8-sig").splitlines()[1:] == [
            "1,file,file.not_csv,not a readable CSV file (line 3)"
        ]
    assert set(_roster()) == {NUMBERS[0]}


@pytest.mark.parametrize("large", [False, True])
def test_mixed_reimport_counts_creates_updates_repeats_and_refusals(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    """New people are inserted first; only then are the others looked up: one inserted by
    this very statement is neither a duplicate nor an update, one written by an earlier
    transaction of the same file is a duplicate."""
    a, b, c, d, e, f = NUMBERS[:6]

    def run(org_id: int, rows: list[list[str]]) -> tuple[Any, list[tuple[str, str]]]:
        data = csv_text(rows).encode()
        with unit_of_work() as session:
            job_id = roster_import.create_job(
                session, actor=SYSTEM, org_id=org_id, filename="r.csv", bytes_total=len(data)
            ).id
        job = roster_import.run_import(
            job_id=job_id,
            actor=SYSTEM,
            source=io.BytesIO(data),
            workers=1 if large else 0,
            transaction_rows=3,
        )
        with get_store().open(roster_import.report_key(job_id)) as report:
            lines = list(csv.reader(io.StringIO(report.read().decode("utf-8-sig"))))
        return job, [(line[0], line[2]) for line in lines[1:]]

    run(tree.city_b, [["钱七", e, "", "", "SZ-NS-01", ""]])
    run(tree.city_a, [["张三", a, "", "", "GZ-TH-01", ""], ["李四", b, "", "", "GZ-TH-01", ""]])
    # About a row per chunk, so that transactions of three rows split the file.
    monkeypatch.setattr(import_run, "CHUNK_BYTES", 40)
    if large:
        monkeypatch.setattr(import_run, "LARGE_FILE_BYTES", 0)
    job, report = run(
        tree.city_a,
        [
            ["王五", c, "", "", "GZ-TH-01", ""],  # 2 new
            ["张三", a, "", "", "GZ-TH", ""],  # 3 moved
            ["赵六", d, "", "", "GZ", ""],  # 4 new
            ["王五", c, "", "", "GZ", ""],  # 5 written by the transaction before
            ["钱七", e, "", "", "GZ", ""],  # 6 on city B's roster
            ["孙八", f, "", "", "GZ", ""],  # 7 new
            ["李四", b, "", "", "GZ-TH-01", ""],  # 8 updated where it is
            ["孙八", f, "", "", "GZ", ""],  # 9 repeated within its transaction
        ],
    )
    counts = (job.rows_done, job.rows_ok, job.rows_failed, job.rows_created, job.rows_updated)
    assert counts == (8, 5, 3, 3, 2)
    assert report == [
        ("5", "id_number.duplicate"),
        ("6", "id_number.on_other_roster"),
        ("9", "id_number.duplicate"),
    ]
    with unit_of_work(read_only=True) as session:
        orgs = {
            unseal(PiiField.ID_NUMBER, entry.id_number_enc): entry.org_id
            for entry in session.scalars(select(RosterEntry))
        }
    assert orgs == {
        a: tree.district_a1,
        b: tree.grassroots_a1x,
        c: tree.grassroots_a1x,
        d: tree.city_a,
        e: tree.grassroots_b1,
        f: tree.city_a,
    }


def csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([HEADER, *rows])
    return out.getvalue()
