"""Shared steps of the scenario replays: run one, compare events and answers, compare timing.

Each replay sends the scenario's recorded REST requests to the simulator at
their recorded times (4x faster: the simulator's clock is scaled the same
way) and compares the ``ivr`` app's event stream with the recording field
by field (see ``sim_replay`` and ``sim_traces``).
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sim_replay import Replayer, ReplayResult
from sim_rtp import Packet, RtpSink
from sim_traces import Alignment, Trace, compare_streams, load_trace, shared_asterisk

from ivr.sim import ApiSpec, RunningSimulator, SimulatorConfig

SCALE = 0.25


@functools.lru_cache(maxsize=1)
def event_spec() -> ApiSpec:
    return ApiSpec.load(shared_asterisk() / "api-docs")


async def run_scenario(name: str, shared: Path, trace_config: Callable[..., SimulatorConfig],
                       simulator: Any, session: aiohttp.ClientSession, *, scale: float = SCALE,
                       prepare: Callable[[RunningSimulator], None] | None = None,
                       **replay_kwargs: Any) -> tuple[Trace, ReplayResult, Alignment, RunningSimulator]:
    trace = load_trace(shared / "traces", name)
    running = await simulator(trace_config(scale))
    if prepare is not None:
        prepare(running)
    result = await Replayer(running, trace, **replay_kwargs).run(session)
    alignment = compare_streams(trace.events, result.events)
    return trace, result, alignment, running


@dataclass
class RtpReplay:
    trace: Trace
    result: ReplayResult
    alignment: Alignment
    running: RunningSimulator
    packets: list[Packet]       # what the app's media server received, times relative to the replay start


async def run_rtp_scenario(name: str, shared: Path, config: SimulatorConfig, simulator: Any,
                           session: aiohttp.ClientSession) -> RtpReplay:
    """A replay whose externalMedia channels send their RTP to a local sink."""
    trace = load_trace(shared / "traces", name)
    running = await simulator(config)
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(lambda: RtpSink(running.sim.clock),
                                                          local_addr=("127.0.0.1", 0))
    try:
        replayer = Replayer(running, trace, udp_port=transport.get_extra_info("sockname")[1])
        result = await replayer.run(session)
    finally:
        transport.close()
    return RtpReplay(trace, result, compare_streams(trace.events, result.events), running,
                     sink.parsed(replayer.t0))


def assert_same(alignment: Alignment, result: ReplayResult) -> None:
    """Same events, field by field, and the same HTTP answers as the recording."""
    assert not alignment.missing and not alignment.extra, alignment.report()
    assert not result.status_mismatches(), result.status_mismatches()
    invalid = [p for e in result.events for p in event_spec().check_event(e)]
    assert not invalid, f"events not valid against events.json: {invalid[:10]}"


def assert_timing(alignment: Alignment, result: ReplayResult, tolerance: float = 0.1,
                  require: bool = True) -> None:
    """Time between consecutive events of one channel (or playback, recording) is as recorded.

    Within tolerance s + 3%.  Gaps rather than absolute times, per timeline,
    and only gaps the simulator alone decides: at 4x speed every HTTP round
    trip of the replay costs ~4 ms of simulated time, so a gap during which
    the replay sent a request measures the test harness, not the simulator.
    """
    timelines: dict[str, list[tuple[Any, Any]]] = {}
    for exp, act in sorted(alignment.matched, key=lambda m: m[0].t):
        timelines.setdefault(_timeline(exp.body), []).append((exp, act))
    off = []
    checked = 0
    timelines.pop("unchecked", None)
    for pairs in timelines.values():
        for (e0, a0), (e1, a1) in zip(pairs, pairs[1:]):
            if any(a0.t - 0.002 <= sent <= a1.t for sent in result.sent_at):
                continue
            checked += 1
            expected, actual = e1.t - e0.t, a1.t - a0.t
            if abs(actual - expected) > tolerance + 0.03 * expected:
                off.append((e1.body["type"], e1.body.get("variable", ""), round(expected, 3), round(actual, 3)))
    assert checked or not require, "no gap could be checked"
    assert not off, f"gaps before these events differ (type, variable, recorded, simulated): {off[:10]}"


def _timeline(body: dict[str, Any]) -> str:
    if "playback" in body and "http" in body["playback"]["media_uri"]:
        return "unchecked"   # includes a real download: real time, not scaled (checked in test_http_media)
    for key in ("channel", "peer"):
        if isinstance(body.get(key), dict):
            return body[key]["name"]
    if "playback" in body:
        return "playback:" + body["playback"]["id"]
    if "recording" in body:
        return "recording:" + body["recording"]["name"]
    return body["type"]


def playback_spans(events: list[dict[str, Any]], time_key: str) -> dict[str, tuple[float, float, str]]:
    started: dict[str, float] = {}
    spans = {}
    for e in events:
        if e["type"] == "PlaybackStarted":
            started[e["playback"]["id"]] = e[time_key]
        elif e["type"] == "PlaybackFinished":
            pid = e["playback"]["id"]
            spans[pid] = (started.get(pid, e[time_key]), e[time_key], e["playback"]["state"])
    return spans
