"""The ``gonghui`` command. Commands call the same services as the API."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gonghui.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, help="gonghui: member services for trade unions")
user_app = typer.Typer(no_args_is_help=True, help="Manage user accounts.")
app.add_typer(user_app, name="user")
roster_app = typer.Typer(no_args_is_help=True, help="Union rosters.")
app.add_typer(roster_app, name="roster")
console = Console()


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    from gonghui.migrations import upgrade

    upgrade()
    console.print("[green]database is up to date[/green]")


@app.command()
def backup(
    out: Annotated[Path, typer.Argument(help="new directory (or a file ending in .tar) to write")],
) -> None:
    """Back up the database and every stored file into one archive (keys excepted)."""
    from gonghui import backup as backups

    try:
        result = backups.backup(out, say=lambda m: typer.echo(m, err=True))
    except backups.BackupError as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"backup written to {result.path}: {result.db_kind} database at revision "
        f"{result.alembic_revision}, {result.file_count} files ({result.file_bytes} bytes)"
    )
    if result.vanished:
        typer.echo(
            f"{len(result.vanished)} files were deleted while the backup ran and are not in it"
        )
    typer.echo(f"REMINDER: {backups.KEYS_REMINDER}")


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="a backup directory or .tar")],
    force: Annotated[
        bool, typer.Option(help="replace a database and file store that hold data")
    ] = False,
) -> None:
    """Restore a backup into the configured database and file store (servers stopped).
    Checks every checksum first; refuses a target that holds data unless --force."""
    from gonghui import backup as backups

    try:
        result = backups.restore(archive, force=force, say=lambda m: typer.echo(m, err=True))
    except backups.BackupError as exc:
        typer.echo(f"restore refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"restored a {result.db_kind} database at revision {result.alembic_revision} and "
        f"{result.file_count} files ({result.file_bytes} bytes)"
        + (f"; removed {result.removed} files not in the backup" if result.removed else "")
    )
    typer.echo("`gonghui migrate` (or `gonghui serve`) brings the schema up to this version.")
    if result.keys == "match":
        typer.echo("keys: the keys here are the ones the backup was taken with")
    elif result.keys == "differ":
        typer.echo(
            "WARNING: the keys here are NOT the ones the backup was taken with: personal data "
            "will be unreadable. Put the original keys in place before starting gonghui."
        )
    elif result.keys == "missing":
        typer.echo(
            "WARNING: no keys here (data_dir/secrets/keys.json or GONGHUI_*_KEY settings): "
            "put the original keys in place before starting gonghui, or it generates new ones "
            "and personal data stays unreadable."
        )
    typer.echo(f"REMINDER: {backups.KEYS_REMINDER}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[int, typer.Option(help="server processes")] = 1,
    skip_migrate: Annotated[bool, typer.Option(help="do not migrate first")] = False,
) -> None:
    """Migrate, then serve the API (and the console and H5 pages)."""
    # The options stand for GONGHUI_HOST and GONGHUI_PORT: the server processes check the
    # address they are bound to as they load the app, and a server without a public
    # address calls the bound one its own (links, callbacks, the simulators' address).
    if host is not None:
        os.environ["GONGHUI_HOST"] = host
    if port is not None:
        os.environ["GONGHUI_PORT"] = str(port)
    get_settings.cache_clear()
    settings = get_settings()
    _refuse_unsafe(settings)
    metrics_dir = _metrics_dir(settings.data_dir)
    try:
        _serve(workers=workers, skip_migrate=skip_migrate)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)  # the run is over


def _refuse_unsafe(settings: Settings) -> None:
    """Exit (2) before anything is written if the deployment check refuses ``settings``:
    a refused start leaves nothing behind."""
    from gonghui.deployment import UnsafeDeployment, check_deployment

    try:
        check_deployment(settings)
    except UnsafeDeployment as exc:
        typer.echo(str(exc), err=True)  # not Rich: it would wrap the lines
        raise typer.Exit(2) from exc


def _metrics_dir(data_dir: Path) -> Path:
    """A fresh directory for this run's metrics, ``data_dir/run/metrics-<pid>``, set as
    ``PROMETHEUS_MULTIPROC_DIR`` for this process and those it starts: every process of
    the run (server processes, the writer) keeps its metrics there, and ``/metrics`` sums
    them. Set before anything imports prometheus-client, which picks its mode then.
    Directories of earlier runs whose process is gone (killed) are removed."""
    parent = data_dir / "run"
    parent.mkdir(parents=True, exist_ok=True)
    for entry in parent.glob("metrics-*"):
        pid = entry.name.removeprefix("metrics-")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
    directory = parent / f"metrics-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory.resolve())
    return directory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _serve(*, workers: int, skip_migrate: bool) -> None:
    import uvicorn

    from gonghui import hotwrite
    from gonghui.observability import configure_logging

    settings = get_settings()
    if not skip_migrate:
        from gonghui.migrations import upgrade

        upgrade()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    # One writer process takes every server process's hot writes (hotwrite/).
    os.environ["GONGHUI_HOT_WRITER_SOCKET"] = hotwrite.start_writer_process().address
    get_settings.cache_clear()
    uvicorn.run(
        "gonghui.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )


@app.command()
def worker(
    threads: Annotated[int | None, typer.Option(help="threads running tasks")] = None,
) -> None:
    """Run background work until stopped (SIGTERM or Ctrl-C): deliveries, roster imports,
    cron ticks and housekeeping from the task queue. Run any number, on any machine that
    reaches the database (and Redis, when configured)."""
    import signal
    import threading

    from gonghui import background, heap, invalidation
    from gonghui.observability import configure_logging
    from gonghui.tasks import runtime

    settings = get_settings()
    # A worker acts for the deployment (it sends the SMS, WeChat messages and coupons, and
    # builds the links they carry): it is held to the server's start-up check.
    _refuse_unsafe(settings)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    invalidation.start_transport()
    background.load()
    heap.freeze_startup_objects()
    runtime.start(threads=threads)
    console.print(f"worker {os.getpid()} running ({threads or settings.worker_threads} threads)")
    stop.wait()
    background.stop()


@app.command()
def openapi(
    out: Annotated[Path, typer.Option(help="where to write the spec")] = Path("openapi.json"),
) -> None:
    """Write the OpenAPI document."""
    from gonghui.app import create_app

    out.write_text(json.dumps(create_app().openapi(), ensure_ascii=False, indent=2))
    console.print(f"wrote {out}")


@app.command()
def demo(
    if_empty: Annotated[bool, typer.Option(help="do nothing when data exists")] = False,
) -> None:
    """Seed a demo province federation with staff accounts (passwords are printed)."""
    from rich.table import Table

    from gonghui import demo as demo_data
    from gonghui.db import unit_of_work
    from gonghui.migrations import upgrade

    upgrade()
    with unit_of_work() as session:
        if demo_data.is_seeded(session):
            if if_empty:
                console.print("demo data already present; skipping")
                return
            console.print("[red]the database already has data[/red]")
            raise typer.Exit(1)
        result = demo_data.seed_orgs_and_staff(session)
    table = Table(title="demo staff accounts")
    for column in ("username", "password", "role"):
        table.add_column(column)
    for row in result.accounts:
        table.add_row(*row)
    console.print(f"seeded {len(result.org_codes)} orgs")
    console.print(table)
    job = demo_data.seed_roster()
    console.print(f"seeded {job.rows_ok} roster entries (import job {job.id})")
    with unit_of_work() as session:
        living = demo_data.seed_living_platform(session)
    with unit_of_work() as session:
        voted, votes = demo_data.seed_published_vote(session)
    with unit_of_work() as session:
        money = demo_data.seed_money_side(session)
    console.print(
        "seeded activities in 广州市总工会: "
        + ", ".join(f"{title} ({kind})" for title, kind in living.activities)
    )
    console.print(
        f"seeded BaaS app {living.app}: table suggestions, function award-points and its trigger"
    )
    console.print(f"published notice: {living.news}")
    console.print(f"published result: {voted} ({votes} votes, frozen)")
    console.print(
        f"mall sale {money.sale} (20% union subsidy) with {', '.join(money.products)}; "
        f"voucher grab {money.grab}; merchant {money.merchant}"
    )
    username, password, _role = money.cashier
    console.print(f"cashier account: {username} / {password} (signs in at /cashier)")
    name, phone, id_number = living.member
    console.print(
        f"demo member: {name}, phone {phone} (sign in on /h5/ with the code the page shows), "
        f"ID number {id_number}"
    )
    result.accounts.append(money.cashier)
    saved = demo_data.write_accounts(result, living)
    console.print(f"accounts written to {saved} (readable by this user only)")


@user_app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Argument(help="login name")],
    password: Annotated[
        str | None, typer.Option(help="password; read from GONGHUI_ADMIN_PASSWORD or prompted")
    ] = None,
) -> None:
    """Create a platform administrator."""
    from gonghui.accounts.service import create_staff_user
    from gonghui.db import unit_of_work
    from gonghui.errors import DomainError

    secret = password or os.environ.get("GONGHUI_ADMIN_PASSWORD")
    if not secret:
        secret = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with unit_of_work() as session:
            user = create_staff_user(
                session, username=username, password=secret, is_platform_admin=True
            )
    except DomainError as exc:
        console.print(f"[red]{exc.code}[/red]: {exc.message}")
        raise typer.Exit(1) from exc
    console.print(f"platform admin [bold]{username}[/bold] created (user id {user.id})")


@roster_app.command("import")
def roster_import(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8 or GBK) or XLSX roster file")],
    org: Annotated[str, typer.Option("--org", help="code of the org the roster belongs to")],
    report: Annotated[
        Path | None, typer.Option(help="also write the error report CSV here")
    ] = None,
) -> None:
    """Import a roster file: rows for the org or its sub-orgs (column 工会编码/org_code)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from gonghui.db import unit_of_work
    from gonghui.errors import DomainError
    from gonghui.members import roster_import as importer
    from gonghui.migrations import upgrade
    from gonghui.orgs.service import org_by_code
    from gonghui.storage import get_store
    from gonghui.tenancy import SYSTEM, Permission

    if not file.is_file():
        console.print(f"[red]no such file: {file}[/red]")
        raise typer.Exit(2)
    upgrade()
    try:
        with unit_of_work() as session:
            target = org_by_code(
                session, actor=SYSTEM, code=org, permission=Permission.MEMBERS_MANAGE
            )
            job_id = importer.create_job(
                session,
                actor=SYSTEM,
                org_id=target.id,
                filename=file.name,
                stored_path=str(file),
                bytes_total=file.stat().st_size,
            ).id
    except DomainError as exc:
        console.print(f"[red]{exc.code}[/red]: {exc.message}")
        raise typer.Exit(1) from exc
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]} rows, {task.fields[failed]} bad"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar, file.open("rb") as source:
        task = bar.add_task(file.name, total=file.stat().st_size, rows=0, failed=0)

        def show(p: importer.ImportProgress) -> None:
            bar.update(task, completed=p.bytes_done, rows=p.rows_done, failed=p.rows_failed)

        job = importer.run_import(job_id=job_id, actor=SYSTEM, source=source, progress=show)
    console.print(
        f"import {job.id} {job.status}: {job.rows_ok} imported "
        f"({job.rows_created} new, {job.rows_updated} updated), {job.rows_failed} rejected"
    )
    if job.error:
        console.print(f"[red]{job.error}[/red]")
    if job.error_report_path and (job.rows_failed or job.error):
        target_path = report or Path(f"roster-import-{job.id}-errors.csv")
        with target_path.open("wb") as out:
            for chunk in get_store().iter_bytes(job.error_report_path):
                out.write(chunk)
        console.print(f"error report: {target_path}")
    if job.error:
        raise typer.Exit(1)


baas_app = typer.Typer(no_args_is_help=True, help="Back-end-as-a-service app data.")
app.add_typer(baas_app, name="baas")


@baas_app.command("export-table")
def baas_export_table(
    app_id: Annotated[int, typer.Argument(help="app id")],
    table: Annotated[str, typer.Argument(help="table name")],
    out: Annotated[Path, typer.Option(help="file to write")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
) -> None:
    """Write every row of a table to a CSV or JSON file, with a progress bar."""
    from rich.progress import Progress

    from gonghui.baas import dataio
    from gonghui.db import unit_of_work
    from gonghui.tenancy import SYSTEM

    # A write unit of work: the export is written to the audit log.
    with Progress(console=console) as bar, unit_of_work() as session:
        task = bar.add_task(f"exporting {table}", total=None)
        chunks = dataio.export_rows(
            session,
            actor=SYSTEM,
            app_id=app_id,
            table=table,
            fmt=dataio.DataFormat(fmt),
            progress=lambda n: bar.update(task, completed=n),
        )
        with out.open("w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
    console.print(f"wrote {out}")


@baas_app.command("import-table")
def baas_import_table(
    app_id: Annotated[int, typer.Argument(help="app id")],
    table: Annotated[str, typer.Argument(help="table name")],
    source: Annotated[Path, typer.Argument(help="CSV (with a header row) or JSON array")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
) -> None:
    """Insert every row of a file into a table (all or none), with a progress bar."""
    from rich.progress import Progress

    from gonghui.baas import dataio
    from gonghui.db import unit_of_work
    from gonghui.errors import DomainError
    from gonghui.tenancy import SYSTEM

    try:
        with Progress(console=console) as bar, unit_of_work() as session:
            task = bar.add_task(f"importing into {table}", total=None)
            count = dataio.import_rows(
                session,
                actor=SYSTEM,
                app_id=app_id,
                table=table,
                fmt=dataio.DataFormat(fmt),
                data=source.read_text(encoding="utf-8-sig"),
                progress=lambda n: bar.update(task, completed=n),
            )
    except DomainError as exc:
        console.print(f"[red]{exc.code}[/red]: {exc.message} {exc.details or ''}")
        raise typer.Exit(1) from exc
    console.print(f"imported {count} rows into {table}")


def main() -> None:
    sys.exit(app())


lottery_app = typer.Typer(no_args_is_help=True, help="Lottery tools.")
app.add_typer(lottery_app, name="lottery")


@lottery_app.command("verify")
def lottery_verify(
    file: Annotated[Path, typer.Argument(help="a published draw log (JSON from .../proof)")],
) -> None:
    """Recompute every draw of a published lottery log; exit 1 on any mismatch."""
    from gonghui.activities.lottery.fairness import verify

    log = json.loads(file.read_text())
    problems = verify(log)
    for problem in problems:
        console.print(f"[red]mismatch[/red] {problem}")
    if problems:
        console.print(f"[red]{len(problems)} mismatches[/red] in {len(log.get('draws', []))} draws")
        raise typer.Exit(1)
    console.print(f"[green]ok[/green]: {len(log['draws'])} draws verified")


oauth_app = typer.Typer(no_args_is_help=True, help="The OAuth 2.0 / OpenID Connect provider.")
app.add_typer(oauth_app, name="oauth")


@oauth_app.command("rotate-key")
def oauth_rotate_key() -> None:
    """Sign id_tokens with a new key; the old ones stay published until their tokens expire."""
    from gonghui.db import unit_of_work
    from gonghui.openplatform import keys

    with unit_of_work() as session:
        kid = keys.rotate(session)
    console.print(f"[green]signing with key[/green] {kid}")


analytics_app = typer.Typer(no_args_is_help=True, help="Org-wide analytics.")
app.add_typer(analytics_app, name="analytics")


@analytics_app.command("aggregate")
def analytics_aggregate(
    full: Annotated[bool, typer.Option("--full", help="Recompute every month")] = False,
) -> None:
    """Run the analytics aggregation job now, in this process: the current month (and the
    last, while its last day settles), or everything with --full."""
    from gonghui.analytics import aggregate

    figures = aggregate.recompute(full=full)
    console.print(
        f"recomputed {figures.months[0]}..{figures.months[-1]}: {len(figures.org_months)} "
        f"org-month rows, {len(figures.benefits)} benefit rows, "
        f"{len(figures.activities)} activities"
    )


benefits_app = typer.Typer(no_args_is_help=True, help="Benefits housekeeping.")
app.add_typer(benefits_app, name="benefits")


@benefits_app.command("sweep")
def benefits_sweep() -> None:
    """Expire vouchers past their validity and forfeit prizes with no address by the deadline
    (each a ledger row); safe to run as often as you like, e.g. from cron."""
    from gonghui.housekeeping import sweep_benefits

    done = sweep_benefits()
    console.print(f"expired {done['vouchers']} vouchers, forfeited {done['prizes']} prizes")
