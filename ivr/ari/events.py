"""The ARI events websocket, kept connected.

:class:`EventStream` connects to ``/ari/events?app=<app>&api_key=user:pass``
(which also registers the Stasis application), parses each message with
:func:`parse_event` and hands it, in order, to ``on_event``. The handler should
be quick (the controller only routes each event into its call's own queue),
since reading waits for it.

When the connection fails or drops it reconnects with jittered exponential
backoff (:class:`Backoff`). The backoff is reset only after a connection has
stayed up ``stable_after`` seconds, so a server that accepts and immediately
drops us cannot cause a tight loop.

Asterisk does not replay events missed while disconnected and sends no new
StasisStart for calls already in the app, so after every connect the
``on_connect`` hook runs (before any event of that connection is read): the
controller reconciles there, e.g. ``GET /applications/{app}`` for the
``channel_ids`` it still holds. Calls that hung up meanwhile are simply gone.

This module also re-exports the event types and the backoff
so callers need only ``from ivr.ari.events import ...``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from ivr.ari.event_types import (
    EVENT_CLASSES,
    AriEvent,
    ChannelDestroyed,
    ChannelDialplan,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelTalkingFinished,
    ChannelTalkingStarted,
    ChannelUserevent,
    ChannelVarset,
    Dial,
    GenericEvent,
    PlaybackContinuing,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisEnd,
    StasisStart,
    channel_key,
    parse_event,
)
from ivr.backoff import Backoff

EventHandler = Callable[[AriEvent], Awaitable[None]]
log = logging.getLogger(__name__)

# Seconds to wait for the server's reply to our close frame (Asterisk answers at once).
_CLOSE_TIMEOUT = 2.0

__all__ = [
    "EVENT_CLASSES", "AriEvent", "Backoff", "ChannelDestroyed", "ChannelDialplan",
    "ChannelDtmfReceived", "ChannelEnteredBridge", "ChannelHangupRequest",
    "ChannelLeftBridge", "ChannelStateChange", "ChannelTalkingFinished", "ChannelTalkingStarted",
    "ChannelUserevent", "ChannelVarset", "ConnectInfo", "Dial", "EventHandler", "EventStream",
    "GenericEvent", "OnConnect", "PlaybackContinuing", "PlaybackFinished", "PlaybackStarted",
    "RecordingFailed", "RecordingFinished", "RecordingStarted", "StasisEnd", "StasisStart",
    "channel_key", "events_url", "parse_event",
]


@dataclass(frozen=True)
class ConnectInfo:
    """Passed to the on_connect hook after each successful websocket connect."""

    connections: int  # successful connects so far, this one included (1 = first)
    attempts: int  # connect attempts so far, failed ones included
    downtime: float  # seconds since the previous connection was lost (0.0 the first time)

    @property
    def reconnect(self) -> bool:
        """True for every connect after the first: events may have been missed."""
        return self.connections > 1


OnConnect = Callable[[ConnectInfo], Awaitable[None]]
OnEvent = Callable[[AriEvent], Awaitable[None]]


def events_url(base_url: str) -> str:
    """http(s)://host:port[/ari] -> ws(s)://host:port/ari/events."""
    root = base_url.rstrip("/")
    if root.endswith("/ari"):
        root = root[: -len("/ari")]
    if root.startswith("https://"):
        root = "wss://" + root[len("https://"):]
    elif root.startswith("http://"):
        root = "ws://" + root[len("http://"):]
    return f"{root}/ari/events"


class EventStream:
    """Keeps the ARI events websocket open and feeds parsed events to `on_event`.

    Run with ``task = asyncio.create_task(stream.run())``; stop with
    ``await stream.aclose()``.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str | Sequence[str],
        *,
        on_event: OnEvent,
        on_connect: OnConnect | None = None,
        subscribe_all: bool = False,
        backoff: Backoff | None = None,
        stable_after: float = 5.0,
        heartbeat: float | None = 20.0,
        connect_timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = events_url(base_url)
        apps = [app] if isinstance(app, str) else list(app)
        self._params = {"app": ",".join(apps), "api_key": f"{user}:{password}"}
        if subscribe_all:
            self._params["subscribeAll"] = "true"
        self._on_event = on_event
        self._on_connect = on_connect
        self.backoff = backoff or Backoff()
        self._stable_after = stable_after
        self._heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._session = session
        self._owns_session = session is None
        self._stop = asyncio.Event()
        self._connected = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.attempts = 0
        self.connections = 0

    @classmethod
    def from_settings(cls, settings: Any, *, on_event: OnEvent, on_connect: OnConnect | None = None,
                      **kwargs: Any) -> EventStream:
        """Build from :class:`ivr.config.Settings` (password required)."""
        return cls(
            settings.ari_url, settings.ari_user, settings.ari_password_value, settings.ari_app,
            on_event=on_event, on_connect=on_connect, subscribe_all=settings.ari_subscribe_all,
            **kwargs,
        )

    @property
    def connected(self) -> bool:
        """True while a websocket is open."""
        return self._connected.is_set()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the websocket is open (and on_connect has run)."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def aclose(self) -> None:
        """Stop reconnecting, close the websocket; run() then returns."""
        self._stop.set()
        if self._ws is not None:
            await self._ws.close()

    async def run(self) -> None:
        """Connect, read, reconnect with backoff — until aclose()."""
        self._stop.clear()
        lost_at: float | None = None
        try:
            while not self._stop.is_set():
                ws = await self._connect()
                if ws is None:
                    await self._pause()
                    continue
                if self._stop.is_set():  # aclose() came during the handshake
                    await ws.close()
                    break
                up_at = asyncio.get_running_loop().time()
                downtime = 0.0 if lost_at is None else up_at - lost_at
                await self._serve(ws, downtime)
                lost_at = asyncio.get_running_loop().time()
                if lost_at - up_at >= self._stable_after:
                    self.backoff.reset()
                if not self._stop.is_set():
                    log.warning("ARI events websocket %s closed after %.1f s; reconnecting",
                                self.url, lost_at - up_at)
                    await self._pause()
        finally:
            self._connected.clear()
            if self._owns_session and self._session is not None:
                await self._session.close()
                self._session = None

    async def _connect(self) -> aiohttp.ClientWebSocketResponse | None:
        """One connect attempt; None (logged) on failure."""
        self.attempts += 1
        if self._session is None:
            # Bounds the handshake only: aiohttp lifts sock_read once the socket is a websocket.
            limit = self._connect_timeout
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=limit, sock_connect=limit, sock_read=limit),
            )
        try:
            return await self._session.ws_connect(
                self.url, params=self._params, heartbeat=self._heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=_CLOSE_TIMEOUT),
            )
        except aiohttp.WSServerHandshakeError as exc:
            level = logging.ERROR if exc.status in (401, 403) else logging.WARNING
            log.log(level, "ARI events websocket %s refused: %s %s", self.url, exc.status, exc.message)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("ARI events websocket %s unreachable: %s", self.url, self._redact(exc))
        return None

    def _redact(self, exc: BaseException) -> str:
        """Error text without the api_key (some aiohttp errors quote the full URL)."""
        text = re.sub(r"api_key=[^&\s'\"]*", "api_key=***", str(exc) or type(exc).__name__)
        password = self._params["api_key"].partition(":")[2]
        for form in {password, quote(password, safe="")} - {""}:
            text = text.replace(form, "***")
        return text

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse, downtime: float) -> None:
        """Run the on_connect hook, then forward events until the socket closes.

        The socket is read from the start (so pings are answered however long
        the hook takes), but events wait in `inbox` until the hook has finished.
        """
        self._ws = ws
        self.connections += 1
        info = ConnectInfo(connections=self.connections, attempts=self.attempts, downtime=downtime)
        log.info("ARI events websocket connected to %s (app=%s, connect #%d)",
                 self.url, self._params["app"], self.connections)
        inbox: asyncio.Queue[str | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read(ws, inbox), name="ari-events-reader")
        try:
            await self._run_hook(info)
            self._connected.set()
            while (data := await inbox.get()) is not None:
                await self._forward(data)
        finally:
            self._connected.clear()
            self._ws = None
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await ws.close()

    async def _run_hook(self, info: ConnectInfo) -> None:
        if self._on_connect is None:
            return
        try:
            await self._on_connect(info)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ARI on_connect hook failed (connect #%d)", info.connections)

    @staticmethod
    async def _read(ws: aiohttp.ClientWebSocketResponse, inbox: asyncio.Queue[str | None]) -> None:
        """Queue every text message until close or error, then None."""
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    inbox.put_nowait(message.data)
                elif message.type == aiohttp.WSMsgType.ERROR:
                    log.warning("ARI events websocket error: %s", ws.exception())
                    break
        finally:
            inbox.put_nowait(None)

    async def _forward(self, data: str) -> None:
        try:
            event = parse_event(data)
        except ValueError as exc:
            log.warning("ignoring malformed ARI event: %s", exc)
            return
        try:
            await self._on_event(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ARI on_event callback failed for %s", event.type)

    async def _pause(self) -> None:
        """Sleep the next backoff delay, waking early on aclose()."""
        delay = self.backoff.next_delay()
        log.debug("ARI events websocket: next attempt in %.2f s", delay)
        try:
            await asyncio.wait_for(self._stop.wait(), delay)
        except TimeoutError:
            pass
