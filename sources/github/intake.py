"""Reading a webhook body before anyone knows who sent it, in bounded memory.

The receiver faces the internet: until its signature is checked, a body is a stranger's. An
earlier receiver read bodies whole (up to 25 MB each, with no bound on how many at once)
before checking them: 40 parallel 24 MiB posts with a wrong signature took 1.3 GiB, an OOM
kill in a 512Mi pod. Now:

- `ByteBudget` bounds the body bytes that all requests hold together until their event is
  handed to the forwarder (GITHUB_UNVERIFIED_BYTES). A request reserves its Content-Length
  before a byte of it is read (`Reservation.cover`); one that does not fit is answered at
  once (503 + Retry-After) and its body is never stored. A body without Content-Length
  (chunked) reserves as its chunks arrive.
- `read()` feeds each chunk to the HMAC as it arrives and keeps one copy of the body (a
  `bytearray`; no list of chunks joined at the end). A body above the payload limit stops
  being read at the chunk that crosses it (413).
- The whole body must arrive within GITHUB_BODY_TIMEOUT (408), so a slow upload cannot keep
  its reservation for long.

After a valid signature the receiver turns the body into `bytes` and parses it in one
synchronous step (no other request runs meanwhile), so at most one transient extra copy
exists in the process, whatever the concurrency.
"""

from __future__ import annotations

import asyncio
import enum

import aiohttp

from sources.github import signature


class Problem(enum.StrEnum):
    """Why a body was not read to the end; the values are metric label values."""

    TOO_LARGE = "too_large"  # above GITHUB_MAX_PAYLOAD_BYTES
    BUSY = "busy"  # GITHUB_UNVERIFIED_BYTES is taken by other requests
    TIMEOUT = "timeout"  # not received within GITHUB_BODY_TIMEOUT
    INCOMPLETE = "incomplete"  # the client went away before the end of the body


class ByteBudget:
    """Bytes that may be held at once; `try_take` never waits (an answer beats a queue)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def try_take(self, size: int) -> bool:
        if self.in_use + size > self.limit:
            return False
        self.in_use += size
        return True

    def give_back(self, size: int) -> None:
        self.in_use -= size


class Reservation:
    """One request's share of a `ByteBudget`, given back on `release()` (at the latest when
    the `with` block ends)."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self.held = 0

    def cover(self, size: int) -> bool:
        """Hold at least `size` bytes; False (nothing more taken) if the budget is short."""
        if size <= self.held:
            return True
        if not self._budget.try_take(size - self.held):
            return False
        self.held = size
        return True

    def release(self) -> None:
        self._budget.give_back(self.held)
        self.held = 0

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


async def read(
    stream: aiohttp.StreamReader,
    verifier: signature.Verifier,
    reservation: Reservation,
    *,
    limit: int,
    deadline: float,
) -> bytearray | Problem:
    """The body, fed to `verifier` as it arrived, or why it was not read to the end.

    `deadline` is in the event loop's clock (`loop.time()`)."""
    body = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            while chunk := await stream.readany():
                size = len(body) + len(chunk)
                if size > limit:
                    return Problem.TOO_LARGE
                if not reservation.cover(size):
                    return Problem.BUSY
                verifier.update(chunk)
                body += chunk
    except TimeoutError:
        return Problem.TIMEOUT
    except (ConnectionError, aiohttp.ClientPayloadError):
        return Problem.INCOMPLETE
    return body
