"""How the lean pool frames answers, fed byte by byte to one connection (no sockets).

Every answer kind split at every byte and at random points must give the same `Response`;
heads, lines, counts and bodies that break a limit fail fast instead of being buffered.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kevents import connections

REQUEST = b"POST / HTTP/1.1\r\nHost: sink\r\nContent-Length: 0\r\n\r\n"


class FakeTransport:
    """The transport side of a connection: records writes and whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@dataclasses.dataclass
class Fed:
    """What a connection made of the bytes it was fed."""

    answer: connections.Response | BaseException | None
    """None: still waiting for more bytes after all were fed."""
    fed: int
    """Bytes fed until the answer was settled (or all of them), counted in whole pieces."""
    reusable: bool
    closed: bool


async def feed(wire: bytes, cuts: list[int], *, limit: int = 1024, close: bool = True) -> Fed:
    """Feed `wire` split at `cuts` to a connection waiting for an answer; then, if the answer
    is not complete and `close`, the server closes the connection."""
    transport = FakeTransport()
    connection = connections._Connection(limit)
    connection.connection_made(cast(asyncio.BaseTransport, transport))
    answer = connection.request(REQUEST)
    start = fed = 0
    for end in [*sorted(set(cuts)), len(wire)]:
        if answer.done() or transport.closed:
            break
        if start < end:
            fed = end
            connection.data_received(wire[start:end])
        start = max(start, end)
    if not answer.done() and close:
        connection.connection_lost(None)
    if not answer.done():
        return Fed(None, fed, False, transport.closed)
    exception = answer.exception()
    result = exception if exception is not None else answer.result()
    return Fed(result, fed, connection.reusable and not connection.closed, transport.closed)


@dataclasses.dataclass(frozen=True)
class Answer:
    wire: bytes
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool


def response_of(answer: Answer, limit: int) -> tuple[int, list[tuple[str, str]], bytes, bool]:
    return answer.status, answer.headers, answer.body[:limit], len(answer.body) > limit


def seen(result: Fed) -> tuple[int, list[tuple[str, str]], bytes, bool]:
    assert isinstance(result.answer, connections.Response), result.answer
    response = result.answer
    return response.status, list(response.headers.items()), response.body, response.truncated


def chunked(pieces: list[bytes], extensions: list[str], trailers: list[tuple[str, str]]) -> bytes:
    out = b""
    for number, piece in enumerate(pieces):
        extension = extensions[number % len(extensions)] if extensions else ""
        out += b"%x%s\r\n%s\r\n" % (len(piece), extension.encode(), piece)
    out += b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers) + b"\r\n"
    return out


TABLE = {
    "length": Answer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCe-Id: r\r\n\r\nhello",
        200, [("Content-Length", "5"), ("Ce-Id", "r")], b"hello", True,
    ),
    "chunked-extensions-trailers": Answer(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked([b"abc", b"de", b"f" * 20], [";x=y", ';q="a b"', ""], [("Trailer", "t")]),
        200, [("Transfer-Encoding", "chunked")], b"abcde" + b"f" * 20, True,
    ),
    "close-delimited": Answer(
        b"HTTP/1.0 500 Oops\r\nX-A: 1\r\n\r\nclose-delimited",
        500, [("X-A", "1")], b"close-delimited", False,
    ),
    "interim-1xx": Answer(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok",
        202, [("Content-Length", "2")], b"ok", True,
    ),
    "no-content": Answer(
        b"HTTP/1.1 204 No Content\r\nX-B: 2\r\n\r\n", 204, [("X-B", "2")], b"", True
    ),
    "connection-close": Answer(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
        200, [("Connection", "close"), ("Content-Length", "2")], b"hi", False,
    ),
}  # fmt: skip


@pytest.mark.parametrize("answer", TABLE.values(), ids=TABLE.keys())
async def test_an_answer_split_at_every_byte_gives_the_same_response(answer: Answer) -> None:
    expected = response_of(answer, 1024)
    whole = await feed(answer.wire, [])
    assert seen(whole) == expected
    assert whole.reusable == answer.keep_alive
    byte_by_byte = await feed(answer.wire, list(range(len(answer.wire))))
    assert seen(byte_by_byte) == expected
    assert byte_by_byte.reusable == answer.keep_alive
    for cut in range(1, len(answer.wire)):
        halves = await feed(answer.wire, [cut])
        assert seen(halves) == expected, f"split at byte {cut}"
        assert halves.reusable == answer.keep_alive


_TOKEN = st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True)
_VALUE = st.from_regex(r"([!-~]([ -~]{0,20}[!-~])?)?", fullmatch=True)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    """Any answer kind: interim answers first, then one framed by length, chunks or close."""
    interim = draw(st.lists(st.sampled_from([b"100 Continue", b"103 Early Hints"]), max_size=2))
    status = draw(st.sampled_from([200, 201, 202, 204, 400, 404, 429, 500, 503]))
    headers = draw(st.lists(st.tuples(_TOKEN, _VALUE), max_size=6))
    body = b"" if status == 204 else draw(st.binary(max_size=300))
    framing = "none" if status == 204 else draw(st.sampled_from(["length", "chunked", "close"]))
    keep_alive = framing != "close"
    payload = body
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=5)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        extensions = draw(st.lists(st.sampled_from([";a", ";a=b", ';n="v v"', ""]), max_size=3))
        trailers = draw(st.lists(st.tuples(_TOKEN, _VALUE), max_size=2))
        payload = chunked([p for p in pieces if p], extensions, trailers)
    version = b"HTTP/1.0" if framing == "close" and draw(st.booleans()) else b"HTTP/1.1"
    wire = b"".join(b"HTTP/1.1 %s\r\n\r\n" % line for line in interim)
    wire += b"%s %d Reason\r\n" % (version, status)
    wire += b"".join(f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n" + payload
    return Answer(wire, status, headers, body, keep_alive)


@given(
    answer=answers(),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
    limit=st.sampled_from([0, 7, 64, 1024]),
)
def test_any_answer_split_anywhere_gives_the_same_response(
    answer: Answer, cuts: list[int], limit: int
) -> None:
    expected = response_of(answer, limit)
    result = asyncio.run(feed(answer.wire, cuts, limit=limit))
    assert seen(result) == expected
    assert result.reusable == (answer.keep_alive and not expected[3])
    assert seen(asyncio.run(feed(answer.wire, [], limit=limit))) == expected


def payload_error(result: Fed, match: str) -> None:
    assert isinstance(result.answer, connections.ClientPayloadError), result.answer
    assert match in str(result.answer)
    assert result.closed


HEAD = b"HTTP/1.1 200 OK\r\n"


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (HEAD + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 900) for i in range(80)) + b"\r\n",
         "head larger than 65536"),
        (HEAD + b"X-Big: " + b"v" * 9000 + b"\r\n\r\n", "longer than 8192"),
        (HEAD + b"X-Endless: " + b"v" * 200_000, "longer than 8192"),
        (HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", "more than 100"),
        (HEAD + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "Content-Length"),
        (HEAD + b"Content-Length: +3\r\n\r\nabc", "Content-Length"),
        (HEAD + b"Content-Length: 3abc\r\n\r\nabc", "Content-Length"),
        (HEAD + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc", "Content-Length"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 40 + b"\r\n", "overflow"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n1;" + b"e" * 200_000, "longer than 8192"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"0" * 200_000, "longer than 8192"),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: " + b"t" * 200_000,
         "longer than 8192"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
         "switched protocols"),
        (b"SMTP ready\r\n", "invalid HTTP answer"),
    ],
    ids=["head", "line", "endless-line", "count", "content-length-differs",
         "content-length-signed", "content-length-not-digits", "length-and-chunked",
         "chunk-size-overflow", "chunk-extension-endless", "chunk-size-zeros-endless",
         "trailer-endless", "upgrade", "not-http"],
)  # fmt: skip
@pytest.mark.parametrize("piece", [1024, 256 * 1024], ids=["1KiB-reads", "256KiB-reads"])
async def test_answers_breaking_a_limit_fail_before_much_is_read(
    wire: bytes, match: str, piece: int
) -> None:
    result = await feed(wire, list(range(piece, len(wire), piece)), close=False)
    payload_error(result, match)
    if len(wire) > 100_000:
        assert result.fed <= 64 * 1024 + piece  # it failed early: not buffered to the end


async def test_a_huge_chunk_is_cut_at_the_body_limit_as_it_streams_in() -> None:
    size = 16 * 1024 * 1024
    wire = (
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % size + b"x" * size + b"\r\n0\r\n\r\n"
    )
    piece = 256 * 1024
    result = await feed(wire, list(range(piece, len(wire), piece)), limit=1024 * 1024)
    assert seen(result) == (200, [("Transfer-Encoding", "chunked")], b"x" * 1024 * 1024, True)
    assert result.fed <= 1024 * 1024 + piece  # answered as the limit was reached
    assert result.closed  # the rest of the answer is not read


async def test_bytes_after_a_complete_answer_close_the_connection() -> None:
    wire = HEAD + b"Content-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"
    result = await feed(wire, [])
    assert seen(result) == (200, [("Content-Length", "2")], b"ok", False)
    assert not result.reusable and result.closed


async def test_bytes_nobody_asked_for_close_an_idle_connection() -> None:
    transport = FakeTransport()
    connection = connections._Connection(16)
    connection.connection_made(cast(asyncio.BaseTransport, transport))
    connection.data_received(b"HTTP/1.1 200 OK\r\n\r\n")
    assert transport.closed


async def test_an_answer_cut_short_by_a_close_fails() -> None:
    result = await feed(HEAD + b"Content-Length: 10\r\n\r\nabc", [])
    assert isinstance(result.answer, connections.ServerDisconnectedError)
