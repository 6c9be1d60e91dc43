"""Kubernetes resource quantities ("250m", "64Mi", "1e3") as exact fractions."""

from __future__ import annotations

import math
import re
from fractions import Fraction

_SUFFIXES = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|([a-zA-Z]*))$")


def parse(text: str) -> Fraction:
    """`"250m"` -> 1/4; raises ValueError for anything that is not a quantity."""
    match = _QUANTITY.match(text.strip())
    if not match or match.group(3) not in (None, *_SUFFIXES):
        raise ValueError(f"invalid quantity {text!r}")
    number = Fraction(match.group(1))
    if match.group(2):
        return number * Fraction(10) ** int(match.group(2)[1:])
    return number * _SUFFIXES[match.group(3) or ""]


def divide_ceil(value: str, divisor: str | None) -> str:
    """resourceFieldRef's rendering: ceil(value / divisor) as an integer string."""
    div = parse(divisor) if divisor else Fraction(1)
    if div <= 0:
        raise ValueError(f"invalid divisor {divisor!r}")
    return str(math.ceil(parse(value) / div))
