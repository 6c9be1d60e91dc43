"""Benchmark the sender's HTTP pool (`kevents.connections`) alone: CPU per request.

    .venv/bin/python -m bench.pool [--requests 50000] [--concurrency 16]

A raw HTTP/1.1 sink in its own process (uvloop, no parsing beyond the request framing)
answers every POST at once, in one of three shapes: `empty` (202, Content-Length: 0),
`body` (200 with a 1 KiB reply by Content-Length) and `chunked` (the same reply in two
chunks). The pool posts a 1 KiB CloudEvent over `--concurrency` keep-alive connections.
Printed per shape: requests/s and the client's CPU time per request (the pool's cost: the
dispatcher pays it once per delivery), and the sink's for comparison. Run it from a tree
with another `kevents/connections.py` to compare parsers side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import uvloop

from kevents import connections

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


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(port: int, requests: int, concurrency: int, sink_pid: int) -> tuple[float, ...]:
    where = connections.endpoint(f"http://{HOST}:{port}/")
    assert where is not None
    pool = connections.Pool(limit_per_host=concurrency, body_limit=1024 * 1024)
    body = b'{"payload": "' + b"x" * 1000 + b'"}'
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            response = await pool.post(where, HEADERS, body)
            assert 200 <= response.status < 300

    left = concurrency * 50  # warm up: connections open, caches filled
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    left = requests
    cpu, sink_cpu, start = time.process_time(), _cpu(sink_pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    cpu, sink_cpu = time.process_time() - cpu, _cpu(sink_pid) - sink_cpu
    pool.close()
    return requests / wall, cpu / requests * 1e6, sink_cpu / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--serve", choices=list(SHAPES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(_serve(args.serve))
        return
    print(
        f"{os.cpu_count()} CPUs, {args.requests} requests per shape, "
        f"{args.concurrency} connections, 1 KiB event bodies ({connections.__file__})"
    )
    for shape in args.shapes:
        sink = subprocess.Popen(
            [sys.executable, "-m", "bench.pool", "--serve", shape], stdout=subprocess.PIPE
        )
        try:
            assert sink.stdout is not None
            port = int(sink.stdout.readline())
            rate, cpu, sink_cpu = uvloop.run(_run(port, args.requests, args.concurrency, sink.pid))
        finally:
            sink.terminate()
            sink.wait()
        print(
            f"{shape:8} {rate:8.0f} req/s  pool CPU {cpu:6.1f} us/req  "
            f"(sink {sink_cpu:5.1f} us/req)"
        )


if __name__ == "__main__":
    main()
