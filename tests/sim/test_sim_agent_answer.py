"""Which agent answered a queued caller: real Asterisk 22 and the simulator agree.

The agent page learns who answered from the ``ivr`` app's own events for
the caller's channel (``ivr.web.routing``). These tests run that very code
over the recorded ``continue-to-queue*`` traces and over the simulator's
replay of them, and check the evidence the choice rests on:

- with a subscription to the caller's channel, ``Dial`` ``ANSWER`` names the
  member interface ~1 s after ``StasisEnd`` (the agent rang for 1 s), before
  ``MEMBERINTERFACE``, the gosub's ``IVR_AGENT_CHANNEL`` and ``BRIDGEPEER``;
- without it (a dialplan call continued without subscribing) the app hears
  nothing after ``StasisEnd``;
- the gosub's ``UserEvent`` and the bridge events reach only the
  ``subscribeAll`` monitor app, never the ordinary app.
"""

from __future__ import annotations

import pytest
from sim_traces import load_trace
from test_sim_conformance import agent1_answers, assert_same, run_scenario

from ivr.ari.event_types import parse_event
from ivr.web.routing import QueueWatch, answer_in

SUBSCRIBED = ["continue-to-queue", "continue-to-queue-gosub", "continue-to-queue-nosub-ari-originated"]


def watch(events: list[dict], time_key: str) -> tuple[QueueWatch, list[tuple[str, float]]]:
    """Feed the agent page's QueueWatch; return it and (change kind, time) in order."""
    queue_watch, changes = QueueWatch(), []
    for raw in events:
        for change in queue_watch.handle(parse_event({k: v for k, v in raw.items() if not k.startswith("_")}),
                                         raw[time_key]):
            changes.append((change.kind, raw[time_key]))
    return queue_watch, changes


def first(events: list[dict], predicate) -> dict:
    return next(e for e in events if predicate(e))


def is_queue_answer(event: dict) -> bool:
    """Dial ANSWER of a queue member for our caller (not the Local channel's own originate)."""
    return event["type"] == "Dial" and event["dialstatus"] == "ANSWER" and "caller" in event


def answer_evidence(events: list[dict], time_key: str) -> dict[str, float]:
    """Seconds after the caller's StasisEnd at which each signal of the answering agent arrived."""
    caller = first(events, is_queue_answer)["caller"]["id"]
    end = first(events, lambda e: e["type"] == "StasisEnd" and e["channel"]["id"] == caller)[time_key]
    signals = {
        "Dial ANSWER": is_queue_answer,
        "MEMBERINTERFACE": lambda e: e["type"] == "ChannelVarset" and e["variable"] == "MEMBERINTERFACE",
        "BRIDGEPEER": lambda e: e["type"] == "ChannelVarset" and e["variable"] == "BRIDGEPEER" and e["value"],
    }
    return {name: first(events, test)[time_key] - end for name, test in signals.items()}


@pytest.mark.parametrize("name", SUBSCRIBED)
def test_recorded_asterisk_names_the_answering_member(name, shared):
    trace = load_trace(shared / "traces", name)
    queue_watch, changes = watch(trace.events, "_rx_t")
    [call] = queue_watch.calls.values()
    assert (call.queue, call.interface) == ("save-specialists", "Local/agent1@agent-sim")
    assert call.agent_channel is not None and call.agent_channel.startswith("Local/agent1@agent-sim-")
    kinds = [kind for kind, _ in changes]
    assert kinds[0] == "joined" and "ringing" in kinds and kinds.count("answered") == 1
    evidence = answer_evidence(trace.events, "_rx_t")
    assert evidence["Dial ANSWER"] == pytest.approx(1.0, abs=0.05)      # agent1 rings 1 s, then answers
    assert evidence["Dial ANSWER"] <= evidence["MEMBERINTERFACE"] <= evidence["BRIDGEPEER"]
    answered_at = dict((k, t) for k, t in changes)["answered"]
    dial_answer = first(trace.events, is_queue_answer)
    assert answered_at == dial_answer["_rx_t"]                          # the first signal is the one used


def test_recorded_asterisk_without_subscription_says_nothing(shared):
    trace = load_trace(shared / "traces", "continue-to-queue-nosub")
    assert trace.events[-1]["type"] == "StasisEnd"
    queue_watch, changes = watch(trace.events, "_rx_t")
    assert changes == [] and queue_watch.calls == {}


def test_gosub_user_event_reaches_only_the_monitor_app(shared):
    ivr = load_trace(shared / "traces", "continue-to-queue-gosub")
    monitor = load_trace(shared / "traces", "continue-to-queue-gosub", app="ivr-monitor")
    assert not [e for e in ivr.events if e["type"] in ("ChannelUserevent", "ChannelEnteredBridge")]
    user_event = first(monitor.events, lambda e: e["type"] == "ChannelUserevent")
    assert user_event["eventname"] == "IvrAgentConnected"
    assert user_event["channel"]["name"].startswith("Local/agent1@agent-sim-")
    # the gosub's MASTER_CHANNEL() write does reach the ordinary app, but after Dial ANSWER
    agent_var = first(ivr.events, lambda e: e["type"] == "ChannelVarset" and e["variable"] == "IVR_AGENT_CHANNEL")
    dial_answer = first(ivr.events, is_queue_answer)
    assert dial_answer["_rx_t"] < agent_var["_rx_t"] and agent_var["value"] == dial_answer["peer"]["name"]


@pytest.mark.parametrize("name", SUBSCRIBED)
async def test_simulator_replay_gives_the_same_answer(name, shared, trace_config, simulator, session):
    # at half speed: the answer's time is checked to 0.1 s of simulated time, which at 10x was 10 ms of
    # real time, less than one stall of a busy CI machine (CI measured 1.112 s for 1.004 s)
    trace, result, alignment, _ = await run_scenario(name, shared, trace_config, simulator, session,
                                                     scale=0.5, prepare=agent1_answers)
    assert_same(alignment, result)
    queue_watch, changes = watch(result.events, "_t")
    [call] = queue_watch.calls.values()
    assert (call.queue, call.interface) == ("save-specialists", "Local/agent1@agent-sim")
    assert [k for k, _ in changes if k != "ringing"] == [k for k, _ in watch(trace.events, "_rx_t")[1]
                                                          if k != "ringing"]
    recorded, simulated = answer_evidence(trace.events, "_rx_t"), answer_evidence(result.events, "_t")
    for signal, seconds in recorded.items():
        assert simulated[signal] == pytest.approx(seconds, abs=0.1), signal
    answer = answer_in(parse_event({k: v for k, v in first(result.events, is_queue_answer).items()
                                    if not k.startswith("_")}))
    assert answer is not None and answer.interface == "Local/agent1@agent-sim"


async def test_a_person_picking_up_answers_at_once(trace_config, simulator, session, shared):
    """SimCall.agent_answer: the member named answers now, the other gets CANCEL, as with answer_after."""
    from sim_client import Ari

    running = await simulator(trace_config(1.0))
    queue = running.sim.queues["save-specialists"]
    queue.answer_with(None)
    ari = Ari(running, session)
    events = await ari.events()
    call = running.sim.inbound_call(ani="+15550100", exten="8001")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    await ari.call("POST", f"/channels/{cid}/variable", variable="IVR_QUEUE", value="save-specialists")
    await ari.call("POST", "/applications/ivr/subscription", eventSource=f"channel:{cid}")
    await ari.call("POST", f"/channels/{cid}/continue", context="ivr-transfer", extension="queue", priority=1)
    await events.next("Dial", lambda e: e["dialstatus"] == "RINGING")
    assert sorted(call.ringing_agents()) == ["Local/agent0@agent-sim", "Local/agent1@agent-sim"]
    assert not call.agent_answer("PJSIP/nobody")
    assert call.agent_answer("Local/agent0@agent-sim")
    answer = await events.next("Dial", lambda e: e["dialstatus"] == "ANSWER", timeout=2)
    assert answer["dialstring"] == "Local/agent0@agent-sim"
    cancel = await events.next("Dial", lambda e: e["dialstatus"] == "CANCEL", timeout=2)
    assert cancel["peer"]["name"].startswith("Local/agent1@agent-sim-")
    assert call.ringing_agents() == [] and call.queue.member_interface == "Local/agent0@agent-sim"
    await ari.call("DELETE", f"/channels/{cid}")
    await call.wait_ended()
