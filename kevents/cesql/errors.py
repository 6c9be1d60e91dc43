"""CESQL error kinds (spec section 3.3) and the exceptions used to carry them.

    Exception
    ├── ParseError      raised by `expression.compile()`: the text is not valid CESQL
    └── Failure         internal to evaluation: never escapes `Expression.evaluate()`

Evaluation never raises into the caller: an `Error` value (kind, message, position) is
returned next to the result instead.
"""

from __future__ import annotations

import dataclasses
import enum


class ErrorKind(enum.StrEnum):
    """The spec's error types; values are the names the CESQL TCK uses."""

    PARSE = "parse"
    MATH = "math"
    CAST = "cast"
    MISSING_ATTRIBUTE = "missingAttribute"
    MISSING_FUNCTION = "missingFunction"
    FUNCTION_EVALUATION = "functionEvaluation"
    GENERIC = "generic"


@dataclasses.dataclass(frozen=True, slots=True)
class Error:
    """One error of an evaluation: what went wrong and where (0-based offset in the text)."""

    kind: ErrorKind
    message: str
    position: int | None = None

    def __str__(self) -> str:
        where = "" if self.position is None else f" at position {self.position}"
        return f"{self.kind} error{where}: {self.message}"


def line_and_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of `position` in `text`."""
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


class ParseError(ValueError):
    """The expression text is not valid CESQL; `position` is the 0-based offset of the problem."""

    def __init__(self, reason: str, text: str, position: int) -> None:
        self.reason = reason
        self.text = text
        self.position = position
        self.line, self.column = line_and_column(text, position)
        where = f"column {self.column}"
        if self.line > 1:
            where = f"line {self.line}, {where}"
        super().__init__(f"parse error at {where}: {reason}")

    @property
    def error(self) -> Error:
        """The same problem as an `Error` value (kind `parse`)."""
        return Error(ErrorKind.PARSE, str(self), self.position)


class Failure(Exception):
    """Raised inside evaluation; `value` is the failing node's own result, when it defines one.

    `origin` is set to the AST node that produced `value` (a function returning `x` next to an
    error); an ancestor of the origin returns the zero value of its own type instead.
    """

    __slots__ = ("error", "origin", "value")

    def __init__(self, error: Error, value: bool | int | str | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.value = value
        self.origin: object = None
