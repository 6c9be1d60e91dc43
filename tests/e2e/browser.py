"""Headless Chromium (Debian's package) driven over the DevTools protocol, for page tests.

Just enough of CDP for our tests: open a page, read its text, evaluate an expression, take a
screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import pathlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1200,1400",
)  # fmt: skip


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        async for message in self._ws:
            reply = json.loads(message.data)
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
        raise RuntimeError("the browser closed the connection")

    async def text(self) -> str:
        result = await self.call(
            "Runtime.evaluate", expression="document.body.innerText", returnByValue=True
        )
        return str(result.get("result", {}).get("value", ""))

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def screenshot(self) -> bytes:
        """The page as PNG bytes."""
        result = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])


@contextlib.asynccontextmanager
async def open_page(url: str, profile: pathlib.Path) -> AsyncIterator[Page]:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("chromium is not installed (hack/bootstrap installs it)")
    proc = await asyncio.create_subprocess_exec(
        chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", url,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port = ""
        for _ in range(200):
            port = _devtools_port(profile)
            if port:
                break
            await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json") as resp:
                targets = await resp.json()
            page = next(t for t in targets if t.get("type") == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _devtools_port(profile: pathlib.Path) -> str:
    """The port Chromium wrote to its profile once its DevTools server listens ("" before)."""
    try:
        return profile.joinpath("DevToolsActivePort").read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return ""
