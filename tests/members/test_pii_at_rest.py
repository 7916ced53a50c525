"""After an import and a review request, no name, ID number or phone appears in plain
text anywhere the deployment stores data: the database (every column) and every file
under the data directory."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
from PIL import Image
from sqlalchemy import select

from gonghui.db import Base, is_sqlite, unit_of_work
from gonghui.orgs.models import Role
from gonghui.pii import BulkSealer, PiiField, blind_index, unseal
from gonghui.settings import get_settings
from tests.fixtures import StaffFactory, Tree
from tests.members.conftest import MemberFactory, Uploader, csv_bytes, id_number

PEOPLE = [
    ("欧阳明远", id_number("44010619870215631"), "13912345670"),
    ("司马青云", id_number("44010619910930482"), "15887654321"),
    ("诸葛春华", id_number("44010619760101259"), "18600001111"),
]
REVIEW_NAME, REVIEW_ID = "上官晓月", id_number("44010620000229114")


def _needles() -> list[bytes]:
    values = [v for person in PEOPLE for v in person] + [REVIEW_NAME, REVIEW_ID]
    needles = {v.encode("utf-8") for v in values}
    needles |= {v.encode("gb18030") for v in values}
    needles |= {v.encode("utf-16-le") for v in values}
    return sorted(needles)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_no_plain_personal_data_at_rest(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
    upload: Uploader,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    rows = [[n, i, p, "", "GZ-TH-01", "2020-01-01"] for n, i, p in PEOPLE]
    for encoding in ("utf-8", "gbk"):
        job = upload(tree.city_a, csv_bytes(rows, encoding=encoding), operator.headers)
        assert job["rows_ok"] == 3
    member = make_member()
    resp = api.post(
        "/api/v1/members/verification-requests",
        data={"name": REVIEW_NAME, "id_number": REVIEW_ID, "org_id": str(tree.city_a)},
        files={"proof": ("card.png", _png(), "image/png")},
        headers=member.headers,
    )
    assert resp.status_code == 201, resp.text
    # The proof image (an identity document) is encrypted at rest as well.
    needles = [*_needles(), _png()]

    files = [p for p in Path(get_settings().data_dir).rglob("*") if p.is_file()]
    with unit_of_work() as session:
        if is_sqlite(session):
            # The database, its WAL and every other file the deployment keeps.
            db = Path(get_settings().data_dir) / "gonghui.db"
            assert db in files
        else:
            # Every column of every row of every table.
            for table in Base.metadata.sorted_tables:
                for row in session.execute(select(table)):
                    for value in row:
                        blob = value if isinstance(value, bytes) else str(value).encode()
                        assert not any(n in blob for n in needles), (table.name, value)
    for path in files:
        content = path.read_bytes()
        leaked = [n[:40].decode("utf-8", "replace") for n in needles if n in content]
        assert leaked == [], f"{path} holds {leaked}"


def test_bulk_sealer_matches_the_one_value_functions() -> None:
    """Imports seal with :class:`BulkSealer`; lookups and reveals use the module
    functions: the blind index must be the same and the ciphertext must open."""
    sealer = BulkSealer.from_settings()
    for field, value in (
        (PiiField.NAME, PEOPLE[0][0]),
        (PiiField.ID_NUMBER, PEOPLE[0][1]),
        (PiiField.PHONE, PEOPLE[0][2]),
    ):
        assert sealer.blind_index(field, value) == blind_index(field, value)
        assert sealer.index_encoded(field, value.encode()) == blind_index(field, value)
        sealed = sealer.seal(field, value)
        assert type(sealed) is bytes
        assert unseal(field, sealed) == value
        assert unseal(field, bytes(sealer.seal_encoded(field, value.encode()))) == value
    nonces = {sealer.seal(PiiField.NAME, "张三")[1:13] for _ in range(5000)}
    assert len(nonces) == 5000  # across more than one batch of pre-drawn nonces
