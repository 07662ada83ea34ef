"""Asterisk's outbound websockets into the controller: each message to the call it is about.

Per call (`connection_type = per_call_config`), a connection is one channel:

- a new call: ApplicationRegistered (`<app>:<channel name>`), then StasisStart,
  which opens the call's session over this connection's client;
- the same call after its socket dropped (Asterisk reconnects within ~20 ms, through
  the load balancer, to any controller): the events of the gap, then
  ApplicationRegistered and no StasisStart. If this controller runs the call, the
  session's client moves to the new socket; if another did (it died, or is being
  stopped), the call's channel name leads to its id, and this one takes the call over
  once the other's lease is released or lapses (`Controller.adopt`).

A connection that closes leaves its call's client waiting for the replacement; when
none arrives here within `REATTACH_GRACE`, Asterisk's reconnect went to another
controller, and this one lets the call go (its lease is released for the taker).

Persistent connections (`connection_type = persistent`) carry every call of their
applications: on each (re)connect the controller reconciles with what the application
holds, as it does after reconnecting its own events websocket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from ivr.ari.event_types import AriEvent, parse_event
from ivr.ari.outbound import Connection, WebSocketAri
from ivr.controller.app import Controller, channel_key
from ivr.controller.session import Services

log = logging.getLogger(__name__)

REATTACH_GRACE = 0.5  # seconds a call waits for its socket's replacement on this controller


class OutboundCalls:
    """The `ConnectionHandler` of `ivr.ari.outbound.OutboundEndpoint` for the controller."""

    def __init__(self, controller: Controller, takeover_wait: float,
                 watchers: Sequence[Callable[[AriEvent], None]] = (), desk_app: str | None = None) -> None:
        """`takeover_wait`: how long a call another controller ran may wait for its lease
        (the lease's lifetime and a margin: the other may have died holding it). `watchers`
        see each event before the controller (the agent desk)."""
        self.controller = controller
        self.watchers = tuple(watchers)
        self.desk_app = desk_app  # its persistent connection only feeds the watchers (the agent desk)
        self.takeover_wait = takeover_wait
        self.persistent: dict[str, WebSocketAri] = {}  # asterisk id -> the client of its persistent connection
        self.connections = 1  # 1 + sockets that replaced a dropped one (read as reconnects by ivr.metrics)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """Always: in outbound mode Asterisk connects to us (`ivr.metrics.EventSource`)."""
        return True

    async def opened(self, connection: Connection) -> None:
        log.debug("%r opened", connection)

    async def message(self, connection: Connection, message: dict[str, Any]) -> None:
        if message.get("type") == "ApplicationRegistered":
            await self._registered(connection)
            return
        try:
            event = parse_event(message)
        except ValueError as exc:
            log.warning("%r: unreadable event (%s)", connection, exc)
            return
        for watch in self.watchers:
            try:
                watch(event)
            except Exception:  # the calls must go on whatever a watcher does
                log.exception("watcher failed on %s", event.type)
        await self.controller.on_event(event, connection.line)

    async def _registered(self, connection: Connection) -> None:
        name = connection.channel_name
        if name is None:
            self._persistent(connection)
            return
        session = self.controller.session_of_channel(name, connection.asterisk_id)
        if session is not None and isinstance(session.services.ari, WebSocketAri):
            self.connections += 1
            session.services.ari.attach(connection)
            log.info("call %s: on a new socket %r", session.channel_id, connection)
            return
        leases = self.controller.leases
        call_id = await leases.call_named(channel_key(connection.asterisk_id, name)) if leases is not None else None
        if call_id is not None:  # a call that began elsewhere: take it over
            self.connections += 1
            self._spawn(self._take_over(call_id, self.controller.services_for(connection.line)))

    async def _take_over(self, call_id: str, services: Services) -> None:
        """Resume the call once its lease is ours, then settle what else is in its application:
        the helper legs the controller before left (hung up unless the new listener uses them)."""
        await self.controller.adopt(call_id, services, wait=self.takeover_wait)
        if call_id in self.controller.sessions:
            await self.controller.reconcile(services)

    def _persistent(self, connection: Connection) -> None:
        if connection.application == self.desk_app:
            return  # routed callers' queue events, for the desk; no call of ours lives in this app
        key = connection.asterisk_id or connection.peer
        line = self.persistent.get(key)
        if line is None:
            self.persistent[key] = connection.line
        else:
            self.connections += 1
            line.attach(connection)
        self._spawn(self.controller.reconcile(self.controller.services_for(connection.line)))

    async def closed(self, connection: Connection) -> None:
        line = connection.line
        line.detach(connection)
        if connection.channel_name is None:
            return
        session = self.controller.session_of_channel(connection.channel_name, connection.asterisk_id)
        if session is not None and session.services.ari is line:
            self._spawn(self._let_go_unless_back(session.channel_id, line))

    async def _let_go_unless_back(self, channel_id: str, line: WebSocketAri) -> None:
        await asyncio.sleep(REATTACH_GRACE)
        if line.connection is None:
            self.controller.let_go(channel_id)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
