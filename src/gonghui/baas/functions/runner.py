"""The program that runs inside a sandbox: it executes one app's function code.

Standard library only: it runs under the system Python inside bubblewrap, with no view of
the server's packages, files or environment. It talks to the server over its stdin and
stdout, one JSON object per line:

server -> runner  {"type": "invoke", "source", "event", "context", "cpu_s"}
runner -> server  {"type": "sdk", "op", "args"}            (a platform call by the code)
server -> runner  {"type": "sdk_result", "ok", "value" | "error"}
runner -> server  {"type": "result", "ok", "value" | "error", "logs", "peak_rss_kb"}

The function's own ``print`` goes to the invocation's log, never to the channel: the
channel is a private duplicate of the original stdout.
"""

from __future__ import annotations

import base64
import io
import json
import os
import resource
import sys
import traceback
from typing import Any

_LOG_LIMIT = 64 * 1024


class PlatformError(Exception):
    """A platform call the server refused (permission, validation, not found)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class _Channel:
    def __init__(self) -> None:
        self._owner = os.getpid()
        self._in = os.fdopen(os.dup(0), "r", encoding="utf-8")
        self._out = os.fdopen(os.dup(1), "w", encoding="utf-8")
        # The code sees neither end: stdin is empty, stdout goes to the log buffer.
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)

    def send(self, message: dict[str, Any]) -> None:
        if os.getpid() != self._owner:
            # A process the code forked never speaks on the channel: it just ends.
            os._exit(0)
        self._out.write(json.dumps(message, ensure_ascii=False, default=str) + "\n")
        self._out.flush()

    def receive(self) -> dict[str, Any] | None:
        line = self._in.readline()
        return json.loads(line) if line else None


class _Logger:
    def __init__(self, buffer: io.StringIO) -> None:
        self._buffer = buffer

    def _write(self, level: str, message: str) -> None:
        if self._buffer.tell() < _LOG_LIMIT:
            self._buffer.write(f"[{level}] {message}\n")

    def info(self, message: object) -> None:
        self._write("info", str(message))

    def warning(self, message: object) -> None:
        self._write("warning", str(message))

    def error(self, message: object) -> None:
        self._write("error", str(message))


class _Table:
    def __init__(self, sdk: _Sdk, name: str) -> None:
        self._sdk, self._name = sdk, name

    def create(self, record: dict[str, Any]) -> Any:
        return self._sdk.call("records.create", {"table": self._name, "record": record})

    def get(self, record_id: int) -> Any:
        return self._sdk.call("records.get", {"table": self._name, "id": record_id})

    def update(self, record_id: int, changes: dict[str, Any]) -> Any:
        return self._sdk.call(
            "records.update", {"table": self._name, "id": record_id, "changes": changes}
        )

    def delete(self, record_id: int) -> Any:
        return self._sdk.call("records.delete", {"table": self._name, "id": record_id})

    def query(self, where: dict[str, Any] | None = None, **options: Any) -> Any:
        return self._sdk.call(
            "records.query", {"table": self._name, "where": where or {}, **options}
        )


class _Sdk:
    def __init__(self, channel: _Channel) -> None:
        self._channel = channel

    def call(self, op: str, args: dict[str, Any]) -> Any:
        self._channel.send({"type": "sdk", "op": op, "args": args})
        reply = self._channel.receive()
        if reply is None:
            raise SystemExit(0)
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise PlatformError(str(error.get("code")), str(error.get("message")))
        return reply.get("value")

    def table(self, name: str) -> _Table:
        return _Table(self, name)

    def invoke(self, function: str, event: Any = None) -> Any:
        return self.call("functions.invoke", {"function": function, "event": event})


class _Files:
    """The app's files: ``list``, ``url`` (signed, expiring), ``read`` (bytes, up to 1 MiB),
    ``write`` and ``delete``, with the same rights as the function's calls to tables."""

    def __init__(self, sdk: _Sdk) -> None:
        self._sdk = sdk

    def list(self, folder: str | None = None) -> Any:
        return self._sdk.call("files.list", {"folder": folder})

    def url(self, file_id: int, thumbnail: bool = False) -> Any:
        return self._sdk.call("files.url", {"id": file_id, "thumbnail": thumbnail})

    def read(self, file_id: int) -> bytes:
        found = self._sdk.call("files.read", {"id": file_id})
        return base64.b64decode(found["base64"])

    def write(self, name: str, data: bytes | str, folder: str = "") -> Any:
        raw = data.encode() if isinstance(data, str) else data
        payload = {"name": name, "folder": folder, "base64": base64.b64encode(raw).decode()}
        return self._sdk.call("files.write", payload)

    def delete(self, file_id: int) -> Any:
        return self._sdk.call("files.delete", {"id": file_id})


class _Http:
    def __init__(self, sdk: _Sdk) -> None:
        self._sdk = sdk

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> Any:
        """Call one of the function's ``allowed_hosts``; returns status, headers, body."""
        args = {"method": method, "url": url, "headers": headers or {}, "body": body}
        return self._sdk.call("http.request", args)


class Context:
    """What a function's ``handler(event, context)`` receives besides the event."""

    def __init__(self, sdk: _Sdk, data: dict[str, Any], log: _Logger) -> None:
        self.sdk = sdk
        self.http = _Http(sdk)
        self.files = _Files(sdk)
        self.log = log
        self.app = data.get("app")
        self.function = data.get("function")
        self.caller = data.get("caller")
        self.env: dict[str, str] = dict(data.get("env") or {})
        self.secrets: dict[str, str] = dict(data.get("secrets") or {})
        self.invocation_id = data.get("invocation_id")

    def table(self, name: str) -> _Table:
        return self.sdk.table(name)


def _limit_cpu(seconds: float) -> None:
    """Allow this invocation ``seconds`` more CPU time (SIGXCPU, then SIGKILL, after)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _run(channel: _Channel, message: dict[str, Any]) -> dict[str, Any]:
    _limit_cpu(float(message.get("cpu_s") or 5))
    logs = io.StringIO()
    logger = _Logger(logs)
    context = Context(_Sdk(channel), message.get("context") or {}, logger)
    namespace: dict[str, Any] = {"__name__": "function"}
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = logs
    try:
        exec(compile(message["source"], "<function>", "exec"), namespace)
        handler = namespace.get("handler")
        if not callable(handler):
            raise TypeError("the function must define handler(event, context)")
        value = handler(message.get("event"), context)
        json.dumps(value)  # the result must be JSON
        outcome: dict[str, Any] = {"ok": True, "value": value}
    except MemoryError:
        outcome = {"ok": False, "error": {"code": "memory", "message": "out of memory"}}
    except PlatformError as exc:
        outcome = {"ok": False, "error": {"code": exc.code, "message": str(exc)}}
    except BaseException as exc:  # the code's failure is the invocation's result
        trace = traceback.format_exception(type(exc), exc, exc.__traceback__)
        logger.error("".join(trace[-6:]))
        outcome = {
            "ok": False,
            "error": {"code": "exception", "message": f"{type(exc).__name__}: {exc}"},
        }
    finally:
        sys.stdout, sys.stderr = saved
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"type": "result", **outcome, "logs": logs.getvalue()[:_LOG_LIMIT], "peak_rss_kb": peak}


def _limit_processes() -> None:
    """At most ``argv[1]`` processes in this sandbox. Set here, inside the sandbox's own user
    namespace, the kernel counts only this namespace's processes against it, whatever uid
    the server runs as; set outside, it would count all of the server user's processes.
    Soft and hard alike: the code cannot raise it."""
    if len(sys.argv) > 1:
        count = int(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_NPROC, (count, count))


def main() -> None:
    _limit_processes()
    channel = _Channel()
    channel.send({"type": "ready", "pid": os.getpid()})
    while (message := channel.receive()) is not None:
        if message.get("type") == "invoke":
            channel.send(_run(channel, message))


if __name__ == "__main__":
    main()
