"""Replay a recorded scenario's REST requests against the simulator.

The recording script reacted to events: it sent a request a few
milliseconds after some event, and it sent the next request once it had
the previous response.  The replay keeps that causality instead of
trusting wall-clock times alone:

- a request (or websocket open/close) is sent the recorded delay after the
  *simulator's* event matching the last event the script had received
  (same type, channel, digit/playback/variable, same occurrence), so the
  replay's own HTTP latency does not reorder it against the call;
- a request waits for the responses the script already had when it sent it
  (recorded ``t_response`` <= its ``t``), so blocking requests (``POST
  /variable`` during a prompt) still block without delaying the others;
- everything else is sent at its recorded time.

Recorded channel and bridge ids are replaced by the simulator's as the
responses that created them arrive.
"""
from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sim_traces import BRIDGE_ID, CHANNEL_ID, HOSTPORT, Trace

from ivr.sim import RunningSimulator

URL_HOST = re.compile(r"http://127\.0\.0\.1:(\d+)")
ANCHOR_WINDOW = 60.0
ANCHOR_TIMEOUT = 1.0
# events a script waits for; one received in the same millisecond as a request may have triggered it
TRIGGERS = {"StasisStart", "ChannelDtmfReceived", "PlaybackFinished", "RecordingFinished",
            "ChannelTalkingStarted", "ChannelTalkingFinished"}


def anchor_key(event: dict[str, Any]) -> str:
    """What identifies an event across two runs (without ids or counters)."""
    chan = event.get("channel") or event.get("peer") or {}
    base = HOSTPORT.sub("<host>", re.sub(r"-(?:[0-9a-f]{8}|0x[0-9a-f]+)(;[12])?$", r"\1", chan.get("name", "")))
    base = CHANNEL_ID.sub("<id>", base)      # Snoop/<spied id>
    playback, recording = event.get("playback") or {}, event.get("recording") or {}
    detail = (event.get("digit") or event.get("variable") or event.get("dialstatus")
              or f"{playback.get('id', '')}{playback.get('state', '')}{recording.get('name', '')}{recording.get('state', '')}")
    return f"{event['type']}|{base}|{detail}"


def keyed(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    out = []
    for event in events:
        key = anchor_key(event)
        counts[key] = counts.get(key, 0) + 1
        out.append((key, counts[key]))
    return out


@dataclass
class Response:
    record: dict[str, Any]
    status: int
    body: Any


@dataclass
class ReplayResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)   # simulated times requests were sent

    def status_mismatches(self) -> list[str]:
        out = []
        for r in self.responses:
            if r.status != r.record["status"]:
                out.append(f"{r.record['method']} {r.record['path']} {r.record['query']}: "
                           f"got {r.status} {r.body}, recorded {r.record['status']} {r.record['body']}")
            elif r.status >= 400 and r.body != r.record["body"]:
                out.append(f"{r.record['method']} {r.record['path']}: body {r.body} != {r.record['body']}")
        return out


class Replayer:
    def __init__(self, running: RunningSimulator, trace: Trace, *, ports: dict[str, str] | None = None,
                 udp_port: int | None = None) -> None:
        self.running = running
        self.sim = running.sim
        self.trace = trace
        self.scale = running.sim.clock.scale
        self.ports = ports or {}
        self.udp_port = udp_port
        self.ids: dict[str, asyncio.Future[str]] = {}
        self.result = ReplayResult()
        self.t0 = 0.0
        self._trace_keys = keyed(trace.events)
        self._trace_event = dict(zip(self._trace_keys, trace.events))
        self._seen: dict[str, int] = {}
        self._arrived: dict[tuple[str, int], asyncio.Event] = {}
        self._arrival_t: dict[tuple[str, int], float] = {}
        self._responded: list[asyncio.Event] = []
        cfg = running.sim.config
        token = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
        self.auth = {"Authorization": f"Basic {token}"}

    # -- ids ---------------------------------------------------------------------
    def _future(self, recorded: str) -> asyncio.Future[str]:
        if recorded not in self.ids:
            self.ids[recorded] = asyncio.get_running_loop().create_future()
        return self.ids[recorded]

    def _learn(self, recorded: str, actual: str) -> None:
        fut = self._future(recorded)
        if not fut.done():
            fut.set_result(actual)

    async def _subst(self, text: str) -> str:
        for pattern in (CHANNEL_ID, BRIDGE_ID):
            for recorded in set(pattern.findall(text)):
                if recorded in self.ids or self._created_here(recorded):
                    actual = await asyncio.wait_for(asyncio.shield(self._future(recorded)), 10)
                    text = text.replace(recorded, actual)
        return text

    def _created_here(self, recorded: str) -> bool:
        """An id some response or event of the recording introduced: the replay will learn it."""
        return any(isinstance(r.get("body"), dict) and r["body"].get("id") == recorded for r in self.trace.rest) \
            or any(isinstance(e.get(k), dict) and e[k].get("id") == recorded
                   for e in self.trace.events for k in ("channel", "peer", "caller"))

    def _media(self, value: str) -> str:
        return URL_HOST.sub(lambda m: f"http://127.0.0.1:{self.ports.get(m.group(1), m.group(1))}", value)

    # -- running -------------------------------------------------------------------
    async def run(self, session: aiohttp.ClientSession, tail: float = 1.0) -> ReplayResult:
        ws_plan = self._ws_plan()
        monitor = None
        if self._has_monitor():
            monitor = await session.ws_connect(self.running.events_url("ivr-monitor", subscribe_all=True))
        ws = await session.ws_connect(self.running.events_url("ivr"))
        self.t0 = self.sim.clock.now()
        readers = {asyncio.create_task(self._read(ws))}
        self._responded = [asyncio.Event() for _ in self.trace.rest]
        tasks = [asyncio.create_task(self._fire(session, i, rec)) for i, rec in enumerate(self.trace.rest)]
        for t, action in ws_plan:
            # every event recorded up to a close was received before it
            await self._when(t, inclusive=action == "close")
            if action == "close":
                await ws.close()
            else:
                ws = await session.ws_connect(self.running.events_url("ivr"))
                readers.add(asyncio.create_task(self._read(ws)))
        deadline = self.t0 + self.trace.duration + 5 * tail
        await self.sim.clock.wait_for(asyncio.gather(*tasks, return_exceptions=True),
                                      max(0.0, deadline - self.sim.clock.now()))
        last_event = max((e["_rx_t"] for e in self.trace.events), default=0.0)
        last_request = max((r["t"] for r in self.trace.rest), default=0.0)
        await self.sim.clock.sleep(tail + max(0.0, last_event - last_request))
        await self.sim.clock.sleep_until(self.t0 + self.trace.duration + tail)
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ws.close()
        if monitor is not None:
            await monitor.close()
        await asyncio.gather(*readers, return_exceptions=True)
        return self.result

    def _ws_plan(self) -> list[tuple[float, str]]:
        log = (self.trace.summary or {}).get("ws_log", [])
        plan = [(e["t"], e["action"]) for e in log if e["app"] == "ivr"]
        return plan[1:] if plan and plan[0][1] == "connect" else plan

    def _has_monitor(self) -> bool:
        log = (self.trace.summary or {}).get("ws_log", [])
        return any(e["app"] == "ivr-monitor" for e in log)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(msg.data)
                event["_t"] = round(self.sim.clock.now() - self.t0, 4)
                self.result.events.append(event)
                key = anchor_key(event)
                self._seen[key] = self._seen.get(key, 0) + 1
                anchor = (key, self._seen[key])
                self._learn_channels(anchor, event)
                self._arrival_t[anchor] = self.sim.clock.now()
                self._arrival(anchor).set()

    def _learn_channels(self, anchor: tuple[str, int], event: dict[str, Any]) -> None:
        """Ids no response told (a Local ;2 half) are learnt from the matching recorded event."""
        recorded = self._trace_event.get(anchor)
        if recorded is None:
            return
        for key in ("channel", "peer", "caller"):
            mine, theirs = recorded.get(key), event.get(key)
            if isinstance(mine, dict) and isinstance(theirs, dict):
                self._learn(mine["id"], theirs["id"])

    def _arrival(self, anchor: tuple[str, int]) -> asyncio.Event:
        return self._arrived.setdefault(anchor, asyncio.Event())

    async def _when(self, t: float, inclusive: bool = False) -> None:
        """Wait until the moment the script acted at recorded time ``t``."""
        before = [i for i, e in enumerate(self.trace.events)
                  if e["_rx_t"] < t or (e["_rx_t"] == t and (inclusive or e["type"] in TRIGGERS))]
        if before and t - self.trace.events[before[-1]]["_rx_t"] <= ANCHOR_WINDOW:
            last = before[-1]
            anchor = self._trace_keys[last]
            delay = t - self.trace.events[last]["_rx_t"]
            arrived = await self.sim.clock.wait_for(self._arrival(anchor),
                                                    max(0.0, self.t0 + t + ANCHOR_TIMEOUT - self.sim.clock.now()))
            if arrived:
                await self.sim.clock.sleep_until(self._arrival_t[anchor] + delay)
                return
        await self.sim.clock.sleep_until(self.t0 + t)

    async def _fire(self, session: aiohttp.ClientSession, index: int, rec: dict[str, Any]) -> None:
        try:
            await self._send(session, index, rec)
        finally:
            self._responded[index].set()

    async def _send(self, session: aiohttp.ClientSession, index: int, rec: dict[str, Any]) -> None:
        earlier = [self._responded[j].wait() for j, r in enumerate(self.trace.rest[:index])
                   if r.get("t_response", r["t"]) <= rec["t"]]
        await self._when(rec["t"])
        await asyncio.gather(*earlier)
        path = await self._subst(rec["path"])
        query = {}
        for key, value in rec["query"].items():
            value = await self._subst(str(value))
            if key == "media":
                value = self._media(value)
            if key == "external_host" and self.udp_port is not None:
                value = f"127.0.0.1:{self.udp_port}"
            query[key] = value
        kwargs: dict[str, Any] = {"params": query, "headers": self.auth}
        if rec.get("request_body") is not None:
            kwargs["json"] = json.loads(await self._subst(json.dumps(rec["request_body"])))
        url = self.running.base_url + path
        self.result.sent_at.append(self.sim.clock.now() - self.t0)
        async with session.request(rec["method"], url, **kwargs) as resp:
            raw = await resp.read()
            body: Any = json.loads(raw) if raw and resp.content_type == "application/json" else ""
        self.result.responses.append(Response(rec, resp.status, body))
        recorded_body = rec.get("body")
        if isinstance(recorded_body, dict) and isinstance(body, dict) and "id" in recorded_body and "id" in body:
            self._learn(recorded_body["id"], body["id"])
