"""A seeded generator of hostile and honest webhook requests, each with what it must get.

`cases(seed, count, ...)` yields `Case`s: the raw bytes of one HTTP/1.1 request (written on a
socket of its own by `tests.receiverprocess.exchange`, so that malformed HTTP can be sent at
all) and the answers it may get. Honest ones are real payloads of several event types from
@octokit/webhooks-examples, signed with the adapter's secret, as JSON or form-encoded, plain
or chunked, some redelivered. Hostile ones: a wrong, missing or malformed signature, a wrong
Content-Type, malformed or deeply nested JSON, a body above the limit (by Content-Length or
chunked), missing or bad GitHub headers, and HTTP that does not parse (a header without a
colon, a non-numeric Content-Length, an over-long header line, a bad request line).

The same seed gives the same requests, so a failure can be replayed.
"""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from urllib.parse import urlencode

from hack import octokit
from sources.github import signature
from tests import receiverprocess, webhooks

SECRET = webhooks.SECRET.encode()
EVENTS = ("ping", "push", "pull_request", "issues", "issue_comment", "release", "star")


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    kind: str
    request: bytes
    allowed: frozenset[int]
    """Statuses this request may be answered with (503 only where overload is documented)."""
    delivery: str | None = None
    """The X-GitHub-Delivery of a validly signed webhook the sink may receive (once)."""


def _chunked(body: bytes, rng: random.Random) -> bytes:
    out = bytearray()
    at = 0
    while at < len(body):
        size = min(rng.randint(1, max(1, len(body) // 3)), len(body) - at)
        out += f"{size:x}\r\n".encode() + body[at : at + size] + b"\r\n"
        at += size
    return bytes(out + b"0\r\n\r\n")


class Generator:
    def __init__(self, rng: random.Random, max_payload: int) -> None:
        self.rng = rng
        self.max_payload = max_payload
        examples = [e for e in octokit.examples() if e.event in EVENTS and len(e.body) < 32768]
        self.examples = examples
        self.sent: list[str] = []  # delivery ids of valid webhooks, for redeliveries

    def _request(
        self,
        headers: dict[str, str],
        body: bytes,
        *,
        chunked: bool = False,
    ) -> bytes:
        if chunked:
            head = receiverprocess.request_head(
                {**headers, "Transfer-Encoding": "chunked"}, content_length=None
            )
            return head + _chunked(body, self.rng)
        return receiverprocess.request_head(headers, content_length=len(body)) + body

    def _webhook(
        self,
        body: bytes | None = None,
        *,
        secret: bytes | None = SECRET,
        content_type: str = "application/json",
        event: str | None = None,
        delivery: str | None = None,
    ) -> tuple[dict[str, str], bytes, str, str]:
        example = self.rng.choice(self.examples)
        payload = example.body if body is None else body
        delivery = (
            delivery if delivery is not None else str(uuid.UUID(int=self.rng.getrandbits(128)))
        )
        name = example.event if event is None else event
        headers = {
            "Content-Type": content_type,
            "User-Agent": "GitHub-Hookshot/fuzz",
            "X-GitHub-Event": name,
            "X-GitHub-Delivery": delivery,
        }
        if secret is not None:
            headers[signature.HEADER] = signature.sign(secret, payload)
        return headers, payload, delivery, name

    # Each maker returns one Case; `MAKERS` weights them.

    def valid(self) -> Case:
        headers, body, delivery, _ = self._webhook()
        self.sent.append(delivery)
        chunked = self.rng.random() < 0.2
        request = self._request(headers, body, chunked=chunked)
        return Case(
            "valid-chunked" if chunked else "valid", request, frozenset({202, 503}), delivery
        )

    def form(self) -> Case:
        example = self.rng.choice(self.examples)
        body = urlencode({"payload": example.body.decode()}).encode()
        headers, body, delivery, _ = self._webhook(
            body, content_type="application/x-www-form-urlencoded", event=example.event
        )
        self.sent.append(delivery)
        return Case("form", self._request(headers, body), frozenset({202, 503}), delivery)

    def redelivery(self) -> Case:
        if not self.sent:
            return self.valid()
        delivery = self.rng.choice(self.sent)
        headers, body, _, _ = self._webhook(delivery=delivery)
        # 200 duplicate; 202 if the first attempt was answered 503 and never delivered
        return Case(
            "redelivery", self._request(headers, body), frozenset({200, 202, 503}), delivery
        )

    def bad_signature(self) -> Case:
        choice = self.rng.randrange(4)
        headers, body, _, _ = self._webhook(secret=b"guessed" if choice == 0 else SECRET)
        if choice == 1:
            del headers[signature.HEADER]
        elif choice == 2:
            headers[signature.HEADER] = self.rng.choice(
                ["sha1=" + "0" * 40, "sha256=xyz", "sha256", "", "sha256=" + "g" * 64]
            )
        elif choice == 3:
            body = body[:-1] + b" "  # signed, then altered
        return Case("bad-signature", self._request(headers, body), frozenset({401}))

    def wrong_content_type(self) -> Case:
        content_type = self.rng.choice(["text/plain", "application/xml", "multipart/form-data"])
        headers, body, _, _ = self._webhook(content_type=content_type)
        return Case("content-type", self._request(headers, body), frozenset({415}))

    def malformed_json(self) -> Case:
        bodies: list[Callable[[], bytes]] = [
            lambda: self.rng.choice(self.examples).body[: self.rng.randint(0, 200)],
            lambda: b"[1, 2, 3]",
            lambda: b'"a string"',
            lambda: b"\xff\xfe\x00garbage",
            lambda: b"[" * 5000 + b"]" * 5000,
            lambda: b'{"a":' * 2000 + b"1" + b"}" * 2000,
        ]
        body = self.rng.choice(bodies)()
        headers, body, _, _ = self._webhook(body, event="ping")
        return Case("malformed-json", self._request(headers, body), frozenset({400}))

    def huge(self) -> Case:
        size = self.max_payload + self.rng.randint(1, 4096)
        body = json.dumps({"zen": "x" * size}).encode()
        if self.rng.random() < 0.5:  # honest about its size: refused before it is read
            headers, body, _, _ = self._webhook(body, event="ping")
            return Case("huge", self._request(headers, body), frozenset({413}))
        headers, body, _, _ = self._webhook(body, event="ping")
        return Case("huge-chunked", self._request(headers, body, chunked=True), frozenset({413}))

    def bad_github_headers(self) -> Case:
        headers, body, _, _ = self._webhook()
        choice = self.rng.randrange(3)
        if choice == 0:
            del headers["X-GitHub-Event"]
        elif choice == 1:
            headers["X-GitHub-Delivery"] = ""
        else:
            headers["X-GitHub-Event"] = self.rng.choice(["Push Event", "../etc", "x" * 80, "1a"])
        return Case("github-headers", self._request(headers, body), frozenset({400}))

    def bad_http(self) -> Case:
        headers, body, _, _ = self._webhook()
        head = receiverprocess.request_head(headers, content_length=len(body))
        choice = self.rng.randrange(4)
        if choice == 0:
            head = head.replace(b"\r\n\r\n", b"\r\nNo colon in this header\r\n\r\n")
        elif choice == 1:
            head = head.replace(b"Content-Length: ", b"Content-Length: 1x", 1)
        elif choice == 2:
            head = head.replace(b"\r\n\r\n", b"\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n")
        else:
            head = head.replace(b"POST / HTTP/1.1", b"POST /\x01 HTTP/9.x", 1)
        return Case("bad-http", head + body, frozenset({400, 431}))


MAKERS: Sequence[tuple[Callable[[Generator], Case], int]] = (
    (Generator.valid, 30),
    (Generator.form, 5),
    (Generator.redelivery, 5),
    (Generator.bad_signature, 20),
    (Generator.wrong_content_type, 8),
    (Generator.malformed_json, 10),
    (Generator.huge, 4),
    (Generator.bad_github_headers, 8),
    (Generator.bad_http, 10),
)


def cases(seed: int, count: int, *, max_payload: int) -> Iterator[Case]:
    rng = random.Random(seed)
    generator = Generator(rng, max_payload)
    makers = [maker for maker, _ in MAKERS]
    weights = [weight for _, weight in MAKERS]
    for _ in range(count):
        yield rng.choices(makers, weights)[0](generator)
