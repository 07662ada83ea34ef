"""The events websocket reconnects with capped, jittered backoff and calls the hook.

A tiny websocket stub plays Asterisk's /ari/events; each test scripts what
the server does per connection (send events and drop, drop at once, refuse).
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.ari.events import AriEvent, ConnectInfo, EventStream, StasisStart
from ivr.backoff import Backoff

Script = Callable[[int, web.WebSocketResponse], Awaitable[None]]


async def hold(ws: web.WebSocketResponse, seconds: float = 10) -> None:
    """Keep the connection up like Asterisk does: read (answering pings/close) until closed."""
    try:
        async with asyncio.timeout(seconds):
            async for _ in ws:
                pass
    except TimeoutError:
        pass


def stasis_start(channel_id: str) -> dict[str, Any]:
    return {"type": "StasisStart", "application": "ivr", "timestamp": "2026-11-22T11:15:55.671+0000",
            "args": ["8001"], "channel": {"id": channel_id, "name": "PJSIP/trunk-1", "state": "Up",
                                          "caller": {"name": "", "number": "+8613800138000"}}}


@dataclass
class WsStub:
    """Records every connection attempt (time, query) and runs `script` on it."""

    script: Script
    attempts: list[float] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    status: int = 101
    server: TestServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.attempts.append(asyncio.get_running_loop().time())
        self.queries.append(dict(request.query))
        if self.status != 101:
            return web.json_response({"message": "Authentication required"}, status=self.status)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await self.script(len(self.attempts), ws)
        await ws.close()
        return ws


@pytest.fixture
async def ws_stub() -> AsyncIterator[Callable[[Script], Awaitable[WsStub]]]:
    servers: list[TestServer] = []

    async def start(script: Script) -> WsStub:
        stub = WsStub(script)
        app = web.Application()
        app.router.add_get("/ari/events", stub.handle)
        stub.server = TestServer(app)
        await stub.server.start_server()
        servers.append(stub.server)
        return stub

    yield start
    for server in servers:
        await server.close()


@dataclass
class Collector:
    events: list[AriEvent] = field(default_factory=list)
    connects: list[ConnectInfo] = field(default_factory=list)

    async def on_event(self, event: AriEvent) -> None:
        self.events.append(event)

    async def on_connect(self, info: ConnectInfo) -> None:
        self.connects.append(info)


async def run_for(stream: EventStream, seconds: float) -> None:
    task = asyncio.create_task(stream.run())
    await asyncio.sleep(seconds)
    await stream.aclose()
    await asyncio.wait_for(task, 2)


async def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_reconnects_after_drop_and_calls_hook_each_time(ws_stub: Any) -> None:
    async def script(n: int, ws: web.WebSocketResponse) -> None:
        await ws.send_str(json.dumps(stasis_start(f"chan-{n}")))
        if n == 1:
            return  # server drops the first connection
        await hold(ws)  # stays up

    stub = await ws_stub(script)
    got = Collector()
    stream = EventStream(stub.base_url, "ivr", "not-a-real-secret", "ivr", on_event=got.on_event,
                         on_connect=got.on_connect, backoff=Backoff(initial=0.05, cap=0.2))
    task = asyncio.create_task(stream.run())
    await wait_until(lambda: len(got.events) == 2)
    assert stream.connected
    await stream.aclose()
    await asyncio.wait_for(task, 2)

    assert [type(e) for e in got.events] == [StasisStart, StasisStart]
    assert [e.channel_id for e in got.events] == ["chan-1", "chan-2"]
    assert [(c.connections, c.reconnect) for c in got.connects] == [(1, False), (2, True)]
    assert got.connects[1].downtime >= 0.025  # waited at least half the initial delay
    assert stub.queries[0] == {"app": "ivr", "api_key": "ivr:not-a-real-secret"}
    assert not stream.connected


async def test_hook_runs_before_events_of_that_connection(ws_stub: Any) -> None:
    order: list[str] = []

    async def script(n: int, ws: web.WebSocketResponse) -> None:
        await ws.send_str(json.dumps(stasis_start("c1")))
        await hold(ws)

    async def on_connect(info: ConnectInfo) -> None:
        await asyncio.sleep(0.1)  # e.g. GET /applications/ivr
        order.append("hook")

    async def on_event(event: AriEvent) -> None:
        order.append(event.type)

    stub = await ws_stub(script)
    stream = EventStream(stub.base_url, "u", "p", "ivr", on_event=on_event, on_connect=on_connect)
    task = asyncio.create_task(stream.run())
    await wait_until(lambda: len(order) == 2)
    await stream.aclose()
    await asyncio.wait_for(task, 2)
    assert order == ["hook", "StasisStart"]


async def test_failing_hook_and_handler_do_not_break_the_stream(ws_stub: Any) -> None:
    async def script(n: int, ws: web.WebSocketResponse) -> None:
        await ws.send_str("not json at all")
        await ws.send_str(json.dumps({"no": "type"}))
        for i in range(3):
            await ws.send_str(json.dumps(stasis_start(f"c{i}")))
        await hold(ws)

    seen: list[str | None] = []

    async def on_event(event: AriEvent) -> None:
        seen.append(event.channel_id)
        if event.channel_id == "c0":
            raise RuntimeError("handler bug")

    async def on_connect(info: ConnectInfo) -> None:
        raise RuntimeError("reconcile bug")

    stub = await ws_stub(script)
    stream = EventStream(stub.base_url, "u", "p", "ivr", on_event=on_event, on_connect=on_connect)
    task = asyncio.create_task(stream.run())
    await wait_until(lambda: len(seen) == 3)
    await stream.aclose()
    await asyncio.wait_for(task, 2)
    assert seen == ["c0", "c1", "c2"]
    assert len(stub.attempts) == 1


def assert_backed_off(attempts: list[float], backoff: Backoff, window: float) -> None:
    """No tight loop: gaps never below half the nominal delay, and a bounded count."""
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert len(attempts) >= 3, "kept retrying"
    assert min(gaps) >= backoff.initial / 2 * 0.9, gaps
    # delays: initial/2.. growing to cap/2 minimum -> at most this many in the window
    assert len(attempts) <= 1 + window / (backoff.initial / 2), attempts
    assert gaps[-1] <= backoff.cap + 0.5, "capped"


async def test_server_that_drops_at_once_does_not_cause_a_tight_loop(ws_stub: Any) -> None:
    async def script(n: int, ws: web.WebSocketResponse) -> None:
        return  # accept, then close immediately

    stub = await ws_stub(script)
    got = Collector()
    backoff = Backoff(initial=0.05, cap=0.2, rng=random.Random(1))
    stream = EventStream(stub.base_url, "u", "p", "ivr", on_event=got.on_event,
                         on_connect=got.on_connect, backoff=backoff)
    await run_for(stream, 1.5)
    assert_backed_off(stub.attempts, backoff, 1.5)
    # connections that never proved stable do not reset the backoff
    gaps = [b - a for a, b in zip(stub.attempts, stub.attempts[1:])]
    assert max(gaps[-3:]) >= 0.1 - 0.01
    # every accepted connection ran the hook (but the one aclose() may have cut short)
    assert len(stub.attempts) - 1 <= len(got.connects) <= len(stub.attempts)


async def test_refused_connection_backs_off(ws_stub: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backoff = Backoff(initial=0.05, cap=0.2, rng=random.Random(2))
    got = Collector()
    stream = EventStream(f"http://127.0.0.1:{port}", "u", "p", "ivr", on_event=got.on_event,
                         backoff=backoff)
    loop = asyncio.get_running_loop()
    original = stream._connect
    attempts: list[float] = []

    async def counting_connect() -> Any:
        attempts.append(loop.time())
        return await original()

    stream._connect = counting_connect  # type: ignore[method-assign]
    await run_for(stream, 1.5)
    assert_backed_off(attempts, backoff, 1.5)
    assert got.connects == []


async def test_rejected_credentials_back_off_too(ws_stub: Any) -> None:
    async def script(n: int, ws: web.WebSocketResponse) -> None:
        return

    stub = await ws_stub(script)
    stub.status = 401
    backoff = Backoff(initial=0.05, cap=0.2, rng=random.Random(3))
    stream = EventStream(stub.base_url, "u", "wrong", "ivr", on_event=Collector().on_event, backoff=backoff)
    await run_for(stream, 1.0)
    assert_backed_off(stub.attempts, backoff, 1.0)


async def test_stable_connection_resets_backoff(ws_stub: Any) -> None:
    async def script(n: int, ws: web.WebSocketResponse) -> None:
        await hold(ws, 0.3 if n <= 2 else 10)

    stub = await ws_stub(script)
    backoff = Backoff(initial=0.05, cap=1.0)
    backoff.failures = 10  # as if many failures happened before
    stream = EventStream(stub.base_url, "u", "p", "ivr", on_event=Collector().on_event,
                         backoff=backoff, stable_after=0.2)
    task = asyncio.create_task(stream.run())
    await wait_until(lambda: len(stub.attempts) == 3)
    await stream.aclose()
    await asyncio.wait_for(task, 2)
    # after a 0.3 s (stable) connection the next retry comes after ~initial, not ~cap
    gap = stub.attempts[2] - stub.attempts[1] - 0.3
    assert gap < 0.2


async def test_aclose_interrupts_the_backoff_sleep() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stream = EventStream(f"http://127.0.0.1:{port}", "u", "p", "ivr", on_event=Collector().on_event,
                         backoff=Backoff(initial=30, cap=30))
    task = asyncio.create_task(stream.run())
    await asyncio.sleep(0.1)
    started = asyncio.get_running_loop().time()
    await stream.aclose()
    await asyncio.wait_for(task, 2)
    assert asyncio.get_running_loop().time() - started < 1


async def test_subscribe_all_and_url_forms(ws_stub: Any) -> None:
    async def script(n: int, ws: web.WebSocketResponse) -> None:
        await hold(ws)

    stub = await ws_stub(script)
    got = Collector()
    stream = EventStream(stub.base_url + "/ari/", "u", "p", ["ivr", "ivr-monitor"], on_event=got.on_event,
                         on_connect=got.on_connect, subscribe_all=True)
    task = asyncio.create_task(stream.run())
    await stream.wait_connected(3)
    await stream.aclose()
    await asyncio.wait_for(task, 2)
    assert stub.queries == [{"app": "ivr,ivr-monitor", "api_key": "u:p", "subscribeAll": "true"}]
    assert stream.url.startswith("ws://") and stream.url.endswith("/ari/events")


def test_backoff_is_jittered_capped_and_resettable() -> None:
    backoff = Backoff(initial=0.5, factor=2, cap=30, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(20)]
    nominal = [min(30, 0.5 * 2**i) for i in range(20)]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal))
    assert max(delays) <= 30 and delays[-1] >= 15
    assert len({round(d, 6) for d in delays[-8:]}) == 8  # jittered, not constant
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_a_fresh_backoff_counts_alone_under_the_same_policy() -> None:
    policy = Backoff(initial=0.5, factor=2, cap=30, rng=random.Random(7))
    first = policy.fresh()
    first.next_delay(), first.next_delay(), first.next_delay()
    second = policy.fresh()
    assert first.failures == 3 and second.failures == 0 and policy.failures == 0
    assert 0.25 <= second.next_delay() <= 0.5
    assert (second.initial, second.factor, second.cap, second.rng) == (0.5, 2, 30, policy.rng)


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(initial=5, cap=1)


def test_logged_errors_never_show_the_password() -> None:
    stream = EventStream("http://127.0.0.1:1", "ivr", "s3cr:et/x", "ivr", on_event=Collector().on_event)
    error = OSError("Cannot connect to ws://127.0.0.1:1/ari/events?app=ivr&api_key=ivr:s3cr%3Aet%2Fx")
    assert "s3cr" not in stream._redact(error)
    assert "s3cr" not in stream._redact(OSError("api_key=ivr:s3cr:et/x"))


async def test_slow_hook_does_not_starve_heartbeat(ws_stub: Any) -> None:
    """Reconciling may take long; pings keep being answered and events wait for the hook."""
    async def script(n: int, ws: web.WebSocketResponse) -> None:
        await ws.send_str(json.dumps(stasis_start("c1")))
        await hold(ws)

    order: list[str] = []

    async def on_connect(info: ConnectInfo) -> None:
        await asyncio.sleep(1.0)  # several heartbeat periods
        order.append("hook")

    async def on_event(event: AriEvent) -> None:
        order.append(event.type)

    stub = await ws_stub(script)
    stream = EventStream(stub.base_url, "u", "p", "ivr", on_event=on_event, on_connect=on_connect,
                         heartbeat=0.2)
    task = asyncio.create_task(stream.run())
    await wait_until(lambda: len(order) == 2)
    await asyncio.sleep(0.5)
    assert stream.connected
    await stream.aclose()
    await asyncio.wait_for(task, 2)
    assert order == ["hook", "StasisStart"]
    assert len(stub.attempts) == 1
