"""`compile()` CESQL text once into an `Expression`, then evaluate it against many events.

    expr = expression.compile("type LIKE 'dev.knative.%' AND source = 'x'")
    expr.evaluate({"type": "dev.knative.a", "source": "x", ...})  # Result(value=True, errors=())
    expr.matches(event)  # the filter predicate: Boolean true and no error

The event is any mapping of attribute name -> value (context attributes and extensions);
values may be str, bool, int, or anything with a CloudEvents string form (datetime, bytes).
Evaluation never raises: errors come back in `Result.errors`, next to the value the spec
prescribes (fail-fast mode: the first error stops evaluation, and the result is the zero
value of the expression's type unless the failing operation itself is the whole expression).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from kevents.cesql import compiler, errors, functions, grammar, tree, values


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one evaluation: the value and the errors met (empty when none)."""

    value: values.Value
    errors: tuple[errors.Error, ...] = ()

    @property
    def matched(self) -> bool:
        """Whether this result lets an event pass a filter (spec 1.2)."""
        return self.value is True and not self.errors


@dataclasses.dataclass(frozen=True)
class Expression:
    """A compiled CESQL expression; safe to share and to evaluate concurrently."""

    text: str
    root: tree.Node = dataclasses.field(repr=False)
    type: values.Type
    _evaluate: Callable[[compiler.Event], values.Value] = dataclasses.field(
        repr=False, compare=False
    )

    def evaluate(self, event: Mapping[str, object]) -> Result:
        """Evaluate against `event`; never raises."""
        try:
            return Result(self._evaluate(event))
        except errors.Failure as failure:
            value = failure.value
            if failure.origin is not self.root or value is None:
                value = values.ZERO[self.type]
            return Result(value, (failure.error,))
        except RecursionError:
            error = errors.Error(errors.ErrorKind.GENERIC, "expression is nested too deeply")
            return Result(values.ZERO[self.type], (error,))

    def matches(self, event: Mapping[str, object]) -> bool:
        """True only when the expression evaluates to Boolean true without error."""
        try:
            return self._evaluate(event) is True
        except (errors.Failure, RecursionError):
            return False


def compile(text: str, registry: functions.Registry = functions.BUILTINS) -> Expression:
    """Parse and compile `text`; raises `errors.ParseError` (with a position) if invalid.

    Calls to functions the registry lacks compile (they fail at evaluation with a
    `missingFunction` error, as the TCK expects); `unknown_functions()` lists them.
    """
    root = tree.build(grammar.parse(text), text)
    try:
        evaluate = compiler.Compiler(registry).compile(root)
    except RecursionError:
        raise errors.ParseError("expression is nested too deeply", text, 0) from None
    return Expression(text, root, compiler.result_type(root, registry), evaluate)


def unknown_functions(
    expression: Expression, registry: functions.Registry = functions.BUILTINS
) -> list[errors.Error]:
    """`missingFunction` errors for every call in `expression` no function can serve."""
    found: list[errors.Error] = []
    pending = [expression.root]
    while pending:
        node = pending.pop()
        pending.extend(tree.children(node))
        if isinstance(node, tree.Call) and registry.resolve(node.name, len(node.arguments)) is None:
            message = f"no function {node.name} with {len(node.arguments)} argument(s)"
            found.append(errors.Error(errors.ErrorKind.MISSING_FUNCTION, message, node.position))
    return sorted(found, key=lambda error: error.position or 0)
