"""One HTTP attempt of the sender: a POST and its answer, over pooled keep-alive connections.

Plain `http://` sinks go over `kevents.connections` (the lean pool); https (TLS with the
system trust plus K_CA_CERTS) and URLs with credentials over one `aiohttp.ClientSession`,
made with its TLS context on the first such request: the system's CA bundle (144
certificates here) costs 0.5-1.3 MiB of RSS in every process that loads it, and most sinks
in a cluster are plain http (a bad K_CA_CERTS is still refused at construction). aiohttp
itself is imported then too (~13.5 MiB of RSS, see `kevents.opserver`).
`post()` never raises for HTTP or network failures: the `Attempt` carries the status or the
error in words.

Timeouts, per attempt: the delivery's (`delivery.timeout`, `K_SINK_TIMEOUT`), or
`DEFAULT_ATTEMPT_TIMEOUT` (60 s) when the user set none; and `connections.CONNECT_TIMEOUT`
(10 s) to open a connection, on both paths. Knative's sender has no attempt timeout unless
`delivery.timeout` is set, so a subscriber that never answers holds its slot forever; 60 s
leaves room for a scale-from-zero cold start behind Knative's activator.
"""

from __future__ import annotations

import dataclasses
import io
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kevents import connections, errors

if TYPE_CHECKING:
    import aiohttp

DEFAULT_ATTEMPT_TIMEOUT = 60.0
"""Seconds per attempt when the delivery sets no timeout (see the module docstring)."""
LARGE_BODY = 1024 * 1024
"""Bytes from which a request body is streamed instead of handed to aiohttp whole."""


def make_ssl_context(ca_certs: str | None, *, system: bool = True) -> ssl.SSLContext:
    """System trust (unless `system` is false: only checking `ca_certs`) plus the PEM bundle
    `ca_certs` (K_CA_CERTS)."""
    context = ssl.create_default_context() if system else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_certs:
        try:
            context.load_verify_locations(cadata=ca_certs)
        except (ssl.SSLError, ValueError) as exc:
            raise errors.ConfigError([f"K_CA_CERTS: not a valid PEM CA bundle ({exc})"]) from exc
    return context


@dataclasses.dataclass(slots=True)
class Attempt:
    status: int | None = None
    error: str | None = None
    body: bytes = b""
    truncated: bool = False
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


class Transport:
    def __init__(
        self,
        *,
        ca_certs: str | None,
        limit_per_host: int,
        body_limit: int,
        attempt_timeout: float = DEFAULT_ATTEMPT_TIMEOUT,
        connect_timeout: float = connections.CONNECT_TIMEOUT,
    ) -> None:
        """`attempt_timeout` applies when `post()` is given none."""
        if ca_certs:
            make_ssl_context(ca_certs, system=False)  # refused now, not at the first https send
        self._ca_certs = ca_certs
        self._opened = False
        self._limit_per_host = limit_per_host
        self._body_limit = body_limit
        self._attempt_timeout = attempt_timeout
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._pool = connections.Pool(
            limit_per_host=limit_per_host, body_limit=body_limit, connect_timeout=connect_timeout
        )

    def open(self) -> None:
        """Ready to send (the https session is made on its first request)."""
        self._opened = True

    def _https(self) -> aiohttp.ClientSession:
        import aiohttp  # here only: a process sending to plain-http sinks never loads it

        self._opened = True
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0, limit_per_host=self._limit_per_host, ssl=make_ssl_context(self._ca_certs)
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    @property
    def is_open(self) -> bool:
        return self._opened

    async def close(self) -> None:
        self._opened = False
        self._pool.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], attempt_timeout: float | None
    ) -> Attempt:
        """One attempt over the lean pool (plain http) or aiohttp (https, credentials), within
        `attempt_timeout` seconds (None: the transport's default)."""
        if attempt_timeout is None:
            attempt_timeout = self._attempt_timeout
        outcome = Attempt()
        where = connections.endpoint(url)
        try:
            if where is not None:
                answer = await self._pool.send(where, headers, body, attempt_timeout)
                outcome.status = answer.status
                outcome.headers = answer.headers
                outcome.body, outcome.truncated = answer.body, answer.truncated
            else:
                await self._post_https(url, body, headers, attempt_timeout, outcome)
        except TimeoutError:
            outcome.error = f"no response within {attempt_timeout} s"
        except connections.ClientError as exc:  # connect timeouts too
            outcome.error = f"{type(exc).__name__}: {exc}"
        if outcome.error is None and outcome.status is not None and not 200 <= outcome.status < 300:
            outcome.error = f"status {outcome.status}"
        return outcome

    async def _post_https(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        attempt_timeout: float,
        outcome: Attempt,
    ) -> None:
        """`post()` over aiohttp: its `ClientError`s become `outcome.error`; its timeouts
        (`TimeoutError`s as well as `ClientError`s) are left to `post()`, as for the pool."""
        import aiohttp

        skip = () if "content-type" in headers else ("Content-Type",)
        try:
            async with self._https().post(
                url,
                # aiohttp warns about (and copies) large bytes bodies; a fresh stream per
                # attempt sends the same bytes without either.
                data=io.BytesIO(body) if len(body) > LARGE_BODY else body,
                headers=headers,
                skip_auto_headers=skip,
                timeout=aiohttp.ClientTimeout(
                    total=attempt_timeout, sock_connect=self._connect_timeout
                ),
            ) as response:
                outcome.status = response.status
                outcome.headers = response.headers
                outcome.body, outcome.truncated = await self._read_body(response)
        except TimeoutError:
            raise
        except aiohttp.ClientError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"

    async def _read_body(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while size < self._body_limit:
            chunk = await response.content.read(self._body_limit - size)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), not response.content.at_eof()
