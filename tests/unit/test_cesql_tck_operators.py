"""CESQL v1 TCK (cloudevents/spec cesql/cesql_tck): literals, operators, LIKE, sub-expressions.

Each case: id, expression, expected value, expected error kind (None = no error), and the
event overrides on top of a full valid event (`TCK_EVENT`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from kevents.cesql import errors, expression

TCK_EVENT: Mapping[str, object] = {
    "specversion": "1.0",
    "id": "full-event",
    "source": "http://example.com/source",
    "type": "com.example.type",
    "subject": "topic",
    "time": "2020-03-21T12:34:56.78Z",
    "datacontenttype": "application/json",
    "dataschema": "http://example.com/schema",
}

Case = tuple[str, str, object, str | None, dict[str, object]]

LITERALS: list[Case] = [
    ("TRUE literal", "TRUE", True, None, {}),
    ("FALSE literal", "FALSE", False, None, {}),
    ("0 literal", "0", 0, None, {}),
    ("1 literal", "1", 1, None, {}),
    ("String literal single quoted", "'abc'", "abc", None, {}),
    ("String literal double quoted", '"abc"', "abc", None, {}),
    ("String literal single quoted with case", "'aBc'", "aBc", None, {}),
    ("String literal double quoted with case", '"AbC"', "AbC", None, {}),
    ("Escaped string literal (1)", "'a\"b\\'c'", "a\"b'c", None, {}),
    ("Escaped string literal (2)", '"a\'b\\"c"', "a'b\"c", None, {}),
]

COMPARISON: list[Case] = [
    ("True is equal to false", "TRUE = FALSE", False, None, {}),
    ("False is equal to false", "FALSE = FALSE", True, None, {}),
    ("1 is equal to 2", "1 = 2", False, None, {}),
    ("2 is equal to 2", "2 = 2", True, None, {}),
    ("abc is equal to 123", "'abc' = '123'", False, None, {}),
    ("abc is equal to abc", "'abc' = 'abc'", True, None, {}),
    ("Equals with missing attribute", "missing = 2", False, "missingAttribute", {}),
    ("True is not equal to false", "TRUE != FALSE", True, None, {}),
    ("False is not equal to false", "FALSE != FALSE", False, None, {}),
    ("1 is not equal to 2", "1 != 2", True, None, {}),
    ("2 is not equal to 2", "2 != 2", False, None, {}),
    ("abc is not equal to 123", "'abc' != '123'", True, None, {}),
    ("abc is not equal to abc", "'abc' != 'abc'", False, None, {}),
    ("Not equal with missing attribute", "missing != 2", False, "missingAttribute", {}),
    ("True is not equal to false (diamond)", "TRUE <> FALSE", True, None, {}),
    ("False is not equal to false (diamond)", "FALSE <> FALSE", False, None, {}),
    ("1 is not equal to 2 (diamond)", "1 <> 2", True, None, {}),
    ("2 is not equal to 2 (diamond)", "2 <> 2", False, None, {}),
    ("abc is not equal to 123 (diamond)", "'abc' <> '123'", True, None, {}),
    ("abc is not equal to abc (diamond)", "'abc' <> 'abc'", False, None, {}),
    ("Diamond with missing attribute", "missing <> 2", False, "missingAttribute", {}),
    ("1 is less or equal than 2", "2 <= 2", True, None, {}),
    ("3 is less or equal than 2", "3 <= 2", False, None, {}),
    ("1 is less than 2", "1 < 2", True, None, {}),
    ("2 is less than 2", "2 < 2", False, None, {}),
    ("2 is greater or equal than 2", "2 >= 2", True, None, {}),
    ("2 is greater or equal than 3", "2 >= 3", False, None, {}),
    ("2 is greater than 1", "2 > 1", True, None, {}),
    ("2 is greater than 2", "2 > 2", False, None, {}),
    ("Less or equal with missing attribute", "missing <= 2", False, "missingAttribute", {}),
    ("implicit casting with string as right type", "true = 'TRUE'", False, None, {}),
    ("implicit casting with boolean as right type", "'TRUE' = true", True, None, {}),
]

LOGICAL: list[Case] = [
    ("False and false", "FALSE AND FALSE", False, None, {}),
    ("False and true", "FALSE AND TRUE", False, None, {}),
    ("True and false", "TRUE AND FALSE", False, None, {}),
    ("True and true", "TRUE AND TRUE", True, None, {}),
    ("AND is short circuit evaluated", "false and (1 != 1 / 0)", False, None, {}),
    ("AND evaluates right when left is true", "true and (1 != 1 / 0)", False, "math", {}),
    ("False or false", "FALSE OR FALSE", False, None, {}),
    ("False or true", "FALSE OR TRUE", True, None, {}),
    ("True or false", "TRUE OR FALSE", True, None, {}),
    ("True or true", "TRUE OR TRUE", True, None, {}),
    ("OR is short circuit evaluated", "true or (1 != 1 / 0)", True, None, {}),
    ("OR evaluates right when left is false", "false or (1 != 1 / 0)", False, "math", {}),
    ("False xor false", "FALSE XOR FALSE", False, None, {}),
    ("False xor true", "FALSE XOR TRUE", True, None, {}),
    ("True xor false", "TRUE XOR FALSE", True, None, {}),
    ("True xor true", "TRUE XOR TRUE", False, None, {}),
]

MATH: list[Case] = [
    ("Operator precedence without parenthesis", "4 * 2 + 4 / 2", 10, None, {}),
    ("Operator precedence with parenthesis", "4 * (2 + 4) / 2", 12, None, {}),
    ("Truncated division", "5 / 3", 1, None, {}),
    ("Division by zero returns 0 and fail", "5 / 0", 0, "math", {}),
    ("Module", "5 % 2", 1, None, {}),
    ("Module by zero returns 0 and fail", "5 % 0", 0, "math", {}),
    ("Missing attribute in division", "missing / 0", 0, "missingAttribute", {}),
    ("Missing attribute in modulo", "missing % 0", 0, "missingAttribute", {}),
    ("Positive plus positive number", "4 + 1", 5, None, {}),
    ("Negative plus positive number", "-4 + 1", -3, None, {}),
    ("Negative plus Negative number", "-4 + -1", -5, None, {}),
    ("Positive plus negative number", "4 + -1", 3, None, {}),
    ("Positive minus positive number", "4 - 1", 3, None, {}),
    ("Negative minus positive number", "-4 - 1", -5, None, {}),
    ("Implicit casting, with left value string", "'5' + 3", 8, None, {}),
    ("Implicit casting, with right value string", "5 + '3'", 8, None, {}),
    ("Implicit casting, with both values string", "'5' + '3'", 8, None, {}),
    ("Implicit casting, with boolean value", "5 + TRUE", 6, None, {}),
    ("Implicit casting, with invalid string value", "'5avc4' + 10", 0, "cast", {}),
]

NEGATE_AND_NOT: list[Case] = [
    ("Minus 10", "-10", -10, None, {}),
    ("Minus minus 10", "--10", 10, None, {}),
    ("Minus 10 with casting", "-'10'", -10, None, {}),
    ("Minus minus 10 with casting", "--'10'", 10, None, {}),
    ("Minus with boolean cast", "-TRUE", -1, None, {}),
    ("Minus with missing attribute", "-missing", 0, "missingAttribute", {}),
    ("Not true", "NOT TRUE", False, None, {}),
    ("Not false", "NOT FALSE", True, None, {}),
    ("Not true with casting", "NOT 'TRUE'", False, None, {}),
    ("Not false with casting", "NOT 'FALSE'", True, None, {}),
    ("Not of an integer casts it to Boolean", "NOT 10", False, None, {}),
    ("Not missing attribute", "NOT missing", False, "missingAttribute", {}),
]

SUB_EXPRESSIONS: list[Case] = [
    ("Sub expression with literal", "(TRUE)", True, None, {}),
    ("Math (1)", "4 * (2 + 3)", 20, None, {}),
    ("Math (2)", "(2 + 3) * 4", 20, None, {}),
]

LIKE: list[Case] = [
    ("Exact match (1)", "'abc' LIKE 'abc'", True, None, {}),
    ("Exact match (2)", "'ab\\c' LIKE 'ab\\c'", True, None, {}),
    ("Exact match (negate)", "'abc' NOT LIKE 'abc'", False, None, {}),
    ("Percentage operator (1)", "'abc' LIKE 'a%b%c'", True, None, {}),
    ("Percentage operator (2)", "'azbc' LIKE 'a%b%c'", True, None, {}),
    ("Percentage operator (3)", "'azzzbzzzc' LIKE 'a%b%c'", True, None, {}),
    ("Percentage operator (4)", "'a%b%c' LIKE 'a%b%c'", True, None, {}),
    ("Percentage operator (5)", "'ac' LIKE 'abc'", False, None, {}),
    ("Percentage operator (6)", "'' LIKE 'abc'", False, None, {}),
    ("Percentage operator (7)", "'.ab.cde.' LIKE '.%.%.'", True, None, {}),
    ("Percentage operator (8)", "'ab.cde' LIKE '.%.%.'", False, None, {}),
    ("Underscore operator (1)", "'abc' LIKE 'a_b_c'", False, None, {}),
    ("Underscore operator (2)", "'a_b_c' LIKE 'a_b_c'", True, None, {}),
    ("Underscore operator (3)", "'abzc' LIKE 'a_b_c'", False, None, {}),
    ("Underscore operator (4)", "'azbc' LIKE 'a_b_c'", False, None, {}),
    ("Underscore operator (5)", "'azbzc' LIKE 'a_b_c'", True, None, {}),
    ("Underscore operator (6)", "'.a.b.' LIKE '._._.'", True, None, {}),
    ("Underscore operator (7)", "'abcd.' LIKE '._._.'", False, None, {}),
    ("Escaped underscore wildcards (1)", "'a_b_c' LIKE 'a\\_b\\_c'", True, None, {}),
    ("Escaped underscore wildcards (2)", "'a_b_c' NOT LIKE 'a\\_b\\_c'", False, None, {}),
    ("Escaped underscore wildcards (3)", "'azbzc' LIKE 'a\\_b\\_c'", False, None, {}),
    ("Escaped underscore wildcards (4)", "'abc' LIKE 'a\\_b\\_c'", False, None, {}),
    ("Escaped percentage wildcards (1)", "'abc' LIKE 'a\\%b\\%c'", False, None, {}),
    ("Escaped percentage wildcards (2)", "'a%b%c' LIKE 'a\\%b\\%c'", True, None, {}),
    ("Escaped percentage wildcards (3)", "'azbzc' LIKE 'a\\%b\\%c'", False, None, {}),
    ("Escaped percentage wildcards (4)", "'abc' LIKE 'a\\%b\\%c'", False, None, {}),
    (
        "With access to event attributes",
        "myext LIKE 'abc%123\\%456\\_d_f'",
        True,
        None,
        {"myext": "abc123123%456_dzf"},
    ),
    (
        "With access to event attributes (negated)",
        "myext NOT LIKE 'abc%123\\%456\\_d_f'",
        False,
        None,
        {"myext": "abc123123%456_dzf"},
    ),
    ("With type coercion from int (1)", "234 LIKE '23_'", True, None, {}),
    ("With type coercion from int (2)", "2344 LIKE '23%'", True, None, {}),
    ("With type coercion from int (3)", "2344 LIKE '23_'", False, None, {}),
    ("With type coercion from bool (1)", "TRUE LIKE 'tr%'", True, None, {}),
    ("With type coercion from bool (2)", "TRUE LIKE '%ue'", True, None, {}),
    ("With type coercion from bool (3)", "FALSE LIKE 'tr%'", False, None, {}),
    ("With type coercion from bool (4)", "FALSE LIKE 'fal%'", True, None, {}),
]

ALL = LITERALS + COMPARISON + LOGICAL + MATH + NEGATE_AND_NOT + SUB_EXPRESSIONS + LIKE


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


def test_like_pattern_must_be_a_string_literal() -> None:
    with pytest.raises(errors.ParseError):
        expression.compile("x LIKE 123")
