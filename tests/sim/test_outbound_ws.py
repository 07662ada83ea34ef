"""ARI outbound websockets (issue 13): the simulator connects to the application as Asterisk 22 does.

A tiny aiohttp websocket server stands for the application; the recorded
configs (``traces/conf/outbound-websocket-*.conf``, ports rewritten) and
dialplan (``scenarios3-extensions.conf``: ``tr-ws`` pc/p1/p2) drive the
simulator, and what arrives is compared with ``traces/outbound-websocket-*``.
Simulated time runs 4x faster (``time_scale``): every recorded duration
(0.5 s Stasis() poll, 1 s reconnect interval, 3.5 s close after StasisEnd)
keeps its value in simulated seconds, which the event timestamps carry.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sim_audio import tone, write_wav
from sim_client import Ari, EventStream

from ivr.sim import OutboundWebsocket, SimulatorConfig, parse_outbound_websockets

SCALE = 0.25
PC_AUTH = "Basic cmVtb3RldXNlcjpyZW1vdGVwYXNz"      # remoteuser:remotepass, as recorded
P_AUTH = "Basic cHVzZXI6cHBhc3M="                   # puser:ppass
UPGRADE_HEADERS = ["Sec-WebSocket-Version", "Upgrade", "Connection", "Host", "Authorization",
                   "Sec-WebSocket-Protocol", "Sec-WebSocket-Key"]


def ts(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


# -- the application: a websocket server -------------------------------------------------------
class AppConn:
    """One connection the simulator opened to the application."""

    def __init__(self, n: int, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.n, self.request, self.ws = n, request, ws
        self.messages: list[dict[str, Any]] = []
        self.cursor = 0
        self.new = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.counter = 0

    @property
    def header_names(self) -> list[str]:
        return [k.decode() for k, _ in self.request.raw_headers]

    async def next(self, kind: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i in range(self.cursor, len(self.messages)):
                if kind is None or self.messages[i]["type"] == kind:
                    self.cursor = i + 1
                    return self.messages[i]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"conn {self.n}: no {kind}; got {self.types()[self.cursor:]}")
            self.new.clear()
            try:
                await asyncio.wait_for(self.new.wait(), remaining)
            except TimeoutError:
                pass

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def rest(self, method: str, uri: str, **fields: Any) -> dict[str, Any]:
        """Send a RESTRequest and wait for its RESTResponse."""
        self.counter += 1
        rid = fields.pop("request_id", f"r{self.n}-{self.counter}")
        await self.send({"type": "RESTRequest", "transaction_id": f"t-{rid}", "request_id": rid,
                         "method": method, "uri": uri, **fields})
        while True:
            msg = await self.next("RESTResponse", timeout=10.0)
            if msg["request_id"] == rid:
                return msg

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]


class AppServer:
    def __init__(self) -> None:
        self.conns: list[AppConn] = []
        self.changed = asyncio.Event()
        self.port = 0
        self.runner: web.AppRunner | None = None
        self.site: web.TCPSite | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        await self.resume()

    async def resume(self) -> None:
        """Listen (again, on the same port)."""
        assert self.runner is not None
        self.site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await self.site.start()
        self.port = self.runner.addresses[-1][1]

    async def pause(self) -> None:
        """Stop listening: connection attempts are refused; open connections stay."""
        assert self.site is not None
        await self.site.stop()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def uri(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("ari",), autoping=True, heartbeat=None)
        await ws.prepare(request)
        conn = AppConn(len(self.conns) + 1, request, ws)
        self.conns.append(conn)
        self.changed.set()
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    conn.messages.append(json.loads(msg.data))
                    conn.new.set()
        finally:
            conn.close_code = ws.close_code
            conn.closed.set()
        return ws

    async def connection(self, n: int, timeout: float = 5.0) -> AppConn:
        async def wait() -> AppConn:
            while len(self.conns) < n:
                self.changed.clear()
                await self.changed.wait()
            return self.conns[n - 1]
        return await asyncio.wait_for(wait(), timeout)


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ws_sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ws-sounds")
    write_wav(root / "tr" / "speech.wav", tone(2.0, [(0.1, 1.9)], freq=300))
    write_wav(root / "tr" / "tone1k.wav", tone(3.5, [(0.0, 3.5)], freq=1000))   # the recorded prompt's length
    write_wav(root / "silence" / "1.wav", tone(1.0, []))
    return root


@pytest.fixture
async def app_server() -> AsyncIterator[AppServer]:
    server = AppServer()
    await server.start()
    yield server
    await server.stop()


def recorded_connections(shared: Path, pc_uri: str, persist_uri: str) -> list[OutboundWebsocket]:
    conf = shared / "traces" / "conf"
    conns = parse_outbound_websockets((conf / "outbound-websocket-ari.conf").read_text(),
                                      (conf / "outbound-websocket-websocket_client.conf").read_text())
    for conn in conns:
        conn.uri = pc_uri if conn.connection_type == "per_call_config" else persist_uri
    return conns


@pytest.fixture
def ws_config(shared: Path, ws_sounds: Path, tmp_path: Path, app_server: AppServer):
    def make(per_call: bool = True, persistent: bool = False, strict: bool = True,
             persist_uri: str | None = None) -> SimulatorConfig:
        conns = recorded_connections(shared, app_server.uri("/ari/events-pc?tenant=acme"),
                                     persist_uri or app_server.uri("/ari/persist"))
        conns = [c for c in conns if (per_call and c.connection_type == "per_call_config")
                 or (persistent and c.connection_type == "persistent")]
        return SimulatorConfig(
            sounds_dirs=[ws_sounds], recordings_dir=tmp_path / "rec",
            dialplan_files=[shared / "traces" / "conf" / "scenarios3-extensions.conf"],
            api_docs_dir=shared / "api-docs", strict=strict, time_scale=SCALE, outbound_websockets=conns)
    return make


async def originate(ari: Ari, exten: str, caller: str = "WS Caller <+15550111>") -> dict[str, Any]:
    status, body = await ari.call("POST", "/channels", endpoint="Local/talk@caller-sim", context="tr-ws",
                                  extension=exten, priority=1, callerId=caller, timeout=30)
    assert status == 200, body
    return body


async def call_on_its_socket(ari: Ari, app_server: Any) -> tuple[dict[str, Any], Any]:
    """A call originated into the per-call application, and its websocket once StasisStart came on it."""
    chan = await originate(ari, "pc")
    conn = await app_server.connection(1)
    await conn.next("StasisStart")
    return chan, conn


# -- configuration -------------------------------------------------------------------------------
def test_recorded_configs_parse(shared: Path) -> None:
    conns = recorded_connections(shared, "ws://x/pc", "ws://x/p")
    by_name = {c.name: c for c in conns}
    pc, persist = by_name["pc-conn"], by_name["persist-conn"]
    assert (pc.apps, pc.connection_type, pc.username, pc.password, pc.protocols) == \
        (["ivrout"], "per_call_config", "remoteuser", "remotepass", "ari")
    assert (pc.connection_timeout, pc.reconnect_interval, pc.reconnect_attempts) == (500, 1000, 4)
    assert (persist.apps, persist.connection_type, persist.username) == (["ivrp1", "ivrp2"], "persistent", "puser")
    ari = "[c]\ntype = outbound_websocket\nwebsocket_client_id = w\napps = a\nsubscribe_all = yes\n"
    client = "[w]\ntype = websocket_client\nconnection_type = persistent\nuri = ws://h/p\n"
    with pytest.raises(ValueError, match="subscribe_all"):
        parse_outbound_websockets(ari, client)
    with pytest.raises(ValueError, match="connection_type"):
        parse_outbound_websockets(ari.replace("yes", "no"), client.replace("persistent", "per_call"))


# -- per call ------------------------------------------------------------------------------------
async def test_per_call_connection_registered_then_stasis_start(ws_config, simulator, session, app_server):
    running = await simulator(ws_config())
    ari = Ari(running, session)
    chan = await originate(ari, "pc")
    conn = await app_server.connection(1)
    assert conn.request.path == "/ari/events-pc" and conn.request.query_string == "tenant=acme"
    assert sorted(conn.header_names) == sorted(UPGRADE_HEADERS)
    assert conn.request.headers["Authorization"] == PC_AUTH
    assert conn.request.headers["Sec-WebSocket-Protocol"] == "ari"
    assert conn.request.headers["Host"] == f"127.0.0.1:{app_server.port}"
    assert conn.ws.ws_protocol == "ari"
    registered = await conn.next()
    name = f"ivrout:{chan['name']}"
    assert list(registered) == ["type", "timestamp", "application", "asterisk_id"]
    assert (registered["type"], registered["application"]) == ("ApplicationRegistered", name)
    start = await conn.next()
    assert start["type"] == "StasisStart"
    assert list(start) == ["type", "timestamp", "args", "channel", "asterisk_id", "application"]
    assert start["application"] == name and start["args"] == ["18005550100", "second-arg"]
    assert start["channel"]["id"] == chan["id"] and start["channel"]["state"] == "Up"
    assert start["channel"]["dialplan"] == {"context": "tr-ws", "exten": "pc", "priority": 3,
                                            "app_name": "Stasis", "app_data": "ivrout,18005550100,second-arg"}
    # recorded: StasisStart 0.501 s after ApplicationRegistered (Stasis() looks every 0.5 s)
    assert ts(start["timestamp"]) - ts(registered["timestamp"]) == pytest.approx(0.5, abs=0.08)
    status, apps = await ari.call("GET", "/applications")
    assert {"name": name, "channel_ids": [chan["id"]], "bridge_ids": [], "endpoint_ids": [], "device_names": [],
            "events_allowed": [], "events_disallowed": []} in apps
    assert "ivrout" not in [a["name"] for a in apps]


def _normalize(msg: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    text = json.dumps({k: v for k, v in msg.items() if not k.startswith("_")})
    for real, token in ids.items():
        text = text.replace(real, token)
    out = json.loads(text)
    out.pop("timestamp", None)
    if "message_body" in out:
        body = json.loads(out["message_body"])
        for item in body if isinstance(body, list) else [body]:
            if isinstance(item, dict):
                item.pop("creationtime", None)
        if isinstance(body, list):       # /applications: Asterisk lists by name, the simulator as registered
            body = sorted(body, key=lambda a: a["name"])
        out["message_body"] = body
    if isinstance(out.get("channel"), dict):
        out["channel"].pop("creationtime", None)
    return out


async def test_per_call_rest_replay_matches_trace(shared, ws_config, simulator, session, app_server):
    """Every recorded request of outbound#1 sent again: responses equal field by field (ids and times aside)."""
    traces = shared / "traces"
    recorded = [json.loads(line) for line in (traces / "outbound-websocket-per-call-rest.jsonl").open()]
    stream = [json.loads(line) for line in (traces / "outbound-websocket-per-call.jsonl").open()]
    rec_chan = json.loads((traces / "outbound-websocket-per-call-summary.json").read_text())["results"]["channel"]
    rec_name = "Local/talk@caller-sim-00000014;1"
    running = await simulator(ws_config(persistent=True, strict=False,
                                        persist_uri="ws://127.0.0.1:9/ari/persist"))   # ivrp1/2 listed, unreachable
    ari = Ari(running, session)
    monitor = await ari.events("trmon", subscribe_all=True)
    chan, conn = await call_on_its_socket(ari, app_server)
    ids = {chan["id"]: "CHAN", chan["name"]: "NAME"}
    rec_ids = {rec_chan: "CHAN", rec_name: "NAME"}
    for entry in recorded:
        if entry.get("transport") != "websocket outbound#1":
            continue
        before = len([m for m in conn.messages if m["type"] == "RESTResponse"])
        if "ws_request_raw" in entry:
            await conn.send(entry["ws_request_raw"])
        else:
            await conn.send(json.loads(json.dumps(entry["ws_request"]).replace(rec_chan, chan["id"])))
        # wait for this request's answer before the next (the recording pipelined some)
        while len([m for m in conn.messages if m["type"] == "RESTResponse"]) <= before:
            await conn.next("RESTResponse", timeout=10.0)
    got = [_normalize(m, ids) for m in conn.messages if m["type"] == "RESTResponse"]
    want = [_normalize(m, rec_ids) for m in stream if m["_ws"] == "outbound#1" and m["type"] == "RESTResponse"]
    assert [list(m) for m in got] == [list(m) for m in want]       # the same fields in the same order
    assert got == want
    events = [_normalize(m, ids) for m in conn.messages if m["type"] != "RESTResponse"]
    want_events = [_normalize(m, rec_ids) for m in stream if m["_ws"] == "outbound#1" and m["type"] != "RESTResponse"]
    assert events == want_events
    # causal order as recorded: a variable's ChannelVarset before its 204; the form POST sent during the
    # playback answered only after PlaybackFinished, and the GET behind it after that
    order = [(m["type"], m["request_id"] if m["type"] == "RESTResponse"
              else m.get("variable") or m.get("playback", {}).get("state")) for m in conn.messages]
    last_get = len(order) - 1 - order[::-1].index(("RESTResponse", ""))
    assert order.index(("ChannelVarset", "WSVAR")) < order.index(("RESTResponse", "req-3"))
    assert order.index(("PlaybackFinished", "done")) < order.index(("ChannelVarset", "WSFORM")) \
        < order.index(("RESTResponse", "form-1")) < last_get
    # the unknown path went through the HTTP ARI like any request: the API-docs check noted it
    assert [v.path for v in running.violations] == ["/ari/ari/channels/" + chan["id"]]
    assert not [e for e in monitor.events if e["type"] == "ChannelVarset" and e["variable"] == "STASISSTATUS"
                and e["value"]]
    await monitor.close()


async def test_requests_answered_in_order_and_refusals(ws_config, simulator, session, app_server):
    running = await simulator(ws_config())
    ari = Ari(running, session)
    chan, conn = await call_on_its_socket(ari, app_server)
    cid = chan["id"]
    play = await conn.rest("POST", f"channels/{cid}/play", query_strings=[
        {"name": "media", "value": "sound:tr/tone1k"}, {"name": "playbackId", "value": "pb-order"}])
    assert (play["status_code"], play["reason_phrase"], play["uri"]) == (201, "Created", f"channels/{cid}/play")
    assert json.loads(play["message_body"])["state"] == "queued"
    # a POST variable behind the playback blocks; the GET sent right after waits behind it
    await conn.send({"type": "RESTRequest", "request_id": "set", "method": "POST",
                     "uri": f"channels/{cid}/variable", "content_type": "application/json",
                     "message_body": json.dumps({"variable": "ORDER", "value": "1"})})
    await conn.send({"type": "RESTRequest", "request_id": "get", "method": "GET", "uri": f"channels/{cid}"})
    got = await conn.next("RESTResponse", timeout=10.0)
    assert got["request_id"] == "set" and got["transaction_id"] == ""
    after = await conn.next("RESTResponse")
    assert after["request_id"] == "get" and after["status_code"] == 200
    types = [(m["type"], m.get("request_id")) for m in conn.messages]
    assert types.index(("PlaybackFinished", None)) < types.index(("RESTResponse", "set"))
    started = next(m for m in conn.messages if m["type"] == "PlaybackStarted")
    assert ts(got["timestamp"]) - ts(started["timestamp"]) == pytest.approx(3.5, abs=0.2)
    # what the recordings never showed is refused loudly (501), not guessed
    odd = await conn.rest("POST", f"channels/{cid}/variable", content_type="text/plain", message_body="x")
    assert (odd["status_code"], odd["reason_phrase"]) == (501, "Not Implemented")
    assert "not simulated" in json.loads(odd["message_body"])["message"].lower()
    odd = await conn.rest("PATCH", f"channels/{cid}")
    assert odd["status_code"] == 501
    # an error from the REST handler keeps the HTTP ARI body
    bad = await conn.rest("POST", f"channels/{cid}/variable", query_strings=[{"name": "value", "value": "v"}])
    assert (bad["status_code"], bad["reason_phrase"]) == (400, "Bad Request")
    status, body = await ari.call("POST", f"/channels/{cid}/variable", value="v")
    assert status == 400 and json.loads(bad["message_body"]) == body     # the same answer as over HTTP
    # originate / inbound websocket into an outbound application: refused
    status, body = await ari.call("POST", "/channels", endpoint="Local/talk@caller-sim", app="ivrout")
    assert status == 501
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(running.events_url("ivrout"))
    assert refused.value.status == 501


async def test_two_calls_two_connections_and_end_of_call(ws_config, simulator, session, app_server):
    running = await simulator(ws_config())
    ari = Ari(running, session)
    b = await originate(ari, "pc", "B <+15550132>")
    c = await originate(ari, "pc", "C <+15550133>")
    await app_server.connection(2)
    conns = {}
    for conn in app_server.conns:
        start = await conn.next("StasisStart")
        conns[start["channel"]["id"]] = conn
    cb, cc = conns[b["id"]], conns[c["id"]]
    assert cb is not cc
    # B's socket acts on C's channel; C's events go to C's socket
    got = await cb.rest("GET", f"channels/{c['id']}")
    assert got["status_code"] == 200 and got["application"] == f"ivrout:{b['name']}"
    played = await cb.rest("POST", f"channels/{c['id']}/play?media=sound:tr/tone1k&playbackId=cross-c")
    assert played["status_code"] == 201
    started = await cc.next("PlaybackStarted")
    assert started["application"] == f"ivrout:{c['name']}" and started["playback"]["id"] == "cross-c"
    # C hung up over its socket: ChannelHangupRequest, the 204, PlaybackFinished failed, StasisEnd (lifecycle)
    deleted = await cc.rest("DELETE", f"channels/{c['id']}")
    assert (deleted["status_code"], deleted["reason_phrase"]) == (204, "No Content")
    assert "content_type" not in deleted and "message_body" not in deleted
    end_c = await cc.next("StasisEnd")
    tail = cc.types()[cc.types().index("PlaybackStarted") + 1:]
    assert tail == ["ChannelHangupRequest", "RESTResponse", "PlaybackFinished", "StasisEnd"]
    # B: the caller hangs up (DELETE of the ;2 half over HTTP): ChannelHangupRequest, StasisEnd
    _, channels = await ari.call("GET", "/channels")
    caller_half = next(ch for ch in channels if ch["name"] == b["name"].replace(";1", ";2"))
    status, _ = await ari.call("DELETE", f"/channels/{caller_half['id']}")
    assert status == 204
    end_b = await cb.next("StasisEnd")
    assert cb.types()[-2:] == ["ChannelHangupRequest", "StasisEnd"]
    assert "PlaybackStarted" not in cb.types()
    # nothing more arrives; Asterisk closes each socket (1000) 3.5 s after its StasisEnd
    for conn, end in ((cb, end_b), (cc, end_c)):
        count = len(conn.messages)
        await asyncio.wait_for(conn.closed.wait(), 3.0)
        assert conn.close_code == 1000 and len(conn.messages) == count
        closed_at = running.sim.clock.wall()
        assert closed_at - ts(end["timestamp"]) == pytest.approx(3.5, abs=0.25)
    assert not [a for a in (await ari.call("GET", "/applications"))[1] if a["name"].startswith("ivrout:")]


async def test_continue_resumes_dialplan_then_socket_closed(ws_config, simulator, session, app_server):
    running = await simulator(ws_config())
    ari = Ari(running, session)
    monitor = await ari.events("trmon", subscribe_all=True)
    chan = await originate(ari, "pc", "A <+15550131>")
    conn = await app_server.connection(1)
    await conn.next("StasisStart")
    done = await conn.rest("POST", f"channels/{chan['id']}/continue")
    assert done["status_code"] == 204
    end = await conn.next("StasisEnd")
    noop = await monitor.next("ChannelDialplan", lambda e: e["dialplan_app"] == "NoOp"
                              and e["channel"]["id"] == chan["id"] and "after" in e["dialplan_app_data"])
    assert noop["dialplan_app_data"] == "after Stasis(ivrout): STASISSTATUS=SUCCESS"
    await asyncio.wait_for(conn.closed.wait(), 3.0)
    assert conn.close_code == 1000 and conn.types()[-2:] == ["RESTResponse", "StasisEnd"]
    assert running.sim.clock.wall() - ts(end["timestamp"]) == pytest.approx(3.5, abs=0.25)
    await monitor.close()


async def test_server_close_reconnects_gap_events_first(ws_config, simulator, session, app_server):
    running = await simulator(ws_config())
    ari = Ari(running, session)
    chan, first = await call_on_its_socket(ari, app_server)
    # the application closes: Asterisk answers 1000 and is back at once, ApplicationRegistered only
    await first.ws.close(code=1001)
    assert first.close_code == 1000
    second = await app_server.connection(2, timeout=2.0)
    assert second.request.headers["Authorization"] == PC_AUTH
    again = await second.next()
    assert again["type"] == "ApplicationRegistered" and again["application"] == f"ivrout:{chan['name']}"
    assert ts(again["timestamp"]) > ts(first.messages[0]["timestamp"]) + 0.4    # stamped at the reconnection
    # a gap: play, close and stop listening; PlaybackFinished happens meanwhile and is queued
    played = await second.rest("POST", f"channels/{chan['id']}/play?media=sound:tr/tone1k&playbackId=gap")
    assert played["status_code"] == 201
    await second.next("PlaybackStarted")
    await asyncio.sleep(2.0 * SCALE)
    await app_server.pause()
    await second.ws.close(code=1001)
    await asyncio.sleep(1.8 * SCALE)           # the 3.5 s prompt ends meanwhile; 2 of the 4 tries used
    assert [m["type"] for m in second.messages].count("PlaybackFinished") == 0
    await app_server.resume()
    third = await app_server.connection(3, timeout=3.0)
    first_msg, second_msg = await third.next(), await third.next()
    assert (first_msg["type"], first_msg["playback"]["state"]) == ("PlaybackFinished", "done")
    assert second_msg["type"] == "ApplicationRegistered"
    await asyncio.sleep(0.3)
    assert "StasisStart" not in third.types()
    status, body = await ari.call("GET", f"/channels/{chan['id']}")
    assert status == 200 and body["dialplan"]["app_name"] == "Stasis"


async def test_retries_exhausted_mid_call_stasis_failed(ws_config, simulator, session, app_server):
    running = await simulator(ws_config())
    ari = Ari(running, session)
    monitor = await ari.events("trmon", subscribe_all=True)
    chan, conn = await call_on_its_socket(ari, app_server)
    await conn.rest("POST", f"channels/{chan['id']}/play?media=sound:tr/tone1k&playbackId=lost")
    await app_server.pause()
    await conn.ws.close(code=1001)
    dropped_at = running.sim.clock.wall()
    failed = await monitor.next("ChannelVarset", lambda e: e["variable"] == "STASISSTATUS" and e["value"],
                                timeout=3.0)
    assert failed["value"] == "FAILED"
    # 4 tries (the first at once) 1 s apart: ~3.0 s after the drop
    assert ts(failed["timestamp"]) - dropped_at == pytest.approx(3.0, abs=0.2)
    noop = await monitor.next("ChannelDialplan", lambda e: e["dialplan_app"] == "NoOp")
    assert noop["dialplan_app_data"] == "after Stasis(ivrout): STASISSTATUS=FAILED"
    await monitor.next("ChannelDialplan", lambda e: e["dialplan_app"] == "Playback")
    await app_server.resume()                 # too late: nothing reconnects, the queued events are gone
    await asyncio.sleep(0.5)
    assert len(app_server.conns) == 1
    assert not [a for a in (await ari.call("GET", "/applications"))[1] if a["name"].startswith("ivrout:")]
    await monitor.close()


async def test_no_server_at_arrival_stasis_failed(ws_config, simulator, session, app_server):
    await app_server.pause()
    running = await simulator(ws_config())
    ari = Ari(running, session)
    monitor = await ari.events("trmon", subscribe_all=True)
    chan = await originate(ari, "pc")
    blank = await monitor.next("ChannelVarset", lambda e: e["variable"] == "STASISSTATUS")
    assert blank["value"] == "" and blank["channel"]["id"] == chan["id"]
    failed = await monitor.next("ChannelVarset", lambda e: e["variable"] == "STASISSTATUS", timeout=3.0)
    assert failed["value"] == "FAILED"
    assert ts(failed["timestamp"]) - ts(blank["timestamp"]) == pytest.approx(3.5, abs=0.1)
    noop = await monitor.next("ChannelDialplan", lambda e: e["dialplan_app"] == "NoOp")
    assert noop["dialplan_app_data"] == "after Stasis(ivrout): STASISSTATUS=FAILED"
    assert not [e for e in monitor.events if e["type"] == "StasisStart"]
    await monitor.close()


# -- persistent ----------------------------------------------------------------------------------
async def test_persistent_two_apps_outage_and_call_during_outage(ws_config, simulator, session, app_server):
    running = await simulator(ws_config(per_call=False, persistent=True))
    ari = Ari(running, session)
    conn = await app_server.connection(1)
    assert conn.request.path == "/ari/persist" and conn.request.query_string == ""
    assert conn.request.headers["Authorization"] == P_AUTH
    regs = [await conn.next(), await conn.next()]
    assert [(m["type"], m["application"]) for m in regs] == [("ApplicationRegistered", "ivrp1"),
                                                              ("ApplicationRegistered", "ivrp2")]
    assert regs[0]["timestamp"] == regs[1]["timestamp"]          # stamped at "module load"
    assert ts(regs[0]["timestamp"]) == pytest.approx(ts(running.sim.started), abs=0.2)
    p1 = await originate(ari, "p1", "P Caller <+15550121>")
    p2 = await originate(ari, "p2", "P Caller <+15550122>")
    s1, s2 = await conn.next("StasisStart"), await conn.next("StasisStart")
    assert {(s1["application"], tuple(s1["args"])), (s2["application"], tuple(s2["args"]))} == {
        ("ivrp1", ("18005550101",)), ("ivrp2", ("18005550102",))}
    # both apps on one socket: a response for ivrp2's channel says ivrp1
    got = await conn.rest("GET", f"channels/{p2['id']}")
    assert got["status_code"] == 200 and got["application"] == "ivrp1"
    await conn.rest("POST", f"channels/{p1['id']}/play?media=sound:tr/tone1k&playbackId=pp-1")
    await conn.next("PlaybackStarted")
    # outage: closed, listener gone for 6 s (more than 4 tries: retried forever); a call arrives meanwhile
    await app_server.pause()
    await conn.ws.close(code=1001)
    assert conn.close_code == 1000
    p3 = await originate(ari, "p1", "Outage Caller <+15550141>")
    await asyncio.sleep(6.0 * SCALE)
    status, body = await ari.call("GET", f"/channels/{p3['id']}")
    assert status == 200 and body["state"] == "Up" and body["dialplan"]["app_name"] == "Stasis"
    status, app = await ari.call("GET", "/applications/ivrp1")
    assert status == 200 and p3["id"] in app["channel_ids"]
    await app_server.resume()
    back = await app_server.connection(2, timeout=2.0 * SCALE + 1.0)
    queued = [await back.next() for _ in range(4)]
    assert {(m["type"], m.get("playback", {}).get("id") or m.get("channel", {}).get("id")) for m in queued[:2]} == {
        ("PlaybackFinished", "pp-1"), ("StasisStart", p3["id"])}
    assert [(m["type"], m["application"]) for m in queued[2:]] == [("ApplicationRegistered", "ivrp1"),
                                                                    ("ApplicationRegistered", "ivrp2")]
    assert "StasisStart" not in [m["type"] for m in queued[2:]]
    done = await back.rest("DELETE", f"channels/{p3['id']}")
    assert done["status_code"] == 204 and done["application"] == "ivrp1"
    end = await back.next("StasisEnd")
    assert end["channel"]["id"] == p3["id"]


async def test_outbound_and_events_streams_do_not_mix(ws_config, simulator, session, app_server):
    """An HTTP-ARI application keeps its own events websocket beside the outbound ones."""
    running = await simulator(ws_config())
    ari = Ari(running, session)
    ivr: EventStream = await ari.events("ivr")
    chan, conn = await call_on_its_socket(ari, app_server)
    await asyncio.sleep(0.2)
    assert not [e for e in ivr.events if e.get("channel", {}).get("id") == chan["id"]]
    await ivr.close()


async def test_a_file_is_not_sent_over_the_websocket(ws_config, simulator, session, app_server):
    """A stored recording's audio over the websocket: Asterisk answers 406 "Not Acceptable.  Use HTTP GET"
    without a body (res/ari/ari_websocket_requests.c, send_rest_response); HTTP ARI serves it."""
    running = await simulator(ws_config())
    ari = Ari(running, session)
    chan, conn = await call_on_its_socket(ari, app_server)
    cid = chan["id"]
    started = await conn.rest("POST", f"channels/{cid}/record", query_strings=[
        {"name": "name", "value": "ws-file"}, {"name": "format", "value": "wav"},
        {"name": "maxDurationSeconds", "value": "1"}])
    assert started["status_code"] == 201
    await conn.next("RecordingFinished", timeout=10.0)
    file = await conn.rest("GET", "recordings/stored/ws-file/file")
    assert (file["status_code"], file["reason_phrase"]) == (406, "Not Acceptable.  Use HTTP GET")
    assert "message_body" not in file and "content_type" not in file
    status, _ = await ari.call("GET", "/recordings/stored/ws-file")
    assert status == 200
