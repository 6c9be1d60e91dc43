"""The CESQL v1 grammar (lark, LALR) and `parse()`, which turns text into a lark tree.

Precedence, lowest first, as spec section 3.6 orders it (equal precedence is left-associative):

    AND OR XOR          one level: `a OR b AND c` is `(a OR b) AND c`
    = != <> < <= > >=
    + -
    * / %
    [NOT] IN (...)
    [NOT] LIKE 'pattern'
    NOT x, -x           prefix operators bind tighter than every binary operator
    literals, attributes, EXISTS attr, FUNC(args), (expr)

Lexing relies on lark's contextual lexer: in an operand position `-5` is one signed integer
literal (so `-2147483648` is valid), after an operand `-` is subtraction (`4-1` is `3`).
Keywords are case-insensitive whole words; a keyword is never taken for a name.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from kevents.cesql import errors

if TYPE_CHECKING:
    import lark

GRAMMAR = r"""
start: expr

?expr: comparison
     | expr (AND | OR | XOR) comparison -> logic

?comparison: additive
     | comparison COMPARE additive -> compare

?additive: multiplicative
     | additive (PLUS | MINUS) multiplicative -> arithmetic

?multiplicative: membership
     | multiplicative (STAR | SLASH | PERCENT) membership -> arithmetic

?membership: pattern
     | membership IN "(" expr ("," expr)* ")" -> in_set

?pattern: prefixed
     | pattern LIKE STRING -> like

?prefixed: atom
     | NOT prefixed -> not_
     | MINUS prefixed -> negate

?atom: INTEGER -> integer
     | STRING -> string
     | TRUE -> true
     | FALSE -> false
     | EXISTS NAME -> exists
     | NAME "(" [arguments] ")" -> call
     | NAME -> attribute
     | "(" expr ")"

arguments: expr ("," expr)*

AND.3: /and\b/i
OR.3: /or\b/i
XOR.3: /xor\b/i
IN.3: /(not\s+)?in\b/i
LIKE.3: /(not\s+)?like\b/i
NOT.2: /not\b/i
TRUE.3: /true\b/i
FALSE.3: /false\b/i
EXISTS.3: /exists\b/i
INTEGER.2: /[+-]?[0-9]+(?![A-Za-z0-9_])/
NAME.1: /[A-Za-z0-9_]+/
STRING: /'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"/s
COMPARE: /<>|!=|<=|>=|=|<|>/
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
PERCENT: "%"

%ignore /[ \t\r\n]+/
"""


@functools.cache
def _parser() -> lark.Lark:
    import lark  # on the first expression: 1.7 MiB of RSS a process without CESQL filters saves

    return lark.Lark(
        GRAMMAR,
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
        propagate_positions=True,
    )


def parse(text: str) -> lark.Tree[lark.Token]:
    """Parse `text`; raise `errors.ParseError` (with the offending position) when it is invalid."""
    import lark

    try:
        return _parser().parse(text)
    except lark.exceptions.UnexpectedCharacters as exc:
        position = exc.pos_in_stream or 0
        reason = f"unexpected character {text[position : position + 1]!r}"
        raise errors.ParseError(reason, text, position) from None
    except lark.exceptions.UnexpectedEOF:
        raise errors.ParseError("unexpected end of expression", text, len(text)) from None
    except lark.exceptions.UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":
            raise errors.ParseError("unexpected end of expression", text, len(text)) from None
        position = token.start_pos if token.start_pos is not None else 0
        raise errors.ParseError(f"unexpected {str(token)!r}", text, position) from None
