"""Replays of scenario set 3: where the caller's audio goes while prompts play.

Recorded on Asterisk 22.11 with a caller who talks all the time (caller-sim
``talk`` loops 31.8 s of speech) and a 3.5 s 1 kHz prompt (``tone1k.wav``,
read from the shared traces at test time).  Each replay compares the event
stream field by field, then the RTP the app's media server received, phase
by phase, with the recording's ``-rtp.jsonl`` summary: packet presence and
rate, and what the packets carry (RMS; share of energy at 950-1050 Hz:
caller speech ~0.01, prompt 0.6-1.0).  Also replayed: ``stasis-args-dnis``
(the dialled number as Stasis() argument); and, in-process, the old
arrangement (caller and externalMedia in one bridge) losing the caller for
a whole prompt.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sim_audio import caller_speech, make_set3_sounds
from sim_client import Ari
from sim_conformance import SCALE, RtpReplay, assert_same, assert_timing, run_rtp_scenario, run_scenario
from sim_rtp import Packet, RtpSink, gaps, recorded_summary, stats, windows

from ivr.sim import SimulatorConfig, announcer

SPEECH_RATIO = 0.1           # caller speech: 0.006-0.017 per recorded phase
PROMPT_RATIO = 0.6           # prompt heard: 0.6-1.0 per recorded 100 ms window
RATE_TOLERANCE = 1.5         # packets/s
RMS_TOLERANCE = 0.35         # of the recorded phase RMS (the speech differs, its level does not)
EDGE = 0.03                  # s inside phase boundaries: one 20 ms frame plus event delivery


@pytest.fixture(scope="session")
def set3_sounds(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tone = shared / "traces" / "tone1k.wav"
    if not tone.is_file():
        pytest.skip("traces/tone1k.wav (the recorded prompt) not available")
    return make_set3_sounds(tmp_path_factory.mktemp("set3-sounds"), tone)


@pytest.fixture
def set3_config(shared: Path, set3_sounds: Path,
                trace_config: Callable[..., SimulatorConfig]) -> Callable[..., SimulatorConfig]:
    """The recording instance's dialplan (scenarios3-extensions.conf) and sounds."""
    def make(scale: float = SCALE) -> SimulatorConfig:
        return trace_config(scale, dialplan_files=[shared / "traces" / "conf" / "scenarios3-extensions.conf"],
                            sounds_dirs=[set3_sounds])
    return make


async def replayed(name: str, shared: Path, set3_config: Callable[..., SimulatorConfig], simulator: Any,
                   session: Any) -> RtpReplay:
    """The scenario replayed: its events and HTTP answers as recorded, field by field and in time."""
    replay = await run_rtp_scenario(name, shared, set3_config(), simulator, session)
    assert_same(replay.alignment, replay.result)
    assert_timing(replay.alignment, replay.result)
    return replay


def replay_time(replay: RtpReplay, t: float) -> float:
    """A recorded moment on the replay's clock, by the nearest recorded event at or before it."""
    pairs = sorted(((e.t, a.t) for e, a in replay.alignment.matched), key=lambda p: p[0])
    before = [p for p in pairs if p[0] <= t + 1e-6]
    recorded, actual = before[-1] if before else pairs[0]
    return t + (actual - recorded)


def assert_periods(replay: RtpReplay, recorded: dict[str, Any], prompt_phases: frozenset[str] = frozenset()) -> None:
    """Each recorded RTP phase: same packet presence and rate, same kind of content."""
    for name, want in recorded["periods"].items():
        t_from, t_to = replay_time(replay, want["t_from"]), replay_time(replay, want["t_to"])
        got = stats(replay.packets, t_from + EDGE, t_to - EDGE)
        where = f"{name} [{t_from:.3f}, {t_to:.3f}]: {got}"
        if want["packets"] == 0:
            assert got.packets == 0, where
            continue
        assert got.packets_per_s == pytest.approx(want["packets_per_s"], abs=RATE_TOLERANCE), where
        assert got.rms_be == pytest.approx(want["rms_be"], rel=RMS_TOLERANCE), where
        if name in prompt_phases:
            assert got.tone1k_energy_ratio >= PROMPT_RATIO, where
        else:
            assert got.tone1k_energy_ratio < SPEECH_RATIO, where


def assert_one_stream(packets: list[Packet], recorded: dict[str, Any]) -> None:
    assert {p.payload_type for p in packets} == set(recorded["payload_types"]) == {118}
    assert {len(p.payload) for p in packets} == set(recorded["payload_sizes"]) == {640}
    assert len({p.ssrc for p in packets}) == 1
    assert {(b.seq - a.seq) & 0xFFFF for a, b in zip(packets, packets[1:])} == {1}     # no seq gap ever


async def test_snoop_externalmedia_during_play(shared, set3_config, simulator, session):
    name = "snoop-externalmedia-during-play"
    replay = await replayed(name, shared, set3_config, simulator, session)
    events = replay.result.events
    start = next(e for e in events if e["type"] == "StasisStart" and e["channel"]["name"].startswith("Snoop/"))
    caller = next(e for e in events if e["type"] == "StasisStart")["channel"]["id"]
    assert start["args"] == ["snoop-of", caller]
    assert start["channel"]["name"] == f"Snoop/{caller}-00000000"
    assert start["channel"]["dialplan"] == {"context": "default", "exten": "s", "priority": 1,
                                            "app_name": "Stasis", "app_data": f"ivr,snoop-of,{caller}"}
    snoop_events = [e["type"] for e in events if e.get("channel", {}).get("id") == start["channel"]["id"]]
    assert "ChannelCreated" not in snoop_events and "ChannelHangupRequest" not in snoop_events
    assert snoop_events[-3:] == ["ChannelVarset", "ChannelLeftBridge", "StasisEnd"]
    assert "ChannelDestroyed" not in snoop_events
    created = next(r for r in replay.result.responses if r.record["path"].endswith("/snoop"))
    assert created.status == 200 and created.body["state"] == "Up"
    assert created.body["dialplan"]["app_name"] == ""         # the response precedes the StasisStart
    recorded = recorded_summary(shared / "traces" / f"{name}-rtp.jsonl")
    assert_one_stream(replay.packets, recorded)
    assert not gaps(replay.packets)                          # the caller's voice never paused
    assert_periods(replay, recorded)


def playback_marks(events: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(PlaybackStarted, PlaybackFinished) receipt times, in order."""
    starts = [e["_t"] for e in events if e["type"] == "PlaybackStarted"]
    ends = [e["_t"] for e in events if e["type"] == "PlaybackFinished"]
    return list(zip(starts, ends))


def assert_paused_during(packets: list[Packet], marks: list[tuple[float, float]], recorded: dict[str, Any]) -> None:
    """One pause per playback; resumed within a frame of PlaybackFinished, marker set, ts jumped by the pause."""
    paused = gaps(packets)
    assert len(paused) == len(marks) == 2, [(a.t, b.t) for a, b in paused]
    recorded_jumps = sorted(set(recorded["ts_steps"]) - {320}, reverse=True)      # [56320, 24640]
    for (before, after), (started, finished), jump in zip(paused, marks, recorded_jumps):
        assert before.t <= started + 0.005 and after.t > finished - 0.005, (before.t, after.t, started, finished)
        assert after.t - finished < 0.03                       # recorded: 11 and 8 ms
        assert after.marker and not before.marker
        assert after.ts - before.ts == pytest.approx((after.t - before.t) * 16000, abs=2 * 320)
        assert after.ts - before.ts == pytest.approx(jump, abs=3 * 320)
    assert sum(p.marker for p in packets) == 2


async def test_externalmedia_during_channel_play(shared, set3_config, simulator, session):
    name = "externalmedia-during-channel-play"
    replay = await replayed(name, shared, set3_config, simulator, session)
    bridge_events = [e["type"] for e in replay.result.events if "bridge" in e]
    assert bridge_events == ["ChannelEnteredBridge"] * 2 + ["ChannelLeftBridge"] * 2 + ["BridgeDestroyed"]
    recorded = recorded_summary(shared / "traces" / f"{name}-rtp.jsonl")
    assert_one_stream(replay.packets, recorded)
    assert_paused_during(replay.packets, playback_marks(replay.result.events), recorded)
    assert_periods(replay, recorded)


async def test_old_arrangement_hears_nothing_of_the_caller_during_a_prompt(set3_config, simulator, session):
    """Caller and externalMedia in one mixing bridge, prompt played on the caller: the media
    server receives no RTP at all until the prompt ends, and what it sends the caller is lost
    (what hid a barge-in bug while the simulator kept streaming the caller)."""
    speech = caller_speech(6.0)      # synthesised before the clock runs: it blocks the loop
    running = await simulator(set3_config())
    ari = Ari(running, session)
    events = await ari.events()
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(lambda: RtpSink(running.sim.clock),
                                                          local_addr=("127.0.0.1", 0))
    try:
        call = running.sim.inbound_call(ani="+15550101", exten="100")
        cid = (await events.next("StasisStart"))["channel"]["id"]
        _, bridge = await ari.call("POST", "/bridges", type="mixing")
        _, em = await ari.call("POST", "/channels/externalMedia", app="ivr", format="slin16",
                               external_host=f"127.0.0.1:{transport.get_extra_info('sockname')[1]}")
        await events.next("StasisStart", lambda e: e["channel"]["id"] == em["id"])
        await ari.call("POST", f"/bridges/{bridge['id']}/addChannel", channel=f"{cid},{em['id']}")
        await call.say(speech, wait=False)
        await call.silence(1.0)
        await ari.call("POST", f"/channels/{cid}/play", media="sound:tr/tone1k", playbackId="prompt")
        started = await events.next("PlaybackStarted")
        await call.silence(1.0)
        media_port = int(em["channelvars"]["UNICASTRTP_LOCAL_PORT"])
        transport.sendto(b"\x80\x76" + bytes(10) + bytes(640), ("127.0.0.1", media_port))   # towards the caller
        finished = await events.next("PlaybackFinished", timeout=5)
        await call.silence(1.0)
    finally:
        transport.close()
    packets = sink.parsed(0.0)
    assert not [p for p in packets if started["_t"] + EDGE < p.t < finished["_t"] - EDGE]
    assert stats(packets, started["_t"] - 1.0, started["_t"] - EDGE).packets_per_s == pytest.approx(50, abs=2)
    assert stats(packets, finished["_t"] + EDGE, finished["_t"] + 0.9).packets_per_s == pytest.approx(50, abs=2)
    assert call.received_rtp == bytearray()
    assert [e["type"] for e in events.events if "bridge" in e] == ["ChannelEnteredBridge"] * 2


async def test_bridge_play_with_externalmedia(shared, set3_config, simulator, session):
    name = "bridge-play-with-externalmedia"
    replay = await replayed(name, shared, set3_config, simulator, session)
    events = replay.result.events
    bridge_id = next(e for e in events if e["type"] == "ChannelEnteredBridge")["bridge"]["id"]
    assert {e["playback"]["target_uri"] for e in events if "playback" in e} == {f"bridge:{bridge_id}"}
    peers = [e["value"].split(",")[0].rsplit("-", 1)[0] for e in events
             if e.get("variable") == "BRIDGEPEER" and e["value"].startswith("Announcer/")]
    assert peers == ["Announcer/ARI"] * 4                     # both members, both prompts, announcer first
    assert not [e for e in events if "Announcer" in e.get("channel", {}).get("name", "")]
    recorded = recorded_summary(shared / "traces" / f"{name}-rtp.jsonl")
    assert_one_stream(replay.packets, recorded)
    assert not gaps(replay.packets)                           # prompt and caller mixed, never paused
    prompts = frozenset({"during_play1", "during_play2_until_delete"})
    assert_periods(replay, recorded, prompt_phases=prompts)
    half = tone_file_rms(shared / "traces" / "tone1k.wav") * announcer.PROMPT_GAIN
    (start, end), = playback_marks(events)[:1]
    tone_only = [w for w in windows(replay.packets, start + EDGE, end - EDGE) if w.tone1k_energy_ratio > 0.99]
    assert tone_only, "no window where the caller paused during the prompt"
    for window in tone_only:                                   # recorded: ~3475 = half the file's 6950
        assert window.rms_be == pytest.approx(half, rel=0.06)


def tone_file_rms(path: Path) -> float:
    from ivr.sim.audio import read_wav_bytes
    _, samples = read_wav_bytes(path.read_bytes())
    return float(np.sqrt(np.mean(np.asarray(samples, dtype=np.float64) ** 2)))


async def test_stasis_args_dnis(shared, set3_config, simulator, session):
    """The dialled number as Stasis() argument, directly and after a Goto to an ``s`` extension."""
    trace, result, alignment, _ = await run_scenario("stasis-args-dnis", shared, set3_config, simulator, session)
    assert_same(alignment, result)
    assert_timing(alignment, result)
    starts = [e for e in result.events if e["type"] == "StasisStart"]
    assert [e["args"] for e in starts] == [["18005550100"], ["18005550199"]]
    assert [e["channel"]["dialplan"] for e in starts] == [
        {"context": "tr-inbound", "exten": "18005550100", "priority": 3, "app_name": "Stasis",
         "app_data": "ivr,18005550100"},
        {"context": "tr-entry", "exten": "s", "priority": 3, "app_name": "Stasis", "app_data": "ivr,18005550199"}]
    assert {tuple(sorted(k for k in e if not k.startswith("_"))) for e in starts} == {
        ("application", "args", "asterisk_id", "channel", "timestamp", "type")}       # no replace_channel
    assert [e["channel"]["caller"] for e in starts] == [{"name": "Acc Caller", "number": "+15550101"}] * 2
    dnis = [(r.status, r.body) for r in result.responses if r.record["query"].get("variable") == "IVR_DNIS"]
    assert dnis == [(404, {"message": "Provided variable was not found"}), (200, {"value": "18005550199"})]
