"""The speech listener's turn bookkeeping (`ivr.controller.listener_turns`) driven directly: inputs in,
outputs compared. No worker, no RTP socket, no event loop. And the controller's reducer states
(this one and `turnstate.TurnState`) are plain data: they round-trip through JSON."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from ivr.controller import listener_turns as lt
from ivr.controller import turnstate as ts
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.speech.turn import BargeIn, TurnEnded

TIMEOUTS = act.Timeouts(noinput=5.0, end_silence=0.8, max_speech=10.0, interdigit=3.0)
LISTEN = act.Listen(mode="choices", language="en", speech=True, timeouts=TIMEOUTS)
ENDED = TurnEnded(event=ev.Speech(text="claims", confidence=0.9), at=2.0)


def run(inputs: list[lt.Input], state: lt.Turns | None = None) -> tuple[lt.Turns, list[lt.Output]]:
    """Feed the inputs in order; the final state and every output."""
    state = state or lt.Turns()
    outputs: list[lt.Output] = []
    for item in inputs:
        state, out = lt.step(state, item)
        outputs += out
    return state, outputs


def test_a_turn_starts_in_the_worker_with_its_pre_roll_counted_as_unheard():
    state, out = run([lt.Start(LISTEN, pre_rolled=3)])
    assert out == [lt.SendStart(LISTEN)]
    assert state == lt.Turns(generation=1, active=True, unheard=3)
    assert lt.behind(state) and lt.feeding(state) == 1


def test_audio_of_a_running_turn_is_queued_and_unheard_until_the_worker_answers_for_it():
    state, out = run([lt.Start(LISTEN), lt.Packet(b"a"), lt.Packet(b"b")])
    assert out[1:] == [lt.QueueAudio(b"a"), lt.QueueAudio(b"b")] and state.unheard == 2 and lt.behind(state)
    state, _ = run([lt.Fed(1, 2)], state)
    assert state.unheard == 0 and not lt.behind(state)
    state, _ = run([lt.Fed(1, 5)], state)
    assert state.unheard == 0, "never below zero"


def test_an_older_turns_late_batch_is_not_taken_off_the_new_turns_count():
    state, _ = run([lt.Start(LISTEN), lt.Packet(b"a"), lt.Cancel(), lt.Start(LISTEN), lt.Packet(b"b")])
    assert state.generation == 3 and state.unheard == 1
    state, _ = run([lt.Fed(1, 1)], state)
    assert state.unheard == 1 and lt.behind(state), "the new turn's packet is still unheard"
    state, _ = run([lt.Fed(3, 1)], state)
    assert state.unheard == 0


def test_audio_between_turns_is_held_as_pre_roll_unless_a_sensitive_turn_forbids_it():
    _, out = run([lt.Packet(b"before")])
    assert out == [lt.HoldAudio(b"before")]
    state, out = run([lt.KeepPreRoll(False), lt.Packet(b"4111")])
    assert out == [lt.DropPreRoll()], "a card number said aloud is dropped, and what was held with it"
    state, out = run([lt.KeepPreRoll(True), lt.Packet(b"after")], state)
    assert out == [lt.HoldAudio(b"after")] and state.pre_roll


def test_a_sensitive_turns_pre_roll_setting_outlives_the_turns_in_between():
    state, _ = run([lt.KeepPreRoll(False), lt.Start(LISTEN), lt.Cancel()])
    _, out = run([lt.Packet(b"x")], state)
    assert out == [], "off until the next turn that is not sensitive says so"


def test_only_the_current_turn_is_heard_and_its_end_leaves_none_running():
    state, _ = run([lt.Start(LISTEN), lt.Cancel(), lt.Start(LISTEN)])
    assert state.generation == 3
    _, out = run([lt.Heard(1, BargeIn(at=1.0)), lt.Heard(2, ENDED)], state)
    assert out == [], "outputs for audio of an older turn are stale"
    state, out = run([lt.Heard(3, BargeIn(at=1.0)), lt.Heard(3, ENDED)], state)
    assert out == [lt.Deliver(3, BargeIn(at=1.0)), lt.Deliver(3, ENDED)]
    assert not state.active and state.generation == 3 and lt.feeding(state) is None


def test_cancel_moves_on_only_a_running_turn():
    state, out = run([lt.Cancel()])
    assert out == [] and state == lt.Turns()
    state, out = run([lt.Start(LISTEN), lt.Cancel()])
    assert out[-1] == lt.SendCancel() and state.generation == 2 and not state.active


def test_the_end_of_the_call_always_tells_the_worker_and_outdates_every_answer():
    state, out = run([lt.EndCall()])
    assert out == [lt.SendEndCall()] and state.generation == 1
    state, out = run([lt.Start(LISTEN), lt.Packet(b"a"), lt.EndCall(), lt.Heard(1, ENDED)])
    assert out[-1] == lt.SendEndCall() and state.generation == 2 and not lt.behind(state)


def test_a_refusing_or_failing_worker_ends_the_turn_without_moving_the_generation():
    for trouble in (lt.Refused(1), lt.SendFailed(1)):
        state, out = run([lt.Start(LISTEN), trouble])
        assert out == [lt.SendStart(LISTEN)] and state == lt.Turns(generation=1, active=False)
        _, out = run([lt.Packet(b"a")], state)
        assert out == [lt.HoldAudio(b"a")], "audio goes back to the pre-roll"


def test_an_older_turns_trouble_leaves_the_new_turn_running():
    for trouble in (lt.Refused(1), lt.SendFailed(1)):
        state, _ = run([lt.Start(LISTEN), lt.Cancel(), lt.Start(LISTEN), trouble])
        assert state.active and state.generation == 3, "a refusal for turn 1 arriving during turn 3"


# --- properties -----------------------------------------------------------------------------

LISTENER_INPUTS = st.one_of(
    st.builds(lt.Start, st.just(LISTEN), st.integers(0, 15)),
    st.builds(lt.Cancel), st.builds(lt.EndCall), st.builds(lt.Refused, st.integers(0, 6)), st.builds(lt.SendFailed, st.integers(0, 6)),
    st.builds(lt.Heard, st.integers(0, 8), st.sampled_from([BargeIn(at=1.0), ENDED])),
    st.builds(lt.Packet, st.binary(max_size=4)),
    st.builds(lt.Fed, st.none() | st.integers(0, 6), st.integers(0, 20)),
    st.builds(lt.KeepPreRoll, st.booleans()))


@settings(max_examples=300, deadline=None)
@given(st.lists(LISTENER_INPUTS, max_size=40))
def test_random_inputs_keep_the_bookkeeping_consistent(inputs):
    state = lt.Turns()
    for item in inputs:
        before = state
        state, out = lt.step(state, item)
        assert state.generation >= before.generation and state.unheard >= 0
        assert not lt.behind(state) or state.active
        assert (lt.feeding(state) is None) == (not state.active)
        for output in out:
            if isinstance(output, lt.Deliver):
                assert output.generation == before.generation, "only the current turn is delivered"
            if isinstance(output, lt.QueueAudio):
                assert state.active and state.unheard == before.unheard + 1
            if isinstance(output, lt.HoldAudio):
                assert not state.active and state.pre_roll
        if isinstance(item, (lt.Start, lt.Cancel, lt.EndCall)) and out:
            assert state.generation == before.generation + 1, "whatever tells the worker moves the turn on"
        assert _through_json(state) == state


def _through_json(state: lt.Turns) -> lt.Turns:
    return lt.Turns(**json.loads(json.dumps(dataclasses.asdict(state))))


TURNSTATE_INPUTS = st.one_of(
    st.builds(ts.Stepped, st.tuples(st.sampled_from([
        act.Play(prompts=[act.PromptRef(key="k")], language="en"), LISTEN,
        act.CallBackend(name="lookup", args={"n": 1}, timeout=5.0),
        act.Transfer(queue="q", reason="r", priority=1), act.Hangup(outcome="done")])),
        st.just(((("pb-1", "sound:pb-1"),),)), st.booleans(), st.booleans(), st.booleans()),
    st.builds(ts.PromptEnded, st.just("pb-1")),
    st.builds(ts.KeyPressed, st.sampled_from("12#")),
    st.builds(ts.TimerFired, st.integers(0, 10), st.booleans()),
    st.builds(ts.ListenerSet, st.sampled_from([None, True, False])),
    st.builds(ts.Talking), st.builds(ts.Talked), st.builds(ts.Gone))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), TURNSTATE_INPUTS), max_size=12))
def test_every_turn_state_the_reducer_reaches_round_trips_through_json(inputs):
    """What a call's prompts and timers are could be written down and read back (as the engine's state can)."""
    adapter = TypeAdapter(ts.TurnState)
    state = ts.TurnState()
    for now, item in inputs:
        state, _ = ts.step(state, item, now)
        assert adapter.validate_json(adapter.dump_json(state)) == state
