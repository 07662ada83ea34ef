"""Stasis applications, their subscriptions and event delivery.

Asterisk delivers an event to an application when the application is
subscribed to one of the resources the event is about.  Channel
subscriptions are reference counted: entering Stasis, originating with
``app=`` and ``POST /applications/{app}/subscription`` each add one.  When
the application has no websocket the event is dropped ("Inactive Stasis app
missed message") and never replayed.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from .events import Event, Refs

log = logging.getLogger(__name__)

ALL_CHANNELS = "__AST_CHANNEL_ALL_TOPIC"
ALL_BRIDGES = "__AST_BRIDGE_ALL_TOPIC"
ALL_ENDPOINTS = "__AST_ENDPOINT_ALL_TOPIC"
ALL_DEVICES = "__AST_DEVICE_STATE_ALL_TOPIC"


class EventSink(Protocol):
    """Where an application's events go: an events websocket (AppSocket) or an outbound one."""
    closed: asyncio.Event

    def send(self, text: str) -> None: ...

    async def close(self, code: int = 1000) -> None: ...


class AppSocket:
    """One events websocket; a writer task keeps delivery ordered and non-blocking."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def send(self, text: str) -> None:
        if not self.closed.is_set():
            self.queue.put_nowait(text)

    async def _write(self) -> None:
        try:
            while True:
                text = await self.queue.get()
                if text is None or self.ws.closed:
                    break
                await self.ws.send_str(text)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            self.closed.set()

    async def close(self, code: int = 1000) -> None:
        self.queue.put_nowait(None)
        self.closed.set()
        if not self.ws.closed:
            await self.ws.close(code=code)


@dataclass
class StasisApp:
    name: str
    sockets: list[EventSink] = field(default_factory=list)
    channels: Counter[str] = field(default_factory=Counter)
    bridges: Counter[str] = field(default_factory=Counter)
    endpoints: Counter[str] = field(default_factory=Counter)
    devices: Counter[str] = field(default_factory=Counter)
    subscribe_all: bool = False
    missed: int = 0

    @property
    def active(self) -> bool:
        return any(not s.closed.is_set() for s in self.sockets)

    def wants(self, refs: Refs) -> bool:
        if self.subscribe_all:
            return True
        return any(self.channels[c] > 0 for c in refs.channels) or \
            any(self.bridges[b] > 0 for b in refs.bridges)

    def subscribe_channel(self, channel_id: str) -> None:
        self.channels[channel_id] += 1

    def unsubscribe_channel(self, channel_id: str, all_refs: bool = False) -> None:
        if all_refs or self.channels[channel_id] <= 1:
            self.channels.pop(channel_id, None)
        else:
            self.channels[channel_id] -= 1

    def to_json(self) -> dict[str, Any]:
        if self.subscribe_all:
            chans, bridges, eps, devs = [ALL_CHANNELS], [ALL_BRIDGES], [ALL_ENDPOINTS], [ALL_DEVICES]
        else:
            chans = [c for c, n in self.channels.items() if n > 0]
            bridges = [b for b, n in self.bridges.items() if n > 0]
            eps = [e for e, n in self.endpoints.items() if n > 0]
            devs = [d for d, n in self.devices.items() if n > 0]
        return {"name": self.name, "channel_ids": chans, "bridge_ids": bridges,
                "endpoint_ids": eps, "device_names": devs,
                "events_allowed": [], "events_disallowed": []}


EventTap = Callable[[str, Event], None]


def app_entry(app: str, app_args: str) -> tuple[str, list[str]]:
    """``app=ivr&appArgs=a,b`` (originate, snoop): ``app_data`` ``ivr,a,b``, StasisStart ``args`` ["a", "b"]."""
    return ",".join([app] + ([app_args] if app_args else [])), (app_args.split(",") if app_args else [])


class EventBus:
    """Routes events to applications, in emission order."""

    def __init__(self, asterisk_id: str) -> None:
        self.asterisk_id = asterisk_id
        self.apps: dict[str, StasisApp] = {}
        self.taps: list[EventTap] = []          # in-process observers (tests)
        self.emitted: list[Event] = []          # every event, before routing

    def app(self, name: str) -> StasisApp:
        if name not in self.apps:
            self.apps[name] = StasisApp(name)
        return self.apps[name]

    def publish(self, built: tuple[Event, Refs]) -> None:
        body, refs = built
        self.emitted.append(body)
        for app in list(self.apps.values()):
            if not app.wants(refs):
                continue
            event = dict(body)
            event["asterisk_id"] = self.asterisk_id
            event["application"] = app.name
            for tap in self.taps:
                tap(app.name, event)
            if not app.active:
                app.missed += 1
                log.debug("Inactive Stasis app '%s' missed message %s", app.name, body["type"])
                continue
            text = json.dumps(event)
            for sock in app.sockets:
                sock.send(text)

    def forget_channel(self, channel_id: str) -> None:
        for app in self.apps.values():
            app.channels.pop(channel_id, None)

    def forget_bridge(self, bridge_id: str) -> None:
        for app in self.apps.values():
            app.bridges.pop(bridge_id, None)
