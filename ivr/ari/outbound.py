"""ARI over the websockets Asterisk opens to us (ari.conf `type = outbound_websocket`).

In this mode Asterisk is the websocket client: with websocket_client.conf
`connection_type = per_call_config` it opens one connection per call that
enters Stasis (nothing in the upgrade request says which call: the first
message, ApplicationRegistered, names `<app>:<channel name>`, then comes
StasisStart); with `persistent` one connection carries every call. Events and
REST travel on the same socket: a request is a `RESTRequest` message, its
answer a `RESTResponse` with the same `request_id`. Asterisk answers the
requests of one socket one at a time, in order (a POST /variable during a
prompt holds up everything behind it until the prompt ends).

When a socket drops, Asterisk reconnects within ~20 ms (through the load
balancer, perhaps to another controller); the new connection gets the events
of the gap first, then ApplicationRegistered, and no StasisStart again.

`OutboundEndpoint` accepts the connections (Basic auth, subprotocol `ari`) on
our HTTP server and hands every message to a `ConnectionHandler`;
`WebSocketAri` is the typed ARI client of `ivr.ari.client` with REST carried
over a socket, and can move to the socket that replaces it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import itertools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from ivr.ari.client import AriClient
from ivr.ari.errors import AriConnectionError, AriError, error_from_response

log = logging.getLogger(__name__)

MAX_MESSAGE = 4 << 20  # bytes: a GET /channels of a busy Asterisk is the largest answer we ask for
REATTACH_WAIT = 2.0  # seconds a request waits for the socket that replaces a dropped one
_ids = itertools.count(1)


class Connection:
    """One websocket Asterisk opened to us."""

    def __init__(self, ws: web.WebSocketResponse, peer: str, *, timeout: float = 30.0,
                 on_error: Callable[[AriError], None] | None = None, files: AriClient | None = None) -> None:
        self.ws = ws
        self.peer = peer
        self.number = next(_ids)
        self.application: str | None = None  # from ApplicationRegistered: `<app>:<channel name>` per call
        self.asterisk_id: str | None = None
        self.line = WebSocketAri(self, timeout=timeout, on_error=on_error, files=files)  # its answers come here

    @property
    def channel_name(self) -> str | None:
        """The channel a per-call connection is for, once ApplicationRegistered named it."""
        if self.application and ":" in self.application:
            return self.application.split(":", 1)[1]
        return None

    async def send(self, message: Mapping[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    def __repr__(self) -> str:
        """For logs: never the channel name (a Local channel's holds the number it dialled)."""
        kind = "per-call" if self.channel_name else ("persistent" if self.application else "unregistered")
        return f"<outbound#{self.number} {kind} from {self.peer}>"


class WebSocketAri(AriClient):
    """The typed ARI operations of `AriClient`, with REST carried as RESTRequest/RESTResponse
    messages on an outbound websocket instead of HTTP."""

    def __init__(self, connection: Connection | None, *, timeout: float = 30.0,
                 on_error: Callable[[AriError], None] | None = None, files: AriClient | None = None) -> None:
        """`files`: the HTTP ARI client that fetches recorded audio (Asterisk answers a file over the
        websocket with 406 "Use HTTP GET"); None: no recording can be fetched."""
        # No HTTP session: only `request` differs from AriClient, and it does not use one.
        self._session = None
        self._owns_session = False
        self._on_error = on_error
        self.files = files
        self._request_timeout = timeout
        self.connection = connection
        self._pending: dict[str, tuple[Connection, asyncio.Future[tuple[int, bytes]]]] = {}
        self._attached = asyncio.Event()
        if connection is not None:
            self._attached.set()

    @property
    def asterisk_id(self) -> str | None:
        return self.connection.asterisk_id if self.connection is not None else None

    @property
    def per_call_app(self) -> str | None:
        if self.connection is None or self.connection.channel_name is None:
            return None
        return self.connection.application

    @property
    def follows_after_stasis(self) -> bool:
        """A per-call socket carries nothing after StasisEnd (and closes 3.5 s later); a persistent one does."""
        return self.per_call_app is None

    def attach(self, connection: Connection) -> None:
        """Carry on over `connection` (the socket Asterisk opened after the last one dropped)."""
        self.connection = connection
        connection.line = self
        self._attached.set()

    def detach(self, connection: Connection) -> None:
        """`connection` closed: its unanswered requests fail (Asterisk may or may not have run them)."""
        for request_id, (sent_on, future) in list(self._pending.items()):
            if sent_on is connection and not future.done():
                future.set_exception(AriConnectionError("websocket closed before the answer", method="", path=""))
                del self._pending[request_id]
        if self.connection is connection:
            self.connection = None
            self._attached.clear()

    def resolve(self, message: Mapping[str, Any]) -> None:
        """A RESTResponse came in: complete its request."""
        entry = self._pending.pop(str(message.get("request_id")), None)
        if entry is None or entry[1].done():
            return
        body = message.get("message_body")
        payload = body.encode() if isinstance(body, str) else b""
        entry[1].set_result((int(message.get("status_code") or 0), payload))

    async def request(self, method: str, path: str, params: Mapping[str, str] | None = None,
                      body: Mapping[str, Any] | None = None) -> bytes:
        connection = await self._connection(method, path)
        request_id = f"ivr-{next(_ids)}"
        message: dict[str, Any] = {"type": "RESTRequest", "request_id": request_id, "transaction_id": request_id,
                                   "method": method, "uri": path.lstrip("/")}
        if params:
            message["query_strings"] = [{"name": name, "value": value} for name, value in params.items()]
        if body is not None:
            message["content_type"] = "application/json"
            message["message_body"] = json.dumps(body)
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (connection, future)
        try:
            await connection.send(message)
            status, payload = await asyncio.wait_for(future, self._request_timeout)
        except TimeoutError as exc:
            raise self._failed(AriConnectionError(f"no answer in {self._request_timeout:.0f} s",
                                                  method=method, path=path)) from exc
        except AriConnectionError as exc:
            raise self._failed(exc) from None
        except (ConnectionError, RuntimeError) as exc:
            raise self._failed(AriConnectionError(str(exc) or "websocket closed", method=method, path=path)) from exc
        finally:
            self._pending.pop(request_id, None)
        if status >= 400 or status == 0:
            raise self._failed(error_from_response(status or 502, method, path, payload))
        return payload

    async def _connection(self, method: str, path: str) -> Connection:
        if self.connection is None or self.connection.ws.closed:
            try:
                await asyncio.wait_for(self._attached.wait(), REATTACH_WAIT)
            except TimeoutError as exc:
                raise self._failed(AriConnectionError("no websocket from Asterisk for this call",
                                                      method=method, path=path)) from exc
        assert self.connection is not None
        return self.connection

    async def get_recording_file(self, name: str) -> bytes:
        """Over HTTP: Asterisk does not send files over a websocket (res/ari/ari_websocket_requests.c
        answers 406 "Not Acceptable.  Use HTTP GET")."""
        if self.files is None:
            raise self._failed(AriConnectionError("recorded audio needs HTTP ARI (ari_url) in outbound mode",
                                                  method="GET", path=f"/recordings/stored/{name}/file"))
        return await self.files.get_recording_file(name)

    async def close(self) -> None:
        """Nothing to close: the sockets are Asterisk's, and end with its calls."""


class ConnectionHandler(Protocol):
    """What the controller does with the outbound connections."""

    async def opened(self, connection: Connection) -> None: ...
    async def message(self, connection: Connection, message: dict[str, Any]) -> None: ...
    async def closed(self, connection: Connection) -> None: ...
    async def aclose(self) -> None: ...


class OutboundEndpoint:
    """The websocket endpoint Asterisk's websocket_client `uri` points at."""

    def __init__(self, path: str, user: str, password: str, handler: ConnectionHandler, *,
                 timeout: float = 30.0, on_error: Callable[[AriError], None] | None = None,
                 files: AriClient | None = None) -> None:
        """`timeout`: seconds a REST request waits for its answer; `on_error`: told of every failed one;
        `files`: HTTP ARI for recorded audio (record-mode speech)."""
        self.path = path
        self.timeout = timeout
        self.on_error = on_error
        self.files = files
        self._credentials = f"{user}:{password}".encode()
        self.handler = handler
        self.connections: set[Connection] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self.path, self._accept)]

    def _authorised(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._credentials)

    async def _accept(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            log.warning("outbound websocket from %s refused: wrong or missing credentials", request.remote)
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="ivr"'})
        ws = web.WebSocketResponse(protocols=("ari",), max_msg_size=MAX_MESSAGE, heartbeat=None)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="expected a websocket upgrade")
        await ws.prepare(request)
        connection = Connection(ws, request.remote or "?", timeout=self.timeout, on_error=self.on_error,
                                files=self.files)
        self.connections.add(connection)
        try:
            await self.handler.opened(connection)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.ERROR:
                        break
                    continue
                await self._dispatch(connection, msg.data)
        finally:
            self.connections.discard(connection)
            await self.handler.closed(connection)
        return ws

    async def _dispatch(self, connection: Connection, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            log.warning("%r: a message that is not JSON, ignored", connection)
            return
        if not isinstance(message, dict):
            return
        if message.get("asterisk_id"):
            connection.asterisk_id = str(message["asterisk_id"])
        if message.get("type") == "RESTResponse":
            connection.line.resolve(message)
            return
        if message.get("type") == "ApplicationRegistered":
            connection.application = str(message.get("application") or "")
        await self.handler.message(connection, message)

    async def aclose(self) -> None:
        """Close every socket (code 1001, going away): Asterisk reconnects each call elsewhere."""
        for connection in list(self.connections):
            await connection.ws.close(code=1001)
        if self.files is not None:
            await self.files.close()
