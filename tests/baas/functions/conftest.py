"""Shared pieces of the function tests: a sandboxed worker pool running handler bodies,
and members verified through the members service, signed in by token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from gonghui.accounts.service import create_user
from gonghui.accounts.tokens import start_session
from gonghui.baas.functions.pool import PoolConfig, WorkerPool
from gonghui.baas.functions.sandbox import Limits, Outcome, bwrap_path
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import id_number


@dataclass(frozen=True)
class SignedInMember:
    membership_id: int
    headers: dict[str, str]


def signed_in_member(org_id: int, *, n: int = 901, phone: str = "13912345678") -> SignedInMember:
    """A verified member of ``org_id`` (roster entry ``n``), signed in."""
    with unit_of_work() as session:
        user = create_user(session, display_name="王小明")
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=org_id, name="王小明", id_number=id_number(n), phone=phone
        )
        membership = members.verify(session, user_id=user.id, name="王小明", id_number=id_number(n))
        tokens = start_session(session, user=user)
    return SignedInMember(membership.id, {"Authorization": f"Bearer {tokens.access_token}"})


def sandboxed_pool(config: PoolConfig) -> WorkerPool:
    if bwrap_path() is None:
        pytest.fail("bubblewrap is missing or cannot create namespaces (make test installs it)")
    return WorkerPool(config)


def run_handler(pool: WorkerPool, body: str, event: Any, limits: Limits) -> Outcome:
    """Run ``body`` as the body of ``handler(event, context)``; it makes no platform call."""
    source = "def handler(event, context):\n" + "".join(
        f"    {line}\n" for line in body.strip("\n").splitlines()
    )
    return pool.invoke(
        key="app-1", source=source, event=event, context={}, sdk=_no_sdk, limits=limits
    )


def _no_sdk(op: str, args: dict[str, Any]) -> Any:
    raise AssertionError(f"unexpected platform call {op}")
