"""`python -m sources.container.heartbeat` delivers numbered heartbeats, in order."""

from __future__ import annotations

import asyncio
import os
import sys

from aiohttp import web

from kevents import cloudevent


async def test_heartbeats_arrive_in_order_with_sequence_numbers() -> None:
    received: list[cloudevent.CloudEvent] = []

    async def sink(request: web.Request) -> web.Response:
        received.append(cloudevent.decode(request.headers, await request.read()))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/", sink)
    app_runner = web.AppRunner(app)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", 0).start()
    port = app_runner.addresses[0][1]
    env = {**os.environ, "POD_NAME": "hb", "POD_NAMESPACE": "demo",
           "K_SINK": f"http://127.0.0.1:{port}/"}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sources.container.heartbeat", "--period", "200ms",
        "--label", "test", env=env,
    )  # fmt: skip
    try:
        for _ in range(100):
            if len(received) >= 4:
                break
            await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        await proc.wait()
        await app_runner.cleanup()
    ids = [data["id"] for data in (e.get_data() for e in received) if isinstance(data, dict)]
    assert ids[:4] == [1, 2, 3, 4]
    assert all(e.get_extension("heart") == "yes" for e in received)


async def test_one_shot_sends_one_and_exits_0() -> None:
    received: list[cloudevent.CloudEvent] = []

    async def sink(request: web.Request) -> web.Response:
        received.append(cloudevent.decode(request.headers, await request.read()))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/", sink)
    app_runner = web.AppRunner(app)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", 0).start()
    port = app_runner.addresses[0][1]
    env = {**os.environ, "POD_NAME": "hb", "POD_NAMESPACE": "demo", "ONE_SHOT": "true",
           "K_SINK": f"http://127.0.0.1:{port}/"}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sources.container.heartbeat", env=env
    )
    try:
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        await app_runner.cleanup()
    assert len(received) == 1
