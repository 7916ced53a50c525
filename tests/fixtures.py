"""State built through the services, as a user would build it."""

from __future__ import annotations

import io
import re
import socket
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pyotp
import pytest
from PIL import Image
from sqlalchemy import event

from gonghui import clock, hooks
from gonghui.accounts.service import create_staff_user
from gonghui.db import get_engine, unit_of_work
from gonghui.hotwrite import load
from gonghui.notifications import events
from gonghui.orgs import service as orgs
from gonghui.orgs.models import OrgLevel, Role
from gonghui.settings import get_settings
from gonghui.tenancy import SYSTEM

PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class Tree:
    """province P; cities A and B; district A1 under A; grassroots A1x under A1, B1 under B."""

    province: int
    city_a: int
    city_b: int
    district_a1: int
    grassroots_a1x: int
    grassroots_b1: int
    codes: dict[str, int]


ROOT = SYSTEM


@pytest.fixture
def tree() -> Tree:
    with unit_of_work() as session:
        p = orgs.create_org(
            session,
            actor=ROOT,
            code="GD",
            name="广东省总工会",
            level=OrgLevel.PROVINCE,
            parent_id=None,
            region_code="440000",
        )
        a = orgs.create_org(
            session, actor=ROOT, code="GZ", name="广州市总工会", level=OrgLevel.CITY, parent_id=p.id
        )
        b = orgs.create_org(
            session, actor=ROOT, code="SZ", name="深圳市总工会", level=OrgLevel.CITY, parent_id=p.id
        )
        a1 = orgs.create_org(
            session,
            actor=ROOT,
            code="GZ-TH",
            name="天河区总工会",
            level=OrgLevel.DISTRICT,
            parent_id=a.id,
        )
        a1x = orgs.create_org(
            session,
            actor=ROOT,
            code="GZ-TH-01",
            name="天河软件园工会",
            level=OrgLevel.GRASSROOTS,
            parent_id=a1.id,
        )
        b1 = orgs.create_org(
            session,
            actor=ROOT,
            code="SZ-NS-01",
            name="南山科技园工会",
            level=OrgLevel.GRASSROOTS,
            parent_id=b.id,
        )
        ids = {o.code: o.id for o in (p, a, b, a1, a1x, b1)}
    return Tree(p.id, a.id, b.id, a1.id, a1x.id, b1.id, ids)


StaffFactory = Callable[..., "Staff"]


@dataclass(frozen=True)
class Staff:
    user_id: int
    username: str
    headers: dict[str, str]


@pytest.fixture
def make_staff(api: httpx.Client) -> StaffFactory:
    """Create a staff user with ``role`` at ``org_id`` and sign them in over HTTP."""
    counter = iter(range(1, 10_000))

    def make(
        org_id: int | None, role: Role | None = Role.ADMIN, *, platform_admin: bool = False
    ) -> Staff:
        username = f"staff{next(counter)}"
        with unit_of_work() as session:
            user = create_staff_user(
                session, username=username, password=PASSWORD, is_platform_admin=platform_admin
            )
            if org_id is not None and role is not None:
                orgs.grant_role(session, actor=ROOT, org_id=org_id, user_id=user.id, role=role)
            user_id = user.id
        resp = api.post("/api/v1/auth/password", json={"username": username, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        return Staff(user_id, username, {"Authorization": f"Bearer {resp.json()['access_token']}"})

    return make


@dataclass(frozen=True)
class PhoneUser:
    user_id: int
    phone: str
    headers: dict[str, str]


PhoneUserFactory = Callable[..., PhoneUser]


@pytest.fixture
def make_phone_user(api: httpx.Client) -> PhoneUserFactory:
    """A member-side user signed in over HTTP with an SMS code (created on first sign-in)."""
    from gonghui.accounts import otp
    from gonghui.integrations.sms import OtpMessage

    counter = iter(range(1, 10_000))

    class _Capture:
        code = ""

        def send_code(self, message: OtpMessage) -> None:
            self.code = message.code

    def make(phone: str | None = None, *, channel: str | None = None) -> PhoneUser:
        phone = phone or f"1390000{next(counter):04d}"
        capture = _Capture()
        with unit_of_work() as session:
            otp.send_code(session, phone=phone, sender=capture)
        body = {"phone": phone, "code": capture.code, "channel": channel}
        resp = api.post("/api/v1/auth/sms/login", json=body)
        assert resp.status_code == 200, resp.text
        token = resp.json()["access_token"]
        return PhoneUser(resp.json()["user_id"], phone, {"Authorization": f"Bearer {token}"})

    return make


@pytest.fixture
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator lets outgoing calls reach 127.0.0.1, where the test receivers listen."""
    monkeypatch.setattr(get_settings(), "outbound_allow_networks", ["127.0.0.1/32"])


WriterLoad = Callable[[float], None]


@pytest.fixture
def writer_load(monkeypatch: pytest.MonkeyPatch) -> WriterLoad:
    """Says that this host's hot writer spent a share of its last window running batches,
    as the writer itself publishes it; each figure stays fresh until the next."""
    monkeypatch.setattr(load, "STALE_S", 3600.0)

    def say(share: float) -> None:
        load.path().write_bytes(load._FIGURE.pack(time.time(), share))

    return say


@dataclass
class FakeDns:
    """Names the resolver answers for: each lookup takes the next address of its list (the
    last one repeats), and is counted."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    dns = FakeDns()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in dns.answers:
            return real(host, port, *args, **kwargs)
        dns.lookups.append(name)
        queue = dns.answers[name]
        return real(queue.pop(0) if len(queue) > 1 else queue[0], port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


# -- hostile files: small on the wire, huge once decoded ------------------------------------


def png_declaring(width: int, height: int, *, pixels: bool = False) -> bytes:
    """A grayscale PNG whose header declares ``width`` × ``height``. With ``pixels`` its data
    holds every (black) pixel, deflated to a few kilobytes per megapixel; without, only
    the header is real (enough for anything that checks the size before decoding)."""
    raw = bytes((width + 1) * height) if pixels else b""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def xlsx_with_blank_rows(header: list[str], blank_rows: int) -> bytes:
    """A one-sheet workbook: ``header``, then ``blank_rows`` empty rows (each an explicit
    ``<row>`` element, as spreadsheet programs write formatted empty rows)."""
    cells = "".join(
        f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{escape(name)}</t></is></c>'
        for i, name in enumerate(header)
    )
    rows = "".join(f'<row r="{n}"/>' for n in range(2, blank_rows + 2))
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<sheetData><row r="1">{cells}</row>{rows}</sheetData></worksheet>'
    )
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
            f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
            f'Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": sheet,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


# -- membership reviews ---------------------------------------------------------------------


def proof_png() -> bytes:
    """A small PNG image, as a member attaches to a review request."""
    out = io.BytesIO()
    Image.new("RGB", (16, 10), (20, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def request_review(
    api: httpx.Client, member_headers: dict[str, str], org_id: int, name: str, number: str
) -> httpx.Response:
    """A member asks for a manual review of their membership, with a proof image."""
    return api.post(
        "/api/v1/members/verification-requests",
        data={"name": name, "id_number": number, "org_id": str(org_id), "note": "新入职"},
        files={"proof": ("会员证.png", proof_png(), "image/png")},
        headers=member_headers,
    )


# -- the clock ----------------------------------------------------------------------------


def to_the_next_minute() -> None:
    """Move the server clock to the start of the next whole minute. The clock runs on from
    real time, so a test whose actions must share one minute's bucket (the per-target rate
    jump counts per calendar minute) starts there, with a minute of real time in hand."""
    at = clock.now()
    clock.advance(timedelta(minutes=1, seconds=-at.second, microseconds=-at.microsecond))


def move_clock_to_local(hour: int, minute: int = 0) -> datetime:
    """Move the server clock forward to the next ``hour:minute`` of the display zone: a
    test of a per-local-day count starts far from local midnight."""
    local = clock.now().astimezone(clock.display_zone())
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    clock.advance(target - local)
    return target


# -- staff two-step sign-in ----------------------------------------------------------------


def totp_code_now(secret: str) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def wrong_totp_code(secret: str) -> str:
    """A code no step near now accepts."""
    totp = pyotp.TOTP(secret)
    step = totp.timecode(clock.now())
    near = {totp.generate_otp(s) for s in range(step - 2, step + 3)}
    return next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in near)


# -- notifications --------------------------------------------------------------------------


@pytest.fixture
def quiet_notifications() -> Iterator[None]:
    """The hook bus without members' notifications, for stories that count the tasks or
    the SMS messages another subscriber (a trigger, a webhook, a coupon send) makes."""
    hooks.unsubscribe(events.on_org_event)
    try:
        yield
    finally:
        hooks.subscribe(events.on_org_event)


_PAGE_CSRF = re.compile(r'name="csrf" value="([^"]+)"|"X-CSRF-Token": "([^"]+)"')


def page_csrf(html: str) -> str:
    """The CSRF token a signed-in page carries (in a form, or in the ``hx-headers`` every
    page of a signed-in user sends with htmx requests); "" if it carries none."""
    found = _PAGE_CSRF.search(html)
    return (found[1] or found[2]) if found else ""


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements run on the engine inside the block, but for reads of the change
    feed itself (one may fall due on a slow machine): what a cached read did not spare."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "core_cache_change" not in statement:
            seen.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
