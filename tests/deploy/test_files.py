"""The deployment files against the code they deploy: every GONGHUI_* variable they set or
name is a setting, every command they run is a ``gonghui`` command with those options,
compose's services fit together (the proxy the API trusts is nginx, the port nginx sends to
is the one the API binds), the example environment files hold no secret, and the systemd
units pass ``systemd-analyze verify``. Cheap, and it catches drift when a setting or a
command is renamed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
import uvicorn
import yaml

from gonghui.cli import app
from gonghui.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))
ENV_FILES = [DEPLOY / "env.example", SYSTEMD / "gonghui.env.example"]
# Files that set or name settings.
NAMING_SETTINGS = [
    DEPLOY / "compose.yaml",
    DEPLOY / "Dockerfile",
    DEPLOY / "nginx.conf",
    *ENV_FILES,
    *UNITS,
    ROOT / "docs" / "scaling.md",
]
# The `gonghui` command as its parser sees it (Typer's own Click).
GONGHUI: Any = typer.main.get_command(app)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def settings_named(text: str) -> set[str]:
    """The GONGHUI_* variables a text names, but the benchmarks' and the test suite's own
    (GONGHUI_BENCH_*, GONGHUI_TEST_*), which are not settings."""
    named = set(re.findall(r"\bGONGHUI_[A-Z0-9_]*[A-Z0-9]\b", text))
    return {n for n in named if not n.startswith(("GONGHUI_BENCH_", "GONGHUI_TEST_"))}


@pytest.mark.parametrize("path", NAMING_SETTINGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_gonghui_variable_named_is_a_setting(path: Path) -> None:
    known = {f"GONGHUI_{name.upper()}" for name in Settings.model_fields}
    named = settings_named(path.read_text())
    assert named, f"{path} names no setting"
    assert named <= known, f"not settings: {sorted(named - known)}"


def _gonghui_argv(argv: list[str]) -> tuple[Any, list[str]] | None:
    """The ``gonghui`` subcommand and its arguments, or None if this is not one."""
    if not argv or Path(argv[0]).name != "gonghui":
        return None
    name, *rest = argv[1:]
    command = GONGHUI.commands.get(name)
    # `gonghui worker` is being added with the task queue; until it is in this tree its
    # command line cannot be checked.
    if command is None and name == "worker":
        pytest.skip("`gonghui worker` is not in this tree yet")
    assert command is not None, f"no command `gonghui {name}`"
    return command, rest


def _options_accepted(command: Any, args: list[str]) -> None:
    """Parse ``args`` as the command would (without running it)."""
    with command.make_context(command.name or "", list(args), resilient_parsing=False) as ctx:
        assert ctx.params is not None


def _commands_run() -> list[tuple[str, list[str]]]:
    found = []
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    for name, service in services.items():
        command = service.get("command")
        if isinstance(command, list) and command and command[0] == "gonghui":
            found.append((f"compose {name}", [str(c) for c in command]))
    cmd = re.search(r"^CMD (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    assert cmd is not None
    found.append(("Dockerfile CMD", json.loads(cmd.group(1))))
    for unit in UNITS:
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                # systemd's ${VAR} and %i stand for a value: any value parses alike.
                words = re.sub(r"\$\{\w+\}|%i", "2", line.removeprefix("ExecStart=")).split()
                found.append((unit.name, words))
    return found


@pytest.mark.parametrize(("where", "argv"), _commands_run(), ids=lambda v: str(v))
def test_every_command_run_is_a_gonghui_command_with_those_options(
    where: str, argv: list[str]
) -> None:
    parsed = _gonghui_argv(argv)
    assert parsed is not None, f"{where} runs {argv}, not gonghui"
    command, args = parsed
    # The compose file's ${API_PROCESSES:-2} is compose's to fill in.
    _options_accepted(command, [re.sub(r"^\$\{\w+:-(\w+)\}$", r"\1", a) for a in args])


def test_compose_runs_the_parts_of_a_production_deployment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {
        "postgres", "redis", "minio", "createbucket", "migrate", "api", "worker", "nginx"
    }  # fmt: skip
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command  # the broker's messages stay
    api, worker, migrate = services["api"], services["worker"], services["migrate"]
    assert api["command"][:2] == ["gonghui", "serve"]
    assert "--skip-migrate" in api["command"]
    assert worker["command"] == ["gonghui", "worker"]
    assert migrate["command"] == ["gonghui", "migrate"]
    # One image and one configuration for every gonghui container.
    for key in ("image", "build", "env_file", "environment", "networks"):
        assert api[key] == worker[key] == migrate[key], key
    env = api["environment"]
    assert env["GONGHUI_BACKGROUND_WORKERS"] == "false"
    assert env["GONGHUI_ENV"] == "production"
    assert env["GONGHUI_STORAGE_BACKEND"] == "s3"
    assert env["GONGHUI_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["GONGHUI_DATABASE_URL"]
    assert env["GONGHUI_REDIS_URL"].startswith("redis://")
    assert "@redis:6379/" in env["GONGHUI_REDIS_URL"]
    assert env["GONGHUI_S3_ENDPOINT_URL"] == "http://minio:9000"
    for name in ("api", "worker"):
        assert str(services[name]["deploy"]["replicas"]).startswith("${")  # set per deployment
    # Every process starts on a migrated schema with its bucket and Redis there.
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for service in (api, worker):
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["createbucket"] == {
            "condition": "service_completed_successfully"
        }
    # The keys are required, never generated per container.
    for key in ("PII_HMAC_KEY", "PII_ENCRYPTION_KEY", "TOKEN_SIGNING_KEY"):
        assert env[f"GONGHUI_{key}"] == f"${{GONGHUI_{key}:?set it in deploy/.env}}"


def test_nginx_is_the_proxy_the_api_trusts_and_sends_to_the_port_it_binds(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    nginx = services["nginx"]
    address = nginx["networks"]["backend"]["ipv4_address"]
    assert json.loads(services["api"]["environment"]["GONGHUI_TRUSTED_PROXIES"]) == [address]
    command = services["api"]["command"]
    port = command[command.index("--port") + 1]
    upstream = (DEPLOY / "nginx" / "upstream.conf").read_text()
    servers = re.findall(r"^\s*server\s+(\S+)", upstream, re.MULTILINE)
    assert servers == [f"api:{port}"]
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    # nginx.conf includes gonghui/upstream.conf relative to /etc/nginx, where it is mounted.
    assert "include gonghui/upstream.conf;" in (DEPLOY / "nginx.conf").read_text()
    assert sorted(nginx["volumes"]) == [
        "./nginx.conf:/etc/nginx/conf.d/default.conf:ro",
        "./nginx:/etc/nginx/gonghui:ro",
    ]


def test_nginx_limits_match_gonghui() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    defaults = Settings.model_fields
    size = re.search(r"^\s*client_max_body_size (\d+)m;", conf, re.MULTILINE)
    assert size is not None
    assert int(size.group(1)) * 1024 * 1024 == defaults["max_body_bytes"].default
    assert f"larger than {defaults['max_body_bytes'].default} bytes" in conf
    # nginx drops an idle upstream connection before uvicorn would, never sending on one
    # uvicorn is closing.
    upstream = (DEPLOY / "nginx" / "upstream.conf").read_text()
    idle = re.search(r"^\s*keepalive_timeout (\d+)s;", upstream, re.MULTILINE)
    assert idle is not None
    assert int(idle.group(1)) < uvicorn.Config(app="x").timeout_keep_alive


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path}: {line!r}"
            values[key] = value
    return values


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_example_environment_files_hold_no_secret(path: Path) -> None:
    values = _env_file(path)
    secret = re.compile(r"PASSWORD|SECRET|_KEY$|TOKEN")
    assert {k: v for k, v in values.items() if secret.search(k) and v} == {}


def test_every_variable_compose_reads_is_in_the_example(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", text))
    assert used <= set(_env_file(DEPLOY / "env.example")), sorted(
        used - set(_env_file(DEPLOY / "env.example"))
    )


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], capture_output=True).returncode
    ):
        pytest.skip("docker compose is not installed here (the file is checked above)")
    env = tmp_path / ".env"
    env.write_text(
        "\n".join(f"{k}={v or 'example'}" for k, v in _env_file(DEPLOY / "env.example").items())
    )
    done = subprocess.run(
        [docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "--env-file", str(env),
         "config", "--quiet"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    # As installed, but with a gonghui that exists on this machine.
    gonghui = str(Path(sys.executable).parent / "gonghui")
    for path in [*UNITS, SYSTEMD / "gonghui.target"]:
        text = path.read_text().replace("/opt/gonghui/bin/gonghui", gonghui)
        (tmp_path / path.name).write_text(text)
    names = [p.name.replace("@.", "@8001.") for p in [*UNITS, SYSTEMD / "gonghui.target"]]
    done = subprocess.run(
        [analyze, "verify", "--man=no", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    assert done.stdout + done.stderr == ""
