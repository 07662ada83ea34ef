"""The simulator driven in-process, as controller tests, the demo and benchmarks use it."""
from __future__ import annotations

import asyncio
import struct
import sys
from array import array
from pathlib import Path
from typing import Any

import pytest
from sim_audio import tone, write_wav
from sim_client import Ari, EventStream

from ivr.sim import QueueConfig, QueueMember, RunningSimulator, SimulatorConfig, load_asterisk_conf
from ivr.sim.audio import read_wav_bytes

SCALE = 0.2


@pytest.fixture
def sounds(tmp_path: Path) -> Path:
    write_wav(tmp_path / "sounds" / "prompt1.wav", tone(1.0, [(0.0, 1.0)]))
    write_wav(tmp_path / "sounds" / "prompt2.wav", tone(0.6, [(0.0, 0.6)]))
    write_wav(tmp_path / "sounds" / "en" / "localised.wav", tone(0.5, [(0.0, 0.5)]))
    return tmp_path / "sounds"


@pytest.fixture
def config(sounds: Path, tmp_path: Path, api_docs: Path) -> SimulatorConfig:
    return SimulatorConfig(sounds_dirs=[sounds], recordings_dir=tmp_path / "rec", api_docs_dir=api_docs,
                           strict=True, time_scale=SCALE)


async def start(simulator: Any, session: Any, config: SimulatorConfig) -> tuple[RunningSimulator, Ari, EventStream]:
    running = await simulator(config)
    ari = Ari(running, session)
    stream = await ari.events()
    return running, ari, stream


async def test_inbound_call_enters_stasis_with_ani_and_dialled_number(simulator, session, config):
    running, ari, events = await start(simulator, session, config)
    call = running.sim.inbound_call(ani="+15551234567", exten="100")
    start_event = await events.next("StasisStart")
    assert events.events[0] is start_event            # not subscribed before Stasis
    assert start_event["args"] == ["100"]
    channel = start_event["channel"]
    assert channel["caller"]["number"] == "+15551234567"
    assert channel["state"] == "Up"
    assert channel["dialplan"] == {"context": "ivr-inbound", "exten": "100", "priority": 3,
                                   "app_name": "Stasis", "app_data": "ivr,100"}
    await call.wait_in_stasis()
    assert call.channel_id == channel["id"] and call.stasis_args == ["100"]
    status, body = await ari.call("GET", f"/channels/{call.channel_id}/variable", variable="CALLERID(num)")
    assert (status, body) == (200, {"value": "+15551234567"})


async def test_keys_arrive_one_event_per_key(simulator, session, config):
    running, ari, events = await start(simulator, session, config)
    call = running.sim.inbound_call(ani="1", exten="100")
    await call.wait_in_stasis()
    await call.press("12#", interval=0.3)
    got = [await events.next("ChannelDtmfReceived") for _ in range(3)]
    assert [e["digit"] for e in got] == ["1", "2", "#"]
    assert {e["duration_ms"] for e in got} == {100}
    assert got[1]["_t"] - got[0]["_t"] == pytest.approx(0.3, abs=0.05)


async def test_prompts_queue_and_stop_like_asterisk(simulator, session, config):
    running, ari, events = await start(simulator, session, config)
    call = running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    status, first = await ari.call("POST", f"/channels/{cid}/play", media="sound:prompt1", playbackId="p1")
    assert status == 201 and first["state"] == "queued" and first["target_uri"] == f"channel:{cid}"
    status, second = await ari.call("POST", f"/channels/{cid}/play", media="sound:prompt2", playbackId="p2")
    assert (await ari.call("GET", "/playbacks/p2"))[1]["state"] == "queued"
    started = await events.next("PlaybackStarted")
    await asyncio.sleep(0.3 * SCALE)
    assert (await ari.call("DELETE", "/playbacks/p1"))[0] == 204
    assert (await ari.call("GET", "/playbacks/p1")) == (404, {"message": "Playback not found"})
    finished = await events.next("PlaybackFinished")
    assert finished["playback"]["state"] == "done"           # stopped says done too
    second_start = await events.next("PlaybackStarted")      # the queued one starts at once
    assert second_start["playback"]["id"] == "p2"
    assert second_start["_t"] - finished["_t"] < 0.05
    second_end = await events.next("PlaybackFinished")
    assert second_end["_t"] - second_start["_t"] == pytest.approx(0.6, abs=0.06)  # real audio length
    assert started["_t"] < finished["_t"]
    prompts = [(p.media_uri, p.state, p.stopped) for p in call.prompts]
    assert prompts == [("sound:prompt1", "done", True), ("sound:prompt2", "done", False)]


async def test_playlist_stops_in_one_delete_and_language_dirs_resolve(simulator, session, config):
    running, ari, events = await start(simulator, session, config)
    running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    status, body = await ari.call("POST", f"/channels/{cid}/play", media="sound:localised,sound:prompt1",
                                  playbackId="list")
    assert body["media_uri"] == "sound:localised" and body["next_media_uri"] == "sound:prompt1"
    await events.next("PlaybackStarted")
    cont = await events.next("PlaybackContinuing", timeout=3)
    assert cont["playback"]["media_uri"] == "sound:prompt1"
    await ari.call("DELETE", "/playbacks/list")
    done = await events.next("PlaybackFinished")
    assert done["playback"]["state"] == "done"
    await asyncio.sleep(1.2 * SCALE)
    assert [e["type"] for e in events.events].count("PlaybackStarted") == 1


async def test_missing_sound_fails_the_playback(simulator, session, config):
    running, ari, events = await start(simulator, session, config)
    running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    status, _ = await ari.call("POST", f"/channels/{cid}/play", media="sound:no-such-file", playbackId="x")
    assert status == 201
    assert (await events.next("PlaybackStarted"))["playback"]["state"] == "playing"
    assert (await events.next("PlaybackFinished"))["playback"]["state"] == "failed"


async def test_variable_waits_for_prompt_and_continue_leaves_when_it_ends(simulator, session, config):
    running, ari, events = await start(simulator, session, config)
    call = running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    await ari.call("POST", f"/channels/{cid}/play", media="sound:prompt1", playbackId="p")
    await events.next("PlaybackStarted")
    t0 = running.sim.clock.now()
    assert (await ari.call("POST", f"/channels/{cid}/variable", variable="IVR_QUEUE", value="sales"))[0] == 204
    assert running.sim.clock.now() - t0 > 0.8                # returned only when the prompt ended
    await ari.call("POST", f"/channels/{cid}/play", media="sound:prompt2", playbackId="p2")
    await events.next("PlaybackStarted", lambda e: e["playback"]["id"] == "p2")
    t1 = running.sim.clock.now()
    assert (await ari.call("POST", f"/channels/{cid}/continue", context="ivr-transfer", extension="queue",
                           priority=1))[0] == 204
    assert running.sim.clock.now() - t1 < 0.2                # answered at once
    end = await events.next("StasisEnd")
    assert end["_t"] - t1 == pytest.approx(0.6, abs=0.1)   # but left Stasis when the prompt ended
    continued = await call.wait_continued()
    assert (continued.context, continued.extension, continued.priority) == ("ivr-transfer", "queue", 1)
    assert continued.variables["IVR_QUEUE"] == "sales"
    assert (await ari.call("POST", f"/channels/{cid}/variable", variable="X", value="1"))[0] in (404, 409)


async def test_caller_hangs_up_mid_prompt(simulator, session, config):
    running, ari, events = await start(simulator, session, config)
    call = running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    await ari.call("POST", f"/channels/{cid}/play", media="sound:prompt1", playbackId="p")
    await events.next("PlaybackStarted")
    await call.hangup(cause=17)
    request = await events.next("ChannelHangupRequest")
    assert request["cause"] == 17 and "soft" not in request
    assert (await events.next("PlaybackFinished"))["playback"]["state"] == "failed"
    await events.next("StasisEnd")
    types = [e["type"] for e in events.events]
    assert types.index("ChannelHangupRequest") < types.index("PlaybackFinished") < types.index("StasisEnd")
    assert await ari.call("GET", f"/channels/{cid}") == (404, {"message": "Channel not found"})
    assert await ari.call("DELETE", "/playbacks/p") == (404, {"message": "Playback not found"})
    assert await ari.call("POST", f"/channels/{cid}/play", media="sound:prompt1") == \
        (404, {"message": "Channel not found"})
    assert call.state == "hungup" and call.hungup_by == "caller" and call.hangup_cause == 17
    assert call.prompts[0].state == "failed"


async def test_app_hangup_with_reason(simulator, session, config):
    running, ari, events = await start(simulator, session, config)
    call = running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    assert await ari.call("DELETE", f"/channels/{cid}", reason="bogus") == \
        (400, {"message": "parameter 'reason' of hangup must be one of ['normal', 'busy', 'congestion', "
                          "'no_answer', 'timeout', 'rejected', 'unallocated', 'normal_unspecified', "
                          "'number_incomplete', 'codec_mismatch', 'interworking', 'failure', "
                          "'answered_elsewhere'], got 'bogus'"})
    assert (await ari.call("DELETE", f"/channels/{cid}", reason="busy"))[0] == 204
    request = await events.next("ChannelHangupRequest")
    assert (request["cause"], request["soft"]) == (32, True)
    await events.next("StasisEnd")
    await call.wait_ended()
    assert (call.hungup_by, call.hangup_cause) == ("app", 17)


async def test_recording_of_what_the_caller_says(simulator, session, config, tmp_path):
    running, ari, events = await start(simulator, session, config)
    call = running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    speech = write_wav(tmp_path / "speech.wav", tone(1.2, [(0.0, 1.2)]))
    status, live = await ari.call("POST", f"/channels/{cid}/record", name="msg", format="wav",
                                  maxSilenceSeconds=1, maxDurationSeconds=10, ifExists="overwrite")
    assert status == 201 and live == {"name": "msg", "format": "wav", "state": "queued",
                                      "target_uri": f"channel:{cid}"}
    await events.next("RecordingStarted")
    await call.silence(0.5)
    await call.say(speech)
    finished = (await events.next("RecordingFinished", timeout=5))["recording"]
    assert finished["state"] == "done"
    assert all(isinstance(finished[k], int) for k in ("duration", "talking_duration", "silence_duration"))
    assert finished["talking_duration"] == 2           # 1.2 s, whole seconds rounded up as observed
    status, wav = await ari.call("GET", "/recordings/stored/msg/file")
    assert status == 200
    rate, samples = read_wav_bytes(wav)
    assert rate == 8000
    assert len(samples) / rate == pytest.approx(0.5 + 1.2 + 0.2, abs=0.06)   # leading kept, 200 ms trailing
    assert max(abs(s) for s in samples[: int(0.4 * rate)]) == 0
    assert await ari.call("GET", "/recordings/stored/msg") == (200, {"name": "msg", "format": "wav"})
    assert (await ari.call("POST", f"/channels/{cid}/record", name="msg", format="wav"))[0] == 409
    assert (await ari.call("POST", f"/channels/{cid}/record", name="x", format="mp9"))[0] == 422


async def test_talk_detection(simulator, session, config, tmp_path):
    running, ari, events = await start(simulator, session, config)
    call = running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    assert (await ari.call("POST", f"/channels/{cid}/variable", variable="TALK_DETECT(set)", value="1000"))[0] == 204
    assert not events.of_type("ChannelVarset")                # functions are not variables
    await call.silence(0.3)
    t_speech = running.sim.clock.now()
    await call.say(write_wav(tmp_path / "s.wav", tone(1.0, [(0.0, 1.0)])))
    started = await events.next("ChannelTalkingStarted")
    assert started["_t"] - t_speech == pytest.approx(0.06, abs=0.04)
    finished = await events.next("ChannelTalkingFinished", timeout=5)
    assert finished["_t"] - t_speech == pytest.approx(1.0 + 1.0, abs=0.1)
    assert finished["duration"] == pytest.approx(940, abs=60)


async def test_websocket_drop_keeps_the_call_and_loses_events(simulator, session, config):
    running, ari, events = await start(simulator, session, config)
    call = running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    await ari.call("POST", f"/channels/{cid}/play", media="sound:prompt1", playbackId="p")
    await events.next("PlaybackStarted")
    assert await running.drop_websocket("ivr") == 1
    await call.press("5")                                    # while nobody listens
    status, chan = await ari.call("GET", f"/channels/{cid}")
    assert status == 200 and chan["state"] == "Up" and chan["dialplan"]["app_name"] == "Stasis"
    assert (await ari.call("GET", "/playbacks/p"))[1]["state"] == "playing"
    assert (await ari.call("GET", "/applications/ivr"))[1]["channel_ids"] == [cid]
    await asyncio.sleep(1.0 * SCALE)                          # the prompt ends meanwhile
    again = await ari.events()
    await asyncio.sleep(0.3 * SCALE)
    assert again.events == []                                 # nothing replayed, no StasisStart
    await call.press("7")
    assert (await again.next("ChannelDtmfReceived"))["digit"] == "7"
    assert running.sim.bus.apps["ivr"].missed >= 2            # the DTMF and PlaybackFinished
    await again.close()


async def test_external_media_streams_the_caller_in_real_time(simulator, session, config, tmp_path):
    config.time_scale = 1.0
    config.external_media_stasis_delay = 0.2
    running, ari, events = await start(simulator, session, config)
    call = running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    received: list[tuple[float, bytes, tuple[str, int]]] = []
    loop = asyncio.get_running_loop()

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            received.append((loop.time(), data, addr))
    transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        _, bridge = await ari.call("POST", "/bridges", type="mixing", name="em")
        status, em = await ari.call("POST", "/channels/externalMedia", app="ivr", external_host=f"127.0.0.1:{port}",
                                    format="slin16", encapsulation="rtp", transport="udp", direction="both")
        assert status == 200 and em["state"] == "Down" and em["name"].startswith(f"UnicastRTP/127.0.0.1:{port}-")
        local_port = int(em["channelvars"]["UNICASTRTP_LOCAL_PORT"])
        assert em["channelvars"]["UNICASTRTP_LOCAL_ADDRESS"] == "127.0.0.1" and 10000 <= local_port < 20000
        status, body = await ari.call("POST", f"/bridges/{bridge['id']}/addChannel", channel=f"{cid},{em['id']}")
        assert (status, body) == (422, {"message": "Channel not in Stasis application"})
        await events.next("StasisStart", lambda e: e["channel"]["id"] == em["id"])
        assert (await ari.call("POST", f"/bridges/{bridge['id']}/addChannel", channel=f"{cid},{em['id']}"))[0] == 204
        await call.silence(0.2)
        await call.say(write_wav(tmp_path / "s.wav", tone(0.4, [(0.0, 0.4)])))
        await call.silence(0.2)
        transport.sendto(b"\x80\x76" + bytes(10) + bytes(640), ("127.0.0.1", local_port))
        await asyncio.sleep(0.05)
    finally:
        transport.close()
    assert (await ari.call("GET", f"/channels/{em['id']}/variable", variable="UNICASTRTP_LOCAL_PORT"))[1] == \
        {"value": str(local_port)}
    assert {addr for _, _, addr in received} == {("127.0.0.1", local_port)}
    headers = [struct.unpack("!BBHII", d[:12]) for _, d, _ in received]
    assert {h[1] for h in headers} == {118} and {len(d) for _, d, _ in received} == {652}
    assert {b[3] - a[3] for a, b in zip(headers, headers[1:])} == {320}
    duration = received[-1][0] - received[0][0]
    assert duration == pytest.approx(0.02 * (len(received) - 1), rel=0.05)     # paced in real time
    voiced = 0
    for _, data, _ in received:
        samples = array("h", data[12:])
        if sys.byteorder == "little":
            samples.byteswap()
        voiced += max(abs(s) for s in samples) > 1000
    assert voiced == pytest.approx(0.4 / 0.02, abs=2)
    assert len(call.received_rtp) == 640


async def test_queue_reports_which_agent_answered(simulator, session, config):
    config.dialplan_text += """
[ivr-transfer]
exten => queue,1,NoOp(to ${IVR_QUEUE})
 same => n,Queue(${IVR_QUEUE},,,,30)
 same => n,Hangup()
"""
    config.queues = {"claims": QueueConfig("claims", members=[
        QueueMember("PJSIP/agent101", "Agent 101"), QueueMember("PJSIP/agent102", "Agent 102")])}
    running, ari, events = await start(simulator, session, config)
    running.sim.queues["claims"].answer_with("PJSIP/agent102", after=0.5)
    call = running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    await ari.call("POST", f"/channels/{cid}/variable", variable="IVR_QUEUE", value="claims")
    status, app = await ari.call("POST", "/applications/ivr/subscription", eventSource=f"channel:{cid}")
    assert status == 200 and app["channel_ids"] == [cid]
    await ari.call("POST", f"/channels/{cid}/continue", context="ivr-transfer", extension="queue", priority=1)
    await events.next("StasisEnd")
    ringing = [await events.next("Dial", lambda e: e["dialstatus"] == "RINGING") for _ in range(2)]
    assert {e["peer"]["name"].rsplit("-", 1)[0] for e in ringing} == {"PJSIP/agent101", "PJSIP/agent102"}
    assert all(e["caller"]["id"] == cid for e in ringing)
    answer = await events.next("Dial", lambda e: e["dialstatus"] == "ANSWER", timeout=5)
    assert answer["peer"]["name"].startswith("PJSIP/agent102-")
    iface = await events.next("ChannelVarset", lambda e: e["variable"] == "MEMBERINTERFACE")
    assert iface["value"] == "PJSIP/agent102"
    assert call.queue is not None and (call.queue.member_interface, call.queue.member_name) == \
        ("PJSIP/agent102", "Agent 102")
    call.agent_hangup()
    await call.wait_ended()
    assert call.hungup_by == "dialplan"


async def test_project_asterisk_conf_runs(simulator, session, config):
    conf = Path(__file__).resolve().parents[2] / "asterisk-conf"
    if not (conf / "extensions.conf").is_file():
        pytest.skip("asterisk-conf/ not present")
    load_asterisk_conf(config, conf)
    running, ari, events = await start(simulator, session, config)
    queue = next(iter(running.sim.queues.values()))
    queue.answer_with(queue.members[0].interface, after=0.3)
    call = running.sim.inbound_call(ani="+15550100", exten="8001", context="from-trunk")
    start_event = await events.next("StasisStart")
    assert start_event["args"] == ["8001"]
    cid = start_event["channel"]["id"]
    for name, value in (("IVR_QUEUE", queue.name), ("IVR_PRIORITY", "5"), ("__IVR_CALL_ID", "c-1")):
        await ari.call("POST", f"/channels/{cid}/variable", variable=name, value=value)
    await ari.call("POST", "/applications/ivr/subscription", eventSource=f"channel:{cid}")
    await ari.call("POST", f"/channels/{cid}/continue", context="ivr-transfer", extension="queue", priority=1)
    await events.next("Dial", lambda e: e["dialstatus"] == "ANSWER", timeout=5)
    agent = await events.next("ChannelVarset", lambda e: e["variable"] == "IVR_AGENT_CHANNEL")
    assert agent["value"].startswith(queue.members[0].interface + "-")
    assert call.variable("QUEUE_PRIO") == "5"
    await ari.call("DELETE", f"/channels/{cid}")
    await call.wait_ended()


async def test_originate_to_a_phone_answers_and_enters_stasis(simulator, session, config):
    running, ari, events = await start(simulator, session, config)
    status, chan = await ari.call("POST", "/channels", endpoint="PJSIP/1000", app="ivr", appArgs="callback",
                                  callerId="Insurer <+15550000>")
    assert status == 200 and chan["state"] == "Down" and chan["caller"]["number"] == "+15550000"
    start_event = await events.next("StasisStart", timeout=5)
    assert start_event["args"] == ["callback"] and start_event["channel"]["id"] == chan["id"]
    assert [e["dialstatus"] for e in events.of_type("Dial")] == ["", "RINGING", "ANSWER"]
    assert running.sim.calls[chan["id"]].kind == "outbound"


async def test_authentication(simulator, session, config):
    running = await simulator(config)
    async with session.get(running.ari_url + "/channels") as resp:
        assert resp.status == 401 and await resp.json() == {"message": "Authentication required"}
    cfg = running.sim.config
    async with session.get(running.ari_url + "/channels", params={"api_key": f"{cfg.username}:{cfg.password}"}) as resp:
        assert resp.status == 200 and await resp.json() == []
    async with session.get(running.ari_url + "/channels", params={"api_key": "ivr:wrong"}) as resp:
        assert resp.status == 401


async def test_sim_http_control_surface(simulator, session, config, tmp_path):
    running, ari, events = await start(simulator, session, config)
    async with session.post(running.base_url + "/sim/calls", json={"ani": "+1555", "exten": "200"}) as resp:
        assert resp.status == 201
        cid = (await resp.json())["channel_id"]
    await events.next("StasisStart")
    async with session.post(f"{running.base_url}/sim/calls/{cid}/press", json={"digits": "9"}) as resp:
        assert resp.status == 204
    assert (await events.next("ChannelDtmfReceived"))["digit"] == "9"
    speech = write_wav(tmp_path / "s.wav", tone(0.2, [(0.0, 0.2)]))
    async with session.post(f"{running.base_url}/sim/calls/{cid}/say", json={"path": str(speech)}) as resp:
        assert (await resp.json())["seconds"] == pytest.approx(0.2, abs=0.01)
    async with session.post(f"{running.base_url}/sim/calls/{cid}/hangup", json={"cause": 16}) as resp:
        assert resp.status == 204
    async with session.get(f"{running.base_url}/sim/calls/{cid}") as resp:
        summary = await resp.json()
    assert summary["state"] == "hungup" and summary["hungup_by"] == "caller" and summary["ani"] == "+1555"
