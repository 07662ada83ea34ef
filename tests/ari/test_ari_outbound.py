"""ARI over Asterisk's outbound websockets, as recorded from Asterisk 22 (the test plays Asterisk:
it opens the socket with Basic auth and subprotocol `ari`, and answers RESTRequests)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.ari.errors import AriConnectionError, ChannelNotFound
from ivr.ari.outbound import Connection, OutboundEndpoint, WebSocketAri

AUTH = {"Authorization": "Basic " + base64.b64encode(b"asterisk:secret").decode()}
REGISTERED = {"type": "ApplicationRegistered", "timestamp": "2026-12-01T23:51:40.997+0000",
              "application": "ivrout:Local/talk@caller-sim-00000014;1", "asterisk_id": "02:fc:00:00:00:01"}


class Recorder:
    """The handler: remembers connections and messages."""

    def __init__(self) -> None:
        self.connections: list[Connection] = []
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.gone: list[Connection] = []

    async def opened(self, connection: Connection) -> None:
        self.connections.append(connection)

    async def message(self, connection: Connection, message: dict[str, Any]) -> None:
        await self.messages.put(message)

    async def closed(self, connection: Connection) -> None:
        connection.line.detach(connection)
        self.gone.append(connection)


@pytest.fixture
async def endpoint():
    handler = Recorder()
    outbound = OutboundEndpoint("/ari/outbound", "asterisk", "secret", handler)
    app = web.Application()
    app.add_routes(outbound.routes())
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield server, session, handler
    await server.close()


async def _asterisk(server: TestServer, session: aiohttp.ClientSession, headers=AUTH):
    return await session.ws_connect(server.make_url("/ari/outbound?tenant=acme"), headers=headers, protocols=("ari",))


async def test_asterisk_without_the_password_is_refused(endpoint):
    server, session, handler = endpoint
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await _asterisk(server, session, headers={"Authorization": "Basic " + base64.b64encode(b"asterisk:nope").decode()})
    assert refused.value.status == 401 and handler.connections == []


async def test_a_per_call_connection_names_its_channel_and_carries_rest(endpoint):
    server, session, handler = endpoint
    ws = await _asterisk(server, session)
    assert ws.protocol == "ari"
    await ws.send_str(json.dumps(REGISTERED))
    assert (await asyncio.wait_for(handler.messages.get(), 2))["type"] == "ApplicationRegistered"
    [connection] = handler.connections
    assert connection.channel_name == "Local/talk@caller-sim-00000014;1"

    asked = asyncio.create_task(connection.line.set_variable("1796169100.44", "WSVAR", "hello ws"))
    request = json.loads((await ws.receive(timeout=2)).data)
    assert request["type"] == "RESTRequest" and request["method"] == "POST"
    assert request["uri"] == "channels/1796169100.44/variable", "relative: Asterisk answers /channels/.. with 405"
    assert request["query_strings"] == [{"name": "variable", "value": "WSVAR"}, {"name": "value", "value": "hello ws"}]
    await ws.send_str(json.dumps({"type": "RESTResponse", "transaction_id": request["transaction_id"],
                                  "request_id": request["request_id"], "status_code": 204,
                                  "reason_phrase": "No Content", "uri": request["uri"],
                                  "application": REGISTERED["application"], "asterisk_id": "02:fc:00:00:00:01"}))
    await asyncio.wait_for(asked, 2)
    assert handler.messages.empty(), "a RESTResponse answers its request; the controller never sees it as an event"
    await ws.close()


async def test_an_error_status_is_the_client_error_and_a_body_goes_as_json(endpoint):
    server, session, handler = endpoint
    ws = await _asterisk(server, session)
    await ws.send_str(json.dumps(REGISTERED))
    await handler.messages.get()
    line = handler.connections[0].line
    asked = asyncio.create_task(line.get_channel("gone"))
    request = json.loads((await ws.receive(timeout=2)).data)
    await ws.send_str(json.dumps({"type": "RESTResponse", "request_id": request["request_id"], "status_code": 404,
                                  "reason_phrase": "Not Found", "content_type": "application/json",
                                  "message_body": json.dumps({"message": "Channel not found"})}))
    with pytest.raises(ChannelNotFound):
        await asyncio.wait_for(asked, 2)
    asked = asyncio.create_task(line.request("POST", "/channels/1/variable", body={"variables": {"A": "1"}}))
    request = json.loads((await ws.receive(timeout=2)).data)
    assert request["content_type"] == "application/json", "Asterisk answers a body without content_type with 400"
    assert json.loads(request["message_body"]) == {"variables": {"A": "1"}}
    asked.cancel()
    await ws.close()


async def test_a_request_on_a_socket_that_drops_fails_and_the_next_goes_on_its_replacement(endpoint):
    server, session, handler = endpoint
    first = await _asterisk(server, session)
    await first.send_str(json.dumps(REGISTERED))
    await handler.messages.get()
    line: WebSocketAri = handler.connections[0].line
    lost = asyncio.create_task(line.answer("c1"))
    await first.receive(timeout=2)  # the request went out; Asterisk drops the socket before answering
    await first.close()
    with pytest.raises(AriConnectionError):
        await asyncio.wait_for(lost, 2)

    waiting = asyncio.create_task(line.answer("c1"))  # Asterisk reconnects within ~20 ms
    second = await _asterisk(server, session)
    await second.send_str(json.dumps(REGISTERED))
    await handler.messages.get()
    line.attach(handler.connections[1])
    request = json.loads((await second.receive(timeout=2)).data)
    await second.send_str(json.dumps({"type": "RESTResponse", "request_id": request["request_id"], "status_code": 204}))
    await asyncio.wait_for(waiting, 2)
    assert handler.connections[1].line is line
    await second.close()
