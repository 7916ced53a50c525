"""Delivery addresses (a physical prize's, a mall order's): sealed like any personal data,
shown masked unless an operator reveals them for shipping (an audited act, the caller's)."""

from __future__ import annotations

import json

from gonghui.pii import PiiField, mask, seal, unseal


def seal_address(*, name: str, phone: str, address: str) -> bytes:
    blob = json.dumps({"name": name, "phone": phone, "address": address}, ensure_ascii=False)
    return seal(PiiField.NAME, blob)


def address_view(sealed: bytes | None, *, reveal: bool) -> dict[str, str] | None:
    """The address in full when ``reveal``, else masked; None when none was given."""
    if sealed is None:
        return None
    plain: dict[str, str] = json.loads(unseal(PiiField.NAME, sealed))
    return plain if reveal else masked_address(plain)


def masked_address(plain: dict[str, str]) -> dict[str, str]:
    """The address as shown unless revealed."""
    return {
        "name": mask(PiiField.NAME, plain["name"]),
        "phone": mask(PiiField.PHONE, plain["phone"]),
        "address": plain["address"][:6] + "***",
    }
