"""Reconciliation tests build voucher grabs and mall orders as those tests do."""

from tests.activities.voucher_grab.conftest import _simulator
from tests.mall.conftest import make_member

__all__ = ["_simulator", "make_member"]
