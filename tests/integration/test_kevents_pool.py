"""The sender's HTTP pool against hostile and careless loopback servers.

Servers that close after each answer, close idle connections, never answer, never accept,
or answer 64 MiB: no event is lost to a keep-alive race, no slot is held forever, idle
connections and forgotten hosts are released, and one huge answer does not stall the
deliveries of others sharing the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from kevents import cloudevent, connections, retries, sender, transport
from tests import waiting

OK = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
"""A keep-alive answer: nothing tells the client that the server will close."""

Answer = Callable[[int], tuple[bytes | None, bool]]
"""For request number n (from 1): bytes to answer (None: none) and whether to close after."""


class RawSink:
    """A scripted HTTP/1.1 server on loopback that counts requests and closed connections."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests = 0
        self.connections = 0
        self.closed = 0
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                self.requests += 1
                data, close = self.answer(self.requests)
                if data is not None:
                    writer.write(data)
                    await writer.drain()
                if close or data is None:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.closed += 1


Serve = Callable[[Answer], Awaitable[RawSink]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def made(answer: Answer) -> RawSink:
        sink = RawSink(answer)
        server = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
        servers.append(server)
        sink.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        return sink

    yield made
    for server in servers:
        server.close()
        await server.wait_closed()


def event(number: int = 1) -> cloudevent.CloudEvent:
    return cloudevent.build("dev.example.test", "/pool", {"n": number}, id=f"e-{number}")


async def post(pool: connections.Pool, url: str) -> connections.Response:
    where = connections.endpoint(url)
    assert where is not None
    return await pool.send(where, {"ce-id": "1"}, b"{}")


async def test_a_server_closing_after_each_answer_loses_nothing_with_retry_0(
    serve: Serve,
) -> None:
    sink = await serve(lambda n: (OK, True))
    async with sender.Sender(policy=retries.RetryPolicy()) as send:
        results = [await send.send(event(n), sink.url) for n in range(1000)]
    failed = [r.error for r in results if not r.ok]
    assert failed == []
    assert {r.attempts for r in results} == {1}  # the resend is not a delivery attempt
    assert sink.requests == 1000  # and nothing was delivered twice


@pytest.mark.parametrize(
    ("answers", "before", "outcome", "requests"),
    [
        ([(OK, False), (None, True), (OK, False)], 1, 202, 3),
        ([(OK, False), (b"HTTP/1.1 202 Acc", True)], 1, connections.ServerDisconnectedError, 2),
        ([(None, True)], 0, connections.ServerDisconnectedError, 1),
        ([(b"HTTP/1.1 202 Acc", True)], 0, connections.ServerDisconnectedError, 1),
    ],
    ids=["reused-closed-before-answering", "reused-partial-answer", "new-closed",
         "new-partial-answer"],
)  # fmt: skip
async def test_a_request_is_sent_again_only_if_a_reused_connection_closed_before_answering(
    serve: Serve,
    answers: list[tuple[bytes | None, bool]],
    before: int,
    outcome: int | type[Exception],
    requests: int,
) -> None:
    """`answers` are the server's, per request it reads; `before` requests succeed first."""
    sink = await serve(lambda n: answers[n - 1])
    pool = connections.Pool(limit_per_host=1, body_limit=16)
    try:
        for _ in range(before):
            assert (await post(pool, sink.url)).status == 202
        if isinstance(outcome, int):
            assert (await post(pool, sink.url)).status == outcome
        else:
            with pytest.raises(outcome):
                await post(pool, sink.url)
        assert sink.requests == requests
    finally:
        pool.close()


async def test_idle_connections_are_closed_within_4_s_and_their_hosts_forgotten(
    serve: Serve,
) -> None:
    sinks = [await serve(lambda n: (OK, False)) for _ in range(3)]
    pool = connections.Pool(limit_per_host=4, body_limit=16)
    try:
        for sink in sinks:
            assert (await post(pool, sink.url)).status == 202
        assert (pool.hosts, pool.idle) == (3, 3)
        answered = time.monotonic()
        await waiting.until(lambda: all(s.closed == 1 for s in sinks), within=5.0, step=0.02)
        assert time.monotonic() - answered < 4.0
        assert (pool.hosts, pool.idle) == (0, 0)  # nothing kept for hosts no longer used
        assert (await post(pool, sinks[0].url)).status == 202
        assert sinks[0].connections == 2  # a new connection, not the closed one
    finally:
        pool.close()


@pytest.mark.parametrize(
    ("max_age", "connections_made"), [(60.0, 1), (0.0, 20)], ids=["young", "too-old-to-reuse"]
)
async def test_a_connection_older_than_max_age_is_not_reused(
    serve: Serve, max_age: float, connections_made: int
) -> None:
    """A kept-alive connection stays on the pod a ClusterIP first routed it to: past its age
    it is closed after its answer, so steady traffic reaches a rollout's new pods."""
    sink = await serve(lambda n: (OK, False))
    pool = connections.Pool(limit_per_host=1, body_limit=16, max_age=max_age)
    try:
        for _ in range(20):
            assert (await post(pool, sink.url)).status == 202
        assert (sink.requests, sink.connections) == (20, connections_made)
    finally:
        pool.close()


async def test_a_subscriber_that_accepts_but_never_answers_fails_within_the_default_timeout() -> (
    None
):
    with socket.socket() as listener:  # the kernel accepts; nobody ever reads or answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        async with sender.Sender(attempt_timeout=0.3) as send:
            result = await send.send(event(), url, policy=retries.RetryPolicy())
            assert (result.status, result.error) == (None, "no response within 0.3 s")
            assert result.duration < 2.0
            chosen = await send.send(event(), url, policy=retries.RetryPolicy(timeout=0.1))
            assert chosen.error == "no response within 0.1 s"  # the delivery's own timeout
    assert transport.DEFAULT_ATTEMPT_TIMEOUT == 60.0


async def test_requests_queued_behind_a_silent_subscriber_fail_each_at_its_own_timeout() -> None:
    """One slot, held by a request the subscriber never answers: the requests queued for the
    slot fail at their own deadlines (the pool's one timer; an earlier deadline arriving later
    is not missed), the slot passes on when the holder times out, and nothing is left behind."""
    with socket.socket() as listener:  # the kernel accepts; nobody ever reads or answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        where = connections.endpoint(f"http://127.0.0.1:{listener.getsockname()[1]}/")
        assert where is not None
        pool = connections.Pool(limit_per_host=1, body_limit=16)
        failed: list[str] = []

        async def post_within(name: str, seconds: float) -> None:
            with pytest.raises(TimeoutError):
                await pool.send(where, {"ce-id": name}, b"{}", seconds)
            failed.append(name)

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(post_within("holder", 0.6))
                await asyncio.sleep(0)  # the holder takes the slot first
                group.create_task(post_within("queued-late", 1.2))  # gets the slot at 0.6
                group.create_task(post_within("queued-soon", 0.3))
            assert failed == ["queued-soon", "holder", "queued-late"]
            assert pool.hosts == 0  # no slot, waiter or connection kept for the host
        finally:
            pool.close()


async def test_a_subscriber_that_never_accepts_fails_within_the_connect_timeout() -> None:
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        queued = stack.enter_context(socket.create_connection(address))  # fills the backlog
        assert queued is not None
        url = f"http://127.0.0.1:{address[1]}/"
        async with sender.Sender(connect_timeout=0.3, attempt_timeout=30.0) as send:
            result = await send.send(event(), url)
        assert result.error is not None
        assert result.error.startswith("ConnectionTimeoutError: Connection timeout to host")
        assert result.duration < 2.0
    assert connections.CONNECT_TIMEOUT == 10.0


BIG = 64 * 1024 * 1024


@contextlib.contextmanager
def huge_answers() -> Iterator[tuple[str, list[int]]]:
    """A sink in its own thread answering every request with one 64 MiB chunk."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    served: list[int] = []
    payload = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % BIG
    payload += b"x" * BIG + b"\r\n0\r\n\r\n"

    def run() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                try:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        head += connection.recv(65536)
                    served.append(1)
                    connection.sendall(payload)
                except OSError:
                    pass  # the client stopped reading at its body limit

    thread = threading.Thread(target=run, name="huge-answers")
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/", served
    finally:
        stop.set()
        thread.join()
        listener.close()


async def test_a_64_mib_answer_does_not_stall_deliveries_to_another_subscriber(
    serve: Serve,
) -> None:
    fast = await serve(lambda n: (OK, False))
    latencies: list[float] = []
    huge: list[bool] = []
    with huge_answers() as (huge_url, served):
        async with sender.Sender(policy=retries.RetryPolicy()) as send:
            done = asyncio.Event()

            async def hog() -> None:
                while not done.is_set():
                    result = await send.send(event(), huge_url)
                    huge.append(result.ok and result.body_truncated)

            async def deliver() -> None:
                await waiting.until(lambda: len(served) > 0)
                for number in range(400):
                    start = time.perf_counter()
                    assert (await send.send(event(number), fast.url)).ok
                    latencies.append(time.perf_counter() - start)
                    await asyncio.sleep(0.002)
                done.set()

            await asyncio.gather(hog(), deliver())
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    assert p99 < 0.050, f"p99 {p99 * 1000:.1f} ms"
    assert len(huge) >= 3 and all(huge)  # 200, cut at the 1 MiB body limit each time
