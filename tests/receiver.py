"""A local HTTP receiver for outgoing calls: records every request and answers with the
status its script says (e.g. fail twice, then succeed), or misbehaves as a test asks: hangs
until released, trickles its answer a byte at a time, or floods a body larger than any cap."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["answer", "hang", "trickle", "flood"]
# The longest a misbehaving receiver keeps a connection when nobody releases it.
SAFETY_S = 60.0
TRICKLE_BYTES = 100
CHUNK = 64 * 1024


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    port: int
    # Statuses for the next requests, in order; 200 once the script runs out.
    script: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    # While set, every request is answered 500 (an outage).
    down: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    # "hang": answer only once ``release`` is set; "trickle": send a body of TRICKLE_BYTES
    # one byte at a time, each after a short wait, until released; "flood": send a body of
    # ``flood_bytes`` as fast as the client reads it.
    mode: Mode = "answer"
    flood_bytes: int = 0
    # Set when a request has been read (before answering it).
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    # Body bytes written, and whether the client hung up before the end.
    sent: int = 0
    cut: bool = False

    def answer(self) -> int:
        with self.lock:
            if self.down:
                return 500
            return self.script.pop(0) if self.script else 200

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]


@contextmanager
def running_receiver(
    script: list[int] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    mode: Mode = "answer",
    flood_bytes: int = 0,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            declared = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(declared)
            if len(body) < declared:
                # The sender hung up mid-request (a test killed it): nothing was delivered
                # and nobody is left to answer, so the request is not recorded.
                return
            status = receiver.answer()
            with receiver.lock:
                receiver.requests.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body, status)
                )
            receiver.entered.set()
            if receiver.mode == "hang":
                receiver.release.wait(SAFETY_S)
            length = {"trickle": TRICKLE_BYTES, "flood": receiver.flood_bytes}.get(receiver.mode, 0)
            self.send_response(status)
            self.send_header("content-length", str(length))
            self.end_headers()
            try:
                self._write_body(length)
            except (BrokenPipeError, ConnectionResetError):
                with receiver.lock:
                    receiver.cut = True

        def _write_body(self, length: int) -> None:
            while receiver.sent < length:
                if receiver.mode == "trickle":
                    if receiver.release.wait(0.05):
                        return
                    piece = b"x"
                else:
                    piece = b"x" * min(CHUNK, length - receiver.sent)
                self.wfile.write(piece)
                self.wfile.flush()
                with receiver.lock:
                    receiver.sent += len(piece)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receiver = Receiver(
        url=f"{'https' if tls else 'http'}://{host}:{server.server_address[1]}/hook",
        port=int(server.server_address[1]),
        script=script or [],
        mode=mode,
        flood_bytes=flood_bytes,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
