"""Snoop channels as the controller uses them: the caller in no bridge, its snoop bridged with externalMedia.

The recorded trace (``snoop-externalmedia-during-play``, replayed in
``test_sim_media_routing``) uses a Local caller; these drive an inbound
caller through the same arrangement, with the controller's ids
(``<callid>-snoop-<hex>``, appArgs ``snoop-of,<callid>``), and check what
no replay covers: the app's own DELETE of a snoop and the refused requests.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sim_audio import tone, write_wav
from sim_client import Ari, EventStream
from sim_rtp import RtpSink, stats

from ivr.sim import RunningSimulator, SimulatorConfig

SCALE = 0.2           # prompt_config's


async def snooped_call(simulator: Any, session: Any, config: SimulatorConfig, port: int
                       ) -> tuple[RunningSimulator, Ari, EventStream, Any, str, str]:
    """An inbound caller in Stasis, its snoop and an externalMedia channel in one mixing bridge."""
    running = await simulator(config)
    ari = Ari(running, session)
    events = await ari.events()
    call = running.sim.inbound_call(ani="+15550101", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    snoop_id = f"{cid}-snoop-5e1f"
    status, snoop = await ari.call("POST", f"/channels/{cid}/snoop/{snoop_id}", spy="in", app="ivr",
                                   appArgs=f"snoop-of,{cid}")
    assert status == 200 and snoop["id"] == snoop_id and snoop["state"] == "Up"
    start = await events.next("StasisStart", lambda e: e["channel"]["id"] == snoop_id)
    assert start["args"] == ["snoop-of", cid] and start["channel"]["name"] == f"Snoop/{cid}-00000000"
    _, bridge = await ari.call("POST", "/bridges", type="mixing", name="em")
    _, em = await ari.call("POST", "/channels/externalMedia", app="ivr", external_host=f"127.0.0.1:{port}",
                           format="slin16", encapsulation="rtp", transport="udp")
    await events.next("StasisStart", lambda e: e["channel"]["id"] == em["id"])
    assert (await ari.call("POST", f"/bridges/{bridge['id']}/addChannel", channel=f"{snoop_id},{em['id']}"))[0] == 204
    await events.next("ChannelVarset", lambda e: e["variable"] == "BRIDGEPEER" and e["channel"]["id"] == em["id"])
    return running, ari, events, call, cid, snoop_id


async def test_snoop_hears_the_caller_through_a_prompt_and_goes_on_delete(simulator, session, prompt_config,
                                                                         tmp_path):
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(lambda: RtpSink(None), local_addr=("127.0.0.1", 0))
    try:
        running, ari, events, call, cid, snoop_id = await snooped_call(
            simulator, session, prompt_config, transport.get_extra_info("sockname")[1])
        sink.clock = running.sim.clock
        t0 = running.sim.clock.now()
        await call.say(write_wav(tmp_path / "voice.wav", tone(2.5, [(0.0, 2.5)], freq=300)), wait=False)
        await call.silence(0.3)
        await ari.call("POST", f"/channels/{cid}/play", media="sound:prompt", playbackId="p1")
        started = await events.next("PlaybackStarted")
        finished = await events.next("PlaybackFinished", timeout=5)
        await call.silence(0.3)
    finally:
        transport.close()
    packets = sink.parsed(t0)
    during = stats(packets, started["_t"] - t0 + 0.03, finished["_t"] - t0 - 0.03)
    assert during.packets_per_s == pytest.approx(50, abs=2)           # not suspended: no bridge
    assert during.dominant_hz == pytest.approx(300, abs=10)           # the caller, not the prompt
    assert during.tone1k_energy_ratio < 0.01

    cursor = len(events.events)
    assert (await ari.call("DELETE", f"/channels/{snoop_id}"))[0] == 204
    await asyncio.sleep(0.1 * SCALE)
    gone = [(e["type"], e.get("variable"), e.get("cause")) for e in events.events[cursor:]]
    # the generic hang-up by the app of a bridged Stasis channel (externalMedia DELETE in the traces);
    # the app holds a snoop only through Stasis, so nothing follows its StasisEnd
    assert gone == [("ChannelHangupRequest", None, 32), ("ChannelVarset", "BRIDGEPEER", None),
                    ("ChannelLeftBridge", None, None), ("StasisEnd", None, None)]
    assert await ari.call("GET", f"/channels/{snoop_id}") == (404, {"message": "Channel not found"})
    assert (await ari.call("GET", f"/channels/{cid}"))[1]["state"] == "Up"


async def test_caller_hangup_ends_its_snoops_before_it_is_destroyed(simulator, session, prompt_config):
    running, ari, events, call, cid, snoop_id = await snooped_call(simulator, session, prompt_config, 9)
    cursor, emitted = len(events.events), len(running.sim.bus.emitted)
    await call.hangup()
    await call.wait_ended()
    await events.next("StasisEnd", lambda e: e["channel"]["id"] == snoop_id)
    snoop = [e["type"] for e in events.events[cursor:] if e["channel"]["id"] == snoop_id]
    assert snoop == ["ChannelVarset", "ChannelLeftBridge", "StasisEnd"]      # no hang-up request, no destroyed
    order = [(e["type"], e["channel"]["id"]) for e in running.sim.bus.emitted[emitted:] if "channel" in e]
    assert order.index(("StasisEnd", snoop_id)) < order.index(("ChannelDestroyed", cid))
    assert (await ari.call("GET", f"/channels/{snoop_id}"))[0] == 404


@pytest.mark.parametrize("query,problem", [
    ({"spy": "out"}, "spy=out is not simulated"),
    ({"spy": "both"}, "spy=both is not simulated"),
    ({}, "spy=none is not simulated"),
    ({"spy": "in", "whisper": "in"}, "whisper=in is not simulated"),
    ({"spy": "in", "whisper": "both"}, "whisper=both is not simulated"),
])
async def test_untraced_directions_are_refused(simulator, session, prompt_config, query, problem):
    running = await simulator(prompt_config)
    ari = Ari(running, session)
    events = await ari.events()
    running.sim.inbound_call(ani="1", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    status, body = await ari.call("POST", f"/channels/{cid}/snoop", app="ivr", **query)
    assert status == 501 and problem in body["message"] and "no recorded trace" in body["message"]
    assert not [c for c in running.sim.channels.values() if c.name.startswith("Snoop/")]
    status, body = await ari.call("POST", f"/channels/{cid}/snoop", app="ivr", spy="in", whisper="none")
    assert status == 200
