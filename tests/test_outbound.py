"""Outgoing calls to URLs that developers choose reach public addresses only, at the address
that was checked, within one deadline and a bounded answer."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gonghui import outbound
from gonghui.outbound import OutboundError, OutboundRefusal
from tests.fixtures import FakeDns
from tests.receiver import running_receiver

REFUSED = [
    "http://127.0.0.1/",
    "http://127.9.9.9:8080/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://0.1.2.3/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[fc00::1]/",
    "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo around 127.0.0.1
    "http://[64:ff9b::a00:1]/",  # NAT64 around 10.0.0.1
]


def call(url: str, **kw: object) -> outbound.Response:
    options: dict[str, object] = {"timeout_s": 5.0, "max_response_bytes": 1024, **kw}
    return outbound.fetch("POST", url, content=b"{}", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_special_addresses_are_refused(url: str) -> None:
    with pytest.raises(OutboundError) as refused:
        call(url)
    assert refused.value.code == OutboundRefusal.ADDRESS_REFUSED
    with pytest.raises(OutboundError) as at_configuration:
        outbound.check_url(url)
    assert at_configuration.value.code == OutboundRefusal.ADDRESS_REFUSED


def test_a_loopback_receiver_is_not_reached_unless_the_operator_allows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with running_receiver() as receiver:
        with pytest.raises(OutboundError) as refused:
            call(receiver.url)
        assert refused.value.code == OutboundRefusal.ADDRESS_REFUSED
        assert receiver.requests == []
        monkeypatch.setattr(outbound.get_settings(), "outbound_allow_networks", ["127.0.0.0/8"])
        answered = call(receiver.url, headers=[("Host", "evil.example"), ("X-Trace", "1")])
    assert (answered.status, answered.address) == (200, "127.0.0.1")
    [request] = receiver.requests
    assert request.headers["host"] == receiver.url.split("/")[2]
    assert (request.headers["x-trace"], request.body) == ("1", b"{}")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://files.example.com/", "an http:// or https:// URL"),
        ("http://user:secret@hooks.example.com/", "a URL without user name or password"),
        ("http:///path", "a URL with a host"),
        ("http://under_score.example.com/", "a valid host name"),
        ("http://-dash.example.com/", "a valid host name"),
        ("http://hooks.example.com:99999/", "not a valid URL"),
    ],
)
def test_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(OutboundError) as refused:
        outbound.check_url(url)
    assert (refused.value.code, refused.value.message) == (OutboundRefusal.BAD_URL, message)


def test_a_rebinding_name_is_reached_at_the_address_that_was_checked(
    loopback_allowed: None, fake_dns: FakeDns
) -> None:
    with running_receiver() as checked:
        port = checked.port
        # The second answer is an internal service listening on the same port.
        with running_receiver(host="127.0.0.2", port=port) as internal:
            fake_dns.answers["rebind.example"] = ["127.0.0.1", "127.0.0.2"]
            answered = call(f"http://rebind.example:{port}/hook")
    assert (answered.status, answered.address) == (200, "127.0.0.1")
    assert fake_dns.lookups == ["rebind.example"]
    assert len(checked.requests) == 1
    assert checked.requests[0].headers["host"] == f"rebind.example:{port}"
    assert internal.requests == []


def test_a_name_answering_public_then_loopback_is_never_reached_at_loopback(
    fake_dns: FakeDns,
) -> None:
    with running_receiver() as internal:
        fake_dns.answers["rebind.example"] = ["2001:db9::1", "127.0.0.1"]
        with pytest.raises(OutboundError):  # whatever the public address does
            call(f"http://rebind.example:{internal.port}/hook", timeout_s=1.0)
    assert fake_dns.lookups == ["rebind.example"]
    assert internal.requests == []


def test_a_resolver_that_does_not_answer_is_cut_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answered = threading.Event()

    def stuck(*args: object, **kwargs: object) -> object:
        answered.wait(60)
        raise OSError("released")

    monkeypatch.setattr(socket, "getaddrinfo", stuck)
    try:
        with pytest.raises(OutboundError) as late:
            call("http://stuck.example/hook", timeout_s=0.3)
    finally:
        answered.set()
    assert late.value.code == OutboundRefusal.DEADLINE


def test_a_name_with_any_private_answer_is_refused(
    loopback_allowed: None, fake_dns: FakeDns
) -> None:
    with running_receiver() as receiver:
        port = receiver.port
        fake_dns.answers["mixed.example"] = ["10.0.0.7"]
        with pytest.raises(OutboundError) as refused:
            call(f"http://mixed.example:{port}/hook")
    assert refused.value.code == OutboundRefusal.ADDRESS_REFUSED
    assert receiver.requests == []


def test_an_answer_larger_than_the_cap_is_cut_while_streaming(loopback_allowed: None) -> None:
    flood = 64 * 1024 * 1024
    with running_receiver(mode="flood", flood_bytes=flood) as receiver:
        with pytest.raises(OutboundError) as refused:
            call(receiver.url, max_response_bytes=1024 * 1024)
        receiver.release.set()
    assert refused.value.code == OutboundRefusal.TOO_LARGE
    assert receiver.sent < flood
    with running_receiver(mode="flood", flood_bytes=flood) as receiver:
        answered = call(receiver.url, max_response_bytes=1000, truncate=True)
    assert (answered.status, len(answered.body), answered.truncated) == (200, 1000, True)
    assert receiver.sent < flood


def test_a_server_that_trickles_is_cut_at_the_one_deadline(loopback_allowed: None) -> None:
    with running_receiver(mode="trickle") as receiver:
        with pytest.raises(OutboundError) as late:
            call(receiver.url, timeout_s=0.3)
        receiver.release.set()
    assert late.value.code == OutboundRefusal.DEADLINE
    # Every byte came well within a per-read timeout; the call still ended early.
    assert receiver.sent < 100


def test_redirects_are_answered_not_followed(loopback_allowed: None) -> None:
    with running_receiver(script=[302]) as receiver:
        answered = call(receiver.url)
    assert answered.status == 302
    assert len(receiver.requests) == 1


def test_a_call_from_a_thread_whose_event_loop_runs_is_made(loopback_allowed: None) -> None:
    """Synchronous code inside asynchronous code (a task run by a test driving a browser)
    still reaches the receiver: anyio.run would refuse to nest in that thread."""

    async def inside_a_loop() -> int:
        return call(receiver.url).status

    with running_receiver(script=[204]) as receiver:
        assert asyncio.run(inside_a_loop()) == 204
    assert len(receiver.requests) == 1


def test_a_request_body_over_the_cap_is_not_sent(loopback_allowed: None) -> None:
    with running_receiver() as receiver:
        with pytest.raises(OutboundError) as refused:
            outbound.fetch(
                "POST",
                receiver.url,
                content=b"x" * (outbound.MAX_REQUEST_BYTES + 1),
                timeout_s=5,
                max_response_bytes=10,
            )
    assert refused.value.code == OutboundRefusal.TOO_LARGE
    assert receiver.requests == []


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for ``hooks.example`` and a client context that trusts only it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example")])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


def test_https_is_verified_against_the_name_while_connecting_to_the_checked_address(
    loopback_allowed: None,
    fake_dns: FakeDns,
    certificate: tuple[ssl.SSLContext, ssl.SSLContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, client = certificate
    monkeypatch.setattr(outbound, "_ssl_context", lambda: client)
    fake_dns.answers["hooks.example"] = ["127.0.0.1"]
    with running_receiver(tls=server) as receiver:
        port = receiver.port
        answered = call(f"https://hooks.example:{port}/hook")
        assert (answered.status, answered.address) == (200, "127.0.0.1")
        # The same server by its address: the certificate does not name it.
        with pytest.raises(OutboundError) as unverified:
            call(receiver.url)
    assert unverified.value.code == OutboundRefusal.FAILED
    assert "CERTIFICATE_VERIFY_FAILED" in unverified.value.message
    assert len(receiver.requests) == 1
