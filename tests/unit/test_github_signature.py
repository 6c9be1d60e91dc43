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


@pytest.mark.parametrize("split", [0, 1, 5, len(BODY)], ids=lambda n: f"at-{n}")
def test_a_body_fed_in_chunks_verifies_as_a_whole(split: int) -> None:
    claimed = signature.claimed_digest(GITHUB_DOCS_SIGNATURE)
    assert isinstance(claimed, bytes)
    verifier = signature.Verifier(SECRET, claimed)
    verifier.update(BODY[:split])
    verifier.update(memoryview(BODY)[split:])
    assert verifier.verdict() is signature.Verdict.VALID
    tampered = signature.Verifier(SECRET, claimed)
    tampered.update(BODY[:split] + b"!" + BODY[split:])
    assert tampered.verdict() is signature.Verdict.MISMATCH


def test_a_missing_or_malformed_header_is_known_before_the_body() -> None:
    assert signature.claimed_digest(None) is signature.Verdict.MISSING
    assert signature.claimed_digest("sha1=" + "0" * 40) is signature.Verdict.MALFORMED
