"""CESQL user-defined functions and the spec's overloading rules (section 3.5)."""

from __future__ import annotations

import pytest

from kevents.cesql import errors, expression, functions, values
from tests.unit import test_cesql_tck_operators as operators_tck


def test_user_defined_function() -> None:
    prefix = functions.Function(
        "HASPREFIX",
        (values.Type.STRING, values.Type.STRING),
        values.Type.BOOLEAN,
        lambda args: str(args[0]).startswith(str(args[1])),
    )
    registry = functions.BUILTINS.with_function(prefix)

    compiled = expression.compile("hasprefix(type, 'com.')", registry)

    assert compiled.evaluate(operators_tck.TCK_EVENT) == expression.Result(True)


def test_user_function_with_a_wrong_result_type_is_an_evaluation_error() -> None:
    broken = functions.Function("BROKEN", (), values.Type.INTEGER, lambda args: "nope")
    registry = functions.BUILTINS.with_function(broken)

    result = expression.compile("BROKEN()", registry).evaluate({})

    assert result.value == 0
    assert [e.kind for e in result.errors] == [errors.ErrorKind.FUNCTION_EVALUATION]


@pytest.mark.parametrize(
    "function",
    [
        functions.Function("ABS", (values.Type.STRING,), values.Type.INTEGER, len),
        functions.Function("LEFT", (), values.Type.STRING, str, variadic=values.Type.STRING),
        functions.Function("CONCAT", (values.Type.STRING,), values.Type.STRING, str),
    ],
    ids=["same name and arity", "variadic without enough fixed parameters", "second variadic"],
)
def test_overloads_that_break_the_spec_rules_are_rejected(function: functions.Function) -> None:
    with pytest.raises(functions.DefinitionError):
        functions.BUILTINS.with_function(function)
