"""The CESQL abstract syntax tree: frozen node types and `build()` from lark's parse tree.

`build()` also does the syntactic checks lark's grammar cannot express and reports them as
`errors.ParseError` with a position: integer literals outside 32 bits, attribute names that
are not `[a-z0-9]+` (names are case-insensitive and lowercased, as the Go SDK does), function
names that are not `[A-Za-z][A-Za-z_]*`, and keywords used as attribute names.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from kevents.cesql import errors, values

if TYPE_CHECKING:
    import lark  # imported when an expression is first parsed (grammar.py), not before

_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")
_FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z_]*")
_KEYWORDS = frozenset({"and", "or", "xor", "not", "in", "like", "exists", "true", "false"})
_UNESCAPE = re.compile(r"\\.|''|\"\"|.", re.DOTALL)


@dataclasses.dataclass(frozen=True, slots=True)
class Literal:
    value: values.Value
    position: int


@dataclasses.dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    position: int


@dataclasses.dataclass(frozen=True, slots=True)
class Exists:
    name: str
    position: int


@dataclasses.dataclass(frozen=True, slots=True)
class Unary:
    operator: str  # "NOT" or "-"
    operand: Node
    position: int


@dataclasses.dataclass(frozen=True, slots=True)
class Binary:
    operator: str  # AND OR XOR = != <> < <= > >= + - * / %
    left: Node
    right: Node
    position: int


@dataclasses.dataclass(frozen=True, slots=True)
class Like:
    operand: Node
    pattern: str
    negated: bool
    position: int


@dataclasses.dataclass(frozen=True, slots=True)
class In:
    operand: Node
    items: tuple[Node, ...]
    negated: bool
    position: int


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    name: str  # upper case
    arguments: tuple[Node, ...]
    position: int


Node = Literal | Attribute | Exists | Unary | Binary | Like | In | Call


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of `node`."""
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Like):
        return (node.operand,)
    if isinstance(node, In):
        return (node.operand, *node.items)
    if isinstance(node, Call):
        return node.arguments
    return ()


def reads_event(node: Node) -> bool:
    """Whether evaluating `node` looks at the event (else it is a constant)."""
    if isinstance(node, Attribute | Exists):
        return True
    return any(reads_event(child) for child in children(node))


def unquote(token: str) -> str:
    """A string literal's value: `\\'` (or `''`) in '...' and `\\"` (or `""`) in "..." unescape.

    Any other backslash is kept as written, so LIKE patterns still see `\\%` and `\\_`.
    """
    quote, body = token[0], token[1:-1]
    out = []
    for piece in _UNESCAPE.findall(body):
        if piece in (f"\\{quote}", quote * 2):
            out.append(quote)
        else:
            out.append(piece)
    return "".join(out)


class _Builder:
    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, reason: str, position: int) -> errors.ParseError:
        return errors.ParseError(reason, self.text, position)

    def build(self, item: lark.Tree[lark.Token] | lark.Token) -> Node:
        import lark  # loaded by grammar.parse() before any tree is built

        if isinstance(item, lark.Token):  # pragma: no cover - the grammar wraps every token
            raise self.fail(f"unexpected {str(item)!r}", item.start_pos or 0)
        kind = str(item.data)
        args = item.children
        handler = getattr(self, "_" + kind)
        node: Node = handler(args)
        return node

    def token(self, item: lark.Tree[lark.Token] | lark.Token | None) -> lark.Token:
        import lark

        assert isinstance(item, lark.Token)
        return item

    def tree(self, item: lark.Tree[lark.Token] | lark.Token | None) -> lark.Tree[lark.Token]:
        import lark

        assert isinstance(item, lark.Tree)
        return item

    @staticmethod
    def at(token: lark.Token) -> int:
        return token.start_pos or 0

    def _start(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        return self.build(args[0])

    def _integer(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        token = self.token(args[0])
        number = int(str(token))
        if not values.INT_MIN <= number <= values.INT_MAX:
            reason = f"integer literal {str(token)} is outside the 32-bit range"
            raise self.fail(reason, self.at(token))
        return Literal(number, self.at(token))

    def _string(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        token = self.token(args[0])
        return Literal(unquote(str(token)), self.at(token))

    def _true(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        return Literal(True, self.at(self.token(args[0])))

    def _false(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        return Literal(False, self.at(self.token(args[0])))

    def attribute_name(self, token: lark.Token) -> str:
        name = str(token).lower()
        if _ATTRIBUTE_NAME.fullmatch(name) is None:
            raise self.fail(
                f"invalid attribute name {str(token)!r}: only letters and digits are allowed",
                self.at(token),
            )
        if name in _KEYWORDS:
            raise self.fail(f"keyword {str(token)!r} cannot be an attribute name", self.at(token))
        return name

    def _attribute(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        token = self.token(args[0])
        return Attribute(self.attribute_name(token), self.at(token))

    def _exists(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        keyword, name = self.token(args[0]), self.token(args[1])
        return Exists(self.attribute_name(name), self.at(keyword))

    def _call(self, args: list[lark.Tree[lark.Token] | lark.Token | None]) -> Node:
        token = self.token(args[0])
        if _FUNCTION_NAME.fullmatch(str(token)) is None:
            raise self.fail(
                f"invalid function name {str(token)!r}: only letters and '_' are allowed",
                self.at(token),
            )
        arguments: tuple[Node, ...] = ()
        if args[1] is not None:
            arguments = tuple(self.build(arg) for arg in self.tree(args[1]).children)
        return Call(str(token).upper(), arguments, self.at(token))

    def _not_(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        keyword = self.token(args[0])
        return Unary("NOT", self.build(args[1]), self.at(keyword))

    def _negate(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        sign = self.token(args[0])
        return Unary("-", self.build(args[1]), self.at(sign))

    def binary(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        operator = self.token(args[1])
        symbol = str(operator).upper()
        return Binary(symbol, self.build(args[0]), self.build(args[2]), self.at(operator))

    _logic = _compare = _arithmetic = binary

    def _like(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        keyword, pattern = self.token(args[1]), self.token(args[2])
        negated = str(keyword).lower().startswith("not")
        return Like(self.build(args[0]), unquote(str(pattern)), negated, self.at(keyword))

    def _in_set(self, args: list[lark.Tree[lark.Token] | lark.Token]) -> Node:
        keyword = self.token(args[1])
        negated = str(keyword).lower().startswith("not")
        items = tuple(self.build(arg) for arg in args[2:])
        return In(self.build(args[0]), items, negated, self.at(keyword))


def build(parsed: lark.Tree[lark.Token], text: str) -> Node:
    """The AST of a lark parse tree of `text`; raises `errors.ParseError` on invalid names."""
    try:
        return _Builder(text).build(parsed)
    except RecursionError:
        raise errors.ParseError("expression is nested too deeply", text, 0) from None
