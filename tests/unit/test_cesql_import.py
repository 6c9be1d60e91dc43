"""The dispatcher loads the CESQL parser (lark, 1.7 MiB of RSS) only when a filter has an
expression to compile, and expressions compile and match as before once it is loaded."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import dispatcher.__main__
before = "lark" in sys.modules
from kevents.cesql import expression
compiled = expression.compile("type LIKE 'dev.knative.%' AND source = 'x'")
matched = compiled.matches({"type": "dev.knative.a", "source": "x"})
try:
    expression.compile("type = ")
    refused = None
except Exception as exc:
    refused = type(exc).__name__
print(json.dumps([before, matched, refused, "lark" in sys.modules]))
"""


def test_the_parser_is_loaded_by_the_first_expression() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out) == [False, True, "ParseError", True]
