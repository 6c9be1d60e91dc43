"""CESQL: Subscriptions API recreations (TCK), IN, EXISTS, precedence, case, parse errors."""

from __future__ import annotations

import pytest

from kevents.cesql import errors, expression
from tests.unit import test_cesql_tck_operators as operators_tck

Case = operators_tck.Case
DNF = (
    "(id = 'myId' AND type LIKE '%.success') OR "
    "(id = 'notmyId' AND source LIKE 'http://%' AND type LIKE '%.warning')"
)
CNF = (
    "(id = 'myId' OR type LIKE '%.success') AND "
    "(id = 'notmyId' OR source LIKE 'https://%' OR type LIKE '%.warning')"
)
WEB: dict[str, object] = {"id": "myId", "source": "http://www.some-website.ca"}

SUBSCRIPTIONS_API: list[Case] = [
    ("Prefix (1)", "source LIKE 'https://%'", True, None, {"source": "https://example.com"}),
    ("Prefix (2)", "source LIKE 'https://%'", False, None, {"source": "http://example.com"}),
    ("Prefix on extension", "myext LIKE 'custom%'", True, None, {"myext": "customext"}),
    ("Prefix on missing extension", "myext LIKE 'custom%'", False, "missingAttribute", {}),
    ("Suffix (1)", "type like '%.error'", True, None, {"type": "com.github.error"}),
    ("Suffix (2)", "type like '%.error'", False, None, {"type": "com.github.success"}),
    ("Suffix on extension", "myext LIKE '%ext'", True, None, {"myext": "customext"}),
    ("Suffix on missing extension", "myext LIKE '%ext'", False, "missingAttribute", {}),
    ("Exact (1)", "id = 'myId'", True, None, {"id": "myId"}),
    ("Exact (2)", "id = 'myId'", False, None, {"id": "notmyId"}),
    ("Exact on extension", "myext = 'customext'", True, None, {"myext": "customext"}),
    ("Exact on missing extension", "myext = 'customext'", False, "missingAttribute", {}),
    ("Prefix AND suffix (1)", "id LIKE 'my%' AND source LIKE '%.ca'", True, None, WEB),
    (
        "Prefix AND suffix (2)",
        "id LIKE 'my%' AND source LIKE '%.ca'",
        False,
        None,
        {"id": "myId", "source": "http://www.some-website.com"},
    ),
    (
        "Prefix AND suffix (3)",
        "myext LIKE 'custom%' AND type LIKE '%.error'",
        True,
        None,
        {"myext": "customext", "type": "com.github.error"},
    ),
    (
        "Prefix AND suffix (4)",
        "type LIKE 'example.%' AND myext LIKE 'custom%'",
        False,
        "missingAttribute",
        {"type": "example.event.type"},
    ),
    ("Prefix OR suffix (1)", "id LIKE 'my%' OR source LIKE '%.ca'", True, None, {"id": "myId"}),
    ("Prefix OR suffix (3)", "id LIKE 'my%' OR source LIKE '%.ca'", True, None, WEB),
    ("Prefix OR suffix (4)", "id LIKE 'my%' OR source LIKE '%.ca'", False, None, {}),
    ("Prefix OR suffix (5)", "id LIKE 'my%' OR myext LIKE '%ext'", False, "missingAttribute", {}),
    ("DNF (1)", DNF, True, None, {"id": "myId", "type": "example.event.success"}),
    (
        "DNF (2)",
        DNF,
        True,
        None,
        {"id": "notmyId", "type": "example.event.warning", "source": "http://localhost"},
    ),
    (
        "DNF (3)",
        DNF,
        False,
        None,
        {"id": "notmyId", "type": "example.event.warning", "source": "https://localhost"},
    ),
    (
        "DNF (4)",
        DNF + " OR (myext = 'cusomext')",
        False,
        "missingAttribute",
        {"id": "notmyId", "type": "example.event.warning", "source": "https://localhost"},
    ),
    (
        "CNF (1)",
        CNF,
        True,
        None,
        {"id": "myId", "type": "example.event.warning", "source": "http://localhost"},
    ),
    (
        "CNF (2)",
        CNF,
        True,
        None,
        {"id": "notmyId", "type": "example.event.success", "source": "http://localhost"},
    ),
    (
        "CNF (3)",
        CNF,
        False,
        None,
        {"id": "notmyId", "type": "example.event.warning", "source": "http://localhost"},
    ),
    (
        "CNF (4)",
        CNF,
        False,
        None,
        {"id": "myId", "type": "example.event.success", "source": "http://localhost"},
    ),
    (
        "CNF (5)",
        CNF + " AND (myext = 'customext')",
        False,
        "missingAttribute",
        {"id": "myId", "type": "example.event.warning", "source": "http://localhost"},
    ),
]

OWN: list[Case] = [
    (
        "issue 12 example",
        "type LIKE 'dev.knative.%' AND source = 'x'",
        True,
        None,
        {"type": "dev.knative.apiserver.resource.add", "source": "x"},
    ),
    (
        "issue 12 example, other source",
        "type LIKE 'dev.knative.%' AND source = 'x'",
        False,
        None,
        {"type": "dev.knative.apiserver.resource.add", "source": "y"},
    ),
    ("extension by value", "buildstatus = 'failed'", True, None, {"buildstatus": "failed"}),
    ("IN integers", "123 IN (123, 456)", True, None, {}),
    ("IN integers, absent", "1 IN (123, 456)", False, None, {}),
    ("NOT IN integers", "1 NOT IN (123, 456)", True, None, {}),
    ("IN strings", "'abc' IN ('abc', 'def')", True, None, {}),
    ("IN casts elements to the left type", "123 IN ('123', 'abc')", True, None, {}),
    ("IN casts booleans", "TRUE IN ('true')", True, None, {}),
    ("IN first match stops", "1 IN (1, 'x')", True, None, {}),
    ("IN cast error", "1 IN ('x', 1)", False, "cast", {}),
    ("IN with attribute", "type IN ('a', 'com.example.type')", True, None, {}),
    ("IN with attribute elements", "'topic' IN (id, subject)", True, None, {}),
    ("IN missing attribute", "missing IN (1, 2)", False, "missingAttribute", {}),
    ("not in, case insensitive", "1 not in (2)", True, None, {}),
    ("EXISTS required id", "EXISTS id", True, None, {}),
    ("EXISTS missing", "EXISTS missing", False, None, {}),
    ("EXISTS extension", "EXISTS myext", True, None, {"myext": "x"}),
    ("exists lower case", "exists subject", True, None, {}),
    ("AND OR XOR share one level, left to right", "TRUE OR TRUE AND FALSE", False, None, {}),
    ("parentheses group", "TRUE OR (TRUE AND FALSE)", True, None, {}),
    ("NOT binds tighter than =", "NOT FALSE = FALSE", False, None, {}),
    ("LIKE binds tighter than +", "1 + 2 LIKE '2'", 2, None, {}),
    ("comparisons chain left to right", "1 < 2 = TRUE", True, None, {}),
    ("subtraction is left associative", "10 - 4 - 3", 3, None, {}),
    ("division is left associative", "100 / 10 / 5", 2, None, {}),
    ("no space subtraction", "4-1", 3, None, {}),
    ("signed literal", "+5 + -5", 0, None, {}),
    ("most negative literal", "-2147483648", -2147483648, None, {}),
    ("addition wraps", "2147483647 + 1", -2147483648, None, {}),
    ("multiplication wraps", "65536 * 65536", 0, None, {}),
    ("negation wraps", "-(-2147483648)", -2147483648, None, {}),
    ("truncated division, negative", "-7 / 2", -3, None, {}),
    ("remainder has the sign of the dividend", "-7 % 2", -1, None, {}),
    ("remainder, negative divisor", "7 % -2", 1, None, {}),
    ("comparison of non-numbers", "'a' < 'b'", False, "cast", {}),
    ("cast overflow", "'2147483648' + 0", 0, "cast", {}),
    ("cast with spaces is invalid", "' 1' + 0", 0, "cast", {}),
    ("integer attribute compares to string", "myint = '10'", True, None, {"myint": 10}),
    ("boolean attribute", "mybool AND TRUE", True, None, {"mybool": True}),
    ("keywords in any case", "tRuE aNd NoT fAlSe", True, None, {}),
    ("functions in any case", "lower(UpPeR('aB')) = 'ab'", True, None, {}),
    ("attribute names in any case", "TYPE = 'com.example.type'", True, None, {}),
    ("string equality is case sensitive", "'abc' = 'ABC'", False, None, {}),
    ("LIKE is case sensitive", "'abc' LIKE 'A%'", False, None, {}),
    ("doubled quote in literal", "'it''s' = \"it's\"", True, None, {}),
    ("unknown function", "NOPE(1)", False, "missingFunction", {}),
    ("wrong arity", "ABS(1, 2)", False, "missingFunction", {}),
    ("argument cast error", "ABS('x')", 0, "cast", {}),
    ("IS_INT of a numeric string", "IS_INT('-12')", True, None, {}),
    ("IS_INT of a word", "IS_INT('abc')", False, None, {}),
    ("IS_INT of an integer", "IS_INT(3)", True, None, {}),
    ("IS_BOOL of 'False'", "IS_BOOL('False')", True, None, {}),
    ("IS_BOOL of an integer", "IS_BOOL(1)", False, None, {}),
    ("error inside a function argument", "LENGTH(STRING(1 / 0))", 0, "math", {}),
    (
        "function error below the root gives the zero value",
        "LEFT('abc', -1) = 'abc'",
        False,
        "functionEvaluation",
        {},
    ),
    ("TRIM keeps control characters", "LENGTH(TRIM('\x1fa\u3000'))", 2, None, {}),
    ("LENGTH counts characters", "LENGTH('h\u00e9llo')", 5, None, {}),
    ("timestamp attribute as RFC 3339", "time LIKE '2020-03-21T%Z'", True, None, {}),
]

ALL = SUBSCRIPTIONS_API + OWN


@pytest.mark.parametrize(
    ("expr", "expected", "error", "overrides"),
    [case[1:] for case in ALL],
    ids=[case[0] for case in ALL],
)
def test_evaluation(
    expr: str, expected: object, error: str | None, overrides: dict[str, object]
) -> None:
    result = expression.compile(expr).evaluate({**operators_tck.TCK_EVENT, **overrides})

    assert [e.kind for e in result.errors] == ([errors.ErrorKind(error)] if error else [])
    assert result.value == expected
    assert type(result.value) is type(expected)


PARSE_ERRORS = [
    ("empty", "", 1),
    ("dangling operator", "1 +", 4),
    ("unbalanced parenthesis", "(1 + 2", 7),
    ("LIKE needs a string literal", "x LIKE y", 8),
    ("empty IN set", "x IN ()", 7),
    ("EXISTS needs an attribute", "EXISTS 'x'", 8),
    ("integer literal out of range", "2147483648", 1),
    ("integer literal below range", "x = -2147483649", 5),
    ("underscore in attribute name", "my_ext = 1", 1),
    ("digit in function name", "F1(2)", 1),
    ("keyword as attribute", "x = and", 5),
    ("unknown character", "x = #", 5),
    ("unterminated string", "x = 'abc", 5),
    ("two literals", "1 2", 3),
    ("double equals", "x == 1", 4),
    ("unary plus on a name", "+x", 1),
]


@pytest.mark.parametrize(
    ("text", "column"), [c[1:] for c in PARSE_ERRORS], ids=[c[0] for c in PARSE_ERRORS]
)
def test_parse_errors_report_their_column(text: str, column: int) -> None:
    with pytest.raises(errors.ParseError) as caught:
        expression.compile(text)

    assert caught.value.column == column
    assert str(caught.value).startswith(f"parse error at column {column}: ")
    assert caught.value.error.kind is errors.ErrorKind.PARSE


def test_parse_error_on_a_later_line_names_line_and_column() -> None:
    with pytest.raises(errors.ParseError, match="at line 2, column 3"):
        expression.compile("TRUE AND\n  )")


def test_deep_nesting_does_not_raise_recursion_error() -> None:
    with pytest.raises(errors.ParseError, match="nested too deeply"):
        expression.compile("NOT " * 5000 + "TRUE")


def test_matches_is_true_only_for_boolean_true_without_error() -> None:
    event = dict(operators_tck.TCK_EVENT)

    assert expression.compile("subject = 'topic'").matches(event)
    assert not expression.compile("'true'").matches(event)  # a String, not a Boolean
    assert not expression.compile("1").matches(event)
    assert not expression.compile("missing = 'x' OR TRUE").matches(event)


def test_unknown_functions_are_listed_without_failing_compilation() -> None:
    compiled = expression.compile("LENGTH(x) > 1 AND NOPE(x) AND ABS()")

    found = expression.unknown_functions(compiled)

    assert [(e.kind, e.position) for e in found] == [
        (errors.ErrorKind.MISSING_FUNCTION, 18),
        (errors.ErrorKind.MISSING_FUNCTION, 30),
    ]
