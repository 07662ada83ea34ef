"""A minimal ARI client for the simulator tests: REST calls and an event stream."""
from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from ivr.sim import RunningSimulator


class EventStream:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, running: RunningSimulator) -> None:
        self.ws = ws
        self.running = running
        self.events: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._task = asyncio.create_task(self._read())
        self._cursor = 0

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(msg.data)
                event["_t"] = self.running.sim.clock.now()
                self.events.append(event)
                self._new.set()

    async def next(self, kind: str, where: Callable[[dict[str, Any]], bool] = lambda e: True,
                   timeout: float = 5.0) -> dict[str, Any]:
        """The next event of ``kind`` (after the previous one returned); timeout in real seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i in range(self._cursor, len(self.events)):
                event = self.events[i]
                if event["type"] == kind and where(event):
                    self._cursor = i + 1
                    return event
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} event; got {[e['type'] for e in self.events[self._cursor:]]}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._task, return_exceptions=True)


class Ari:
    def __init__(self, running: RunningSimulator, session: aiohttp.ClientSession) -> None:
        self.running = running
        self.session = session
        cfg = running.sim.config
        self.auth = "Basic " + base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()

    async def call(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        query = {k: str(v) for k, v in params.items()}
        headers = {"Authorization": self.auth}
        async with self.session.request(method, self.running.ari_url + path, params=query, json=body,
                                        headers=headers) as resp:
            raw = await resp.read()
            data: Any = json.loads(raw) if raw and resp.content_type == "application/json" else raw
            return resp.status, data

    async def events(self, app: str = "ivr", subscribe_all: bool = False) -> EventStream:
        ws = await self.session.ws_connect(self.running.events_url(app, subscribe_all))
        return EventStream(ws, self.running)
