"""The CESQL type system (spec 3.1, 3.7): Boolean, 32-bit Integer and String, and casting.

Values are plain Python `bool`, `int` (always within the signed 32-bit range) and `str`;
`bool` is tested before `int` everywhere because it is a subclass of it. Casts that fail raise
`errors.Failure` with a `cast` error; callers turn that into the zero value of their own type.
"""

from __future__ import annotations

import base64
import datetime
import enum
import re
from collections.abc import Callable

from kevents.cesql import errors

Value = bool | int | str

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


class Type(enum.Enum):
    """A CESQL type; `ANY` is only a function parameter type (no implicit cast)."""

    BOOLEAN = "Boolean"
    INTEGER = "Integer"
    STRING = "String"
    ANY = "Any"


ZERO: dict[Type, Value] = {Type.BOOLEAN: False, Type.INTEGER: 0, Type.STRING: ""}

PYTHON_TYPE: dict[type, Type] = {bool: Type.BOOLEAN, int: Type.INTEGER, str: Type.STRING}


def type_of(value: Value) -> Type:
    """The CESQL type of a value."""
    return PYTHON_TYPE[value.__class__]


def wrap(number: int) -> int:
    """`number` wrapped into signed 32 bits, as two's-complement arithmetic overflows."""
    if INT_MIN <= number <= INT_MAX:
        return number
    return ((number - INT_MIN) & 0xFFFFFFFF) + INT_MIN


def _cast_error(message: str) -> errors.Failure:
    return errors.Failure(errors.Error(errors.ErrorKind.CAST, message))


def to_string(value: Value) -> str:
    """Integer -> base 10; Boolean -> `true`/`false` (always succeeds)."""
    if value.__class__ is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def to_integer(value: Value) -> int:
    """String -> optionally signed base-10 32-bit integer; Boolean -> 1/0."""
    if value.__class__ is int:
        return value
    if value.__class__ is bool:
        return 1 if value else 0
    text = str(value)
    if _INTEGER_TEXT.fullmatch(text) is None:
        raise _cast_error(f"cannot cast String {text!r} to Integer: not a base-10 integer")
    number = int(text)
    if not INT_MIN <= number <= INT_MAX:
        raise _cast_error(f"cannot cast String {text!r} to Integer: out of the 32-bit range")
    return number


def to_boolean(value: Value) -> bool:
    """String -> `true`/`false` in any case; Integer -> `false` only for 0."""
    if value.__class__ is bool:
        return value
    if value.__class__ is int:
        return value != 0
    lowered = str(value).lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise _cast_error(f"cannot cast String {value!r} to Boolean: not 'true' or 'false'")


def cast(value: Value, target: Type) -> Value:
    """`value` as `target` (no-op for `ANY` and for a value already of that type)."""
    if target is Type.STRING:
        return to_string(value)
    if target is Type.INTEGER:
        return to_integer(value)
    if target is Type.BOOLEAN:
        return to_boolean(value)
    return value


CASTS: dict[type, Callable[[Value], Value]] = {str: to_string, int: to_integer, bool: to_boolean}


def from_attribute(value: object) -> Value:
    """A CloudEvent attribute value as a CESQL value.

    Strings, booleans and 32-bit integers keep their type; every other value is represented
    by its CloudEvents canonical string (spec 3.2): timestamps as RFC 3339, binary as base64,
    integers outside 32 bits in base 10.
    """
    if isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value if INT_MIN <= value <= INT_MAX else str(value)
    return canonical_string(value)


def canonical_string(value: object) -> str:
    """The CloudEvents string form of an attribute value (what HTTP binary mode would carry)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return str(value)
