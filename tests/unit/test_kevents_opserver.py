"""The operational server's framing, fed bytes by hand (no sockets): the answers to each kind
of request, the same whole, byte by byte and split at every byte; refusals that close; and
none of it imports aiohttp."""

from __future__ import annotations

import asyncio
import dataclasses
import http
import json
import logging
import subprocess
import sys
from typing import cast

import pytest
from prometheus_client import CollectorRegistry, Counter, exposition

from kevents import metrics, opserver, probes


class FakeTransport:
    """The transport side of a connection: what was written, whether it was closed."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@dataclasses.dataclass
class Fed:
    written: bytes
    closed: bool


def server() -> opserver.Server:
    readiness = probes.Readiness()
    readiness.set_not_ready("watch lost")
    routes = {**probes.routes(readiness), "/answer": lambda: opserver.Answer(200, b"42")}
    return opserver.Server(routes, host="127.0.0.1", port=0, name="test")


async def feed(wire: bytes, cuts: list[int]) -> Fed:
    """Feed `wire` split at `cuts` to a new connection (stopping once it is closed)."""
    transport = FakeTransport()
    connection = opserver._Connection(server())
    connection.connection_made(cast(asyncio.BaseTransport, transport))
    start = 0
    for end in [*sorted(set(cuts)), len(wire)]:
        if transport.closed:
            break
        if start < end:
            connection.data_received(wire[start:end])
        start = max(start, end)
    connection.connection_lost(None)  # its timers cancelled
    return Fed(bytes(transport.written), transport.closed)


def answer(status: int, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    phrase = http.HTTPStatus(status).phrase
    head = [f"HTTP/{version} {status} {phrase}", "Content-Type: text/plain; charset=utf-8"]
    head += [f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def refused(status: int, *extra: str) -> bytes:
    """An error answer closing the connection, its body as aiohttp's ("404: Not Found")."""
    body = f"{status}: {http.HTTPStatus(status).phrase}".encode()
    return answer(status, body, *extra, "Connection: close")


GET = b"GET /answer HTTP/1.1\r\nHost: x\r\n\r\n"
OK = answer(200, b"42")


@dataclasses.dataclass(frozen=True)
class Case:
    wire: bytes
    written: bytes
    closed: bool


TABLE = {
    "get": Case(GET, OK, False),
    "head": Case(b"HEAD /answer HTTP/1.1\r\n\r\n", OK.removesuffix(b"42"), False),
    "query-string": Case(b"GET /answer?x=1 HTTP/1.1\r\n\r\n", OK, False),
    "percent-encoded-path": Case(b"GET /answe%72 HTTP/1.1\r\n\r\n", OK, False),
    "absolute-form": Case(b"GET http://h/answer HTTP/1.1\r\n\r\n", OK, False),
    "health": Case(b"GET /health HTTP/1.1\r\n\r\n", answer(200, b"ok"), False),
    "not-ready": Case(
        b"GET /readiness HTTP/1.1\r\n\r\n", answer(503, b"not ready: watch lost"), False
    ),
    "unknown-path": Case(b"GET /nope HTTP/1.1\r\n\r\n", answer(404, b"404: Not Found"), False),
    "pipelined-in-order": Case(
        GET + b"GET /health HTTP/1.1\r\n\r\n" + GET, OK + answer(200, b"ok") + OK, False
    ),
    "small-body-ignored": Case(
        b"GET /answer HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" + GET, OK + OK, False
    ),
    "connection-close": Case(
        b"GET /answer HTTP/1.1\r\nConnection: close\r\n\r\n" + GET,
        answer(200, b"42", "Connection: close"), True,
    ),
    "http-1.0": Case(
        b"GET /answer HTTP/1.0\r\n\r\n",
        answer(200, b"42", "Connection: close", version="1.0"), True,
    ),
    "http-1.0-keep-alive": Case(
        b"GET /answer HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        answer(200, b"42", "Connection: keep-alive", version="1.0"), False,
    ),
    "upgrade-answered-then-closed": Case(
        b"GET /answer HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + GET,
        answer(200, b"42", "Connection: close"), True,
    ),
    "post": Case(
        b"POST /answer HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + GET,
        refused(405, "Allow: GET, HEAD"), True,
    ),
    "malformed-request-line": Case(b"GARBAGE\r\n\r\n" + GET, refused(400), True),
    "malformed-after-a-good-request": Case(
        GET + b"GET / HTTP/1.1\r\nBad Header\r\n\r\n" + GET, OK + refused(400), True
    ),
    "body-over-the-limit": Case(
        b"GET /answer HTTP/1.1\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000,
        refused(413), True,
    ),
    "target-over-the-limit": Case(
        b"GET /" + b"a" * opserver.LINE_LIMIT + b" HTTP/1.1\r\n\r\n", refused(414), True
    ),
    "header-line-over-the-limit": Case(
        b"GET /answer HTTP/1.1\r\nX-Big: " + b"a" * opserver.LINE_LIMIT + b"\r\n\r\n",
        refused(431), True,
    ),
    "too-many-headers": Case(
        b"GET /answer HTTP/1.1\r\n" + b"X-A: 1\r\n" * (opserver.MAX_HEADERS + 1) + b"\r\n",
        refused(431), True,
    ),
    "head-over-the-limit": Case(
        b"GET /answer HTTP/1.1\r\n"
        + b"".join(b"X-%d: %s\r\n" % (n, b"a" * 8000) for n in range(9)) + b"\r\n",
        refused(431), True,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", TABLE.values(), ids=TABLE.keys())
async def test_a_request_split_anywhere_gets_the_same_answer(case: Case) -> None:
    whole = await feed(case.wire, [])
    assert whole == Fed(case.written, case.closed)
    if len(case.wire) > 2048:
        cuts = list(range(0, len(case.wire), 97))  # a long line: every 97th byte
    else:
        cuts = list(range(len(case.wire)))
        for cut in cuts:
            assert await feed(case.wire, [cut]) == whole, f"split at byte {cut}"
    assert await feed(case.wire, cuts) == whole


async def test_a_line_that_never_ends_is_refused_before_it_is_buffered_whole() -> None:
    """llhttp's callbacks see a header only once it is complete: bytes that complete nothing
    are counted instead, so an endless header costs at most `LINE_LIMIT + FEED_SLICE`."""
    endless = b"GET /answer HTTP/1.1\r\nX-Endless: " + b"a" * (3 * opserver.LINE_LIMIT)
    fed = await feed(endless, list(range(0, len(endless), 1000)))
    assert fed.closed
    assert fed.written.startswith(b"HTTP/1.1 431 ")


async def test_refusals_log_one_debug_line_and_never_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kevents.opserver")
    for name in ("post", "malformed-request-line", "too-many-headers", "body-over-the-limit"):
        await feed(TABLE[name].wire, [])
    records = [r for r in caplog.records if r.name == "kevents.opserver"]
    assert [r.levelno for r in records] == [logging.DEBUG] * 4
    assert all(r.exc_info is None for r in records)


async def test_the_metrics_route_answers_the_exposition_with_its_content_type() -> None:
    registry = CollectorRegistry()
    Counter("kevents_test_things", "Things", registry=registry).inc(3)
    served = metrics.routes(registry)["/metrics"]()
    assert served.status == 200
    assert served.content_type == exposition.CONTENT_TYPE_LATEST
    assert b"\nkevents_test_things_total 3.0\n" in served.body


PROBE = """
import json, sys
import kevents.endpoints, kevents.transport, kevents.probes, kevents.metrics
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "aiohttp")))
"""


def test_the_endpoints_and_the_plain_http_transport_do_not_import_aiohttp() -> None:
    """aiohttp's server costs ~12 MiB of RSS: a process that serves its metrics and probes and
    sends to plain-http sinks does not load it (the https path and aiohttp apps do, lazily)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out) == []
