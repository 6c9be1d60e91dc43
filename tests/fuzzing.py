"""A seeded generator of hostile and valid HTTP requests for the dispatcher's ingress.

Each `Case` is the raw bytes a client writes on its own connection, whether it then shuts
down its sending half (`half_close`), and the event id it carries when it is a valid event
(`event_id`: the fuzz test checks that exactly the events answered 202 are delivered).
Everything but the seed is drawn from `random.Random(seed)`, so a failure is replayed by its
seed and index.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random

VALID_KINDS = ("binary", "structured", "binary-half-close", "structured-keepalive")
HOSTILE_KINDS = (
    "garbage",
    "bad-header-line",
    "bad-content-length",
    "long-line",
    "tls-hello",
    "bad-attribute-name",
    "missing-id",
    "old-specversion",
    "wrong-content-type",
    "batch",
    "structured-not-json",
    "nested",
    "too-large",
    "chunked-too-large",
    "truncated-half-close",
    "get",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    kind: str
    data: bytes
    half_close: bool = False
    event_id: str | None = None


def _request(path: str, headers: dict[str, str], body: bytes, *, close: bool = True) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: fuzz"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if "Transfer-Encoding" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _binary(event_id: str, rng: random.Random, **extra: str) -> dict[str, str]:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/fuzz",
        "ce-type": rng.choice(["dev.fuzz.a", "dev.fuzz.b"]),
        "Content-Type": "application/json",
    }
    headers.update(extra)
    return headers


def _structured(event_id: str, data: object) -> bytes:
    envelope = {"specversion": "1.0", "id": event_id, "source": "/fuzz", "type": "dev.fuzz"}
    return json.dumps({**envelope, "data": data}).encode()


def generate(seed: int, count: int, *, path: str, max_body: int) -> list[Case]:
    """`count` cases; about half are valid events (each with a unique id)."""
    rng = random.Random(seed)
    cases: list[Case] = []
    for index in range(count):
        event_id = f"fuzz-{seed}-{index}"
        payload = json.dumps({"n": index, "pad": "x" * rng.randrange(0, 2000)}).encode()
        if rng.random() < 0.5:
            kind = rng.choice(VALID_KINDS)
            if kind == "binary":
                data = _request(path, _binary(event_id, rng), payload)
                cases.append(Case(kind, data, event_id=event_id))
            elif kind == "binary-half-close":
                data = _request(path, _binary(event_id, rng), payload, close=False)
                cases.append(Case(kind, data, half_close=True, event_id=event_id))
            else:
                body = _structured(event_id, {"n": index})
                headers = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
                close = kind != "structured-keepalive"
                cases.append(
                    Case(kind, _request(path, headers, body, close=close), event_id=event_id)
                )
            continue
        kind = rng.choice(HOSTILE_KINDS)
        cases.append(Case(kind, *_hostile(kind, rng, path, event_id, payload, max_body)))
    return cases


def _hostile(
    kind: str, rng: random.Random, path: str, event_id: str, payload: bytes, max_body: int
) -> tuple[bytes, bool]:
    """(bytes, half_close) of one hostile request; none of them may be delivered."""
    if kind == "garbage":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) + b"\r\n\r\n", False
    if kind == "bad-header-line":
        return b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", False
    if kind == "bad-content-length":
        return b"POST " + path.encode() + b" HTTP/1.1\r\nContent-Length: -5\r\n\r\n", False
    if kind == "long-line":
        return b"POST " + path.encode() + b"?" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n", False
    if kind == "tls-hello":
        return b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(64), False
    if kind == "bad-attribute-name":
        headers = _binary(event_id, rng, **{"ce-Bad_Ext": "x"})
        return _request(path, headers, payload), False
    if kind == "missing-id":
        headers = _binary(event_id, rng)
        del headers["ce-id"]
        return _request(path, headers, payload), False
    if kind == "old-specversion":
        return _request(path, _binary(event_id, rng, **{"ce-specversion": "0.1"}), payload), False
    if kind == "wrong-content-type":
        return _request(path, {"Content-Type": "text/plain"}, _structured(event_id, 1)), False
    if kind == "batch":
        body = b"[" + _structured(event_id, 1) + b"]"
        return _request(path, {"Content-Type": "application/cloudevents-batch+json"}, body), False
    if kind == "structured-not-json":
        body = _structured(event_id, 1)[: rng.randrange(1, 40)]
        return _request(path, {"Content-Type": "application/cloudevents+json"}, body), False
    if kind == "nested":
        depth = rng.choice([300, 1_000, 5_000])
        body = _structured(event_id, None)[:-13] + b'"data":' + b"[" * depth + b"]" * depth + b"}"
        return _request(path, {"Content-Type": "application/cloudevents+json"}, body), False
    if kind == "too-large":
        return _request(path, _binary(event_id, rng), b"x" * (max_body + 1)), False
    if kind == "chunked-too-large":
        chunk = b"x" * 8192
        chunks = b"".join(b"2000\r\n" + chunk + b"\r\n" for _ in range(max_body // 8192 + 2))
        headers = {**_binary(event_id, rng), "Transfer-Encoding": "chunked"}
        return _request(path, headers, chunks + b"0\r\n\r\n"), False
    if kind == "truncated-half-close":
        request = _request(path, _binary(event_id, rng), payload, close=False)
        return request[: len(request) - rng.randrange(1, len(payload))], True
    if kind == "get":
        return b"GET " + path.encode() + b" HTTP/1.1\r\nConnection: close\r\n\r\n", False
    raise AssertionError(kind)


async def exchange(host: str, port: int, case: Case) -> int | None:
    """Send one case on a new connection; the status answered, or None when the server
    closed without an answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        async with asyncio.timeout(30):
            writer.write(case.data)
            try:
                await writer.drain()
                if case.half_close:
                    writer.write_eof()
            except ConnectionError:
                pass  # the server answered and closed while we were still writing
            try:
                line = await reader.readline()
            except ConnectionError:
                return None
            if not line:
                return None
            status = int(line.split()[1])
            await _drain_response(reader)
            return status
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def _drain_response(reader: asyncio.StreamReader) -> None:
    """Read the rest of one response (headers and a Content-Length body)."""
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
