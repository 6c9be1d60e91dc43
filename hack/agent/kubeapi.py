"""A small REST client for the apiserver: JSON requests, merge patches and watches.

The agent talks to a handful of endpoints with raw JSON documents, so a thin aiohttp client
keeps the payloads as plain dicts (what the env and status code works on) and every content
type explicit.
"""

from __future__ import annotations

import json
import logging
import pathlib
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import yaml

from hack.agent import errors

log = logging.getLogger(__name__)

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class Credentials:
    """Where the apiserver is and how to prove who we are (client certificate)."""

    server: str
    ca_file: str
    cert_file: str
    key_file: str

    @classmethod
    def from_kubeconfig(cls, path: pathlib.Path) -> Credentials:
        doc: Any = yaml.safe_load(path.read_text())
        current = doc["current-context"]
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == current)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
        return cls(
            server=str(cluster["server"]).rstrip("/"),
            ca_file=str(cluster["certificate-authority"]),
            cert_file=str(user["client-certificate"]),
            key_file=str(user["client-key"]),
        )

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


class Client:
    """JSON over HTTPS to one apiserver with one identity. Use `async with`."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self._ssl = creds.ssl_context()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=32),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use `async with Client(...)`"
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: object = None,
        content_type: str = "application/json",
        seconds: float = 30,
    ) -> Obj:
        """One request; the decoded JSON answer, or ApiError for a non-2xx status."""
        data = None if body is None else json.dumps(body)
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        async with self.session.request(
            method,
            self.creds.server + path,
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise _api_error(resp.status, text)
            result: Obj = json.loads(text) if text else {}
            return result

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Obj:
        return await self.request("GET", path, params=params)

    async def get_or_none(self, path: str) -> Obj | None:
        try:
            return await self.get(path)
        except errors.ApiError as err:
            if err.status == 404:
                return None
            raise

    async def create(self, path: str, body: Obj) -> Obj:
        return await self.request("POST", path, body=body)

    async def patch(self, path: str, body: Obj, content_type: str = MERGE_PATCH) -> Obj:
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def delete(self, path: str, body: Obj | None = None) -> Obj:
        return await self.request("DELETE", path, body=body)

    async def watch(
        self, path: str, params: Mapping[str, str], resource_version: str
    ) -> AsyncIterator[tuple[str, Obj]]:
        """One watch request: (type, object) events until the server ends it.

        Raises ApiError(410) when `resource_version` is too old (the caller relists).
        """
        query = {
            **params,
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        async with self.session.get(
            self.creds.server + path,
            params=query,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=360),
        ) as resp:
            if resp.status >= 400:
                raise _api_error(resp.status, await resp.text())
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind = str(event.get("type"))
                obj: Obj = event.get("object") or {}
                if kind == "ERROR":
                    raise _api_error(int(obj.get("code", 500)), json.dumps(obj))
                yield kind, obj


def _api_error(status: int, text: str) -> errors.ApiError:
    try:
        doc = json.loads(text)
        return errors.ApiError(status, str(doc.get("reason", "")), str(doc.get("message", text)))
    except (ValueError, AttributeError):
        return errors.ApiError(status, "", text[:500])
