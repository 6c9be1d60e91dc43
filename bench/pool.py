"""Benchmark the sender's HTTP pool (`kevents.connections`): CPU per request.

    .venv/bin/python -m bench.pool [--requests 50000] [--concurrency 16] [--hosts 10 --sender]
        [--results [DIR]]   (JSON + SVG chart, see bench/results.py)

A raw HTTP/1.1 sink in its own process (uvloop, no parsing beyond the request framing)
answers every POST at once, in one of three shapes: `empty` (202, Content-Length: 0),
`body` (200 with a 1 KiB reply by Content-Length) and `chunked` (the same reply in two
chunks). The pool posts a 1 KiB CloudEvent over `--concurrency` keep-alive connections, to
`--hosts` sinks in turn; with `--sender` each request is a `Sender.send()` (policy,
default timeouts, transport, pool) as the dispatcher's deliveries are. Printed per shape:
requests/s and the client's CPU time per request (the dispatcher pays it once per delivery),
and the sinks' for comparison. Run it from a copy of the tree with another
`kevents/connections.py` (PYTHONPATH=.) to compare side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import uvloop

from bench import results
from hack import processes
from kevents import cloudevent, connections, retries, sender

HOST = "127.0.0.1"
REPLY = b"r" * 1024
SHAPES = {
    "empty": b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
    "body": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCe-Id: r\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(REPLY), REPLY),
    "chunked": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n200\r\n%s\r\n200\r\n%s\r\n0\r\n\r\n"
    % (REPLY[:512], REPLY[512:]),
}
HEADERS = {
    "ce-specversion": "1.0",
    "ce-id": "bench-1",
    "ce-source": "/bench",
    "ce-type": "dev.knative.bench",
    "content-type": "application/json",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}


class _Sink(asyncio.Protocol):
    """Answers each request (head up to CRLFCRLF, then Content-Length bytes) with `answer`."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = 0
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(self.buffer[:end]).lower()
            start = head.find(b"content-length:")
            length = int(head[start + 15 :].split(b"\r\n", 1)[0]) if start >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                break
            del self.buffer[: end + 4 + length]
            answers += 1
        if answers and self.transport is not None:
            self.transport.write(self.answer * answers)


async def _serve(shape: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Sink(SHAPES[shape]), HOST, 0)
    sys.stdout.write(f"{server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


async def _run(
    ports: list[int], requests: int, concurrency: int, sinks: list[int], through_sender: bool
) -> tuple[float, ...]:
    """Requests/s, client CPU and sinks' CPU in µs per request."""
    urls = [f"http://{HOST}:{port}/" for port in ports]
    body = b'{"payload": "' + b"x" * 1000 + b'"}'
    pool = connections.Pool(limit_per_host=concurrency, body_limit=1024 * 1024)
    event = cloudevent.build("dev.knative.bench", "/bench", {"payload": "x" * 1000}, id="b-1")
    send = sender.Sender(policy=retries.RetryPolicy())
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            url = urls[left % len(urls)]
            if through_sender:
                result = await send.send(event, url)
                assert result.ok, result.error
            else:
                where = connections.endpoint(url)
                assert where is not None
                response = await pool.send(where, HEADERS, body)
                assert 200 <= response.status < 300

    try:
        left = concurrency * 50  # warm up: connections open, caches filled
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        left = requests
        cpu, sink_cpu = time.process_time(), sum(processes.cpu_seconds(pid) for pid in sinks)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        sink_cpu = sum(processes.cpu_seconds(pid) for pid in sinks) - sink_cpu
    finally:
        pool.close()
        await send.close()
    return requests / wall, cpu / requests * 1e6, sink_cpu / requests * 1e6


RESULTS = results.Recorder(
    "pool",
    "The sender's HTTP pool: requests/s by sink shape (loopback)",
    rate=("requests_per_s", "requests/s"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    results.add_argument(parser)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--hosts", type=int, default=1, help="sinks, each its own process")
    parser.add_argument(
        "--sender", action="store_true", help="send CloudEvents through kevents.sender.Sender"
    )
    parser.add_argument("--serve", choices=list(SHAPES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(_serve(args.serve))
        return
    print(
        f"{os.cpu_count()} CPUs, {args.requests} requests per shape, {args.concurrency} "
        f"concurrent, {args.hosts} sink(s), 1 KiB events, "
        f"{'Sender' if args.sender else 'Pool'} ({connections.__file__})"
    )
    for shape in args.shapes:
        sinks = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.pool", "--serve", shape], stdout=subprocess.PIPE
            )
            for _ in range(args.hosts)
        ]
        try:
            ports = [int(sink.stdout.readline()) for sink in sinks if sink.stdout is not None]
            rate, cpu, sink_cpu = uvloop.run(
                _run(ports, args.requests, args.concurrency, [s.pid for s in sinks], args.sender)
            )
        finally:
            for sink in sinks:
                sink.terminate()
                sink.wait()
        print(
            f"{shape:8} {rate:8.0f} req/s  client CPU {cpu:6.1f} us/req  "
            f"(sinks {sink_cpu:5.1f} us/req)"
        )
        RESULTS.add(
            f"kevents {'Sender' if args.sender else 'Pool'}, {args.hosts} sink(s)", shape,
            requests_per_s=rate, client_cpu_us=cpu, sinks_cpu_us=sink_cpu,
        )  # fmt: skip
    RESULTS.save(args, short_run=args.requests < 50_000)


if __name__ == "__main__":
    main()
