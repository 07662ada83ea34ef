"""Bridge playbacks driven in-process: what the replay of ``bridge-play-with-externalmedia`` does not cover.

The bridge while the announcer is in it, what the caller is recorded as
hearing, and the requests no trace shows, which are refused.
"""
from __future__ import annotations

from typing import Any

import pytest
from sim_audio import KHZ_PROMPT_SECONDS
from sim_client import Ari, EventStream

from ivr.sim import RunningSimulator, SimulatorConfig

SCALE = 0.2           # prompt_config's


async def bridged_call(simulator: Any, session: Any, config: SimulatorConfig
                       ) -> tuple[RunningSimulator, Ari, EventStream, Any, str, str, str]:
    """An inbound caller and an externalMedia channel in one mixing bridge."""
    running = await simulator(config)
    ari = Ari(running, session)
    events = await ari.events()
    call = running.sim.inbound_call(ani="+15550101", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    _, bridge = await ari.call("POST", "/bridges", type="mixing")
    _, em = await ari.call("POST", "/channels/externalMedia", app="ivr", external_host="127.0.0.1:9",
                           format="slin16")
    await events.next("StasisStart", lambda e: e["channel"]["id"] == em["id"])
    await ari.call("POST", f"/bridges/{bridge['id']}/addChannel", channel=f"{cid},{em['id']}")
    await events.next("ChannelVarset", lambda e: e["variable"] == "BRIDGEPEER" and e["channel"]["id"] == em["id"])
    return running, ari, events, call, cid, em["id"], bridge["id"]


async def test_announcer_joins_for_the_prompt_and_the_caller_hears_it(simulator, session, prompt_config):
    running, ari, events, call, cid, em_id, bid = await bridged_call(simulator, session, prompt_config)
    status, body = await ari.call("POST", f"/bridges/{bid}/play/greeting", media="sound:prompt")
    assert status == 201
    assert body == {"id": "greeting", "media_uri": "sound:prompt", "target_uri": f"bridge:{bid}",
                    "language": "en", "state": "queued"}
    await events.next("PlaybackStarted")
    _, during = await ari.call("GET", f"/bridges/{bid}")
    assert during["technology"] == "softmix" and len(during["channels"]) == 3
    assert during["channels"] == sorted(during["channels"]) and {cid, em_id} < set(during["channels"])
    finished = await events.next("PlaybackFinished", timeout=3)
    assert finished["playback"]["state"] == "done"
    _, after = await ari.call("GET", f"/bridges/{bid}")
    assert after["technology"] == "simple_bridge" and after["channels"] == sorted([cid, em_id])
    (prompt,) = call.prompts
    assert (prompt.media_uri, prompt.playback_id, prompt.state) == ("sound:prompt", "greeting", "done")
    assert prompt.duration == pytest.approx(KHZ_PROMPT_SECONDS, abs=0.05)


async def test_untraced_bridge_playbacks_are_refused(simulator, session, prompt_config):
    running, ari, events, call, cid, em_id, bid = await bridged_call(simulator, session, prompt_config)
    _, empty = await ari.call("POST", "/bridges", type="mixing")
    _, holding = await ari.call("POST", "/bridges", type="holding")
    refused = [
        (f"/bridges/{empty['id']}/play", {"media": "sound:prompt"}, "empty bridge"),
        (f"/bridges/{holding['id']}/play", {"media": "sound:prompt"}, "holding bridge"),
        (f"/bridges/{bid}/play", {"media": "sound:prompt", "announcer_format": "slin16"}, "announcer_format"),
        (f"/bridges/{bid}/play", {"media": "sound:prompt", "offsetms": "500"}, "offsetms"),
    ]
    for path, query, what in refused:
        status, body = await ari.call("POST", path, **query)
        assert status == 501 and what in body["message"] and "no recorded trace" in body["message"], what
    assert (await ari.call("POST", f"/bridges/{bid}/play", media="sound:prompt", playbackId="one"))[0] == 201
    status, body = await ari.call("POST", f"/bridges/{bid}/play", media="sound:prompt")
    assert status == 501 and "queued behind another" in body["message"]
    await events.next("PlaybackStarted")
    status, body = await ari.call("DELETE", f"/bridges/{bid}")
    assert status == 501 and "stop the playback first" in body["message"]
    assert (await ari.call("DELETE", "/playbacks/one"))[0] == 204
    assert (await events.next("PlaybackFinished"))["playback"]["state"] == "done"
    assert (await ari.call("DELETE", f"/bridges/{bid}"))[0] == 204
