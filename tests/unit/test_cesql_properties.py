"""CESQL properties checked with hypothesis: 32-bit arithmetic and LIKE against oracles."""

from __future__ import annotations

import functools

from hypothesis import given
from hypothesis import strategies as st

from kevents.cesql import expression, like

int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)


def two_complement(number: int) -> int:
    return (number + 2**31) % 2**32 - 2**31


def evaluate(text: str, **event: object) -> object:
    result = expression.compile(text).evaluate(event)
    assert result.errors == ()
    return result.value


@given(int32, int32, st.sampled_from(["+", "-", "*"]))
def test_arithmetic_wraps_like_32_bit_twos_complement(a: int, b: int, op: str) -> None:
    exact = {"+": a + b, "-": a - b, "*": a * b}[op]

    assert evaluate(f"a {op} b", a=a, b=b) == two_complement(exact)


@given(int32, int32.filter(lambda n: n != 0))
def test_division_truncates_and_remainder_follows_the_dividend(a: int, b: int) -> None:
    truncated = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)

    assert evaluate("a / b", a=a, b=b) == two_complement(truncated)
    assert evaluate("a % b", a=a, b=b) == a - b * truncated


def test_most_negative_divided_by_minus_one_wraps() -> None:
    assert evaluate("-2147483648 / -1") == -(2**31)
    assert evaluate("-2147483648 % -1") == 0


@given(int32)
def test_string_to_integer_round_trip(n: int) -> None:
    assert evaluate("INT(STRING(n)) = n AND INT(x) = n", n=n, x=str(n)) is True


@functools.cache
def oracle(text: str, pattern: str) -> bool:
    """Naive recursive LIKE: the spec's definition, character by character."""
    if not pattern:
        return not text
    head = pattern[0]
    if head == "\\" and len(pattern) > 1 and pattern[1] in "%_":
        return bool(text) and text[0] == pattern[1] and oracle(text[1:], pattern[2:])
    if head == "%":
        return any(oracle(text[i:], pattern[1:]) for i in range(len(text) + 1))
    if head == "_":
        return bool(text) and oracle(text[1:], pattern[1:])
    return bool(text) and text[0] == head and oracle(text[1:], pattern[1:])


alphabet = st.sampled_from(["a", "b", ".", "%", "_", "\\", "\n", "é"])


@given(st.text(alphabet, max_size=8), st.text(alphabet, max_size=6))
def test_like_agrees_with_a_naive_matcher(text: str, pattern: str) -> None:
    assert like.compile_pattern(pattern)(text) == oracle(text, pattern)


@given(st.text(alphabet, max_size=8), st.text(st.sampled_from(["a", "b", "%", "_"]), max_size=5))
def test_like_operator_in_an_expression(text: str, pattern: str) -> None:
    assert evaluate(f"x LIKE '{pattern}'", x=text) == oracle(text, pattern)
