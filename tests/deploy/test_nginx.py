"""deploy/nginx.conf in front of two real ``gonghui serve`` processes: Debian's nginx runs
the file as shipped, with only its listen address, log file and upstream servers rendered
for this machine (the upstream list lives in an included file for that reason).

The client connects from 127.0.0.2 and nginx reaches the API processes from 127.0.0.1
(their GONGHUI_TRUSTED_PROXIES), so the address gonghui records tells the client's from
the proxy's. The servers are configured as behind a proxy in production (the start-up
check refuses development conveniences) and share one SQLite database of their own, so
they live for the whole module instead of being started for every test.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gonghui.settings import get_settings
from tests.faults import eventually
from tests.fixtures import PASSWORD
from tests.serverproc import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GONGHUI = Path(sys.executable).parent / "gonghui"


def _find_nginx() -> str | None:
    # /usr/sbin is not on every user's PATH.
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


NGINX = _find_nginx()
pytestmark = pytest.mark.skipif(
    NGINX is None,
    reason="nginx not found: scripts/deploy-deps.sh installs Debian's (make test runs it)",
)

CLIENT_ADDRESS = "127.0.0.2"
# A Prometheus scrapes each API port with the token: with nginx on the same machine,
# loopback is a trusted proxy's address, whose requests gonghui never counts as local.
METRICS_TOKEN = "deploy-test-metrics-token"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}
# Everything the start-up check asks of a server behind a proxy (deployment.py).
ADMIN = "ops"  # a platform admin
BEHIND_A_PROXY = {
    "GONGHUI_ENV": "production",
    "GONGHUI_TRUSTED_PROXIES": '["127.0.0.1"]',
    "GONGHUI_METRICS_TOKEN": METRICS_TOKEN,
    "GONGHUI_SIMULATORS_ENABLED": "false",
    "GONGHUI_SMS_PROVIDER": "aliyun",
    "GONGHUI_WECHAT_BASE_URL": "https://api.weixin.qq.com",
    "GONGHUI_WECHAT_MP_APPID": "wx0123456789abcdef",
    "GONGHUI_WECHAT_OA_APPID": "wx1123456789abcdef",
    "GONGHUI_WECHAT_APP_APPID": "wx2123456789abcdef",
}


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx.conf should hold {old!r} once"
    return text.replace(old, new)


def render(directory: Path, *, port: int, upstreams: list[int]) -> Path:
    """deploy/nginx.conf and deploy/nginx/upstream.conf for this machine, under a main
    configuration like Debian's (which includes conf.d/*.conf in its http block)."""
    site = (DEPLOY / "nginx.conf").read_text()
    site = _replace_once(site, "listen 80;", f"listen 127.0.0.1:{port};")
    site = _replace_once(site, "/var/log/nginx/access.log", str(directory / "access.log"))
    upstream = (DEPLOY / "nginx" / "upstream.conf").read_text()
    servers = re.compile(r"^[ \t]*server[ \t][^\n]*;[ \t]*$", re.MULTILINE)
    assert len(servers.findall(upstream)) == 1, "one server line to stand for the API processes"
    lines = "\n".join(f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;" for p in upstreams)
    upstream = servers.sub(lines, upstream)
    (directory / "gonghui").mkdir()
    (directory / "gonghui" / "upstream.conf").write_text(upstream)
    (directory / "gonghui.conf").write_text(site)
    temp = directory / "temp"
    temp.mkdir()
    user = "user root;" if os.geteuid() == 0 else ""  # workers as root reach pytest's tmp
    main = f"""
{user}
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include gonghui.conf;
}}
"""
    path = directory / "nginx.conf"
    path.write_text(main)
    return path


@dataclass
class Deployment:
    url: str
    servers: list[ServerProcess]
    access_log: Path

    def client(self) -> httpx.Client:
        """A client connecting from another address than nginx's own."""
        transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS)
        return httpx.Client(base_url=self.url, transport=transport, timeout=30)


def _new_keys() -> dict[str, str]:
    """Keys for this deployment, given to both servers as a deployment gives them to every
    host (so a token one issues is good on the other)."""
    return {
        f"GONGHUI_{name}_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        for name in ("PII_HMAC", "PII_ENCRYPTION", "TOKEN_SIGNING")
    }


def _gonghui(server: ServerProcess, *args: str) -> None:
    """A ``gonghui`` command with the servers' configuration, as an operator runs one."""
    subprocess.run(
        [str(GONGHUI), *args],
        cwd=ROOT,
        env=server.env,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Two API servers (their own SQLite database, migrated once, with a platform admin
    made by the CLI) and nginx, for the whole module: starting them is most of its time.
    The database is the servers' own, not the suite's that every test resets."""
    root = tmp_path_factory.mktemp("behind-nginx")
    env = {**BEHIND_A_PROXY, **_new_keys()}
    database_url = f"sqlite:///{root / 'gonghui.db'}"
    servers = []
    for n in range(2):
        data_dir = root / f"api-{n}"  # each its own hot writer socket
        data_dir.mkdir()
        servers.append(ServerProcess(data_dir=data_dir, database_url=database_url, env=env))
    _gonghui(servers[0], "migrate")
    _gonghui(servers[0], "user", "create-admin", ADMIN, "--password", PASSWORD)
    conf_dir = root / "nginx"
    conf_dir.mkdir()
    port = free_port()
    conf = render(conf_dir, port=port, upstreams=[s.port for s in servers])
    assert NGINX is not None
    nginx: subprocess.Popen[bytes] | None = None
    try:
        with ThreadPoolExecutor(len(servers)) as starting:
            list(starting.map(ServerProcess.start, servers))
        with (conf_dir / "stderr.log").open("wb") as err:
            nginx = subprocess.Popen(
                [NGINX, "-c", str(conf), "-p", str(conf_dir), "-e", str(conf_dir / "error.log")],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        _wait_for_port(port, nginx, conf_dir)
        yield Deployment(f"http://127.0.0.1:{port}", servers, conf_dir / "access.log")
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        for server in servers:
            server.stop()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], conf_dir: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = [(conf_dir / n).read_text() for n in ("stderr.log", "error.log")]
            raise RuntimeError(f"nginx exited: {logs}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # another process's start-up, bounded above
    raise RuntimeError("nginx did not listen within 20 s")


def sign_in(client: httpx.Client) -> dict[str, str]:
    resp = client.post("/api/v1/auth/password", json={"username": ADMIN, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def requests_counted(server: ServerProcess, route: str) -> float:
    """How many requests of ``route`` this server's processes answered, from its own
    /metrics."""
    resp = httpx.get(f"{server.url}/metrics", headers=SCRAPER, timeout=10)
    assert resp.status_code == 200
    pattern = re.compile(
        r'^gonghui_http_request_duration_seconds_count\{[^}]*route="'
        + re.escape(route)
        + r'"[^}]*\} ([0-9.e+]+)$',
        re.MULTILINE,
    )
    return sum(float(v) for v in pattern.findall(resp.text))


def test_nginx_is_ready_and_spreads_signed_in_calls_over_both_api_processes(
    deployment: Deployment,
) -> None:
    before = [requests_counted(s, "/api/v1/auth/me") for s in deployment.servers]
    with deployment.client() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        auth = sign_in(client)  # a token one process issued, good on the other
        answers = [client.get("/api/v1/auth/me", headers=auth) for _ in range(12)]
    assert [a.status_code for a in answers] == [200] * 12
    assert {(a.json()["sign_in"], a.json()["is_platform_admin"]) for a in answers} == {
        ("staff", True)
    }
    after = [requests_counted(s, "/api/v1/auth/me") for s in deployment.servers]
    per_server = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(per_server) == 12
    assert min(per_server) >= 1, per_server


def test_gonghui_records_the_address_nginx_saw_not_one_the_client_wrote(
    deployment: Deployment,
) -> None:
    forged = {"X-Forwarded-For": "203.0.113.9"}
    with deployment.client() as client:
        auth = sign_in(client)
        created = client.post(
            "/api/v1/orgs",
            json={"code": "XFF", "name": "代理测试工会", "level": "province"},
            headers={**auth, **forged},
        )
        assert created.status_code == 201, created.text
        audit = client.get(
            "/api/v1/audit",
            params={"action": "orgs.create", "subject_id": str(created.json()["id"])},
            headers=auth,
        )
    assert audit.status_code == 200
    assert [e["ip"] for e in audit.json()["items"]] == [CLIENT_ADDRESS]


def test_a_request_id_is_kept_through_nginx_and_logged_by_it(deployment: Deployment) -> None:
    with deployment.client() as client:
        given = client.get("/healthz", headers={"X-Request-ID": "deploy-check-0001"})
        unnamed = client.get("/api/v1/public/activities")
        malformed = client.get("/api/v1/public/activities", headers={"X-Request-ID": "bad id!"})
    assert given.headers["x-request-id"] == "deploy-check-0001"

    # nginx writes its access line after the answer has gone, so the line may come a
    # moment after the client has the answer.
    def logged_statuses(request_id: str) -> list[int]:
        def statuses() -> list[int]:
            lines = deployment.access_log.read_text().splitlines()
            return [e["status"] for e in map(json.loads, lines) if e["request_id"] == request_id]

        eventually(f"nginx logs {request_id}", lambda: bool(statuses()), within_s=10)
        return statuses()

    # nginx names a request that came without a usable id, and gonghui keeps that name.
    for resp in (unnamed, malformed):
        assert resp.status_code == 200
        request_id = resp.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        assert logged_statuses(request_id) == [200]
    assert unnamed.headers["x-request-id"] != malformed.headers["x-request-id"]


def test_a_body_over_the_limit_gets_a_clean_413_from_nginx(deployment: Deployment) -> None:
    limit = get_settings().max_body_bytes
    with deployment.client() as client:
        too_large = client.post(
            "/api/v1/baas/files",
            content=b"x" * (limit + 1),
            headers={"Content-Type": "application/octet-stream", "X-Request-ID": "big-body-001"},
        )
        # Under nginx's cap but over the JSON cap of a route: gonghui's own 413, passed on.
        json_cap = get_settings().max_json_body_bytes
        too_much_json = client.post(
            "/api/v1/auth/password",
            content=b'{"username": "' + b"a" * json_cap + b'", "password": "x"}',
            headers={"Content-Type": "application/json"},
        )
    assert too_large.status_code == 413
    assert too_large.headers["content-type"] == "application/json"
    assert too_large.headers["x-request-id"] == "big-body-001"
    assert too_large.json() == {
        "error": {
            "code": "request.too_large",
            "message": f"the request body is larger than {limit} bytes",
            "details": None,
        }
    }
    assert too_much_json.status_code == 413
    assert too_much_json.json()["error"]["code"] == "request.too_large"
    assert str(json_cap) in too_much_json.json()["error"]["message"]


def test_metrics_are_not_served_through_nginx_but_on_the_api_port(
    deployment: Deployment,
) -> None:
    with deployment.client() as client:
        refused = [
            client.get("/metrics", headers=SCRAPER),
            client.get("/metrics?format=text", headers=SCRAPER),
            client.get("/%6Detrics", headers=SCRAPER),
            client.get("/metrics"),
        ]
    for resp in refused:
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "request.not_found"
        assert "gonghui_http_request_duration_seconds" not in resp.text
    scraped = httpx.get(f"{deployment.servers[0].url}/metrics", headers=SCRAPER, timeout=10)
    assert scraped.status_code == 200
    assert "gonghui_http_request_duration_seconds" in scraped.text


def test_pages_link_their_static_files_through_nginx_cached_and_compressed(
    deployment: Deployment,
) -> None:
    with deployment.client() as client:
        page = client.get("/console/login")
        assert page.status_code == 200
        links = re.findall(r'href="([^"]+/static/[^"]+\.css)"', page.text)
        assert links == [f"{deployment.url}/static/app.css"]
        css = client.get(links[0], headers={"Accept-Encoding": "gzip"})
    assert css.status_code == 200
    assert css.headers["content-encoding"] == "gzip"
    assert css.headers["cache-control"] == "max-age=3600"
    assert (
        css.text
        == (Path(__file__).resolve().parents[2] / "src/gonghui/web/static/app.css").read_text()
    )


# Last in the module: the tests after it would see one API process (nginx passes over the
# dead one, so they would still pass, except the one counting requests on both).
def test_a_killed_api_process_is_passed_over_by_nginx(deployment: Deployment) -> None:
    with deployment.client() as client:
        auth = sign_in(client)
        deployment.servers[0].kill()
        answers = [client.get("/api/v1/auth/me", headers=auth) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
