"""The JSON query language, compiled to parameterised SQLAlchemy Core expressions.

    {"age": {"gte": 18}, "name": "x"}            fields are ANDed; a bare value means eq
    {"or": [{...}, {...}]}, {"and": [...]}, {"not": {...}}
    {"author.name": {"startswith": "Li"}}        dotted paths follow reference fields

Operators: eq ne lt lte gt gte in nin contains startswith like exists isnull.
Semantics are two-valued so that ``not`` is exact: a comparison with a missing value is
false, except ``ne``/``nin`` which hold for it; ``eq: null`` is ``isnull: true``. A path
through a missing reference matches nothing. Strings compare by code point on both
backends (``COLLATE "C"`` on PostgreSQL), and ``like`` is case-sensitive with ``%`` and
``_`` as its only wildcards. Values are coerced to the field's type and always bound.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement as Col
from sqlalchemy.types import TypeEngine

from gonghui.baas.errors import BaasError
from gonghui.baas.tables.info import FieldInfo, TableInfo
from gonghui.baas.tables.types import ORDERED, TEXTUAL, FieldType, coerce_scalar
from gonghui.errors import InvalidInput, field_error

OPERATORS = frozenset(
    {"eq", "ne", "lt", "lte", "gt", "gte", "in", "nin", "contains", "startswith", "like"}
    | {"exists", "isnull"}
)
MAX_DEPTH = 8
MAX_NODES = 200
MAX_LIST = 500
MAX_PATH = 3

SYSTEM_TYPES = {
    "id": FieldType.INTEGER,
    "created_by": FieldType.INTEGER,
    "created_at": FieldType.DATETIME,
    "updated_at": FieldType.DATETIME,
}


def invalid(path: str, message: str) -> InvalidInput:
    return InvalidInput(
        BaasError.INVALID_QUERY,
        f"where: {path}: {message}" if path else f"where: {message}",
        [field_error(f"where.{path}" if path else "where", BaasError.INVALID_QUERY, message)],
    )


# Resolves a reference field to the target table and the read filter that applies to it.
RefResolver = Callable[[FieldInfo], tuple[TableInfo, ColumnElement[bool]]]
# Turns the JSON value at one operator position into the value bound for it.
Derive = Callable[[Any], Any]


@dataclass
class Slot:
    """A named parameter of a compiled statement: its value is ``derive`` of the JSON value
    at operator position ``leaf`` (in the order :func:`shape` lists them)."""

    name: str
    leaf: int
    derive: Derive


@dataclass
class Binder:
    """Handed to a :class:`Compiler` building a reusable statement: every value is bound as
    a named parameter and recorded as a :class:`Slot` instead of being bound as it is."""

    slots: list[Slot] = field(default_factory=list)

    def param(self, leaf: int, derive: Derive, type_: TypeEngine[Any], expanding: bool) -> Any:
        name = f"w{len(self.slots)}"
        self.slots.append(Slot(name, leaf, derive))
        return bindparam(name, type_=type_, expanding=expanding)


class Unshareable(Exception):
    """A condition whose statement cannot be reused for other values (see :func:`shape`)."""


def shape(where: Any) -> tuple[Hashable, list[Any]]:
    """The structure of ``where`` without its values, and its values in the order a
    :class:`Compiler` meets their operator positions (its ``leaf`` count).

    Two conditions with the same shape compile to the same statement up to the values
    bound: the shape keeps what decides the statement's structure (keys and operators,
    a missing value, the booleans of ``exists``/``isnull``, whether an ``in`` list holds a
    value, each value's JSON type). Raises :class:`Unshareable` for what this does not
    cover: dotted paths (they read another table's description) and malformed input (the
    compiler names the problem)."""
    leaves: list[Any] = []

    def node(w: Any) -> Hashable:
        if not isinstance(w, dict):
            raise Unshareable
        out: list[Hashable] = []
        for key, value in w.items():
            if not isinstance(key, str) or "." in key:
                raise Unshareable
            if key in ("and", "or"):
                if not isinstance(value, list) or not value or len(value) > MAX_LIST:
                    raise Unshareable
                out.append((key, tuple(node(v) for v in value)))
            elif key == "not":
                out.append((key, node(value)))
            elif isinstance(value, dict):
                out.append((key, tuple((op, leaf(op, v)) for op, v in value.items())))
            else:
                out.append((key, leaf("eq", value)))
        return tuple(out)

    def leaf(op: Any, value: Any) -> Hashable:
        leaves.append(value)
        if value is None or op in ("exists", "isnull"):
            if value is not None and not isinstance(value, bool):
                raise Unshareable
            return value
        if op in ("in", "nin"):
            if not isinstance(value, list):
                raise Unshareable
            return ("list", any(v is not None for v in value))
        if isinstance(value, dict | list):
            raise Unshareable
        return type(value).__name__

    return node(where), leaves


@dataclass
class Compiler:
    dialect: str
    resolve_ref: RefResolver
    nodes: int = 0
    binder: Binder | None = None
    leaves: int = 0

    def compile(self, table: TableInfo, where: Any, depth: int = 0) -> ColumnElement[bool]:
        if where is None:
            return true()
        return self._node(table, where, depth, "")

    def _tick(self, depth: int, path: str) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise invalid(path, f"too complex (more than {MAX_NODES} conditions)")
        if depth > MAX_DEPTH:
            raise invalid(path, f"nested more than {MAX_DEPTH} levels")

    def _node(self, table: TableInfo, where: Any, depth: int, path: str) -> ColumnElement[bool]:
        self._tick(depth, path)
        if not isinstance(where, dict):
            raise invalid(path, "a condition is a JSON object")
        parts: list[ColumnElement[bool]] = []
        for key, value in where.items():
            if not isinstance(key, str):
                raise invalid(path, "keys are strings")
            sub = f"{path}.{key}" if path else key
            if key in ("and", "or"):
                if not isinstance(value, list) or not value:
                    raise invalid(sub, "takes a non-empty list of conditions")
                if len(value) > MAX_LIST:
                    raise invalid(sub, "too many conditions")
                items = [self._node(table, v, depth + 1, f"{sub}.{i}") for i, v in enumerate(value)]
                parts.append(and_(*items) if key == "and" else or_(*items))
            elif key == "not":
                parts.append(not_(self._node(table, value, depth + 1, sub)))
            else:
                parts.append(self._path(table, key.split("."), value, depth + 1, sub))
        if len(parts) == 1:
            return parts[0]
        return and_(*parts) if parts else true()

    def _path(
        self, table: TableInfo, names: list[str], cond: Any, depth: int, path: str
    ) -> ColumnElement[bool]:
        if len(names) > MAX_PATH + 1:
            raise invalid(path, f"paths follow at most {MAX_PATH} references")
        head = names[0]
        if len(names) > 1:
            field = table.by_name.get(head)
            if field is None or field.type is not FieldType.REFERENCE:
                raise invalid(path, f"{head} is not a reference field")
            target, readable = self.resolve_ref(field)
            inner = self._path(target, names[1:], cond, depth + 1, path)
            column = table.sql.c[field.column]
            sub = select(target.sql.c.id).where(readable, inner)
            return and_(column.is_not(None), column.in_(sub))
        if head in SYSTEM_TYPES:
            return self._conditions(table.sql.c[head], SYSTEM_TYPES[head], cond, path)
        field = table.by_name.get(head)
        if field is None:
            raise invalid(path, f"unknown field {head}")
        return self._conditions(table.sql.c[field.column], field.type, cond, path)

    def _conditions(
        self, column: Col[Any], ftype: FieldType, cond: Any, path: str
    ) -> ColumnElement[bool]:
        if not isinstance(cond, dict):
            return self._op(column, ftype, "eq", cond, path)
        if not cond:
            raise invalid(path, "an empty operator object")
        parts = []
        for op, value in cond.items():
            if op not in OPERATORS:
                raise invalid(path, f"unknown operator {str(op)[:40]!r}")
            parts.append(self._op(column, ftype, op, value, f"{path}.{op}"))
        return and_(*parts)

    def _value(self, ftype: FieldType, value: Any, path: str) -> Any:
        try:
            return coerce_scalar(ftype, value, path)
        except InvalidInput:
            raise invalid(path, f"expects a {ftype} value") from None

    def _text_column(self, column: Col[Any], ftype: FieldType) -> Col[Any]:
        if ftype in TEXTUAL and self.dialect == "postgresql":
            return column.collate("C")
        return column

    def _bound(
        self, leaf: int, derive: Derive, raw: Any, type_: TypeEngine[Any], expanding: bool = False
    ) -> Any:
        """``derive(raw)`` bound, or a named parameter when building a reusable statement
        (``derive`` still runs: it validates the value)."""
        value = derive(raw)
        if self.binder is None:
            return value if expanding else bindparam(None, value, type_=type_)
        return self.binder.param(leaf, derive, type_, expanding)

    def _op(
        self, column: Col[Any], ftype: FieldType, op: str, value: Any, path: str
    ) -> ColumnElement[bool]:
        leaf = self.leaves
        self.leaves += 1
        present = column.is_not(None)
        if op in ("exists", "isnull"):
            if not isinstance(value, bool):
                raise invalid(path, "takes true or false")
            want_null = value if op == "isnull" else not value
            return column.is_(None) if want_null else present
        if op in ("eq", "ne") and value is None:
            return column.is_(None) if op == "eq" else present
        if ftype not in ORDERED:
            raise invalid(path, f"a {ftype} field supports only exists and isnull")
        # Equality needs no collation (PostgreSQL's collations here are deterministic: equal
        # means byte-equal), and without one an index on the column serves it.
        col = column if op in ("eq", "ne", "in", "nin") else self._text_column(column, ftype)
        if op in ("in", "nin"):
            if not isinstance(value, list) or len(value) > MAX_LIST:
                raise invalid(path, f"takes a list of at most {MAX_LIST} values")

            def listed(raw: Any) -> list[Any]:
                return [self._value(ftype, v, path) for v in raw if v is not None]

            if not listed(value):
                return false() if op == "in" else true()
            values = self._bound(leaf, listed, value, column.type, expanding=True)
            if op == "in":
                return and_(present, col.in_(values))
            return or_(column.is_(None), col.not_in(values))
        if op in ("contains", "startswith", "like"):
            if ftype not in TEXTUAL:
                raise invalid(path, f"{op} applies to text fields")
            if not isinstance(value, str):
                raise invalid(path, "takes a string")
            return and_(present, self._text_match(column, ftype, op, leaf, value, path))

        def scalar(raw: Any) -> Any:
            return self._value(ftype, raw, path)

        bound = self._bound(leaf, scalar, value, column.type)
        match op:
            case "eq":
                return and_(present, col == bound)
            case "ne":
                return or_(column.is_(None), col != bound)
            case "lt":
                return and_(present, col < bound)
            case "lte":
                return and_(present, col <= bound)
            case "gt":
                return and_(present, col > bound)
            case _:
                return and_(present, col >= bound)

    def _text_match(
        self, column: Col[Any], ftype: FieldType, op: str, leaf: int, raw: str, path: str
    ) -> ColumnElement[bool]:
        def text(value: Any) -> str:
            coerced: str = self._value(ftype, value, path)
            return coerced

        sqlite = self.dialect == "sqlite"
        if op == "startswith":
            length = self._bound(leaf, lambda v: len(text(v)), raw, Integer())
            prefix: ColumnElement[bool] = func.substr(column, 1, length) == self._bound(
                leaf, text, raw, column.type
            )
            return prefix
        if op == "contains":
            needle = self._bound(leaf, text, raw, column.type)
            position = func.instr(column, needle) if sqlite else func.strpos(column, needle)
            return position > 0
        # like: case-sensitive everywhere. SQLite's LIKE folds ASCII case, so its GLOB
        # (case-sensitive) runs a translated pattern; PostgreSQL's LIKE gets the backslash,
        # its default escape character, escaped.
        if sqlite:
            glob = self._bound(leaf, lambda v: _like_to_glob(text(v)), raw, column.type)
            return column.op("GLOB")(glob)
        escaped = self._bound(leaf, lambda v: text(v).replace("\\", "\\\\"), raw, column.type)
        return column.like(escaped)


def _like_to_glob(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)
