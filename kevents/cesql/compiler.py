"""Compiles a CESQL AST into nested Python closures, evaluated many times per compile.

Each closure takes the event (a mapping of attribute name -> value) and returns a value, or
raises `errors.Failure` (fail-fast mode, spec 4.1). Operators live in `operators`; this module
dispatches on node types and handles attributes, EXISTS and function calls. Sub-expressions
that do not read the event and evaluate without error are folded into constants.
"""

from __future__ import annotations

import dataclasses

from kevents.cesql import errors, functions, operators, tree, values

Event = operators.Event
Evaluator = operators.Evaluator

# The required context attributes always exist in a valid CloudEvent (spec 3.4.4).
REQUIRED_ATTRIBUTES = frozenset({"id", "source", "specversion", "type"})

_MISSING = object()
_INTEGER_OPERATORS = frozenset({"+", "-", "*", "/", "%"})


def result_type(node: tree.Node, registry: functions.Registry) -> values.Type:
    """The static type of `node`; Boolean where the spec leaves it open (attributes, unknown
    functions)."""
    if isinstance(node, tree.Literal):
        return values.type_of(node.value)
    if isinstance(node, tree.Unary):
        return values.Type.INTEGER if node.operator == "-" else values.Type.BOOLEAN
    if isinstance(node, tree.Binary) and node.operator in _INTEGER_OPERATORS:
        return values.Type.INTEGER
    if isinstance(node, tree.Call):
        function = registry.resolve(node.name, len(node.arguments))
        return values.Type.BOOLEAN if function is None else function.returns
    return values.Type.BOOLEAN


class Compiler:
    def __init__(self, registry: functions.Registry) -> None:
        self.registry = registry

    def compile(self, node: tree.Node) -> Evaluator:
        """The evaluator of `node`, a constant when `node` does not depend on the event."""
        evaluator = self._compile(node)
        if tree.reads_event(node) or isinstance(node, tree.Literal):
            return evaluator
        try:
            constant = evaluator({})
        except errors.Failure:
            return evaluator  # keep reporting the error at every evaluation
        return lambda event: constant

    def _compile(self, node: tree.Node) -> Evaluator:
        if isinstance(node, tree.Literal):
            value = node.value
            return lambda event: value
        if isinstance(node, tree.Attribute):
            return _attribute(node)
        if isinstance(node, tree.Exists):
            return _exists(node)
        if isinstance(node, tree.Unary):
            operand = self.compile(node.operand)
            return operators.not_(operand) if node.operator == "NOT" else operators.negate(operand)
        if isinstance(node, tree.Binary):
            return self._binary(node)
        if isinstance(node, tree.Like):
            return operators.like_(self.compile(node.operand), node.pattern, node.negated)
        if isinstance(node, tree.In):
            constants = None
            if all(isinstance(item, tree.Literal) for item in node.items):
                constants = [item.value for item in node.items if isinstance(item, tree.Literal)]
            items = [self.compile(item) for item in node.items]
            return operators.membership(self.compile(node.operand), items, node.negated, constants)
        return self._call(node)

    def _binary(self, node: tree.Binary) -> Evaluator:
        left, right = self.compile(node.left), self.compile(node.right)
        symbol = node.operator
        if symbol in ("AND", "OR", "XOR"):
            return operators.logic(symbol, left, right)
        if symbol in ("=", "!=", "<>"):
            return operators.equality(symbol == "=", left, right)
        if symbol in _INTEGER_OPERATORS:
            return operators.arithmetic(symbol, left, right, node.position)
        return operators.comparison(symbol, left, right)

    def _call(self, node: tree.Call) -> Evaluator:
        function = self.registry.resolve(node.name, len(node.arguments))
        position = node.position
        if function is None:
            message = f"no function {node.name} with {len(node.arguments)} argument(s)"
            error = errors.Error(errors.ErrorKind.MISSING_FUNCTION, message, position)

            def missing(event: Event) -> values.Value:
                raise errors.Failure(error, False)

            return missing
        arguments = tuple(self.compile(argument) for argument in node.arguments)
        types = tuple(function.parameter(i) for i in range(len(arguments)))
        impl, returns = function.impl, function.returns
        result_class = values.ZERO[returns].__class__

        def call(event: Event) -> values.Value:
            args = [values.cast(a(event), t) for a, t in zip(arguments, types, strict=True)]
            try:
                result = impl(args)
            except errors.Failure as failure:
                failure.origin = node
                if failure.error.position is None:
                    failure.error = dataclasses.replace(failure.error, position=position)
                raise
            if result.__class__ is not result_class:
                message = f"{node.name} returned {result!r}, not a {returns.value}"
                error = errors.Error(errors.ErrorKind.FUNCTION_EVALUATION, message, position)
                raise errors.Failure(error)
            return result

        return call


def _attribute(node: tree.Attribute) -> Evaluator:
    name, position = node.name, node.position
    error = errors.Error(errors.ErrorKind.MISSING_ATTRIBUTE, f"no attribute {name!r}", position)

    def attribute(event: Event) -> values.Value:
        value = event.get(name, _MISSING)
        if value.__class__ is str:
            return value
        if value is _MISSING or value is None:
            failure = errors.Failure(error, False)
            failure.origin = node
            raise failure
        return values.from_attribute(value)

    return attribute


def _exists(node: tree.Exists) -> Evaluator:
    name = node.name
    if name in REQUIRED_ATTRIBUTES:
        return lambda event: True
    return lambda event: event.get(name) is not None
