"""The hot operations the writer process runs, found by name in the modules listed here.

A server process names a job's operation by its module and qualified name; the writer
process imports exactly the modules below (and the complete ORM metadata), never the web
app, and runs an operation only from one of them. A new hot operation lives in a module
listed here, as a module-level function ``op(session, **kwargs)``.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable
from typing import Any, cast

from gonghui import hooks

# Each domain's module of hot operations.
HOT_OPERATION_MODULES = (
    "gonghui.activities.lottery.draw",  # draw
    "gonghui.activities.quiz.attempts",  # start_attempt, submit
    "gonghui.benefits.service",  # redeem_voucher_once, give_address_once
    "gonghui.baas.records.write",  # insert_one
    "gonghui.activities.voucher_grab.claims",  # claim
    "gonghui.activities.vote.cast",  # cast
    "gonghui.mall.checkout",  # checkout
)

# The modules this (writer) process runs operations from, once :func:`load` has run.
_loaded: frozenset[str] = frozenset()


class UnknownOperation(LookupError):
    """A job names an operation outside the registered modules."""


def load(extra_modules: Iterable[str] = ()) -> None:
    """Import the complete metadata and every registered module (plus ``extra_modules``,
    which tests use for their own operations), and run operations only from those."""
    global _loaded
    importlib.import_module("gonghui.models")
    modules = (*HOT_OPERATION_MODULES, *extra_modules)
    for module in modules:
        importlib.import_module(module)
    # The hook subscribers too, which the operations' events reach: loaded now rather than
    # inside the first batch that emits one.
    hooks.SUBSCRIBER_MODULES.load()
    _loaded = frozenset(modules)


def operation(module: str, qualname: str) -> Callable[..., Any]:
    """The registered operation ``module.qualname``."""
    if module not in _loaded:
        raise UnknownOperation(f"{module}.{qualname} is not a registered hot operation")
    return resolve(module, qualname)


def resolve(module: str, qualname: str) -> Callable[..., Any]:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return cast(Callable[..., Any], found)


@functools.cache
def name_of(op: Callable[..., Any]) -> tuple[str, str]:
    """How the writer process finds ``op`` again (checked once per function)."""
    name = (op.__module__, op.__qualname__)
    try:
        found = resolve(*name)
    except (ImportError, AttributeError):
        found = None
    if found is not op:
        raise TypeError(f"{op!r} is not a module-level function; the writer cannot name it")
    return name
