"""Field types: their SQL column types, and how a JSON value becomes a stored value.

Every user-supplied value passes :func:`coerce` before it reaches SQL, and always as a
bound parameter. Errors name the field.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import re2
from sqlalchemy import JSON, BigInteger, Boolean, Date, Float, Integer, Text
from sqlalchemy.types import TypeEngine

from gonghui.baas.errors import BaasError
from gonghui.db import UTCDateTime
from gonghui.errors import InvalidInput, field_error


class FieldType(StrEnum):
    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"
    ARRAY = "array"
    FILE = "file"
    REFERENCE = "reference"


BIG_ID: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


def column_type(ftype: FieldType) -> TypeEngine[Any]:
    match ftype:
        case FieldType.STRING | FieldType.TEXT:
            return Text()
        case FieldType.INTEGER:
            return BigInteger()
        case FieldType.NUMBER:
            return Float(precision=53)
        case FieldType.BOOLEAN:
            return Boolean()
        case FieldType.DATE:
            return Date()
        case FieldType.DATETIME:
            return UTCDateTime()
        case FieldType.JSON | FieldType.ARRAY:
            return JSON()
        case FieldType.FILE | FieldType.REFERENCE:
            return BIG_ID


# Types whose values SQL can compare, sort, index and hold unique (JSON cannot on PostgreSQL).
ORDERED = frozenset(FieldType) - {FieldType.JSON, FieldType.ARRAY}
TEXTUAL = frozenset({FieldType.STRING, FieldType.TEXT})
NUMERIC = frozenset({FieldType.INTEGER, FieldType.NUMBER})

# Type changes that keep every value: old type -> new types.
SAFE_CHANGES: dict[FieldType, frozenset[FieldType]] = {
    FieldType.INTEGER: frozenset({FieldType.NUMBER, FieldType.STRING, FieldType.TEXT}),
    FieldType.NUMBER: frozenset({FieldType.STRING, FieldType.TEXT}),
    FieldType.STRING: frozenset({FieldType.TEXT}),
    FieldType.TEXT: frozenset({FieldType.STRING}),
    FieldType.BOOLEAN: frozenset({FieldType.INTEGER, FieldType.STRING, FieldType.TEXT}),
    FieldType.DATE: frozenset({FieldType.DATETIME, FieldType.STRING, FieldType.TEXT}),
    FieldType.DATETIME: frozenset({FieldType.STRING, FieldType.TEXT}),
    FieldType.ARRAY: frozenset({FieldType.JSON}),
}

_INT64 = (-(2**63), 2**63 - 1)
RULE_KEYS = frozenset({"min", "max", "min_length", "max_length", "pattern", "enum"})

# A developer's ``pattern`` runs on every value written to its field, so it runs on RE2
# (https://github.com/google/re2/wiki/Syntax): matching takes time linear in the input,
# whatever the pattern, and syntax that needs backtracking (backreferences, lookaround)
# is refused when the field is defined. The caps bound the work per value further.
MAX_PATTERN_LENGTH = 200
MAX_PATTERN_INPUT = 10_000
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the developer's error, not the log's
_RE2_OPTIONS.max_mem = 1 << 20  # bytes for the compiled program; bigger patterns are refused


class UnsupportedPattern(ValueError):
    """A pattern RE2 cannot compile: bad or backtracking-only syntax, or too large."""


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """The compiled RE2 program of ``pattern``, or :class:`UnsupportedPattern`."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsupportedPattern(f"at most {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise UnsupportedPattern(str(reason)) from None


def bad(field: str, message: str, code: str = BaasError.INVALID_RECORD) -> InvalidInput:
    return InvalidInput(code, f"{field}: {message}", [field_error(field, code, message)])


def coerce_scalar(ftype: FieldType, value: Any, field: str) -> Any:
    """The Python value stored for JSON ``value`` (not None), or a field error."""
    match ftype:
        case FieldType.STRING | FieldType.TEXT:
            if not isinstance(value, str):
                raise bad(field, "must be a string")
            if "\x00" in value:
                raise bad(field, "must not contain NUL characters")
            return value
        case FieldType.INTEGER | FieldType.FILE | FieldType.REFERENCE:
            if isinstance(value, float) and value.is_integer() and ftype is FieldType.INTEGER:
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad(field, "must be an integer")
            if not _INT64[0] <= value <= _INT64[1]:
                raise bad(field, "is out of the 64-bit integer range")
            return value
        case FieldType.NUMBER:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise bad(field, "must be a number")
            if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
                raise bad(field, "is out of range")
            value = float(value)
            if not math.isfinite(value):
                raise bad(field, "must be finite")
            return value
        case FieldType.BOOLEAN:
            if not isinstance(value, bool):
                raise bad(field, "must be true or false")
            return value
        case FieldType.DATE:
            if not isinstance(value, str):
                raise bad(field, "must be a date YYYY-MM-DD")
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise bad(field, "must be a date YYYY-MM-DD") from None
        case FieldType.DATETIME:
            if not isinstance(value, str):
                raise bad(field, "must be an ISO 8601 datetime with offset")
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise bad(field, "must be an ISO 8601 datetime with offset") from None
            if parsed.tzinfo is None:
                raise bad(field, "must carry a UTC offset")
            return parsed.astimezone(UTC)
        case FieldType.ARRAY:
            if not isinstance(value, list):
                raise bad(field, "must be an array")
            return value
        case FieldType.JSON:
            return value


def check_rules(rules: dict[str, Any], value: Any, field: str) -> None:
    if "enum" in rules and value not in rules["enum"]:
        raise bad(field, f"must be one of {rules['enum']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "min" in rules and value < rules["min"]:
            raise bad(field, f"must be at least {rules['min']}")
        if "max" in rules and value > rules["max"]:
            raise bad(field, f"must be at most {rules['max']}")
    if isinstance(value, str | list):
        if "min_length" in rules and len(value) < rules["min_length"]:
            raise bad(field, f"must have at least {rules['min_length']} characters or items")
        if "max_length" in rules and len(value) > rules["max_length"]:
            raise bad(field, f"must have at most {rules['max_length']} characters or items")
    if isinstance(value, str) and "pattern" in rules:
        if len(value) > MAX_PATTERN_INPUT:
            raise bad(field, f"must have at most {MAX_PATTERN_INPUT} characters to match a pattern")
        try:
            matched = compile_pattern(rules["pattern"]).fullmatch(value)
        except UnsupportedPattern:
            # Defined before patterns ran on RE2: refuse values rather than run it on a
            # backtracking engine; the developer redefines the rule.
            raise bad(field, "has a pattern rule that is no longer supported") from None
        if matched is None:
            raise bad(field, "does not match the required pattern")


def to_json(ftype: FieldType, value: Any) -> Any:
    if value is None:
        return None
    if ftype is FieldType.DATETIME:
        return value.isoformat().replace("+00:00", "Z")
    if ftype is FieldType.DATE:
        return value.isoformat()
    return value


def convert(old: FieldType, new: FieldType, value: Any) -> Any:
    """A stored value of type ``old`` as type ``new`` (one of SAFE_CHANGES[old])."""
    if value is None:
        return None
    if new in TEXTUAL:
        if old is FieldType.BOOLEAN:
            return "true" if value else "false"
        if old in (FieldType.DATE, FieldType.DATETIME):
            return str(to_json(old, value))
        return (
            value
            if isinstance(value, str)
            else repr(value)
            if old is FieldType.NUMBER
            else str(value)
        )
    if new is FieldType.NUMBER:
        return float(value)
    if new is FieldType.INTEGER:
        return int(value)
    if new is FieldType.DATETIME:
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value
