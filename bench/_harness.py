"""What every benchmark shares: a fresh ``gonghui serve`` on a free port, load from ``wrk``
in a separate process, wrk's figures parsed, peak memory of the server's processes, and
the one-line JSON result.

Figures are only comparable within one run on one machine; ratios to the same server's
trivial endpoint (``GET /api/v1/ping``) are what to compare across machines.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

GONGHUI = Path(sys.executable).parent / "gonghui"
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "10"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process on its own data directory (SQLite) or ``database_url``.

    ``background_workers`` > 0 runs the task queue as production does (README, "Background
    work"): the API processes with ``GONGHUI_BACKGROUND_WORKERS=false`` and that many
    ``gonghui worker`` processes beside them, started and stopped with the server."""

    def __init__(
        self,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        background_workers: int = 0,
    ) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="gonghui-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "GONGHUI_DATA_DIR": str(self.data_dir),
            "GONGHUI_PUBLIC_BASE_URL": self.url,
            "GONGHUI_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        if background_workers:
            self.env["GONGHUI_BACKGROUND_WORKERS"] = "false"
        self.workers = workers
        self.background_workers = background_workers
        self.process: subprocess.Popen[bytes] | None = None
        self.worker_processes: list[subprocess.Popen[bytes]] = []
        self._engine: Any = None

    @property
    def backend(self) -> str:
        return "postgresql" if self.env.get("GONGHUI_DATABASE_URL") else "sqlite"

    @property
    def database_url(self) -> str:
        return self.env.get("GONGHUI_DATABASE_URL") or f"sqlite:///{self.data_dir / 'gonghui.db'}"

    def scalar(self, sql: str, **params: Any) -> Any:
        """One value from the server's database, for a benchmark's own checks."""
        from sqlalchemy import create_engine, text

        if self._engine is None:
            self._engine = create_engine(self.database_url)
        with self._engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()

    def run(self, *args: str) -> str:
        """A ``gonghui`` CLI command against this server's database."""
        done = subprocess.run(
            [str(GONGHUI), *args], env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout

    def start(self) -> Server:
        self.run("migrate")
        self.process = subprocess.Popen(
            [str(GONGHUI), "serve", "--skip-migrate", "--port", str(self.port),
             "--workers", str(self.workers)],
            env=self.env,
            start_new_session=True,
        )  # fmt: skip
        self.worker_processes = [
            subprocess.Popen([str(GONGHUI), "worker"], env=self.env, start_new_session=True)
            for _ in range(self.background_workers)
        ]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    if self.runs_workers:
                        self.settle()
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    @property
    def runs_workers(self) -> bool:
        """Whether anything runs background work: its API processes or workers beside them."""
        return (
            bool(self.background_workers) or self.env.get("GONGHUI_BACKGROUND_WORKERS") != "false"
        )

    def settle(self, within_s: float = 600) -> None:
        """Wait until the workers have run the background work that is due (the seed's:
        20,000 members verified tell 20,000 members so), as it would have been long
        before the minute a benchmark stands for."""
        deadline = time.monotonic() + within_s
        started = time.monotonic()
        while (due := self.scalar(_DUE_TASKS)) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{due} background tasks still due after {within_s:.0f} s")
            time.sleep(0.5)
        took = time.monotonic() - started
        if took > 1:
            print(f"background work of the seed drained in {took:.1f} s", flush=True)

    def peak_rss_mb(self) -> float:
        """Peak resident size (VmHWM) summed over the server's processes (master, server
        processes, writer and any ``gonghui worker``; sandboxed function workers run in
        sessions of their own)."""
        return self._summed_mb("VmHWM")

    def rss_mb(self) -> float:
        """Resident size now (VmRSS), summed over the same processes as :meth:`peak_rss_mb`."""
        return self._summed_mb("VmRSS")

    def _summed_mb(self, field: str) -> float:
        assert self.process is not None
        groups = {self.process.pid, *(w.pid for w in self.worker_processes)}
        total = 0
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                text = status.read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            try:
                pgid = os.getpgid(int(status.parent.name))
            except OSError:
                continue
            if pgid in groups and field in fields:
                total += int(fields[field].split()[0])
        return round(total / 1024, 1)

    def stop(self) -> None:
        for process in [*self.worker_processes, self.process]:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.worker_processes, self.process]:
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


_DUE_TASKS = (
    "SELECT COUNT(*) FROM tasks_task WHERE status = 'queued' AND run_at <= CURRENT_TIMESTAMP"
)


@dataclass(frozen=True)
class Load:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    # Requests wrk completed (answered, whatever the status).
    requests: int = 0
    # CPU time spent during the run, by kind of process (:class:`Cpu`).
    cpu: Cpu | None = None

    def cpu_us(self) -> dict[str, float]:
        """CPU microseconds per completed request, by kind of process ({} if unknown)."""
        if self.cpu is None or not self.requests:
            return {}
        return {kind: round(s / self.requests * 1e6, 1) for kind, s in self.cpu.seconds.items()}


# What a run's CPU went to. ``server``: the processes of the venv's Python (the API
# processes, the hot writer, ``gonghui worker``; this script itself excluded); ``database``:
# PostgreSQL's and Redis's processes; ``load``: wrk; ``other``: the rest of the machine (other
# work on a shared box). A process that starts or ends during the run is not counted.
CPU_KINDS = ("server", "database", "load", "other")
_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
_VENV_BIN = os.path.abspath(Path(sys.executable).parent) + "/"


@dataclass(frozen=True)
class Cpu:
    """CPU seconds by kind of process over ``wall_s`` seconds of a run."""

    seconds: dict[str, float]
    wall_s: float

    @property
    def busy_cores(self) -> float:
        return sum(self.seconds.values()) / self.wall_s if self.wall_s else 0.0


def _process_cpu() -> dict[int, tuple[str, float]]:
    """Each process's kind and CPU seconds so far (threads included), wrk's aside."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                command = f.read().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if name == "wrk":
            continue  # counted from its rusage as this script's child
        if command.startswith(_VENV_BIN):
            kind = "server"
        elif name.startswith(("postgres", "redis-server")):
            kind = "database"
        else:
            kind = "other"
        found[int(entry.name)] = (kind, (int(fields[11]) + int(fields[12])) * _TICK_S)
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_between(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], load_s: float
) -> dict[str, float]:
    seconds = dict.fromkeys(CPU_KINDS, 0.0)
    for pid, (kind, used) in after.items():
        if pid in before and before[pid][0] == kind:
            seconds[kind] += used - before[pid][1]
    seconds["load"] = load_s
    return seconds


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


# Each request as the next member: a bearer token from the file named by BENCH_TOKENS (one a
# line), starting at a different place per thread; ``{n}`` in the body becomes the request's
# number (distinct entropy per draw). Method, path, headers and body are wrk's own.
MEMBER_TOKENS_LUA = r"""
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end
function init(args) counter = id * 1000003 end
function request()
  counter = counter + 1
  local headers = {}
  for key, value in pairs(wrk.headers) do headers[key] = value end
  headers["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1]
  local body = wrk.body
  if body ~= nil then body = string.gsub(body, "{n}", tostring(counter)) end
  return wrk.format(nil, nil, headers, body)
end
"""


def _lua(text: str) -> str:
    """``text`` as a Lua string literal: its UTF-8 bytes, printable ASCII as it is and the
    rest as decimal escapes (Lua 5.1 has no ``\\u``: a JSON-escaped string would reach wrk
    garbled)."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def wrk(
    name: str,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    lua: str = "",
    tokens: Path | None = None,
    connections: int = CONNECTIONS,
    duration_s: int = DURATION_S,
) -> Load:
    """Run wrk against ``url``; ``lua`` may define ``request()`` for varying requests.

    With ``tokens`` (a file of access tokens, one a line), each request is made by the next
    member in the file (:data:`MEMBER_TOKENS_LUA`)."""
    if tokens is not None:
        lua = MEMBER_TOKENS_LUA + lua
    script = [f"wrk.method = {_lua(method)}"]
    for key, value in (headers or {}).items():
        script.append(f"wrk.headers[{_lua(key)}] = {_lua(value)}")
    if body is not None:
        script.append(f"wrk.body = {_lua(body)}")
    script.append(lua)
    # Count non-2xx answers: wrk reports them in its summary.
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write("\n".join(script))
    processes, children, started = _process_cpu(), _children_cpu(), time.monotonic()
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            f.name,
            url,
        ],
        env={**os.environ, "BENCH_TOKENS": str(tokens or "")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall_s = time.monotonic() - started
    cpu = Cpu(_cpu_between(processes, _process_cpu(), _children_cpu() - children), wall_s)
    os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    done = re.search(r"(\d+) requests in", out)
    return Load(name, rps, p50, p99, errors, int(done.group(1)) if done else 0, cpu)


Workload = Callable[[int], Load]  # a wrk run of the given seconds


def measure(
    runs: dict[str, Workload], *, rounds: int, round_s: int, warm_up_s: int
) -> tuple[list[Load], dict[str, list[tuple[float, Load]]]]:
    """Warm every workload up, then ``rounds`` rounds in which every workload runs between
    two pings (``runs["ping"]``): the pings, and each workload's (ratio to the mean of its
    two pings, load) per round. The machine's spare CPU drifts while a benchmark runs; a
    ratio of two figures taken a minute apart would measure the drift as much as the
    server."""
    for run in runs.values():
        run(warm_up_s)
    pings = [runs["ping"](round_s)]
    ratios: dict[str, list[tuple[float, Load]]] = {name: [] for name in runs if name != "ping"}
    for _ in range(rounds):
        for name, done in ratios.items():
            load = runs[name](round_s)
            pings.append(runs["ping"](round_s))
            around = (pings[-2].requests_per_s + pings[-1].requests_per_s) / 2
            done.append((load.requests_per_s / around, load))
    print_cpu(pings, ratios)
    return pings, ratios


def cpu_per_request(
    pings: list[Load], ratios: dict[str, list[tuple[float, Load]]]
) -> dict[str, dict[str, float]]:
    """Per workload (the ping's median run, each other's median round): CPU microseconds
    per request by kind of process, their ``total`` and the ``busy_cores`` of the run.

    A ratio to the ping is about the ping's CPU per request over the workload's, times
    how busy each kept the cores: this says which processes a workload's requests cost."""
    chosen = {"ping": median_run([(p.requests_per_s, p) for p in pings])[1]}
    chosen |= {name: median_run(runs)[1] for name, runs in ratios.items() if runs}
    out = {}
    for name, load in chosen.items():
        per = load.cpu_us()
        if per and load.cpu is not None:
            out[name] = {
                **per,
                "total": round(sum(per.values()), 1),
                "busy_cores": round(load.cpu.busy_cores, 2),
            }
    return out


def print_cpu(pings: list[Load], ratios: dict[str, list[tuple[float, Load]]]) -> None:
    figures = cpu_per_request(pings, ratios)
    if not figures:
        return
    kinds = [*CPU_KINDS, "total"]
    print("CPU µs per request (median runs), by process:")
    print(f"{'workload':<12}" + "".join(f"{k:>10}" for k in kinds) + f"{'cores':>8}")
    for name, per in figures.items():
        print(
            f"{name:<12}"
            + "".join(f"{per.get(k, 0):>10.0f}" for k in kinds)
            + f"{per['busy_cores']:>8.2f}"
        )


def median_run(runs: list[tuple[float, Load]]) -> tuple[float, Load]:
    return sorted(runs, key=lambda r: r[0])[len(runs) // 2]


@dataclass(frozen=True)
class Burst:
    """Members' requests of one kind measured against the ping by :func:`member_burst`."""

    name: str  # what a request does, plural: "draws"
    round_s: int
    pings: list[Load]
    runs: list[tuple[float, Load]]  # per round: (ratio to the pings around it, load)

    @property
    def ratio(self) -> float:
        return median_run(self.runs)[0]

    @property
    def load(self) -> Load:
        """The median round's run."""
        return median_run(self.runs)[1]

    @property
    def ping(self) -> Load:
        return median_run([(p.requests_per_s, p) for p in self.pings])[1]

    @property
    def errors(self) -> int:
        """Non-2xx answers and socket errors over every round."""
        return sum(load.errors for _, load in self.runs)

    def report(self) -> None:
        print(
            f"{len(self.runs)} rounds, {self.round_s}s a run; "
            f"ratio = {self.name}/s over the mean of the pings around it"
        )
        print("pings req/s: " + ", ".join(f"{p.requests_per_s:.0f}" for p in self.pings))
        print(
            f"{self.name} req/s: "
            + ", ".join(f"{load.requests_per_s:.0f} ({r:.3f})" for r, load in self.runs)
        )
        print(f"{'workload':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
        for row in (self.ping, self.load):
            print(
                f"{row.name:<22}{row.requests_per_s:>10.0f}{row.p50_ms:>10.2f}"
                f"{row.p99_ms:>10.2f}{row.errors:>8.0f}"
            )

    def figures(self) -> dict[str, Any]:
        """The result's fields for the median round."""
        return {
            "ops_per_s": round(self.load.requests_per_s, 1),
            "p50_ms": round(self.load.p50_ms, 2),
            "p99_ms": round(self.load.p99_ms, 2),
            "ratio_to_trivial": round(self.ratio, 3),
            "trivial_ops_per_s": round(self.ping.requests_per_s, 1),
            "cpu_us_per_request": cpu_per_request(self.pings, {self.name: self.runs}),
        }


def member_burst(
    server: Server,
    tokens: Path,
    *,
    name: str,
    label: str,
    path: str,
    body: str | None = None,
    rounds: int,
    round_s: int,
    warm_up_s: int = 2,
) -> Burst:
    """``POST path`` (a JSON ``body``, if any, with ``{n}`` numbered) against the same
    members' ``GET /api/v1/ping``, each request by the next member of ``tokens``, in
    :func:`measure`'s rounds."""
    headers = None if body is None else {"Content-Type": "application/json"}

    def ping(seconds: int) -> Load:
        url = server.url + "/api/v1/ping"
        return wrk("ping (trivial)", url, tokens=tokens, duration_s=seconds)

    def post(seconds: int) -> Load:
        return wrk(
            label,
            server.url + path,
            method="POST",
            headers=headers,
            body=body,
            tokens=tokens,
            duration_s=seconds,
        )

    pings, ratios = measure(
        {"ping": ping, name: post}, rounds=rounds, round_s=round_s, warm_up_s=warm_up_s
    )
    return Burst(name, round_s, pings, ratios[name])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def staff_token(
    server: Server, username: str = "bench-admin", password: str = "bench-pass-1"
) -> str:
    """A platform admin's access token on ``server``."""
    env = {**server.env, "GONGHUI_ADMIN_PASSWORD": password}
    subprocess.run(
        [str(GONGHUI), "user", "create-admin", username],
        env=env, capture_output=True, check=False,
    )  # fmt: skip
    resp = httpx.post(
        f"{server.url}/api/v1/auth/password", json={"username": username, "password": password}
    )
    resp.raise_for_status()
    token: str = resp.json()["access_token"]
    return token


def reset_postgres(url: str) -> None:
    """Drop and recreate the ``public`` schema of the PostgreSQL database at ``url``."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def print_table(loads: list[Load], trivial: Load) -> None:
    print(f"{'workload':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ratio':>8}{'errors':>8}")
    for load in loads:
        ratio = load.requests_per_s / trivial.requests_per_s
        print(
            f"{load.name:<28}{load.requests_per_s:>10.1f}{load.p50_ms:>10.2f}"
            f"{load.p99_ms:>10.2f}{ratio:>8.2f}{load.errors:>8}"
        )


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident size of this process, or with ``resource.RUSAGE_CHILDREN`` of the
    largest of its waited-for children (worker processes), in MB."""
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def emit(result: dict[str, Any]) -> None:
    """The benchmark's last line: one JSON object."""
    print(json.dumps(result, ensure_ascii=False))
