"""`X-Hub-Signature-256` verification: HMAC-SHA256 of the raw body with the webhook secret.

GitHub sends `sha256=<64 lowercase hex digits>`. The header is checked before the body is
read; the body is fed to the HMAC as it arrives (`Verifier`), and the digest is compared with
`hmac.compare_digest` (constant time). Only SHA-256 is accepted: the legacy SHA-1
`X-Hub-Signature` that go-github falls back to is not, since GitHub always sends both when a
secret is configured. An empty secret is refused at startup (`config`), never treated as
"skip verification" as go-github does.

The outcome names a reason fit for a metric label and a 401 body; neither the secret nor the
received or expected signature ever appears in it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class Verdict(enum.StrEnum):
    VALID = "valid"
    MISSING = "missing"
    MALFORMED = "malformed"
    MISMATCH = "mismatch"

    @property
    def explanation(self) -> str:
        return _EXPLANATIONS[self]


_EXPLANATIONS = {
    Verdict.VALID: "signature is valid",
    Verdict.MISSING: f"missing {HEADER} header: configure the webhook with the source's secret",
    Verdict.MALFORMED: f"{HEADER} must be '{PREFIX}' followed by 64 hex digits",
    Verdict.MISMATCH: f"{HEADER} does not match the payload: wrong secret or altered body",
}


def sign(secret: bytes, body: bytes) -> str:
    """The header value GitHub would send for `body` (used by tests and the benchmark)."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def claimed_digest(header: str | None) -> bytes | Verdict:
    """The digest `header` claims, or why there is none (MISSING, MALFORMED).

    Needs no body: a request without a well-formed signature is refused before it is read."""
    if header is None or not header.strip():
        return Verdict.MISSING
    scheme, _, digest = header.strip().partition("=")
    if scheme.lower() != "sha256" or len(digest) != 64 or not _HEX_DIGITS.issuperset(digest):
        return Verdict.MALFORMED
    return bytes.fromhex(digest)


class Verifier:
    """The HMAC-SHA256 of a body fed chunk by chunk as it arrives (`update`), then `verdict`."""

    def __init__(self, secret: bytes, claimed: bytes) -> None:
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)
        self._claimed = claimed

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self._mac.update(chunk)

    def verdict(self) -> Verdict:
        if hmac.compare_digest(self._mac.digest(), self._claimed):
            return Verdict.VALID
        return Verdict.MISMATCH


def verify(secret: bytes, body: bytes, header: str | None) -> Verdict:
    """Whether `header` is the HMAC-SHA256 of `body` under `secret`."""
    claimed = claimed_digest(header)
    if isinstance(claimed, Verdict):
        return claimed
    verifier = Verifier(secret, claimed)
    verifier.update(body)
    return verifier.verdict()
