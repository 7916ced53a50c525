"""A plain-Python evaluator of the records query language: the reference the SQL compiler
is checked against (see gonghui.baas.records.where for the semantics)."""

from __future__ import annotations

import re
from typing import Any

_MISSING_REF = object()


def _like(pattern: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def _value(record: dict[str, Any], path: list[str], refs: dict[str, dict[int, Any]]) -> Any:
    value = record.get(path[0])
    if len(path) == 1:
        return value
    if value is None or value not in refs[path[0]]:
        return _MISSING_REF
    return _value(refs[path[0]][value], path[1:], refs)


def _op(op: str, v: Any, arg: Any) -> bool:
    if op in ("exists", "isnull"):
        return (v is None) == (arg if op == "isnull" else not arg)
    if op in ("eq", "ne") and arg is None:
        return (v is None) == (op == "eq")
    if op == "in":
        values = [a for a in arg if a is not None]
        return v is not None and v in values
    if op == "nin":
        values = [a for a in arg if a is not None]
        return v is None or v not in values
    if op == "ne":
        return v is None or v != arg
    if v is None:
        return False
    match op:
        case "eq":
            return bool(v == arg)
        case "lt":
            return bool(v < arg)
        case "lte":
            return bool(v <= arg)
        case "gt":
            return bool(v > arg)
        case "gte":
            return bool(v >= arg)
        case "contains":
            return arg in v
        case "startswith":
            return bool(v.startswith(arg))
        case "like":
            return _like(arg).fullmatch(v) is not None
    raise AssertionError(op)


def matches(record: dict[str, Any], where: Any, refs: dict[str, dict[int, Any]]) -> bool:
    for key, cond in where.items():
        if key == "and":
            ok = all(matches(record, c, refs) for c in cond)
        elif key == "or":
            ok = any(matches(record, c, refs) for c in cond)
        elif key == "not":
            ok = not matches(record, cond, refs)
        else:
            v = _value(record, key.split("."), refs)
            ops = cond if isinstance(cond, dict) else {"eq": cond}
            if v is _MISSING_REF:
                ok = False
            else:
                ok = all(_op(op, v, arg) for op, arg in ops.items())
        if not ok:
            return False
    return True
