"""X-Hub-Signature-256 verification (HMAC-SHA256 of the raw body)."""

from __future__ import annotations

import pytest

from sources.github import signature

SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"
# The worked example of GitHub's "Validating webhook deliveries" documentation.
GITHUB_DOCS_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_matches_githubs_documented_example() -> None:
    assert signature.sign(SECRET, BODY) == GITHUB_DOCS_SIGNATURE
    assert signature.verify(SECRET, BODY, GITHUB_DOCS_SIGNATURE) is signature.Verdict.VALID


@pytest.mark.parametrize(
    ("header", "verdict"),
    [
        (None, signature.Verdict.MISSING),
        ("", signature.Verdict.MISSING),
        ("   ", signature.Verdict.MISSING),
        (GITHUB_DOCS_SIGNATURE.upper().replace("SHA256=", "sha256="), signature.Verdict.VALID),
        (GITHUB_DOCS_SIGNATURE[:-1] + "0", signature.Verdict.MISMATCH),
        ("sha256=" + "0" * 64, signature.Verdict.MISMATCH),
        ("sha1=" + "0" * 40, signature.Verdict.MALFORMED),
        ("sha256=" + "z" * 64, signature.Verdict.MALFORMED),
        ("sha256=abc", signature.Verdict.MALFORMED),
        (GITHUB_DOCS_SIGNATURE[len("sha256=") :], signature.Verdict.MALFORMED),
        ("sha256=" + "é" * 64, signature.Verdict.MALFORMED),
    ],
    ids=[
        "absent", "empty", "blank", "uppercase-hex", "one-digit-off", "zeros", "sha1",
        "not-hex", "short", "no-prefix", "non-ascii",
    ],
)  # fmt: skip
def test_verdicts(header: str | None, verdict: signature.Verdict) -> None:
    assert signature.verify(SECRET, BODY, header) is verdict


def test_other_secret_or_body_mismatch() -> None:
    good = signature.sign(SECRET, BODY)
    assert signature.verify(b"another secret", BODY, good) is signature.Verdict.MISMATCH
    assert signature.verify(SECRET, BODY + b" ", good) is signature.Verdict.MISMATCH


@pytest.mark.parametrize("verdict", list(signature.Verdict), ids=lambda v: v.value)
def test_explanations_never_echo_values(verdict: signature.Verdict) -> None:
    text = verdict.explanation
    assert SECRET.decode() not in text
    assert "757107" not in text
