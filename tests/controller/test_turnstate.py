"""The controller's turn reducer (`ivr.controller.turnstate`) driven directly: a list of inputs
in, the outputs compared, time passed in by the test. No simulator, no Redis, no sleeps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.controller import notices as note
from ivr.controller import turnstate as ts
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.speech.turn import BargeIn, TurnEnded

TIMEOUTS = act.Timeouts(noinput=5.0, end_silence=0.8, max_speech=10.0, interdigit=3.0)


def listen(mode: str = "digits", speech: bool = False, **fields) -> act.Listen:
    return act.Listen(mode=mode, language="en", min_digits=4, max_digits=8, terminator="#", speech=speech,
                      timeouts=TIMEOUTS, **fields)


def play(*keys: str, barge_in: bool = True) -> act.Play:
    return act.Play(prompts=[act.PromptRef(key=k) for k in keys], language="en", barge_in=barge_in)


def posts(*ids: str) -> tuple[tuple[str, str], ...]:
    return tuple((i, f"sound:{i}") for i in ids)


def run(inputs: list[tuple[float, ts.Input]], state: ts.TurnState | None = None):
    """Feed (time, input) pairs; the final state and every output, each with its input's time."""
    state = state or ts.TurnState()
    outputs: list[tuple[float, ts.Output]] = []
    for now, item in inputs:
        state, out = ts.step(state, item, now)
        outputs += [(now, o) for o in out]
    return state, outputs


def of(outputs, kind) -> list:
    return [o for _, o in outputs if isinstance(o, kind)]


def asked(*ids: str, barge_in: bool = True, at: float = 0.0) -> tuple[float, ts.Input]:
    """A step that plays `ids` then listens for digits."""
    return at, ts.Stepped((play(*ids, barge_in=barge_in), listen()), (posts(*ids),))


def test_the_prompts_are_posted_in_order_and_noinput_starts_only_when_the_last_one_ends():
    state, out = run([asked("pb-1", "pb-2")])
    assert [o.playback_id for o in of(out, ts.PostPrompt)] == ["pb-1", "pb-2"]
    assert all(o.timer is None for o in of(out, ts.SetTimer)), "no noinput while prompts play"
    state, out = run([(4.0, ts.PromptEnded("pb-1"))], state)
    assert out == []
    state, out = run([(7.0, ts.PromptEnded("pb-2"))], state)
    [timer] = [o.timer for o in of(out, ts.SetTimer)]
    assert timer is not None and timer.kind == "noinput" and timer.deadline == 7.0 + TIMEOUTS.noinput
    state, out = run([(12.0, ts.TimerFired(timer.generation))], state)
    assert of(out, ts.Deliver) == [ts.Deliver(ev.NoInput())]
    state, out = run([(12.5, ts.TimerFired(timer.generation))], state)
    assert out == [], "the timer fires once"


def test_a_stale_timer_delivers_nothing():
    state, out = run([asked("pb-1"), (2.0, ts.PromptEnded("pb-1"))])
    [old] = [o.timer for o in of(out, ts.SetTimer) if o.timer]
    state, _ = run([(3.0, ts.KeyPressed("1")), (3.1, ts.Stepped((), collecting=True))], state)
    _, out = run([(7.0, ts.TimerFired(old.generation))], state)
    assert out == []


def test_a_key_during_a_prompt_stops_it_queued_first_and_is_delivered():
    state, out = run([asked("pb-1", "pb-2", "pb-3"), (1.0, ts.KeyPressed("4"))])
    assert of(out, ts.StopPrompts) == [ts.StopPrompts(("pb-3", "pb-2", "pb-1"))], "queued ones first"
    assert of(out, ts.Notify) == [ts.Notify(note.KeyPressed("4"))]
    assert out[-1] == (1.0, ts.Deliver(ev.Dtmf(digits="4")))
    assert state.playing == () and state.timer is None and state.heard_input


def test_after_a_key_the_interdigit_timer_waits_for_the_next_and_its_expiry_ends_the_number():
    state, _ = run([asked("pb-1"), (1.0, ts.KeyPressed("4"))])
    state, out = run([(1.1, ts.Stepped((), collecting=True))], state)  # the engine holds the key, no actions
    [timer] = [o.timer for o in of(out, ts.SetTimer)]
    assert timer is not None and timer.kind == "interdigit" and timer.deadline == 1.1 + TIMEOUTS.interdigit
    _, out = run([(4.1, ts.TimerFired(timer.generation))], state)
    assert of(out, ts.Deliver) == [ts.Deliver(ev.NoInput())]


def test_each_key_up_to_the_terminator_goes_to_the_engine():
    state, _ = run([asked("pb-1"), (1.0, ts.PromptEnded("pb-1"))])
    delivered = []
    for i, key in enumerate("1234#"):
        state, out = run([(2.0 + i, ts.KeyPressed(key))], state)
        delivered += [o.event for o in of(out, ts.Deliver)]
        state, _ = run([(2.1 + i, ts.Stepped((), collecting=key != "#"))], state)
    assert delivered == [ev.Dtmf(digits=k) for k in "1234#"]


def test_a_key_during_a_prompt_that_forbids_barge_in_is_discarded():
    state, out = run([asked("pb-1", barge_in=False), (1.0, ts.KeyPressed("4"))])
    assert not of(out, ts.StopPrompts) and not of(out, ts.Deliver)
    assert [p.playback_id for p in state.playing] == ["pb-1"]


def test_keys_count_only_while_a_running_call_listens():
    _, out = run([(0.0, ts.Stepped((play("pb-1"),), (posts("pb-1"),))), (1.0, ts.KeyPressed("1"))])
    assert not of(out, ts.Deliver), "no Listen"
    _, out = run([(0.0, ts.Stepped((listen(),), running=False)), (1.0, ts.KeyPressed("1"))])
    assert not of(out, ts.Deliver), "the call has ended"


def test_hanging_up_mid_prompt_ends_everything():
    state, out = run([asked("pb-1", "pb-2"), (1.0, ts.Gone())])
    assert out[-1] == (1.0, ts.SetTimer(None)) and state.gone
    _, out = run([(2.0, ts.PromptEnded("pb-1")), (2.5, ts.KeyPressed("1")), (3.0, ts.PromptEnded("pb-2")),
                  asked("pb-3", at=4.0), (9.0, ts.TimerFired(state.generation))], state)
    assert out == []


def test_transfer_and_hangup_wait_for_the_prompts_before_them():
    transfer = act.Transfer(queue="sales", reason="asked", priority=1)
    state, out = run([(0.0, ts.Stepped((play("pb-1"), transfer), (posts("pb-1"),)))])
    assert not of(out, ts.Transfer) and state.deferred == (transfer,)
    state, out = run([(3.0, ts.PromptEnded("pb-1"))], state)
    assert of(out, ts.Transfer) == [ts.Transfer(transfer)] and state.gone
    _, out = run([(0.0, ts.Stepped((act.Hangup(outcome="done"),)))])
    assert of(out, ts.Hangup) == [ts.Hangup(act.Hangup(outcome="done"))]


def test_the_voice_stops_a_prompt_that_allows_barge_in_and_its_answer_is_delivered():
    with_listener = ts.TurnState(listener=True)
    state, out = run([(0.0, ts.Stepped((play("pb-1", "pb-2"), listen("choices", speech=True)),
                                       (posts("pb-1", "pb-2"),)))], with_listener)
    assert of(out, ts.StartTurn), "a barge-in listener hears the caller during the prompts"
    state, out = run([(1.0, ts.SpeechBegan(BargeIn(at=1.0)))], state)
    assert of(out, ts.StopPrompts) == [ts.StopPrompts(("pb-2", "pb-1"))]
    heard = ev.Speech(text="claims", confidence=0.9)
    _, out = run([(2.0, ts.SpeechEnded(TurnEnded(event=heard, at=2.0)))], state)
    assert out[-1] == (2.0, ts.Deliver(heard))


def test_a_record_listener_starts_its_turn_when_the_prompts_end_and_talking_holds_noinput():
    state, out = run([(0.0, ts.Stepped((play("pb-1"), listen("choices", speech=True)), (posts("pb-1"),)))],
                     ts.TurnState(listener=False))
    assert not of(out, ts.StartTurn)
    state, out = run([(2.0, ts.PromptEnded("pb-1"))], state)
    assert of(out, ts.StartTurn) and state.timer is not None
    state, out = run([(3.0, ts.Talking())], state)
    assert state.timer is None
    state, out = run([(4.0, ts.Talked())], state)
    assert state.timer is not None and state.timer.deadline == 4.0 + TIMEOUTS.noinput


def test_noinput_waits_a_little_for_a_recogniser_behind_then_fires():
    state, out = run([(0.0, ts.Stepped((listen("choices", speech=True),)))], ts.TurnState(listener=True))
    now, delivered = 5.0, []
    while not delivered:
        timer = state.timer
        assert timer is not None and now < 5.0 + ts.HEARING_GRACE + 0.5
        state, out = run([(now, ts.TimerFired(timer.generation, behind=True))], state)
        delivered = of(out, ts.Deliver)
        now += ts.HEARING_STEP
    assert delivered == [ts.Deliver(ev.NoInput())] and now >= 5.0 + ts.HEARING_GRACE


def test_a_backend_wait_arms_fillers_when_silent():
    call = act.CallBackend(name="lookup", args={}, timeout=5.0)
    _, out = run([(0.0, ts.Stepped((call,), waiting_backend=True))])
    assert of(out, ts.StartBackend) == [ts.StartBackend(call)] and of(out, ts.ArmFiller)
    state, out = run([(0.0, ts.Stepped((play("pb-1"), call), (posts("pb-1"),), waiting_backend=True))])
    assert not of(out, ts.ArmFiller), "the prompt is no silence"
    _, out = run([(2.0, ts.PromptEnded("pb-1"))], state)
    assert of(out, ts.ArmFiller)


# --- properties -----------------------------------------------------------------------------

IDS = st.sampled_from(["pb-1", "pb-2", "pb-3"])
ACTIONS = st.lists(st.one_of(
    st.builds(lambda barge: play("x", barge_in=barge), st.booleans()),
    st.builds(lambda mode, speech: listen(mode, speech=speech), st.sampled_from(["digits", "choices"]), st.booleans()),
    st.just(act.CallBackend(name="lookup", args={}, timeout=5.0)),
    st.just(act.Transfer(queue="q", reason="r", priority=1)),
    st.just(act.Hangup(outcome="done"))), max_size=4)


@st.composite
def stepped(draw) -> ts.Stepped:
    actions = draw(ACTIONS)
    plays = tuple(posts(*draw(st.lists(IDS, min_size=1, max_size=2))) for a in actions if isinstance(a, act.Play))
    return ts.Stepped(tuple(actions), plays, draw(st.booleans()), draw(st.booleans()), draw(st.booleans()))


INPUTS = st.one_of(
    stepped(),
    st.builds(ts.PromptEnded, IDS),
    st.builds(ts.KeyPressed, st.sampled_from("0123456789#*")),
    st.builds(ts.Talking), st.builds(ts.Talked),
    st.builds(ts.SpeechBegan, st.builds(BargeIn, st.floats(0, 10))),
    st.builds(ts.SpeechEnded, st.builds(TurnEnded, st.just(ev.NoInput()), st.floats(0, 10))),
    st.builds(ts.TimerFired, st.integers(0, 40), st.booleans()),
    st.builds(ts.ListenerSet, st.sampled_from([None, True, False])),
    st.builds(ts.Posting, IDS, st.just("sound:filler"), st.just("en"), st.booleans()),
    st.builds(ts.Gone))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1000), INPUTS), max_size=30))
def test_random_inputs_never_crash_and_nothing_plays_after_the_caller_left(inputs):
    state, left = ts.TurnState(), False
    for now, item in inputs:
        state, out = ts.step(state, item, now)
        if left:
            assert out == [], "the call has left: no more outputs"
        if state.gone:
            left = True
        for output in out:
            if isinstance(output, ts.SetTimer) and output.timer is not None:
                assert output.timer.deadline >= now, "timers run forward on the injected clock"
        if state.timer is not None:
            assert state.timer.generation == state.generation, "only the current timer can fire"
