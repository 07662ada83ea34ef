"""ARI error responses become exceptions that say what happened."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp import web

from ivr.ari.client import AriClient
from ivr.ari.errors import (
    AriConnectionError,
    AriError,
    AriServerError,
    AuthenticationError,
    BadRequest,
    BridgeNotFound,
    ChannelNotFound,
    NotFound,
    PlaybackNotFound,
    Unprocessable,
    VariableNotFound,
    WrongState,
    error_from_response,
)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, b'{"message": "Channel not found"}', ChannelNotFound),
        (404, b'{"message": "Playback not found"}', PlaybackNotFound),
        (404, b'{"message": "Bridge not found"}', BridgeNotFound),
        (404, b'{"message": "Provided variable was not found"}', VariableNotFound),
        (404, b'{"message": "Resource not found"}', NotFound),
        (404, b"", NotFound),
        (409, b'{"message": "Channel not in Stasis application"}', WrongState),
        (422, b'{"message": "Channel not in Stasis application"}', Unprocessable),
        (400, b'{"message": "Field \\"media\\" is required"}', BadRequest),
        (401, b'{"error": "Authentication required"}', AuthenticationError),
        (500, b'{"message": "Allocation failed"}', AriServerError),
        (503, b"<html>Service Unavailable</html>", AriServerError),
        (418, b"teapot", AriError),
    ],
)
def test_status_and_message_pick_the_class(status: int, body: bytes, expected: type[AriError]) -> None:
    error = error_from_response(status, "POST", "/channels/1.2/play", body)
    assert type(error) is expected
    assert (error.status, error.method, error.path) == (status, "POST", "/channels/1.2/play")


def test_message_is_kept_and_readable() -> None:
    error = error_from_response(404, "DELETE", "/playbacks/pb-1", b'{"message": "Playback not found"}')
    assert error.message == "Playback not found"
    assert str(error) == "DELETE /playbacks/pb-1 -> 404: Playback not found"
    assert isinstance(error, NotFound) and isinstance(error, AriError)
    assert "PlaybackNotFound" in repr(error)


def test_non_json_body_becomes_the_message() -> None:
    error = error_from_response(502, "GET", "/channels", b"Bad Gateway\n")
    assert error.message == "Bad Gateway"
    assert error_from_response(500, "GET", "/x", b"").message == "HTTP 500"


async def asterisk_like(request: web.Request) -> web.StreamResponse:
    """Answers as the traces show Asterisk 22 answering these situations."""
    path = request.path
    if path.endswith("/variable") and request.method == "GET":
        if request.query["variable"] == "UNSET":
            return web.json_response({"message": "Provided variable was not found"}, status=404)
        if path.startswith("/ari/channels/gone"):
            return web.json_response({"message": "Channel not found"}, status=404)
        return web.json_response({"value": "payments"})
    if path.startswith("/ari/channels/gone"):
        return web.json_response({"message": "Channel not found"}, status=404)
    if path.startswith("/ari/playbacks/"):
        return web.json_response({"message": "Playback not found"}, status=404)
    if path.endswith("/addChannel"):
        return web.json_response({"message": "Channel not in Stasis application"}, status=422)
    if path.endswith("/slow"):
        await asyncio.sleep(5)
    if path.startswith("/ari/asterisk/"):
        return web.Response(status=500, text="Internal Server Error")
    return web.Response(status=204)


async def test_client_raises_mapped_errors(stub_ari: Any) -> None:
    stub = await stub_ari(asterisk_like)
    async with AriClient(stub.base_url, "ivr", "not-a-real-secret") as ari:
        with pytest.raises(ChannelNotFound) as caught:
            await ari.play("gone.1", "sound:hello-world", playback_id="pb-late")
        assert caught.value.method == "POST"
        assert caught.value.path == "/channels/gone.1/play"
        with pytest.raises(PlaybackNotFound):
            await ari.stop_playback("pb-1")
        with pytest.raises(Unprocessable, match="not in Stasis"):
            await ari.add_channel("b-1", ["1.1", "1.2"])
        with pytest.raises(AriServerError):
            await ari.asterisk_info()
        await ari.answer("1.1")


async def test_get_variable_unset_is_none_but_gone_channel_raises(stub_ari: Any) -> None:
    stub = await stub_ari(asterisk_like)
    async with AriClient(stub.base_url, "ivr", "not-a-real-secret") as ari:
        assert await ari.get_variable("1.1", "IVR_QUEUE") == "payments"
        assert await ari.get_variable("1.1", "UNSET") is None
        with pytest.raises(ChannelNotFound):
            await ari.get_variable("gone.1", "IVR_QUEUE")


async def test_ids_are_percent_encoded_in_paths(stub_ari: Any) -> None:
    stub = await stub_ari(asterisk_like)
    async with AriClient(stub.base_url, "ivr", "not-a-real-secret") as ari:
        await ari.answer("Local/x;2")
    assert stub.requests[-1].raw_path.startswith("/ari/channels/Local%2Fx%3B2/answer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_a_connection_error() -> None:
    async with AriClient(f"http://127.0.0.1:{free_port()}", "ivr", "x") as ari:
        with pytest.raises(AriConnectionError) as caught:
            await ari.list_channels()
    assert caught.value.status is None
    assert caught.value.method == "GET" and caught.value.path == "/channels"


async def test_timeout_is_a_connection_error(stub_ari: Any) -> None:
    stub = await stub_ari(asterisk_like)
    async with AriClient(stub.base_url, "ivr", "x", timeout=0.2) as ari:
        with pytest.raises(AriConnectionError):
            await ari.request("GET", "/slow")
