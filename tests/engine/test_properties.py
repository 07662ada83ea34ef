"""Whatever a caller does, the engine answers, never crashes and never goes silent."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr import engine
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.state import CallState
from ivr.flow.catalog import load_flow_set
from ivr.flow.validate import DEAD_AIR_LIMIT, REPROMPT_DELAY

ROOT = Path(__file__).resolve().parents[2]
SHIPPED, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
FIXTURE, _ = load_flow_set(Path(__file__).parent / "fixture" / "flows", Path(__file__).parent / "fixture" / "prompts")

words = st.sampled_from(["pay", "claim", "agent", "yes", "no", "cancel my policy", "payment", "one two three",
                         "四五六", "缴费", "", "banana", "double oh seven", "try again", "too expensive"])
speech = st.builds(ev.Speech, text=words, confidence=st.floats(0, 1),
                   alternatives=st.lists(st.builds(ev.Hypothesis, text=words, confidence=st.floats(0, 1)), max_size=3))
dtmf = st.builds(ev.Dtmf, digits=st.text(alphabet="0123456789*#", min_size=1, max_size=9))
backend = st.builds(ev.BackendResult, name=st.sampled_from(["caller.identify", "caller.verify", "policy.summary",
                                                            "payment.retry", "payment.failure", "other"]),
                    outcome=st.sampled_from(["ok", "declined", "error", "timeout", "locked", "flagged", "weird"]),
                    data=st.fixed_dictionaries({}, optional={"attempts_left": st.integers(-1, 3),
                                                            "amount": st.floats(0, 1e6), "first_year": st.booleans()}))
events = st.one_of(speech, dtmf, backend, st.just(ev.NoInput()), st.just(ev.NoMatch()), st.just(ev.Hangup()))


def _check(release, flow: str, sequence: list[ev.Event]) -> None:
    result = engine.start(release, flow, "prop", call={"ani": "+15550100"})
    for event in sequence:
        state = result.state
        _assert_not_silent(result)
        result = engine.step(release, state, event)
        restored = CallState.model_validate_json(result.state.model_dump_json())
        assert restored.model_dump(mode="json") == result.state.model_dump(mode="json")
        if state.status != "running":
            assert result.actions == []
    _assert_not_silent(result)


def _assert_not_silent(result: engine.Step) -> None:
    """A running call always waits for something: the caller or a backend. No transfer starts
    unannounced, and no turn waits long enough in silence to leave the caller in dead air."""
    state = result.state
    if state.status == "running":
        assert state.pending is not None, f"call left in silence at {state.flow}.{state.node}"
    else:
        assert state.pending is None
    for index, action in enumerate(result.actions):
        if isinstance(action, act.Transfer):
            assert state.status == "transferred" and state.result["queue"]
            assert index and isinstance(result.actions[index - 1], act.Play), f"silent transfer at {state.flow}.{state.node}"
        if isinstance(action, act.Listen):
            longest = max(action.timeouts.noinput, action.timeouts.interdigit) + REPROMPT_DELAY
            assert longest <= DEAD_AIR_LIMIT, f"{longest}s of dead air at {state.flow}.{state.node}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=st.sampled_from(sorted(SHIPPED.flows)), sequence=st.lists(events, max_size=40))
def test_shipped_flows_survive_any_caller(flow, sequence):
    _check(SHIPPED, flow, sequence)


@settings(max_examples=200, deadline=None)
@given(sequence=st.lists(events, max_size=40))
def test_fixture_flow_survives_any_caller(sequence):
    _check(FIXTURE, "tour", sequence)
