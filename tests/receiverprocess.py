"""`python -m sources.github` as a real process for load and fuzz tests, and a raw HTTP client.

`ReceiverProcess` starts the adapter on loopback ports with its log in a file (a pipe nobody
reads would block a process that logs a lot), waits until it is ready, and reports its peak
RSS (`VmHWM`, the kernel's high-water mark: no sampling can miss a peak) and its metrics.

`exchange()` speaks HTTP/1.1 on a socket of its own: it writes the head and then the body in
chunks while it reads the answer, and stops uploading once the answer is in, as GitHub and
any reasonable client do. It returns the status, or None when the connection ended without
one (a reset, or a close before an answer): the tests count those as unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pathlib
import signal
import sys
import tempfile
from collections.abc import Mapping

import aiohttp

from tests import webhooks

MIB = 1024 * 1024
ANSWER_WITHIN = 60.0
"""Seconds a request may wait for its answer before `exchange` fails the test."""


def _status_of(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) * 1024
    return values


@dataclasses.dataclass
class ReceiverProcess:
    sink_url: str
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    port: int = dataclasses.field(default_factory=webhooks.free_port)
    metrics_port: int = dataclasses.field(default_factory=webhooks.free_port)
    _proc: asyncio.subprocess.Process | None = None
    _log: pathlib.Path | None = None
    _final_logs: str | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def peak_rss(self) -> int:
        """Bytes: the highest resident set size the process has had so far."""
        return _status_of(self.pid)["VmHWM"]

    def logs(self) -> str:
        """What the process logged so far (all of it, once it has stopped)."""
        if self._final_logs is not None:
            return self._final_logs
        assert self._log is not None
        return self._log.read_text(errors="replace")

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as resp:
                return await resp.text()

    async def __aenter__(self) -> ReceiverProcess:
        keep = ("K_", "GITHUB_", "KEVENTS_", "METRICS_", "PORT")
        env = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
        env.update(
            K_SINK=self.sink_url,
            NAMESPACE="default",
            NAME="gh",
            GITHUB_OWNER_REPO="Codertocat/Hello-World",
            GITHUB_SECRET_TOKEN=webhooks.SECRET,
            KEVENTS_RECEIVER_HOST="127.0.0.1",
            PORT=str(self.port),
            KEVENTS_PROBES_PORT=str(self.port),
            METRICS_PROMETHEUS_HOST="127.0.0.1",
            METRICS_PROMETHEUS_PORT=str(self.metrics_port),
            KEVENTS_LOG_FORMAT="text",
        )
        env.update(self.env)
        fd, name = tempfile.mkstemp(prefix="github-receiver-", suffix=".log")
        self._log = pathlib.Path(name)
        with os.fdopen(fd, "wb") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sources.github", env=env, stderr=log
            )
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                if self._proc.returncode is not None:
                    raise AssertionError(f"the receiver exited: {self.logs()}")
                with contextlib.suppress(aiohttp.ClientError):
                    url = f"http://127.0.0.1:{self.port}/readiness"
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            return self
                await asyncio.sleep(0.05)
        raise AssertionError(f"the receiver never became ready: {self.logs()}")

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._proc is not None and self._log is not None
        try:
            if self._proc.returncode is None:
                self._proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(self._proc.wait(), 30)
                except TimeoutError:
                    self._proc.kill()
                    await self._proc.wait()
        finally:
            self._final_logs = self._log.read_text(errors="replace")
            self._log.unlink(missing_ok=True)


def request_head(
    headers: Mapping[str, str], *, content_length: int | None, path: str = "/"
) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    lines.extend(f"{key}: {value}" for key, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _upload(writer: asyncio.StreamWriter, head: bytes, body: bytes, chunk: int) -> None:
    writer.write(head)
    view = memoryview(body)
    for start in range(0, len(body), chunk):
        writer.write(view[start : start + chunk])
        await writer.drain()
    await writer.drain()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("closed before an answer")
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        key, _, value = line.decode("latin-1").partition(":")
        if key.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def exchange(
    port: int, head: bytes, body: bytes = b"", *, chunk: int = 256 * 1024
) -> tuple[int | None, bytes]:
    """Send one request on a new connection; (status, answer body), status None if none came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    upload = asyncio.ensure_future(_upload(writer, head, body, chunk))
    try:
        async with asyncio.timeout(ANSWER_WITHIN):
            return await _answer(reader)
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
        return None, b""
    finally:
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await upload
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
