"""Outbound rescue calls (issue 14): scripted callees, the originate timeout, AMD, PJSIP names.

The campaign's way of placing a call is copied here: ``POST /channels`` to
``PJSIP/<number>@trunk`` into the project's ``[ivr-outbound]`` (asterisk-conf/,
with its amd.conf), then its own application subscribes to the channel.
What each callee script must produce comes from Asterisk's source (see
ivr/sim/dialout.py and amd.py for the files and functions); the assertions
check it event by event as the applications receive it over the websocket.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sim_audio import tone, write_wav
from sim_client import Ari, EventStream

from ivr.sim import (
    AmdSettings,
    RunningSimulator,
    SimulatorConfig,
    load_asterisk_conf,
    load_callees,
)
from ivr.sim.amd import AmdAnalysis, AmdResult
from ivr.sim.callees import CalleeScript, greeting_audio

SCALE = 0.1
CONF = Path(__file__).resolve().parents[2] / "asterisk-conf"
CAMPAIGN = "ivr-campaign"
NUMBER = "+15550102"


@pytest.fixture
def config(tmp_path: Path, api_docs: Path) -> SimulatorConfig:
    if not (CONF / "extensions.conf").is_file():
        pytest.skip("asterisk-conf/ not present")
    sounds = tmp_path / "sounds"
    write_wav(sounds / "generic-notice.wav", tone(1.0, [(0.0, 1.0)]))
    write_wav(sounds / "generic-callback.wav", tone(0.6, [(0.0, 0.6)]))
    config = SimulatorConfig(sounds_dirs=[sounds], recordings_dir=tmp_path / "rec", api_docs_dir=api_docs,
                             strict=True, time_scale=SCALE)
    return load_asterisk_conf(config, CONF)


class Harness:
    """The simulator with the controller's app (``ivr``) and the campaign's app connected."""

    def __init__(self, running: RunningSimulator, ari: Ari, ivr: EventStream | None, campaign: EventStream):
        self.running, self.ari, self.ivr, self.campaign = running, ari, ivr, campaign

    @property
    def sim(self) -> Any:
        return self.running.sim

    async def place(self, number: str = NUMBER, timeout: int | None = 30, subscribe: bool = True) -> dict[str, Any]:
        """The campaign's two requests: originate into [ivr-outbound], then subscribe."""
        params: dict[str, Any] = {"endpoint": f"PJSIP/{number}@trunk", "context": "ivr-outbound",
                                  "extension": "s", "priority": 1, "callerId": '"Insurer" <+15550000>'}
        if timeout is not None:
            params["timeout"] = timeout
        status, chan = await self.ari.call("POST", "/channels", {"variables": {"IVR_ATTEMPT": "att-7"}}, **params)
        assert status == 200, chan
        if subscribe:
            status, body = await self.ari.call("POST", f"/applications/{CAMPAIGN}/subscription",
                                               eventSource=f"channel:{chan['id']}")
            assert status == 200, body
        return chan

    def seen(self, channel_id: str, stream: EventStream | None = None) -> list[dict[str, Any]]:
        """What an application received about the channel, in order."""
        events = (stream or self.campaign).events
        return [e for e in events if _about(e, channel_id)]


def at(event: dict[str, Any]) -> float:
    """When Asterisk (the simulator) stamped the event, in seconds: free of websocket delivery delays."""
    return datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def _about(event: dict[str, Any], channel_id: str) -> bool:
    return event.get("channel", {}).get("id") == channel_id or event.get("peer", {}).get("id") == channel_id


async def start(simulator: Any, session: Any, config: SimulatorConfig, controller: bool = True) -> Harness:
    running = await simulator(config)
    ari = Ari(running, session)
    ivr = await ari.events("ivr") if controller else None
    campaign = await ari.events(CAMPAIGN)
    return Harness(running, ari, ivr, campaign)


def chan_created(h: Harness, chan: dict[str, Any]) -> dict[str, Any]:
    """The ChannelCreated the originate emitted (before anyone could subscribe)."""
    return next(e for e in h.sim.bus.emitted if e["type"] == "ChannelCreated" and e["channel"]["id"] == chan["id"])


def script(**kw: Any) -> CalleeScript:
    return CalleeScript.from_json(kw)


# -- channel names ---------------------------------------------------------------------------
async def test_pjsip_channel_is_named_after_the_endpoint_not_the_number(simulator, session, config):
    """chan_pjsip.c: PJSIP/<user>@<endpoint> makes PJSIP/<endpoint>-<8 hex>; the number stays in the
    dial string only; PJSIP/<endpoint> alone is named after it, as before."""
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome="busy", after=0.2)})
    chan = await h.place()
    assert re.fullmatch(r"PJSIP/trunk-[0-9a-f]{8}", chan["name"]) and NUMBER not in json.dumps(chan)
    destroyed = await h.campaign.next("ChannelDestroyed")
    assert destroyed["channel"]["name"] == chan["name"]
    assert {e["dialstring"] for e in h.campaign.of_type("Dial")} == {f"{NUMBER}@trunk"}
    status, phone = await h.ari.call("POST", "/channels", endpoint="PJSIP/1000", app="ivr")
    assert status == 200 and re.fullmatch(r"PJSIP/1000-[0-9a-f]{8}", phone["name"])


# -- rejections --------------------------------------------------------------------------------
@pytest.mark.parametrize("outcome, cause, cause_txt, sip, dialstatus", [
    ("busy", 17, "User busy", 486, "BUSY"),
    ("unreachable", 1, "Unallocated (unassigned) number", 404, "NOANSWER"),
    ("congestion", 34, "Circuit/channel congestion", 503, "CONGESTION"),
])
async def test_a_rejected_call_ends_as_chan_pjsip_and_dial_c_end_it(simulator, session, config, outcome, cause,
                                                                    cause_txt, sip, dialstatus):
    """ast_queue_hangup (cause + SIP code as tech_cause, no soft), Dial with
    ast_hangup_cause_to_dial_status, ChannelDestroyed with ast_cause2str: nothing else, no dialplan."""
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome=outcome, after=1.0)})
    chan = await h.place()
    destroyed = await h.campaign.next("ChannelDestroyed")
    seen = h.seen(chan["id"])
    assert [e["type"] for e in seen][-3:] == ["ChannelHangupRequest", "Dial", "ChannelDestroyed"]
    request, dial = seen[-3], seen[-2]
    assert (request["cause"], request["tech_cause"], "soft" in request) == (cause, sip, False)
    assert (dial["dialstatus"], "caller" in dial) == (dialstatus, False)
    assert (destroyed["cause"], destroyed["cause_txt"], destroyed["tech_cause"]) == (cause, cause_txt, sip)
    assert destroyed["channel"]["state"] == "Down"
    assert not any(e["type"] in ("ChannelDialplan", "ChannelStateChange") for e in seen)
    first_dial = next(e for e in h.sim.bus.emitted if e["type"] == "Dial" and e["peer"]["id"] == chan["id"])
    assert at(destroyed) - at(first_dial) == pytest.approx(1.0, abs=0.3)
    assert h.ivr is not None and h.ivr.events == []


# -- no answer and the originate timeout -----------------------------------------------------------
async def test_noanswer_rings_until_the_originate_timeout(simulator, session, config):
    """dial.c handle_timeout_trip: cause 19 and ast_hangup(): no ChannelHangupRequest, no Dial NOANSWER;
    chan_pjsip_hangup's CANCEL sets tech_cause 480."""
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome="noanswer")})
    chan = await h.place(timeout=3)
    destroyed = await h.campaign.next("ChannelDestroyed", timeout=5)
    assert at(destroyed) - at(chan_created(h, chan)) == pytest.approx(3.0, abs=0.3)
    assert (destroyed["cause"], destroyed["cause_txt"], destroyed["tech_cause"]) == (19, "User alerting, no answer", 480)
    assert destroyed["channel"]["state"] == "Ringing"
    types = [e["type"] for e in h.seen(chan["id"])]
    assert "ChannelHangupRequest" not in types and types[-1] == "ChannelDestroyed"
    assert [e["dialstatus"] for e in h.campaign.of_type("Dial")] in (["RINGING"], ["", "RINGING"], [])
    assert h.sim.calls[chan["id"]].hungup_by == "timeout"


async def test_a_callee_answering_after_the_timeout_never_answers(simulator, session, config):
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome="answer", after=4.0)})
    chan = await h.place(timeout=2)
    destroyed = await h.campaign.next("ChannelDestroyed", timeout=5)
    assert destroyed["cause"] == 19 and at(destroyed) - at(chan_created(h, chan)) == pytest.approx(2.0, abs=0.3)
    assert "ANSWER" not in [e["dialstatus"] for e in h.seen(chan["id"]) if e["type"] == "Dial"]


async def test_the_timeout_defaults_to_30_seconds_for_a_phone_with_no_script(simulator, session, config):
    """resource_channels.c: timeout 0 or missing -> ast_dial_set_global_timeout(dial, 30000)."""
    config.outbound_answer_after = None          # the unscripted phone never answers
    config.time_scale = 0.02
    h = await start(simulator, session, config)
    chan = await h.place(number="+15559999", timeout=None)
    destroyed = await h.campaign.next("ChannelDestroyed", timeout=5)
    assert destroyed["channel"]["id"] == chan["id"] and destroyed["cause"] == 19
    assert at(destroyed) - at(chan_created(h, chan)) == pytest.approx(30.0, abs=1.0)


# -- answered: AMD and Stasis ------------------------------------------------------------------------
async def test_a_human_is_detected_and_reaches_the_controller_with_amdstatus(simulator, session, config):
    """"Hello" (0.6 s after 0.2 s) then silence: app_amd says HUMAN-800-800 once 800 ms of silence
    follow the word, ~1.6 s after the answer; Stasis(ivr,outbound,HUMAN,<attempt>)."""
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome="answer", after=1.0, answerer="human")})
    chan = await h.place()
    assert h.ivr is not None
    start_event = await h.ivr.next("StasisStart", timeout=8)
    assert start_event["args"] == ["outbound", "HUMAN", "att-7"] and start_event["channel"]["id"] == chan["id"]
    assert start_event["channel"]["caller"] == {"name": "Insurer", "number": "+15550000"}
    assert start_event["channel"]["dialplan"]["app_data"] == "ivr,outbound,HUMAN,att-7"
    answer = next(e for e in h.seen(chan["id"]) if e["type"] == "Dial" and e["dialstatus"] == "ANSWER")
    status = await h.campaign.next("ChannelVarset", lambda e: e["variable"] == "AMDSTATUS")
    cause = await h.campaign.next("ChannelVarset", lambda e: e["variable"] == "AMDCAUSE")
    assert (status["value"], cause["value"]) == ("HUMAN", "HUMAN-800-800")
    assert at(status) - at(answer) == pytest.approx(1.6, abs=0.25)
    status_code, var = await h.ari.call("GET", f"/channels/{chan['id']}/variable", variable="IVR_ATTEMPT")
    assert (status_code, var) == (200, {"value": "att-7"})
    # the human is driven like any simulated caller: a key, then hang-up, through the control API
    base = h.running.base_url
    async with session.post(f"{base}/sim/calls/{chan['id']}/press", json={"digits": "1"}) as resp:
        assert resp.status == 204
    assert (await h.ivr.next("ChannelDtmfReceived"))["digit"] == "1"
    async with session.post(f"{base}/sim/calls/{chan['id']}/hangup", json={"cause": 16}) as resp:
        assert resp.status == 204
    await h.ivr.next("StasisEnd")
    destroyed = await h.campaign.next("ChannelDestroyed")
    assert destroyed["cause"] == 16 and "tech_cause" not in destroyed


async def test_a_machine_is_detected_by_its_long_greeting(simulator, session, config):
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome="answer", after=0.5, answerer="machine")})
    chan = await h.place()
    assert h.ivr is not None
    start_event = await h.ivr.next("StasisStart", timeout=8)
    assert start_event["args"] == ["outbound", "MACHINE", "att-7"]
    varsets = {e["variable"]: e for e in h.seen(chan["id"]) if e["type"] == "ChannelVarset"}
    assert varsets["AMDCAUSE"]["value"] == "LONGGREETING-1500-1500"
    answer = next(e for e in h.seen(chan["id"]) if e["type"] == "Dial" and e["dialstatus"] == "ANSWER")
    assert at(varsets["AMDSTATUS"]) - at(answer) == pytest.approx(0.2 + 1.5, abs=0.25)


async def test_a_machine_records_only_what_is_played_after_its_beep(simulator, session, config):
    """The tape holds the prompts played after the greeting and beep, until the IVR hangs up."""
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome="answer", after=0.5, answerer="machine", greeting=[3.0])})
    chan = await h.place()
    assert h.ivr is not None
    await h.ivr.next("StasisStart", timeout=8)
    call = h.sim.calls[chan["id"]]
    status, _ = await h.ari.call("POST", f"/channels/{chan['id']}/play", media="sound:generic-notice")
    assert status == 201
    await h.ivr.next("PlaybackFinished")                      # during the greeting: not on the tape
    await h.sim.clock.sleep_until(call.recording_from)        # the beep ends: the machine records
    status, _ = await h.ari.call("POST", f"/channels/{chan['id']}/play", media="sound:generic-callback")
    assert status == 201
    await h.ivr.next("PlaybackFinished")
    await h.ari.call("DELETE", f"/channels/{chan['id']}")
    await h.campaign.next("ChannelDestroyed")
    async with session.get(f"{h.running.base_url}/sim/callees/{NUMBER}") as resp:
        body = await resp.json()
    (summary,) = body["calls"]
    heard = summary["callee"]["heard"]
    assert [(x["media_uri"], x["whole"]) for x in heard] == [("sound:generic-callback", True)]
    assert summary["callee"]["amd_status"] == "MACHINE" and summary["hungup_by"] == "app"


async def test_a_machine_hangs_up_after_its_longest_message(simulator, session, config):
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome="answer", after=0.2, answerer="machine", greeting=[2.0],
                                      max_message=1.5)})
    chan = await h.place()
    assert h.ivr is not None
    await h.ivr.next("StasisStart", timeout=8)
    request = await h.ivr.next("ChannelHangupRequest", timeout=8)
    await h.ivr.next("StasisEnd")
    call = h.sim.calls[chan["id"]]
    answer = next(e for e in h.sim.bus.emitted if e["type"] == "Dial" and e["dialstatus"] == "ANSWER")
    # answered, 2.0 s of greeting, 0.2 s before it, the 0.5 s beep, then 1.5 s of message
    assert at(request) - at(answer) == pytest.approx(0.2 + 2.0 + 0.5 + 1.5, abs=0.25)
    assert call.hungup_by == "caller" and call.hangup_cause == 16


async def test_a_phone_that_answers_in_silence_is_a_machine_for_app_amd(simulator, session, config):
    """No script (today's phone: answers, sends silence): INITIALSILENCE-2500-2500, app_amd's verdict."""
    h = await start(simulator, session, config)
    chan = await h.place(number="+15557777")
    assert h.ivr is not None
    start_event = await h.ivr.next("StasisStart", timeout=8)
    assert start_event["args"] == ["outbound", "MACHINE", "att-7"]
    assert h.sim.calls[chan["id"]].variable("AMDCAUSE") == "INITIALSILENCE-2500-2500"


async def test_short_noises_leave_app_amd_not_sure(simulator, session, config):
    """Blips shorter than a word keep resetting the silence and never start a greeting: TOOLONG-5000."""
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome="answer", after=0.2, greeting=[0.06, 0.5] * 12)})
    await h.place()
    assert h.ivr is not None
    start_event = await h.ivr.next("StasisStart", timeout=10)
    assert start_event["args"] == ["outbound", "NOTSURE", "att-7"]
    cause = next(e for e in h.campaign.events if e.get("variable") == "AMDCAUSE")
    assert cause["value"] == "TOOLONG-5000"


async def test_controller_down_hangs_up_a_rescue_call_without_playing_anything(simulator, session, config):
    """Stasis() fails (no ivr app): [ivr-outbound] plays nothing and hangs up; the campaign is told why."""
    h = await start(simulator, session, config, controller=False)
    h.sim.callees.put({NUMBER: script(outcome="answer", after=0.2)})
    chan = await h.place()
    destroyed = await h.campaign.next("ChannelDestroyed", timeout=8)
    varsets = [(e["variable"], e["value"]) for e in h.seen(chan["id"]) if e["type"] == "ChannelVarset"]
    assert ("STASISSTATUS", "FAILED") in varsets and ("IVR_OUTBOUND_RESULT", "ivr_unavailable") in varsets
    apps = [e["dialplan_app"] for e in h.seen(chan["id"]) if e["type"] == "ChannelDialplan"]
    assert "Queue" not in apps and "Playback" not in apps and apps[-1] == "Hangup"
    assert destroyed["cause"] == 16 and h.sim.calls[chan["id"]].prompts == []


async def test_amd_does_not_exist_without_amd_conf(simulator, session, config):
    """app_amd declines to load without amd.conf: AMD() is an unknown application, the call ends there."""
    config.amd = None
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome="answer", after=0.2)})
    chan = await h.place()
    await h.campaign.next("ChannelDestroyed", timeout=5)
    assert h.ivr is not None and h.ivr.of_type("StasisStart") == []
    assert "AMDSTATUS" not in [e.get("variable") for e in h.seen(chan["id"])]


# -- subscribing too late ----------------------------------------------------------------------------
async def test_subscribing_to_a_channel_already_gone_is_422(simulator, session, config):
    """resource_applications.c: STASIS_ASR_EVENT_SOURCE_NOT_FOUND -> 422 "Event source does not exist"."""
    h = await start(simulator, session, config)
    h.sim.callees.put({NUMBER: script(outcome="busy", after=0.0)})
    chan = await h.place(subscribe=False)
    await h.sim.calls[chan["id"]].wait_ended()
    status, body = await h.ari.call("POST", f"/applications/{CAMPAIGN}/subscription",
                                    eventSource=f"channel:{chan['id']}")
    assert (status, body) == (422, {"message": "Event source does not exist"})


# -- the control API and the config file ----------------------------------------------------------
async def test_callees_are_set_through_the_control_api_and_bounded(simulator, session, config):
    config.callee_table_max = 2
    h = await start(simulator, session, config)
    url = f"{h.running.base_url}/sim/callees"
    two = {"callees": {NUMBER: {"outcome": "busy", "after": 0.3},
                       "+15550103": {"outcome": "answer", "answerer": "machine", "greeting": [2.5]}}}
    async with session.post(url, json=two) as resp:
        assert (resp.status, await resp.json()) == (200, {"count": 2})
    async with session.post(url, json={"callees": {"+15550104": {"outcome": "busy"}}}) as resp:
        assert resp.status == 413
    async with session.post(url, json={"callees": {NUMBER: {"outcome": "maybe"}}}) as resp:
        assert resp.status == 400 and "outcome" in (await resp.json())["message"]
    async with session.post(url, json={"callees": {NUMBER: {"ring": 3}}}) as resp:
        assert resp.status == 400
    async with session.get(url) as resp:
        listed = await resp.json()
    assert listed["max"] == 2 and listed["callees"]["+15550103"]["greeting"] == [2.5]
    assert listed["callees"][NUMBER]["outcome"] == "busy"
    chan = await h.place()
    destroyed = await h.campaign.next("ChannelDestroyed")
    assert destroyed["cause"] == 17 and destroyed["channel"]["id"] == chan["id"]
    async with session.delete(f"{url}/{NUMBER}") as resp:
        assert resp.status == 204
    async with session.delete(f"{url}/{NUMBER}") as resp:
        assert resp.status == 404
    async with session.delete(url) as resp:
        assert resp.status == 204
    assert h.sim.callees.scripts == {}


async def test_callees_from_a_config_file(simulator, session, config, tmp_path):
    path = tmp_path / "callees.json"
    path.write_text(json.dumps({NUMBER: {"outcome": "congestion", "after": 0.2}}))
    load_callees(config, path)
    h = await start(simulator, session, config)
    await h.place()
    destroyed = await h.campaign.next("ChannelDestroyed")
    assert (destroyed["cause"], destroyed["tech_cause"]) == (34, 503)


# -- app_amd's algorithm, frame by frame -----------------------------------------------------------------
def run_amd(samples: Any, settings: AmdSettings | None = None) -> tuple[AmdResult, int]:
    """Feed 20 ms frames (silence after the samples): the verdict and after how many ms."""
    analysis = AmdAnalysis(settings or AmdSettings())
    frames = [samples[i:i + 160] for i in range(0, len(samples), 160)]
    for n in range(1000):
        frame = frames[n] if n < len(frames) else type(samples)("h", bytes(320))
        result = analysis.feed(frame)
        if result is not None:
            return result, (n + 1) * 20
    raise AssertionError("no verdict")


def test_app_amd_verdicts_on_greetings():
    hello = greeting_audio(script(greeting=[0.6], greeting_delay=0.2))
    assert run_amd(hello) == (AmdResult("HUMAN", "HUMAN-800-800"), 1600)
    words = greeting_audio(script(greeting=[0.3, 0.2, 0.3, 0.2, 0.3], greeting_delay=0.2))
    assert run_amd(words)[0] == AmdResult("MACHINE", "MAXWORDS-3-2")
    silent = greeting_audio(script(greeting=[0.01], greeting_delay=0.0))[:0]
    assert run_amd(silent) == (AmdResult("MACHINE", "INITIALSILENCE-2500-2500"), 2500)
    long_word = greeting_audio(script(greeting=[6.0], greeting_delay=0.2))
    # the total analysis time (5000) ends a 6 s word before maximum_word_length (5000) can
    assert run_amd(long_word, AmdSettings(greeting=9000))[0] == AmdResult("NOTSURE", "TOOLONG-5000")
    longer = AmdSettings(greeting=9000, total_analysis_time=9000, maximum_word_length=3000)
    assert run_amd(long_word, longer) == (AmdResult("MACHINE", "MAXWORDLENGTH-3000"), 3200)


def test_amd_arguments_override_amd_conf_in_app_amd_order():
    base = AmdSettings()
    assert base.with_args("") == base
    assert base.with_args("2000,,1000") == AmdSettings(initial_silence=2000, after_greeting_silence=1000)
    with pytest.raises(ValueError):
        base.with_args("2500,1500,800,5000,100,50,2,256,5000,beep")
