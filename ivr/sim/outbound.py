"""ARI outbound websockets: Asterisk connects to the application.

ari.conf ``type = outbound_websocket`` with a websocket_client.conf client
(:class:`~ivr.sim.config.OutboundWebsocket`).  Everything here copies the
recordings ``traces/outbound-websocket-*`` (README "Facts: scenario set 3"):

* Connection: ``GET <uri path>?<uri query>`` with ``Authorization: Basic``
  (client username/password) and ``Sec-WebSocket-Protocol: ari``; nothing in
  it names the call.  No User-Agent/Accept headers (the recorded upgrade
  carries exactly Sec-WebSocket-Version, Upgrade, Connection, Host,
  Authorization, Sec-WebSocket-Protocol, Sec-WebSocket-Key).
* Per call (``per_call_config``): ``Stasis(app,...)`` blanks STASISSTATUS,
  creates the application ``<app>:<channel name>`` and connects; Stasis()
  looks at the connection every ``outbound_stasis_poll`` (0.5 s, from its
  start): connected -> StasisStart (0.5 s after the recorded
  ApplicationRegistered); all ``reconnect_attempts`` failed -> Stasis()
  returns STASISSTATUS=FAILED (~3.5 s: 4 tries at 1 s, then the next look)
  and the dialplan goes on.  After StasisEnd no event reaches the socket any
  more and Asterisk closes it (1000) ``outbound_close_after_stasis_end``
  (3.5 s) later.
* Persistent: connects at start-up and retries every ``reconnect_interval``
  forever; its apps are registered even while disconnected; StasisStart
  comes at once (queued while disconnected).
* Disconnection (server closed, code answered 1000): retried at once, then
  every ``reconnect_interval``, ``reconnect_attempts`` tries in all.  Events
  meanwhile are queued and delivered first on the new connection, then
  ApplicationRegistered (never StasisStart again).  A per-call connection
  that exhausts its tries deactivates the application: queued events are
  dropped, the channel leaves Stasis (its StasisEnd missed) with
  STASISSTATUS=FAILED and continues in the dialplan.
* REST over the socket (``RESTRequest`` -> ``RESTResponse``): each request
  goes through the simulator's own HTTP ARI application in process (same
  routes and middlewares, so every status, body and blocking behaviour is
  the HTTP one; the response is queued as soon as the handler returns,
  before what the handler only scheduled), one at a time in
  the order received: a request that blocks (POST variable behind a
  playback) holds up those behind it.

What the recordings do not show is refused loudly (an ERROR log and, for a
request, a 501 "not simulated" response) instead of being guessed.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from unittest import mock
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict
from yarl import URL

from .config import OutboundWebsocket, check_outbound
from .errors import AriError
from .model import Channel

if TYPE_CHECKING:  # pragma: no cover
    from .core import Simulator
    from .pbx import Goto

log = logging.getLogger(__name__)

METHODS = ("GET", "POST", "PUT", "DELETE")
# Reason phrases seen in the traces; other statuses use the standard phrase (Asterisk's ARI
# handlers pass the same ones: "Bad Request", "Conflict", "Unprocessable Entity", ...).
RECORDED_REASONS = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found", 405: "Method Not Allowed"}
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# The recorded upgrade request has no User-Agent / Accept / Accept-Encoding.
SKIPPED_HEADERS = ("User-Agent", "Accept", "Accept-Encoding")


class NotSimulated(Exception):
    """A request the recordings never showed: answered 501, logged as an error."""


class OutboundSession:
    """One outbound connection and what goes over it; an EventSink of its applications.

    Per call: one application ``<app>:<channel name>``; persistent: the
    connection's apps.  ``closed`` is set once the session has given up or
    ended: its applications are then inactive and their events dropped.
    """

    def __init__(self, manager: OutboundWebsockets, conn: OutboundWebsocket, apps: list[str],
                 channel: Channel | None = None) -> None:
        self.manager = manager
        self.sim = manager.sim
        self.conn = conn
        self.apps = apps
        self.channel = channel                # per call: the channel it was made for
        self.label = f"{conn.name}:{channel.name}" if channel is not None else conn.name
        self.closed = asyncio.Event()
        self.connected_once = False
        self.gave_up = False
        self.quiet = False                    # per call: StasisEnd sent, no event follows
        self.outbox: deque[str] = deque()     # events (and responses) not yet written
        self.wake = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.registered_at = self.sim.ts()
        self.connections = 0
        self.task: asyncio.Task[None] | None = None

    # -- EventSink -------------------------------------------------------------
    def send(self, text: str) -> None:
        if self.closed.is_set() or self.quiet:
            return
        if self.ws is None:
            log.warning("%s: Queued '%s' message for Stasis app '%s'; websocket is not ready",
                        self.conn.uri, _type_of(text), _app_of(text))
        self.outbox.append(text)
        self.wake.set()

    async def close(self, code: int = 1000) -> None:
        """End the session: no more events, the connection closed with ``code``, no reconnecting."""
        self.closed.set()
        self.outbox.clear()
        ws = self.ws
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        if ws is not None and not ws.closed:
            try:
                await ws.close(code=code)
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                pass

    # -- connecting --------------------------------------------------------------
    def start(self) -> None:
        self.task = self.manager.spawn(self._run())

    async def _run(self) -> None:
        while not self.closed.is_set():
            ws = await self._connect()
            if ws is None:
                self.gave_up = True
                self.closed.set()
                self.outbox.clear()           # queued events are dropped
                self.manager.gave_up(self)
                return
            await self._serve(ws)
            if self.closed.is_set():
                return
            log.warning("%s: Websocket disconnected.  Reconnecting", self.label)

    async def _connect(self) -> aiohttp.ClientWebSocketResponse | None:
        """``reconnect_attempts`` tries, the first at once, then every ``reconnect_interval``;
        per call None when all failed, persistent: again after ``reconnect_interval``, forever."""
        interval = self.conn.reconnect_interval / 1000
        while True:
            for attempt in range(1, self.conn.reconnect_attempts + 1):
                ws = await self._attempt()
                if ws is not None:
                    return ws
                if attempt < self.conn.reconnect_attempts:
                    await self.sim.clock.sleep(interval)
            if self.channel is not None:
                log.warning("%s: Websocket connection to %s failed after %d tries.  "
                            "Hanging up after exhausting retries.", self.label, self.conn.uri,
                            self.conn.reconnect_attempts)
                return None
            log.warning("%s: Websocket connection to %s failed after %d tries.  Retrying in %d ms.",
                        self.label, self.conn.uri, self.conn.reconnect_attempts, self.conn.reconnect_interval)
            await self.sim.clock.sleep(interval)

    async def _attempt(self) -> aiohttp.ClientWebSocketResponse | None:
        headers = {"Authorization": aiohttp.encode_basic_auth(self.conn.username, self.conn.password)} \
            if self.conn.username else None
        timeout = self.sim.clock.real_seconds(self.sim.config.outbound_handshake_timeout)
        try:
            ws = await asyncio.wait_for(self.manager.client().ws_connect(
                self.conn.uri, protocols=(self.conn.protocols,), headers=headers, autoping=True, heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)), timeout)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.error("%s: Unable to connect / perform websocket handshake: %s", self.conn.uri, exc or type(exc))
            return None
        if ws.protocol != self.conn.protocols:
            log.error("%s: the server did not select the websocket protocol '%s': not simulated "
                      "(no recorded trace shows it), connection refused", self.conn.uri, self.conn.protocols)
            await ws.close()
            return None
        log.info("%s: Outbound websocket connected to %s", self.label, self.conn.uri)
        return ws

    # -- one connection ------------------------------------------------------------
    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.connections += 1
        self.connected_once = True
        stamp = self.registered_at if self.connections == 1 else self.sim.ts()
        for app in self.apps:      # after what was queued while disconnected
            self.outbox.append(json.dumps({"type": "ApplicationRegistered", "timestamp": stamp,
                                           "application": app, "asterisk_id": self.sim.config.asterisk_id}))
        self.wake.set()
        writer = asyncio.get_running_loop().create_task(self._write(ws))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    response = await self.answer(msg.data)
                    if self.ws is ws and not ws.closed:
                        self.outbox.append(json.dumps(response))
                        self.wake.set()
                    else:
                        log.error("%s: response to %s dropped: its connection closed meanwhile "
                                  "(not simulated: no recorded trace shows it)", self.label, msg.data[:200])
                elif msg.type == WSMsgType.BINARY:
                    log.error("%s: binary websocket message ignored: not simulated "
                              "(no recorded trace shows it)", self.label)
        finally:
            if self.ws is ws:
                self.ws = None
            writer.cancel()

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                while self.outbox and not ws.closed:
                    await ws.send_str(self.outbox[0])
                    self.outbox.popleft()
                self.wake.clear()
                await self.wake.wait()
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            pass        # connection lost: what was not written waits for the next one

    # -- REST over the websocket --------------------------------------------------
    async def answer(self, text: str) -> dict[str, Any]:
        """A RESTResponse for one message, as Asterisk 22 answers it."""
        try:
            msg = json.loads(text)
        except ValueError:
            log.warning("%s: WebSocket input failed to parse", self.label)
            return self._response("", "", 400, "Failed to parse request message JSON", "", None)
        if not isinstance(msg, dict):
            return self._refused("", "", "", f"a message that is not a JSON object: {text[:200]}")
        tx, rid = str(msg.get("transaction_id", "")), str(msg.get("request_id", ""))
        if msg.get("type") != "RESTRequest":
            log.warning("%s: Bad request Request: %s", self.conn.uri, text)
            return self._response(tx, rid, 400, "Bad request", "", {"message": "Unknown request type."})
        uri = msg.get("uri")
        if not isinstance(uri, str):
            return self._refused(tx, rid, "", "a RESTRequest without a string 'uri'")
        path, _, query = uri.partition("?")
        method = msg.get("method")
        if method is None:
            log.warning("%s: Bad request Request: %s", self.conn.uri, text)
            return self._response(tx, rid, 400, "Bad request", path,
                                  {"message": "Unknown or missing 'method' property."})
        if method not in METHODS:
            return self._refused(tx, rid, path, f"method {method!r}")
        try:
            pairs, body = self._parameters(msg)
        except AriError as exc:
            log.warning("%s: Bad request Request: %s", self.conn.uri, text)
            return self._response(tx, rid, exc.status, "Bad request", path, {"message": exc.message})
        except NotSimulated as exc:
            return self._refused(tx, rid, path, str(exc))
        if path.startswith("/"):
            return self._response(tx, rid, 405, "Method Not Allowed", path, {"message": "Invalid method"})
        try:
            status, payload = await self.manager.dispatch(method, path, query, pairs, body)
        except FileResponse:
            return self._response(tx, rid, 406, "Not Acceptable.  Use HTTP GET", path, None)
        except NotSimulated as exc:
            return self._refused(tx, rid, path, str(exc))
        reason = RECORDED_REASONS.get(status) or HTTPStatus(status).phrase
        return self._response(tx, rid, status, reason, path, payload)

    def _parameters(self, msg: dict[str, Any]) -> tuple[list[tuple[str, str]], Any]:
        """``query_strings`` and a form body as query pairs; a JSON body as parsed JSON (or None)."""
        pairs: list[tuple[str, str]] = []
        strings = msg.get("query_strings", [])
        if not isinstance(strings, list) or not all(
                isinstance(q, dict) and isinstance(q.get("name"), str) and isinstance(q.get("value"), str)
                for q in strings):
            raise NotSimulated("query_strings that are not a list of {name, value} strings")
        pairs.extend((q["name"], q["value"]) for q in strings)
        if "message_body" not in msg:
            if "content_type" in msg:
                raise NotSimulated("a content_type without message_body")
            return pairs, None
        body, ctype = msg["message_body"], msg.get("content_type")
        if not ctype:
            raise AriError(400, "No 'content_type' for 'message_body'.")
        if not isinstance(body, str):
            raise NotSimulated("a message_body that is not a string")
        if ctype == FORM:
            pairs.extend(parse_qsl(body, keep_blank_values=True))
            return pairs, None
        if ctype == JSON:
            return pairs, _JsonText(body)
        raise NotSimulated(f"content_type {ctype!r} (only {JSON} and {FORM} were recorded)")

    def _response(self, tx: str, rid: str, status: int, reason: str, uri: str,
                  payload: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "RESTResponse", "transaction_id": tx, "request_id": rid,
                               "status_code": status, "reason_phrase": reason, "uri": uri}
        if payload is not None:
            out["content_type"] = JSON
            out["message_body"] = json.dumps(payload, separators=(",", ":"))
        out["application"] = self.apps[0]
        out["timestamp"] = self.sim.ts()
        out["asterisk_id"] = self.sim.config.asterisk_id
        return out

    def _refused(self, tx: str, rid: str, uri: str, what: str) -> dict[str, Any]:
        message = f"Not simulated over the outbound websocket (no recorded trace shows it): {what}"
        log.error("%s: %s", self.label, message)
        return self._response(tx, rid, 501, "Not Implemented", uri, {"message": message})


class _JsonText(str):
    """A JSON request body, passed on as sent."""


class OutboundWebsockets:
    """The configured outbound connections: per-call Stasis(), persistent sessions, REST dispatch."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.per_call: dict[str, OutboundWebsocket] = {}
        self.persistent: list[OutboundWebsocket] = []
        for conn in sim.config.outbound_websockets:
            check_outbound(conn)
            for app in conn.apps:
                if app in self.per_call or any(app in p.apps for p in self.persistent):
                    raise ValueError(f"outbound websocket app '{app}' configured twice")
            if conn.connection_type == "per_call_config":
                self.per_call.update((app, conn) for app in conn.apps)
            else:
                self.persistent.append(conn)
        self.sessions: dict[str, OutboundSession] = {}      # per call, by application name
        self.persistent_sessions: list[OutboundSession] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        self.app: web.Application | None = None
        self._client: aiohttp.ClientSession | None = None

    # -- set-up -------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return bool(self.per_call or self.persistent)

    async def start(self, web_app: web.Application) -> None:
        """The simulator's web application starts: persistent connections start (at "module load")."""
        self.app = web_app
        for conn in self.persistent:
            session = OutboundSession(self, conn, list(conn.apps))
            for app in conn.apps:
                self.sim.bus.app(app).sockets.append(session)
            self.persistent_sessions.append(session)
            session.start()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def client(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = aiohttp.ClientSession(skip_auto_headers=SKIPPED_HEADERS)
        return self._client

    async def close(self) -> None:
        for session in list(self.sessions.values()) + self.persistent_sessions:
            await session.close(1001)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()

    # -- which applications are outbound --------------------------------------------
    def is_per_call(self, app_name: str) -> bool:
        return app_name in self.per_call

    def owns(self, app_name: str) -> bool:
        return app_name in self.per_call or app_name in self.sessions or \
            any(app_name in conn.apps for conn in self.persistent)

    def refuse_per_call(self, app_name: str, what: str) -> None:
        """Snoop, externalMedia and originate run the Stasis dialplan application for their channel
        (res/res_stasis_snoop.c snoop_stasis_thread; resource_channels.c originate). Into a call's
        registered `<app>:<channel name>` application they enter it, and their events go on that
        call's socket (apps/app_stasis.c: a registered app is simply executed). Into the configured
        per-call app itself (`ivr`, never registered) Asterisk would open a websocket for the helper
        channel of its own: not recorded, so refused."""
        if app_name in self.per_call:
            message = (f"{what}{app_name}: a per-call outbound websocket application would open a websocket "
                       "of its own for this channel; not simulated (no recorded trace shows it)")
            log.error(message)
            raise AriError(501, message)

    # -- per-call Stasis() --------------------------------------------------------------
    async def per_call_stasis(self, ch: Channel, app: str, args: list[str]) -> Goto | None:
        conn = self.per_call[app]
        name = f"{app}:{ch.name}"
        self.sim.variables.set(ch, "STASISSTATUS", "")
        if name in self.sim.bus.apps or self.app is None:
            log.error("Stasis(%s) on %s: %s: not simulated (no recorded trace shows it)", app, ch.name,
                      "its application is still there" if self.app else "the simulator's web application "
                      "has not started (build_app)")
            self.sim.variables.set(ch, "STASISSTATUS", "FAILED")
            return None
        log.info("Creating Stasis app '%s'", name)
        session = OutboundSession(self, conn, [name], channel=ch)
        self.sim.bus.app(name).sockets.append(session)
        self.sessions[name] = session
        session.start()
        poll = self.sim.config.outbound_stasis_poll
        start = self.sim.clock.now()
        entered = False
        try:
            ticks = 0
            while not session.connected_once:
                ticks += 1
                await self.sim.clock.sleep_until(start + ticks * poll)
                if session.gave_up:
                    log.warning("%s: Stasis app '%s' doesn't exist", ch.name, app)
                    self._forget(session)
                    self.sim.variables.set(ch, "STASISSTATUS", "FAILED")
                    return None
            entered = self.sim.enter_stasis(ch, name, args, reset_status=False)
            assert entered and ch.stasis_exit is not None
            return await ch.stasis_exit
        except asyncio.CancelledError:
            if not entered:       # hung up before StasisStart
                await session.close(1000)
                self._forget(session)
            raise

    def gave_up(self, session: OutboundSession) -> None:
        """All tries failed.  Per call, mid-call: the channel leaves Stasis with STASISSTATUS=FAILED."""
        if session.channel is None:
            return
        ch = session.channel
        name = session.apps[0]
        log.info("Deactivating Stasis app '%s'", name)
        if ch.stasis_app == name and not ch.destroyed:
            self.sim.stasis_failed(ch)
            self._forget(session)
        # before StasisStart: per_call_stasis sees gave_up at its next look and answers FAILED

    def stasis_ended(self, app_name: str, ch: Channel) -> None:
        """StasisEnd of the call's own channel went out: nothing more for this per-call application;
        closed (1000) 3.5 s later. A helper channel (snoop, externalMedia) that entered the call's app
        leaving it closes nothing: the close follows the caller's Stasis() (apps/app_stasis.c)."""
        session = self.sessions.get(app_name)
        if session is None or session.quiet or session.channel is not ch:
            return
        session.quiet = True
        if session.closed.is_set():
            return
        self.spawn(self._wind_down(session))

    async def _wind_down(self, session: OutboundSession) -> None:
        await self.sim.clock.sleep(self.sim.config.outbound_close_after_stasis_end)
        log.info("Deactivating Stasis app '%s'", session.apps[0])
        await session.close(1000)
        self._forget(session)

    def _forget(self, session: OutboundSession) -> None:
        for app in session.apps:
            if self.sessions.get(app) is session:
                del self.sessions[app]
            registered = self.sim.bus.apps.get(app)
            if registered is not None and session in registered.sockets:
                del self.sim.bus.apps[app]

    # -- REST ----------------------------------------------------------------------------
    async def dispatch(self, method: str, path: str, query: str, pairs: list[tuple[str, str]],
                       body: Any) -> tuple[int, Any]:
        """The request through the simulator's own HTTP ARI application (its routes and middlewares,
        in process): its status and parsed JSON body (or None).

        In process, so that the response is queued as soon as the handler returns, before
        anything the handler only scheduled (PlaybackStarted after a play's 201, StasisEnd
        after a continue's 204), as Asterisk answers."""
        if self.app is None:
            raise NotSimulated("REST without the simulator's web application (use start_simulator)")
        url = URL(f"/ari/{path}" + (f"?{query}" if query else ""))
        if pairs:
            url = url.extend_query(pairs)
        cfg = self.sim.config
        headers = CIMultiDict({"Authorization": aiohttp.encode_basic_auth(cfg.username, cfg.password)})
        payload: Any = EMPTY_PAYLOAD
        if isinstance(body, _JsonText):
            headers["Content-Type"] = JSON
            payload = StreamReader(mock.Mock(_reading_paused=False), 2 ** 16,
                                   loop=asyncio.get_running_loop())
            payload.feed_data(str(body).encode())
            payload.feed_eof()
        request = make_mocked_request(method, str(url), headers=headers, app=self.app, payload=payload)
        try:
            resp = await self.app._handle(request)
        except web.HTTPException as exc:
            resp = exc
        status = resp.status
        raw = resp.body if isinstance(resp, web.Response) else None
        if not raw:
            return status, None
        if isinstance(raw, bytes) and resp.content_type.startswith("audio/") and status == 200:
            raise FileResponse()
        if not isinstance(raw, bytes) or resp.content_type != JSON:
            raise NotSimulated(f"a {resp.content_type} response body ({method} {path})")
        return status, json.loads(raw)


class FileResponse(Exception):
    """A handler answered with a file (a stored recording's audio). Asterisk does not send files over
    a websocket: res/ari/ari_websocket_requests.c send_rest_response closes the file and answers
    406 "Not Acceptable.  Use HTTP GET" with no body."""


def _type_of(text: str) -> str:
    try:
        return str(json.loads(text).get("type", "?"))
    except (ValueError, AttributeError):
        return "?"


def _app_of(text: str) -> str:
    try:
        return str(json.loads(text).get("application", "?"))
    except (ValueError, AttributeError):
        return "?"
