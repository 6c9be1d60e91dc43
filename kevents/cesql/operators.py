"""Closures for the CESQL operators (spec 3.4), with the implicit casts of spec 3.7.

Arithmetic and `< <= > >=` cast both operands to Integer; AND, OR, XOR and NOT to Boolean;
LIKE its operand to String; `= != <>` cast the left operand to the type of the right one, and
IN casts each set element to the type of the left operand. AND and OR short-circuit; IN stops
at the first equal element. Integer results wrap at 32 bits (two's complement); `/` and `%`
truncate towards zero and give a `math` error (value 0) for a zero divisor.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence

from kevents.cesql import errors, like, values

Event = Mapping[str, object]
Evaluator = Callable[[Event], values.Value]

_to_int = values.to_integer
_to_bool = values.to_boolean

_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def not_(operand: Evaluator) -> Evaluator:
    def evaluate(event: Event) -> values.Value:
        value = operand(event)
        return not (value if value.__class__ is bool else _to_bool(value))

    return evaluate


def negate(operand: Evaluator) -> Evaluator:
    def evaluate(event: Event) -> values.Value:
        value = operand(event)
        return values.wrap(-(value if value.__class__ is int else _to_int(value)))

    return evaluate


def logic(symbol: str, left: Evaluator, right: Evaluator) -> Evaluator:
    """AND, OR (both short-circuit) and XOR."""
    if symbol == "AND":

        def and_(event: Event) -> values.Value:
            a = left(event)
            if not (a if a.__class__ is bool else _to_bool(a)):
                return False
            b = right(event)
            return b if b.__class__ is bool else _to_bool(b)

        return and_
    if symbol == "OR":

        def or_(event: Event) -> values.Value:
            a = left(event)
            if a if a.__class__ is bool else _to_bool(a):
                return True
            b = right(event)
            return b if b.__class__ is bool else _to_bool(b)

        return or_

    def xor(event: Event) -> values.Value:
        a, b = left(event), right(event)
        return (a if a.__class__ is bool else _to_bool(a)) != (
            b if b.__class__ is bool else _to_bool(b)
        )

    return xor


def equality(equal: bool, left: Evaluator, right: Evaluator) -> Evaluator:
    """`=` (equal=True) and `!=`/`<>`; the left operand takes the right operand's type."""
    casts = values.CASTS

    def evaluate(event: Event) -> values.Value:
        a, b = left(event), right(event)
        kind = b.__class__
        if a.__class__ is not kind:
            a = casts[kind](a)
        return (a == b) is equal

    return evaluate


def comparison(symbol: str, left: Evaluator, right: Evaluator) -> Evaluator:
    """`< <= > >=` on Integers."""
    compare = _COMPARE[symbol]

    def evaluate(event: Event) -> values.Value:
        a, b = left(event), right(event)
        return compare(
            a if a.__class__ is int else _to_int(a), b if b.__class__ is int else _to_int(b)
        )

    return evaluate


def _math_error(message: str, position: int) -> errors.Failure:
    return errors.Failure(errors.Error(errors.ErrorKind.MATH, message, position), 0)


def _truncated_quotient(left: int, right: int) -> int:
    quotient = abs(left) // abs(right)
    return -quotient if (left < 0) != (right < 0) else quotient


def arithmetic(symbol: str, left: Evaluator, right: Evaluator, position: int) -> Evaluator:
    """`+ - * / %` on Integers."""

    def divide(a: int, b: int) -> int:
        if b == 0:
            raise _math_error("division by zero", position)
        return values.wrap(_truncated_quotient(a, b))

    def modulo(a: int, b: int) -> int:
        if b == 0:
            raise _math_error("modulo by zero", position)
        return a - b * _truncated_quotient(a, b)

    apply: Callable[[int, int], int] = {
        "+": lambda a, b: values.wrap(a + b),
        "-": lambda a, b: values.wrap(a - b),
        "*": lambda a, b: values.wrap(a * b),
        "/": divide,
        "%": modulo,
    }[symbol]

    def evaluate(event: Event) -> values.Value:
        a, b = left(event), right(event)
        return apply(
            a if a.__class__ is int else _to_int(a), b if b.__class__ is int else _to_int(b)
        )

    return evaluate


def like_(operand: Evaluator, pattern: str, negated: bool) -> Evaluator:
    matches = like.compile_pattern(pattern)

    def evaluate(event: Event) -> values.Value:
        value = operand(event)
        return matches(value if value.__class__ is str else values.to_string(value)) ^ negated

    return evaluate


def membership(
    operand: Evaluator,
    items: Sequence[Evaluator],
    negated: bool,
    constants: Sequence[values.Value] | None = None,
) -> Evaluator:
    """`x [NOT] IN (items)`; `constants` are the item values when all items are literals."""
    sets = _constant_sets(constants) if constants is not None else {}

    def evaluate(event: Event) -> values.Value:
        value = operand(event)
        kind = value.__class__
        members = sets.get(kind)
        if members is not None:
            return (value in members) ^ negated
        cast = values.CASTS[kind]
        for item in items:
            element = item(event)
            if element.__class__ is not kind:
                element = cast(element)
            if element == value:
                return not negated
        return negated

    return evaluate


def _constant_sets(constants: Sequence[values.Value]) -> dict[type, frozenset[values.Value]]:
    """The constant set cast to each type to which every element casts without error."""
    sets: dict[type, frozenset[values.Value]] = {}
    for kind, cast in values.CASTS.items():
        try:
            sets[kind] = frozenset(v if v.__class__ is kind else cast(v) for v in constants)
        except errors.Failure:
            continue
    return sets
