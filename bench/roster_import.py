"""Roster import: 1,000,000 generated CSV rows through the same service the API and the CLI
use, into a fresh SQLite data dir, then PostgreSQL.

PostgreSQL comes from GONGHUI_BENCH_DATABASE_URL, else from a throwaway cluster
(scripts/pg-throwaway.sh); it is skipped (null in the JSON) when neither is available.
Each import runs in a child process so that generating the file does not count towards
the importer's peak RSS. One row in a hundred has a bad check character; the invariant is
that the database then holds exactly the good rows.

    make bench W=roster_import            # ROSTER_BENCH_ROWS=200000 for a quicker run
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from _harness import emit, peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
ROWS = int(os.environ.get("ROSTER_BENCH_ROWS", "1000000"))
BAD_EVERY = 100
REGIONS = ("440103", "440104", "440105", "440106", "440305", "440304", "440604", "441900")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国志文斌辉"


def generate(path: Path, rows: int, org_codes: list[str]) -> int:
    """Write the CSV; returns the number of good rows. Numbers are unique by construction
    (region, birth day and sequence walk through distinct combinations)."""
    sys.path.insert(0, str(ROOT / "src"))
    from gonghui.members.idnumber import check_character

    start = date(1965, 1, 1)
    good = 0
    ns, ng = len(SURNAMES), len(GIVEN)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("姓名,身份证号,手机号,会员号,工会编码,入会日期\n")
        lines = []
        for i in range(rows):
            k = i // len(REGIONS)
            born = start + timedelta(days=k // 1000)
            first17 = f"{REGIONS[i % len(REGIONS)]}{born:%Y%m%d}{k % 1000:03d}"
            check = check_character(first17)
            if i % BAD_EVERY == BAD_EVERY - 1:
                check = "0" if check != "0" else "1"
            else:
                good += 1
            name = SURNAMES[i % ns] + GIVEN[(i // ns) % ng] + GIVEN[(i // 7) % ng]
            phone = f"1{'3578'[i % 4]}{(i * 7919) % 1_000_000_000:09d}"
            code = org_codes[i % len(org_codes)]
            lines.append(
                f"{name},{first17}{check},{phone},M{i:07d},{code},2020-01-{1 + i % 28:02d}\n"
            )
            if len(lines) >= 10_000:
                out.writelines(lines)
                lines = []
        out.writelines(lines)
    return good


def child(csv_path: str, data_dir: str, database_url: str, expected_good: str) -> None:
    """Runs in a fresh process: migrate, seed the org tree, import, check, report."""
    os.environ["GONGHUI_DATA_DIR"] = data_dir
    os.environ["GONGHUI_DATABASE_URL"] = database_url
    os.environ.setdefault("GONGHUI_LOG_LEVEL", "WARNING")
    from sqlalchemy import func, select, text

    from gonghui.db import dispose_engine, get_engine, unit_of_work
    from gonghui.demo import seed_orgs_and_staff
    from gonghui.members import roster_import
    from gonghui.members.models import RosterEntry
    from gonghui.migrations import upgrade
    from gonghui.orgs.models import Org
    from gonghui.settings import get_settings
    from gonghui.tenancy import SYSTEM

    if not get_settings().is_sqlite:
        with get_engine().begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        dispose_engine()
    upgrade()
    with unit_of_work() as session:
        seed_orgs_and_staff(session)
        province = session.scalar(select(Org.id).where(Org.code == "GD"))
        job_id = roster_import.create_job(
            session,
            actor=SYSTEM,
            org_id=province,
            filename=Path(csv_path).name,
            bytes_total=os.path.getsize(csv_path),
        ).id
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    with open(csv_path, "rb") as source:
        job = roster_import.run_import(job_id=job_id, actor=SYSTEM, source=source)
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of this process and of its (finished) worker processes: on a shared
    # machine these say more than the wall clock about the import's own cost.
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = children.ru_utime + children.ru_stime
    with unit_of_work(read_only=True) as session:
        stored = session.scalar(select(func.count()).select_from(RosterEntry))
    own = peak_rss_mb()
    workers = peak_rss_mb(resource.RUSAGE_CHILDREN)
    emit(
        {
            "rows": job.rows_done,
            "rows_ok": job.rows_ok,
            "rows_failed": job.rows_failed,
            "stored": stored,
            "seconds": elapsed,
            "rows_per_s": job.rows_done / elapsed,
            "peak_rss_mb": own,
            "cpu_s": cpu,
            "worker_cpu_s": worker_cpu,
            "worker_peak_rss_mb": workers,
            "invariants_ok": stored == int(expected_good) == job.rows_ok
            and job.rows_failed == job.rows_done - job.rows_ok,
        }
    )


def run_child(csv_path: Path, data_dir: Path, url: str, good: int) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(csv_path), str(data_dir), url, str(good)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"import child failed ({proc.returncode})")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    with tempfile.TemporaryDirectory(prefix="gonghui-bench-roster-") as tmp:
        tmpdir = Path(tmp)
        csv_path = tmpdir / "roster.csv"
        leaves = [
            f"{city}-{district}-{n:02d}"
            for city, districts in (
                ("GZ", ("TH", "YX", "HZ")),
                ("SZ", ("NS", "FT", "LG")),
                ("FS", ("CC", "NH")),
                ("DG", ("DC", "SL")),
            )
            for district in districts
            for n in range(1, 5)
        ]
        t0 = time.perf_counter()
        good = generate(csv_path, ROWS, leaves)
        print(
            f"generated {ROWS:,} rows ({csv_path.stat().st_size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t0:.1f}s"
        )
        results: dict[str, dict[str, object] | None] = {}
        results["sqlite"] = run_child(csv_path, tmpdir / "sqlite", "", good)

        pg_url = os.environ.get("GONGHUI_BENCH_DATABASE_URL", "")
        pg_dir = None
        if not pg_url:
            pg_dir = Path(tempfile.mkdtemp(prefix="gonghui-bench-pg-", dir="/tmp"))
            os.chmod(pg_dir, 0o755)
            started = subprocess.run(
                [str(ROOT / "scripts/pg-throwaway.sh"), "start", str(pg_dir / "cluster")],
                capture_output=True,
                text=True,
                check=False,
            )
            if started.returncode == 0:
                pg_url = started.stdout.strip().splitlines()[-1]
            else:
                print("no PostgreSQL for the benchmark:", started.stderr[-500:], file=sys.stderr)
        try:
            results["postgres"] = (
                run_child(csv_path, tmpdir / "pg-data", pg_url, good) if pg_url else None
            )
        finally:
            if pg_dir is not None:
                subprocess.run(
                    [str(ROOT / "scripts/pg-throwaway.sh"), "stop", str(pg_dir / "cluster")],
                    capture_output=True,
                    check=False,
                )
                subprocess.run(["rm", "-rf", str(pg_dir)], check=False)

    print(
        f"{'database':<10} {'rows':>9} {'ok':>9} {'bad':>7} {'s':>7} {'rows/s':>9} "
        f"{'cpu s':>6} {'wrk cpu':>7} {'rss MB':>7} {'workers MB':>10} invariants"
    )
    for name, r in results.items():
        if r is None:
            print(f"{name:<10} skipped")
            continue
        print(
            f"{name:<10} {r['rows']:>9,} {r['rows_ok']:>9,} {r['rows_failed']:>7,} "
            f"{r['seconds']:>7.1f} {r['rows_per_s']:>9,.0f} {r['cpu_s']:>6.1f} "
            f"{r['worker_cpu_s']:>7.1f} {r['peak_rss_mb']:>7.0f} "
            f"{r['worker_peak_rss_mb']:>10.0f} {r['invariants_ok']}"
        )
    sqlite_r = results["sqlite"]
    pg_r = results.get("postgres")
    assert sqlite_r is not None
    summary = {
        "workload": "roster_import",
        "ops_per_s": round(float(sqlite_r["rows_per_s"]), 1),  # type: ignore[arg-type]
        "peak_rss_mb": round(float(sqlite_r["peak_rss_mb"]), 1),  # type: ignore[arg-type]
        "worker_peak_rss_mb": round(float(sqlite_r["worker_peak_rss_mb"]), 1),  # type: ignore[arg-type]
        "rows": ROWS,
        "sqlite_rows_per_s": round(float(sqlite_r["rows_per_s"]), 1),  # type: ignore[arg-type]
        "postgres_rows_per_s": round(float(pg_r["rows_per_s"]), 1) if pg_r else None,  # type: ignore[arg-type]
        "postgres_peak_rss_mb": round(float(pg_r["peak_rss_mb"]), 1) if pg_r else None,  # type: ignore[arg-type]
        "sqlite_importer_cpu_s": round(float(sqlite_r["cpu_s"]), 1),  # type: ignore[arg-type]
        "sqlite_worker_cpu_s": round(float(sqlite_r["worker_cpu_s"]), 1),  # type: ignore[arg-type]
        "invariants_ok": bool(sqlite_r["invariants_ok"])
        and (pg_r is None or bool(pg_r["invariants_ok"])),
    }
    emit(summary)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
    else:
        main()
