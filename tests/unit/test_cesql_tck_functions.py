"""CESQL v1 TCK (cloudevents/spec cesql/cesql_tck): functions, casts, attributes, examples.

Each case: id, expression, expected value, expected error kind (None = no error), and the
event overrides on top of a full valid event (`TCK_EVENT`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from kevents.cesql import errors, expression
from tests.unit import test_cesql_tck_operators as operators_tck

TCK_EVENT: Mapping[str, object] = operators_tck.TCK_EVENT
Case = operators_tck.Case

CASTING: list[Case] = [
    ("Cast '1' to integer", "INT('1')", 1, None, {}),
    ("Cast '-1' to integer", "INT('-1')", -1, None, {}),
    ("Cast identity 1", "INT(1)", 1, None, {}),
    ("Cast identity -1", "INT(-1)", -1, None, {}),
    ("Cast from TRUE to int", "INT(TRUE)", 1, None, {}),
    ("Cast from FALSE to int", "INT(FALSE)", 0, None, {}),
    ("Invalid cast from string to int", "INT('ABC')", 0, "cast", {}),
    ("Cast 'TRUE' to boolean", "BOOL('TRUE')", True, None, {}),
    ("Cast 'false' to boolean", 'BOOL("false")', False, None, {}),
    ("Cast identity TRUE", "BOOL(TRUE)", True, None, {}),
    ("Cast identity FALSE", "BOOL(FALSE)", False, None, {}),
    ("Invalid cast from string to boolean", "BOOL('ABC')", False, "cast", {}),
    ("Cast from 1 to boolean", "BOOL(1)", True, None, {}),
    ("Cast from 0 to boolean", "BOOL(0)", False, None, {}),
    ("Cast from 100 to boolean", "BOOL(100)", True, None, {}),
    ("Cast from -50 to boolean", "BOOL(-50)", True, None, {}),
    ("Cast TRUE to string", "STRING(TRUE)", "true", None, {}),
    ("Cast FALSE to string", "STRING(FALSE)", "false", None, {}),
    ("Cast 1 to string", "STRING(1)", "1", None, {}),
    ("Cast -1 to string", "STRING(-1)", "-1", None, {}),
    ("Cast identity abc", 'STRING("abc")', "abc", None, {}),
]

INTEGER_FUNCTIONS: list[Case] = [
    ("ABS (1)", "ABS(10)", 10, None, {}),
    ("ABS (2)", "ABS(-10)", 10, None, {}),
    ("ABS (3)", "ABS(0)", 0, None, {}),
    ("ABS overflow", "ABS(-2147483648)", 2147483647, "math", {}),
]

STRING_FUNCTIONS: list[Case] = [
    ("LENGTH (1)", "LENGTH('abc')", 3, None, {}),
    ("LENGTH (2)", "LENGTH('')", 0, None, {}),
    ("LENGTH (3)", "LENGTH('2')", 1, None, {}),
    ("LENGTH (4)", "LENGTH(TRUE)", 4, None, {}),
    ("CONCAT (1)", "CONCAT('a', 'b', 'c')", "abc", None, {}),
    ("CONCAT (2)", "CONCAT()", "", None, {}),
    ("CONCAT (3)", "CONCAT('a')", "a", None, {}),
    ("CONCAT_WS (1)", "CONCAT_WS(',', 'a', 'b', 'c')", "a,b,c", None, {}),
    ("CONCAT_WS (2)", "CONCAT_WS(',')", "", None, {}),
    ("CONCAT_WS (3)", "CONCAT_WS(',', 'a')", "a", None, {}),
    ("CONCAT_WS without arguments doesn't exist", "CONCAT_WS()", False, "missingFunction", {}),
    ("LOWER (1)", "LOWER('ABC')", "abc", None, {}),
    ("LOWER (2)", "LOWER('AbC')", "abc", None, {}),
    ("LOWER (3)", "LOWER('abc')", "abc", None, {}),
    ("UPPER (1)", "UPPER('ABC')", "ABC", None, {}),
    ("UPPER (2)", "UPPER('AbC')", "ABC", None, {}),
    ("UPPER (3)", "UPPER('abc')", "ABC", None, {}),
    ("TRIM (1)", "TRIM('   a b c   ')", "a b c", None, {}),
    ("TRIM (2)", "TRIM('   a b c')", "a b c", None, {}),
    ("TRIM (3)", "TRIM('a b c   ')", "a b c", None, {}),
    ("TRIM (4)", "TRIM('a b c')", "a b c", None, {}),
    ("LEFT (1)", "LEFT('abc', 2)", "ab", None, {}),
    ("LEFT (2)", "LEFT('abc', 10)", "abc", None, {}),
    ("LEFT (3)", "LEFT('', 0)", "", None, {}),
    ("LEFT (4)", "LEFT('abc', -2)", "abc", "functionEvaluation", {}),
    ("RIGHT (1)", "RIGHT('abc', 2)", "bc", None, {}),
    ("RIGHT (2)", "RIGHT('abc', 10)", "abc", None, {}),
    ("RIGHT (3)", "RIGHT('', 0)", "", None, {}),
    ("RIGHT (4)", "RIGHT('abc', -2)", "abc", "functionEvaluation", {}),
    ("SUBSTRING (1)", "SUBSTRING('abcdef', 1)", "abcdef", None, {}),
    ("SUBSTRING (2)", "SUBSTRING('abcdef', 2)", "bcdef", None, {}),
    ("SUBSTRING (3)", "SUBSTRING('Quadratically', 5)", "ratically", None, {}),
    ("SUBSTRING (4)", "SUBSTRING('Sakila', -3)", "ila", None, {}),
    ("SUBSTRING (5)", "SUBSTRING('abcdef', 1, 6)", "abcdef", None, {}),
    ("SUBSTRING (6)", "SUBSTRING('abcdef', 2, 4)", "bcde", None, {}),
    ("SUBSTRING (7)", "SUBSTRING('Sakila', -5, 3)", "aki", None, {}),
    ("SUBSTRING (8)", "SUBSTRING('Quadratically', 0)", "", None, {}),
    ("SUBSTRING (9)", "SUBSTRING('Quadratically', 0, 1)", "", None, {}),
    ("SUBSTRING (10)", "SUBSTRING('abcdef', 10)", "", "functionEvaluation", {}),
    ("SUBSTRING (11)", "SUBSTRING('abcdef', -10)", "", "functionEvaluation", {}),
    ("SUBSTRING (12)", "SUBSTRING('abcdef', 10, 10)", "", "functionEvaluation", {}),
    ("SUBSTRING (13)", "SUBSTRING('abcdef', -10, 10)", "", "functionEvaluation", {}),
]

CONTEXT_ATTRIBUTES: list[Case] = [
    ("Access to required attribute", "id", "myId", None, {"id": "myId"}),
    ("Access to optional attribute", "subject", "mySubject", None, {"subject": "mySubject"}),
    ("Access to optional boolean extension", "mybool", True, None, {"mybool": True}),
    ("Access to optional integer extension", "myint", 10, None, {"myint": 10}),
    (
        "Access to optional string extension",
        "myext",
        "my extension",
        None,
        {"myext": "my extension"},
    ),
    (
        "URL type cohercion to string",
        "source",
        "http://localhost/source",
        None,
        {"source": "http://localhost/source"},
    ),
    (
        "Timestamp type cohercion to string",
        "time",
        "2018-04-26T14:48:09+02:00",
        None,
        {"time": "2018-04-26T14:48:09+02:00"},
    ),
]

SPEC_EXAMPLES: list[Case] = [
    (
        "Case insensitive hops (1)",
        "int(hop) < int(ttl) and int(hop) < 1000",
        True,
        None,
        {"hop": "5", "ttl": "10"},
    ),
    (
        "Case insensitive hops (2)",
        "INT(hop) < INT(ttl) AND INT(hop) < 1000",
        True,
        None,
        {"hop": "5", "ttl": "10"},
    ),
    ("Case insensitive hops (3)", "hop < ttl", True, None, {"hop": "5", "ttl": "10"}),
    ("Equals with casting (1)", "sequence = 5", True, None, {"sequence": "5"}),
    ("Equals with casting (2)", "sequence = 5", False, None, {"sequence": "6"}),
    (
        "Logic expression (1)",
        "firstname = 'Francesco' OR subject = 'Francesco'",
        True,
        None,
        {"subject": "Francesco", "firstname": "Doug"},
    ),
    (
        "Logic expression (2)",
        "firstname = 'Francesco' OR subject = 'Francesco'",
        True,
        None,
        {"firstname": "Francesco", "subject": "Doug"},
    ),
    (
        "Logic expression (3)",
        "(firstname = 'Francesco' AND lastname = 'Guardiani') OR subject = 'Francesco Guardiani'",
        True,
        None,
        {"subject": "Doug", "firstname": "Francesco", "lastname": "Guardiani"},
    ),
    (
        "Logic expression (4)",
        "(firstname = 'Francesco' AND lastname = 'Guardiani') OR subject = 'Francesco Guardiani'",
        True,
        None,
        {"subject": "Francesco Guardiani", "firstname": "Doug", "lastname": "Davis"},
    ),
    ("Subject exists", "EXISTS subject", True, None, {"subject": "Francesco Guardiani"}),
    ("Booleans cast to lower-case strings", 'TRUE = "true" AND FALSE = "false"', True, None, {}),
    ("Booleans never cast to upper case", 'TRUE = "TRUE" OR FALSE = "FALSE"', False, None, {}),
]

ALL = CASTING + INTEGER_FUNCTIONS + STRING_FUNCTIONS + CONTEXT_ATTRIBUTES + SPEC_EXAMPLES


@pytest.mark.parametrize(
    ("expr", "expected", "error", "overrides"),
    [case[1:] for case in ALL],
    ids=[case[0] for case in ALL],
)
def test_tck(expr: str, expected: object, error: str | None, overrides: dict[str, object]) -> None:
    result = expression.compile(expr).evaluate({**TCK_EVENT, **overrides})

    assert [e.kind for e in result.errors] == ([errors.ErrorKind(error)] if error else [])
    assert result.value == expected
    assert type(result.value) is type(expected)


def test_absent_optional_attribute_is_false_with_a_missing_attribute_error() -> None:
    event = {"specversion": "1.0", "id": "myId", "source": "localhost.localdomain", "type": "t"}

    result = expression.compile("subject").evaluate(event)

    assert result.value is False
    assert [e.kind for e in result.errors] == [errors.ErrorKind.MISSING_ATTRIBUTE]
