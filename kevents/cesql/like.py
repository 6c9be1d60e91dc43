"""LIKE patterns (spec 3.4.3) compiled once into a fast `str -> bool` matcher.

`%` matches any run of characters (also none), `_` exactly one character, `\\%` and `\\_` a
literal `%` and `_`; every other character, a lone backslash included, matches itself (case
sensitive). Common shapes skip the regex engine: `abc`, `abc%`, `%abc`, `%abc%`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Matcher = Callable[[str], bool]

_TOKENS = re.compile(r"\\[%_]|[%_]|[^%_\\]+|\\", re.DOTALL)


def _parts(pattern: str) -> list[str]:
    """The pattern as a list of wildcards (`%`, `_`) and literal texts (prefixed with `=`)."""
    parts: list[str] = []
    for token in _TOKENS.findall(pattern):
        if token in ("%", "_"):
            if token == "%" and parts and parts[-1] == "%":
                continue  # `%%` is the same as `%`
            parts.append(token)
            continue
        literal = token[1:] if token in ("\\%", "\\_") else token
        if parts and parts[-1].startswith("="):
            parts[-1] += literal
        else:
            parts.append("=" + literal)
    return parts


def to_regex(pattern: str) -> str:
    """The equivalent Python regular expression (for `re.fullmatch` with DOTALL)."""
    out = []
    for part in _parts(pattern):
        if part == "%":
            out.append(".*")
        elif part == "_":
            out.append(".")
        else:
            out.append(re.escape(part[1:]))
    return "".join(out)


def compile_pattern(pattern: str) -> Matcher:
    """A matcher for `pattern`: does the whole string match?"""
    parts = _parts(pattern)
    if not parts:
        return lambda text: text == ""
    literals = [part[1:] for part in parts if part.startswith("=")]
    shape = "".join("x" if part.startswith("=") else part for part in parts)
    if shape == "x":
        exact = literals[0]
        return lambda text: text == exact
    if shape == "x%":
        prefix = literals[0]
        return lambda text: text.startswith(prefix)
    if shape == "%x":
        suffix = literals[0]
        return lambda text: text.endswith(suffix)
    if shape == "%x%":
        infix = literals[0]
        return lambda text: infix in text
    if shape == "%":
        return lambda text: True
    regex = re.compile(to_regex(pattern), re.DOTALL)
    return lambda text: regex.fullmatch(text) is not None
