"""Replays of the recorded Asterisk 22 scenarios: same requests, same events.

Each test sends the scenario's recorded REST requests to the simulator at
their recorded times (4x faster: the simulator's clock is scaled the same
way; at 10x a 10 ms stall of a busy CI machine was already 0.1 s of
simulated time), with the same simulated caller (the recording's caller-sim dialplan
and equally long audio), and compares the ``ivr`` app's event stream with
the recording field by field.  Known, explained differences are listed
per test, never silently ignored.
"""
from __future__ import annotations

import pytest
from sim_audio import make_http_prompts
from sim_conformance import SCALE, assert_same, assert_timing, playback_spans, run_rtp_scenario, run_scenario
from sim_media_server import MediaServer
from sim_replay import Replayer
from sim_rtp import recorded_summary
from sim_traces import compare_streams, load_trace

from ivr.sim import RunningSimulator


async def test_dtmf(shared, trace_config, simulator, session):
    trace, result, alignment, _ = await run_scenario("dtmf", shared, trace_config, simulator, session)
    assert_same(alignment, result)
    assert_timing(alignment, result)
    digits = [e["digit"] for e in result.events if e["type"] == "ChannelDtmfReceived"]
    assert digits == ["1", "2", "3", "#", "4", "5"]
    assert {e["duration_ms"] for e in result.events if e["type"] == "ChannelDtmfReceived"} == {100}


async def test_playback_record(shared, trace_config, simulator, session):
    trace, result, alignment, running = await run_scenario("playback-record", shared, trace_config,
                                                           simulator, session)
    assert_same(alignment, result)
    assert_timing(alignment, result)
    spans = playback_spans(result.events, "_t")
    start, end, state = spans["pb-playback-record"]
    assert state == "done" and end - start == pytest.approx(1.404, abs=0.05)
    finished = next(e for e in result.events if e["type"] == "RecordingFinished")["recording"]
    assert (finished["duration"], finished["talking_duration"], finished["silence_duration"]) == (4, 2, 2)
    stored = running.sim.recording_store.path("rec-playback-record")
    from ivr.sim.audio import read_wav_bytes
    rate, samples = read_wav_bytes(stored.read_bytes())
    assert rate == 8000 and len(samples) / rate == pytest.approx(3.24, abs=0.08)


async def test_bargein_stop_playback(shared, trace_config, simulator, session):
    trace, result, alignment, _ = await run_scenario("bargein-stop-playback", shared, trace_config,
                                                     simulator, session)
    assert_same(alignment, result)
    assert_timing(alignment, result)
    spans = playback_spans(result.events, "_t")
    assert {pid: s[2] for pid, s in spans.items()} == {
        "pb-bargein-A": "done", "pb-bargein-B-list": "done", "pb-bargein-C1": "done", "pb-bargein-C2": "done"}
    playlist = next(e for e in result.events if e["type"] == "PlaybackFinished"
                    and e["playback"]["id"] == "pb-bargein-B-list")
    assert playlist["playback"]["next_media_uri"] == "sound:demo-thanks"


async def test_caller_hangup_mid_playback(shared, trace_config, simulator, session):
    trace, result, alignment, _ = await run_scenario("caller-hangup-mid-playback", shared, trace_config,
                                                     simulator, session)
    assert_same(alignment, result)
    assert_timing(alignment, result)
    assert [e["playback"]["state"] for e in result.events if e["type"] == "PlaybackFinished"] == ["failed", "failed"]
    causes = [(e["cause"], e["cause_txt"]) for e in result.events if e["type"] == "ChannelDestroyed"]
    assert causes == [(16, "Normal Clearing")] * 2 + [(17, "User busy")] * 2


async def test_control_queue_during_playback(shared, trace_config, simulator, session):
    trace, result, alignment, _ = await run_scenario("control-queue-during-playback", shared, trace_config,
                                                     simulator, session)
    assert_same(alignment, result)
    assert_timing(alignment, result)
    setvar = next(r for r in result.responses if r.record["path"].endswith("/variable")
                  and r.record["method"] == "POST")
    assert setvar.status == 204


def agent1_answers(running: RunningSimulator) -> None:
    running.sim.queues["save-specialists"].answer_with("Local/agent1@agent-sim", after=1.0)


@pytest.mark.parametrize("name", ["continue-to-queue", "continue-to-queue-gosub", "continue-to-queue-nosub",
                                  "continue-to-queue-nosub-ari-originated"])
async def test_continue_to_queue(name, shared, trace_config, simulator, session):
    trace, result, alignment, running = await run_scenario(name, shared, trace_config, simulator, session,
                                                           prepare=agent1_answers)
    assert_same(alignment, result)
    if name == "continue-to-queue-nosub":
        # an inbound call the app did not subscribe to: nothing after StasisEnd
        assert result.events[-1]["type"] == "StasisEnd"
        assert_timing(alignment, result, require=False)
    else:
        assert_timing(alignment, result)
        answer = [e for e in result.events if e["type"] == "Dial" and e["dialstatus"] == "ANSWER" and "caller" in e]
        assert [e["peer"]["name"].split("-")[0] for e in answer] == ["Local/agent1@agent"]
        member = [e["value"] for e in result.events if e["type"] == "ChannelVarset"
                  and e["variable"] in ("MEMBERINTERFACE", "MEMBERNAME")]
        assert member == ["Local/agent1@agent-sim", "Agent One"]
    call = next(iter(running.sim.calls.values()))
    assert call.queue is not None and call.queue.member_interface == "Local/agent1@agent-sim"


async def test_app_disconnect_reconnect(shared, trace_config, simulator, session):
    trace, result, alignment, running = await run_scenario("app-disconnect-reconnect", shared, trace_config,
                                                           simulator, session)
    assert_same(alignment, result)
    assert_timing(alignment, result)
    assert running.sim.bus.apps["ivr"].missed > 0


async def test_originate_into_stasis_with_callerid(shared, trace_config, simulator, session):
    trace, result, alignment, _ = await run_scenario("originate-into-stasis-with-callerid", shared, trace_config,
                                                     simulator, session)
    assert_same(alignment, result)
    assert_timing(alignment, result)
    starts = [e["channel"]["caller"] for e in result.events if e["type"] == "StasisStart"]
    assert starts == [{"name": "Test Caller", "number": "+8613800138000"}, {"name": "", "number": "+8613800138000"},
                      {"name": "", "number": ""}, {"name": "Set In Dialplan", "number": "+8613800138000"}]


@pytest.mark.parametrize("name", ["talk-detect", "talk-detect-1000ms", "talk-detect-bargein"])
async def test_talk_detect(name, shared, trace_config, simulator, session):
    trace, result, alignment, _ = await run_scenario(name, shared, trace_config, simulator, session)
    assert_same(alignment, result)
    assert_timing(alignment, result)
    for expected, actual in alignment.matched:
        if "duration" in expected.fuzzy:
            assert actual.fuzzy["duration"] == pytest.approx(expected.fuzzy["duration"], abs=120)


async def test_externalmedia(shared, trace_config, simulator, session):
    replay = await run_rtp_scenario("externalmedia", shared, trace_config(SCALE), simulator, session)
    assert_same(replay.alignment, replay.result)
    assert_timing(replay.alignment, replay.result)
    recorded = recorded_summary(shared / "traces" / "externalmedia-rtp.jsonl")
    packets = replay.packets
    assert {p.addr[0] for p in packets} == {"127.0.0.1"}
    assert 10000 <= packets[0].addr[1] < 20000
    assert {p.payload_type for p in packets} == set(recorded["payload_types"]) == {118}
    assert {len(p.payload) for p in packets} == set(recorded["payload_sizes"]) == {640}
    assert {b.ts - a.ts for a, b in zip(packets, packets[1:])} == set(recorded["ts_step"]) == {320}
    assert {(b.seq - a.seq) & 0xFFFF for a, b in zip(packets, packets[1:])} == {1}
    assert len({p.ssrc for p in packets}) == 1
    assert packets[0].t == pytest.approx(recorded["first_t"], abs=0.15)
    assert len(packets) == pytest.approx(recorded["packets"], abs=12)
    voiced = []
    for packet in packets:
        samples = packet.samples()                # big-endian on the wire
        if abs(samples).mean() > 1000:
            assert abs(samples).max() <= 8100     # the caller's tone, not byte-swapped noise
            voiced.append(packet.t)
    assert voiced[0] == pytest.approx(recorded["voiced_span_t"][0], abs=0.15)
    assert voiced[-1] == pytest.approx(recorded["voiced_span_t"][1], abs=0.15)


async def test_http_media(shared, trace_config, simulator, session, tmp_path):
    trace = load_trace(shared / "traces", "http-media")
    running = await simulator(trace_config(SCALE))
    root = make_http_prompts(tmp_path / "www")
    plain, cached = MediaServer(root, SCALE), MediaServer(root, SCALE)
    ports = {}
    try:
        for name, server in (("plain (python -m http.server)", plain), ("cache-headers", cached)):
            port = await server.start(cache_behaviours=server is cached)
            ports[str(trace.summary["servers"][name])] = str(port)
        # the recording pre-warmed this one with "media cache refresh" before playing it
        await running.sim.http_media.refresh(
            f"http://127.0.0.1:{cached.port}/slowmaxage/ivr-prompts/tenant-0001/prompt.sln16")
        result = await Replayer(running, trace, ports=ports).run(session)
    finally:
        await plain.stop()
        await cached.stop()
    alignment = compare_streams(trace.events, result.events)
    assert_same(alignment, result)
    assert_timing(alignment, result)
    recorded = {case["media"]: case for case in trace.summary["results"]}
    spans = playback_spans(result.events, "_t")
    cases = list(trace.summary["results"])
    for response in sorted(result.responses, key=lambda r: r.record["t"]):
        media = response.record["query"].get("media")
        if media is None:
            continue
        start, end, state = spans[response.body["id"]]
        case = cases.pop(next(i for i, c in enumerate(cases) if c["media"] == media))
        assert state == case["finished_state"], media
        if state == "done":   # includes the download, which takes real (unscaled) time here
            assert end - start == pytest.approx(case["started_to_finished_s"], abs=0.25), media
    assert recorded["sound:http://127.0.0.1:39795/p.wav"]["finished_state"] == "failed"
    log = [(m, path, status) for m, path, status in cached.log]
    assert log.count(("GET", "/maxage/ivr-prompts/tenant-0001/prompt.wav", 200)) == 1     # cached
    assert ("HEAD", "/etag/ivr-prompts/tenant-0001/prompt.wav", 304) in log               # revalidated
    assert log.count(("GET", "/slow/ivr-prompts/tenant-0001/prompt.wav", 200)) == 2       # no cache headers
    assert plain.log.count(("GET", "/p.wav", 200)) == 2                                   # short URL tried twice
    assert plain.log.count(("GET", "/ivr-prompts/tenant-0001/prompt.wav", 200)) == 2
