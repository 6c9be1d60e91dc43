"""CESQL functions (spec 3.5): the built-ins and a registry resolving a name and arity.

Arguments are cast to the declared parameter types before the implementation runs (`ANY`
means no cast). An implementation that cannot give a regular result raises `errors.Failure`
with the value the spec defines for that case (`LEFT('abc', -2)` is `'abc'` plus an error).

Besides the spec's string and math functions the registry has the casting functions the TCK
uses: `INT(x)`, `BOOL(x)`, `STRING(x)` (explicit casts with the implicit casts' semantics) and
`IS_INT(x)`, `IS_BOOL(x)` (true when `x` is of that type or is a String that casts to it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from kevents.cesql import errors, values

Impl = Callable[[Sequence[values.Value]], values.Value]
T = values.Type

# Unicode White_Space (not str.isspace, which also strips the control characters U+001C-001F).
_WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
_WHITESPACE += "\u2028\u2029\u202f\u205f\u3000"


@dataclasses.dataclass(frozen=True, slots=True)
class Function:
    """A function signature: fixed parameter types, optional variadic type, return type."""

    name: str
    parameters: tuple[values.Type, ...]
    returns: values.Type
    impl: Impl = dataclasses.field(compare=False, repr=False)
    variadic: values.Type | None = None

    def accepts(self, arity: int) -> bool:
        fixed = len(self.parameters)
        return arity == fixed or (self.variadic is not None and arity > fixed)

    def parameter(self, index: int) -> values.Type:
        if index < len(self.parameters):
            return self.parameters[index]
        assert self.variadic is not None
        return self.variadic


def _evaluation_error(message: str, value: values.Value) -> errors.Failure:
    return errors.Failure(errors.Error(errors.ErrorKind.FUNCTION_EVALUATION, message), value)


def _left(args: Sequence[values.Value]) -> values.Value:
    text, count = str(args[0]), int(args[1])
    if count < 0:
        raise _evaluation_error(f"LEFT length {count} is negative", text)
    return text[:count]


def _right(args: Sequence[values.Value]) -> values.Value:
    text, count = str(args[0]), int(args[1])
    if count < 0:
        raise _evaluation_error(f"RIGHT length {count} is negative", text)
    return text[len(text) - count :] if count < len(text) else text


def _substring(args: Sequence[values.Value]) -> values.Value:
    text, position = str(args[0]), int(args[1])
    size = len(text)
    if position > size or position < -size:
        raise _evaluation_error(f"SUBSTRING position {position} is outside the string", "")
    length = int(args[2]) if len(args) > 2 else size
    if length < 0:
        raise _evaluation_error(f"SUBSTRING length {length} is negative", "")
    if position == 0:
        return ""
    start = position - 1 if position > 0 else size + position
    return text[start : start + length]


def _abs(args: Sequence[values.Value]) -> values.Value:
    number = int(args[0])
    if number == values.INT_MIN:
        error = errors.Error(errors.ErrorKind.MATH, "ABS(-2147483648) overflows 32 bits")
        raise errors.Failure(error, values.INT_MAX)
    return abs(number)


def _can_cast(value: values.Value, target: values.Type) -> bool:
    if values.type_of(value) is target:
        return True
    if not isinstance(value, str):
        return False
    try:
        values.cast(value, target)
    except errors.Failure:
        return False
    return True


_BUILTINS = (
    Function("LENGTH", (T.STRING,), T.INTEGER, lambda a: len(str(a[0]))),
    Function("CONCAT", (), T.STRING, lambda a: "".join(map(str, a)), variadic=T.STRING),
    Function(
        "CONCAT_WS",
        (T.STRING,),
        T.STRING,
        lambda a: str(a[0]).join(map(str, a[1:])),
        variadic=T.STRING,
    ),
    Function("LOWER", (T.STRING,), T.STRING, lambda a: str(a[0]).lower()),
    Function("UPPER", (T.STRING,), T.STRING, lambda a: str(a[0]).upper()),
    Function("TRIM", (T.STRING,), T.STRING, lambda a: str(a[0]).strip(_WHITESPACE)),
    Function("LEFT", (T.STRING, T.INTEGER), T.STRING, _left),
    Function("RIGHT", (T.STRING, T.INTEGER), T.STRING, _right),
    Function("SUBSTRING", (T.STRING, T.INTEGER), T.STRING, _substring),
    Function("SUBSTRING", (T.STRING, T.INTEGER, T.INTEGER), T.STRING, _substring),
    Function("ABS", (T.INTEGER,), T.INTEGER, _abs),
    Function("INT", (T.ANY,), T.INTEGER, lambda a: values.to_integer(a[0])),
    Function("BOOL", (T.ANY,), T.BOOLEAN, lambda a: values.to_boolean(a[0])),
    Function("STRING", (T.ANY,), T.STRING, lambda a: values.to_string(a[0])),
    Function("IS_INT", (T.ANY,), T.BOOLEAN, lambda a: _can_cast(a[0], T.INTEGER)),
    Function("IS_BOOL", (T.ANY,), T.BOOLEAN, lambda a: _can_cast(a[0], T.BOOLEAN)),
)


class DefinitionError(ValueError):
    """A function definition clashes with the overloading rules of spec 3.5."""


@dataclasses.dataclass(frozen=True)
class Registry:
    """Functions by upper-case name; `with_function()` returns an extended copy."""

    functions: Mapping[str, tuple[Function, ...]]

    def resolve(self, name: str, arity: int) -> Function | None:
        """The overload of `name` accepting `arity` arguments, if any."""
        for function in self.functions.get(name.upper(), ()):
            if function.accepts(arity):
                return function
        return None

    def with_function(self, function: Function) -> Registry:
        """A registry that also has `function`; raises `DefinitionError` on ambiguity."""
        name = function.name.upper()
        if function.returns is values.Type.ANY or function.variadic is values.Type.ANY:
            raise DefinitionError(f"{name}: return and variadic types must be concrete")
        overloads = self.functions.get(name, ())
        for other in overloads:
            _check_overload(function, other)
        merged = dict(self.functions)
        merged[name] = (*overloads, dataclasses.replace(function, name=name))
        return Registry(merged)


def _check_overload(new: Function, old: Function) -> None:
    fixed_new, fixed_old = len(new.parameters), len(old.parameters)
    if new.variadic is not None and old.variadic is not None:
        raise DefinitionError(f"{new.name} may have only one variadic overload")
    variadic, fixed = (new, old) if new.variadic is not None else (old, new)
    if variadic.variadic is not None and len(variadic.parameters) <= len(fixed.parameters):
        raise DefinitionError(
            f"{new.name}: a variadic overload needs more fixed parameters than any other overload"
        )
    if new.variadic is None and old.variadic is None and fixed_new == fixed_old:
        raise DefinitionError(f"{new.name} already has an overload with {fixed_new} parameters")


def _builtins() -> Registry:
    registry = Registry({})
    for function in _BUILTINS:
        registry = registry.with_function(function)
    return registry


BUILTINS = _builtins()
