"""A/B tests in flows: sticky arms by caller, shares, dates, and each kind of change taking effect."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ivr import engine
from ivr.callrecord import CallFacts, CallRecord, summarise
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine import experiments
from ivr.engine.state import CallState, Turn
from ivr.flow import model
from ivr.flow.catalog import FlowSet, load_flow_set

ROOT = Path(__file__).resolve().parents[2]
IN_WINDOW = "2026-10-01T10:00:00+08:00"

LAB = """
flow: lab
languages: [en, zh]
start: greet
defaults:
  escape: {transfer: customer_service}
experiments:
  greeting:
    node: greet
    start: 2026-09-01 08:00
    stop: 2026-11-30 20:00
    arms:
      - arm: welcome
        share: 20
      - arm: short_welcome
        share: 80
        prompt: main.menu_short
  menu_order:
    node: menu
    start: 2026-09-01
    arms:
      - arm: as_written
      - arm: payment_first
        order: [payment, policy, cancel]
        prompt: main.menu_help
  helper_version:
    node: help
    start: 2026-09-01
    arms:
      - arm: helper_a
      - arm: helper_b
        call: helper_b
nodes:
  greet:
    play: main.welcome
    next: menu
  menu:
    ask:
      prompt: main.menu
      choices:
        policy: {say: {en: [policy], zh: [保单]}, dtmf: "1"}
        payment: {say: {en: [payment], zh: [缴费]}, dtmf: "2"}
        cancel: {say: {en: [cancel], zh: [退保]}, dtmf: "3"}
    next: {policy: help, payment: {hangup: paid}, cancel: {hangup: cancelled}}
  help:
    call: helper_a
    with: {topic: policy}
    next: {hangup: completed}
"""

HELPER = """
flow: {name}
languages: [en, zh]
start: say
takes: [topic]
gives: [answer]
variables: {{topic: null, answer: null}}
nodes:
  say:
    play: {prompt}
    next: done
  done:
    set: {{answer: {name}}}
    next: {{return: done}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> FlowSet:
    flows = tmp_path_factory.mktemp("flows")
    (flows / "lab.yaml").write_text(LAB)
    (flows / "helper_a.yaml").write_text(HELPER.format(name="helper_a", prompt="main.anything_else"))
    (flows / "helper_b.yaml").write_text(HELPER.format(name="helper_b", prompt="main.goodbye"))
    release, diagnostics = load_flow_set(flows, ROOT / "prompts")
    assert not diagnostics, diagnostics
    return release


def _start(release: FlowSet, call: dict, call_id: str = "c1", arms: dict[str, str] | None = None) -> engine.Step:
    return engine.start(release, "lab", call_id, call=call, arms=arms)


def _prompts(step: engine.Step) -> list[str]:
    return [p.key for a in step.actions if isinstance(a, act.Play) for p in a.prompts]


def _listen(step: engine.Step) -> act.Listen:
    return next(a for a in step.actions if isinstance(a, act.Listen))


# --- assignment -------------------------------------------------------------------------------


def test_the_same_caller_keeps_their_arm_call_after_call(lab):
    for number in ("+85291234567", "+15550100", "+8613800138000"):
        arms = {json.dumps(_start(lab, {"ani": number, "time": IN_WINDOW}, call_id=f"call-{i}").state.experiments)
                for i in range(50)}
        assert len(arms) == 1, (number, arms)


def test_callers_are_spread_by_the_shares():
    experiment = model.Experiment.model_validate({
        "node": "menu", "start": "2026-09-01",
        "arms": [{"arm": "a", "share": 20}, {"arm": "b", "share": 30, "prompt": "x.y"}, {"arm": "c", "share": 50, "prompt": "x.z"}]})
    counts = Counter(experiments.pick("spread", experiment, f"key:{n:06d}").arm for n in range(10_000))
    for arm, share in (("a", 0.20), ("b", 0.30), ("c", 0.50)):
        assert abs(counts[arm] / 10_000 - share) <= 0.02, counts


def test_equal_shares_when_no_arm_gives_one():
    experiment = model.Experiment.model_validate({
        "node": "menu", "start": "2026-09-01",
        "arms": [{"arm": "a"}, {"arm": "b", "prompt": "x.y"}, {"arm": "c", "prompt": "x.z"}]})
    counts = Counter(experiments.pick("thirds", experiment, f"ani:+1555{n:07d}").arm for n in range(10_000))
    assert all(abs(counts[arm] / 10_000 - 1 / 3) <= 0.02 for arm in "abc"), counts


def test_another_experiment_shuffles_callers_anew():
    experiment = model.Experiment.model_validate({
        "node": "menu", "start": "2026-09-01", "arms": [{"arm": "a"}, {"arm": "b", "prompt": "x.y"}]})
    first = [experiments.pick("one", experiment, f"key:{n}").arm for n in range(2000)]
    second = [experiments.pick("two", experiment, f"key:{n}").arm for n in range(2000)]
    agree = sum(a == b for a, b in zip(first, second)) / 2000
    assert 0.45 < agree < 0.55  # independent: half agree, not all


def test_an_anonymous_caller_is_assigned_by_call_id(lab):
    arms = Counter(_start(lab, {"ani": "anonymous", "time": IN_WINDOW}, call_id=f"anon-{i}").state.experiments["greeting"]
                   for i in range(400))
    assert set(arms) == {"welcome", "short_welcome"}  # not all anonymous callers in one arm
    again = {_start(lab, {"ani": "", "time": IN_WINDOW}, call_id="anon-7").state.experiments["greeting"] for _ in range(5)}
    assert len(again) == 1


def test_the_controllers_keyed_hash_decides_and_the_number_is_never_kept(lab):
    call = {"ani": "+85291234567", "time": IN_WINDOW, "caller_key": "a1b2c3"}
    state = _start(lab, call).state
    expected = experiments.pick("greeting", lab.flow("lab").experiments["greeting"], "key:a1b2c3").arm
    assert state.experiments["greeting"] == expected
    turn = next(t for t in state.path if t.kind == "experiment")
    assert (turn.node, turn.matched, turn.detail) == ("greet", expected, "greeting")
    kept = state.model_dump_json(include={"experiments", "path", "result"})
    assert "91234567" not in kept and "a1b2c3" not in kept


# --- the dates --------------------------------------------------------------------------------


@pytest.mark.parametrize("time", ["2026-08-31T23:59:00+08:00", "2026-11-30T20:00:00+08:00", "2027-01-01T09:00:00+00:00",
                                  None, "not a time"])
def test_outside_the_dates_every_caller_gets_the_control(lab, time):
    for n in range(200):
        call = {"ani": f"+1555{n:07d}", **({"time": time} if time is not None else {})}
        step = _start(lab, call)
        assert "greeting" not in step.state.experiments
        assert _prompts(step)[0] == "main.welcome"
        assert not any(t.kind == "experiment" and t.detail == "greeting" for t in step.state.path)


def test_a_date_without_offset_is_the_calls_local_time(lab):
    experiment = lab.flow("lab").experiments["greeting"]  # 2026-09-01 08:00 to 2026-11-30 20:00, no offset
    assert not experiments.running(experiment, "2026-09-01T07:59:00+08:00")
    assert experiments.running(experiment, "2026-09-01T08:00:00+08:00")
    assert experiments.running(experiment, "2026-11-30T19:59:59-05:00")
    assert not experiments.running(experiment, "2026-11-30T20:00:00-05:00")


# --- what each kind of arm changes ------------------------------------------------------------


def test_a_wording_arm_is_heard_instead_of_the_prompt(lab):
    step = _start(lab, {"ani": "+15550100"}, arms={"greeting": "short_welcome"})
    assert _prompts(step)[:2] == ["main.menu_short", "main.menu"]
    control = _start(lab, {"ani": "+15550100"}, arms={"greeting": "welcome"})
    assert _prompts(control)[:2] == ["main.welcome", "main.menu"]


def test_a_wording_arm_by_caller_inside_the_dates(lab):
    heard = Counter(_prompts(_start(lab, {"ani": f"+1555{n:07d}", "time": IN_WINDOW}))[0] for n in range(2000))
    assert abs(heard["main.menu_short"] / 2000 - 0.8) < 0.04 and heard["main.welcome"] + heard["main.menu_short"] == 2000


def test_an_order_arm_lists_the_choices_in_its_order_and_deals_the_keys_again(lab):
    step = _start(lab, {"ani": "+15550100"}, arms={"menu_order": "payment_first"})
    assert _prompts(step)[-1] == "main.menu_help"
    listen = _listen(step)
    assert listen.keys == {"1": "payment", "2": "policy", "3": "cancel"}
    assert list(dict.fromkeys(listen.grammar.values())) == ["payment", "policy", "cancel"]
    paid = engine.step(lab, step.state, ev.Dtmf(digits="1"))
    assert paid.state.result == {"outcome": "paid"}
    said = engine.step(lab, step.state, ev.Speech(text="cancel"))
    assert said.state.result == {"outcome": "cancelled"}


def test_the_control_of_an_order_experiment_keeps_the_written_keys(lab):
    step = _start(lab, {"ani": "+15550100"}, arms={"menu_order": "as_written"})
    assert _listen(step).keys == {"1": "policy", "2": "payment", "3": "cancel"}
    assert _prompts(step)[-1] == "main.menu"


def test_a_sub_flow_arm_runs_its_flow_with_the_same_variables(lab):
    step = _start(lab, {"ani": "+15550100"}, arms={"helper_version": "helper_b"})
    done = engine.step(lab, step.state, ev.Dtmf(digits="1"))
    assert "main.goodbye" in _prompts(done) and "main.anything_else" not in _prompts(done)
    call = next(t for t in done.state.path if t.kind == "call")
    assert (call.detail, call.matched) == ("helper_b", "helper_a")
    assert done.state.result == {"outcome": "completed"} and done.state.vars["answer"] == "helper_b"
    control = engine.step(lab, _start(lab, {"ani": "+15550100"}).state, ev.Dtmf(digits="1"))
    assert "main.anything_else" in _prompts(control) and control.state.vars["answer"] == "helper_a"


# --- kept in the state, the record and its JSON -----------------------------------------------


def test_the_arm_survives_json_and_a_resume_on_another_controller(lab):
    step = _start(lab, {"ani": "+15550100"}, arms={"menu_order": "payment_first"})
    saved = CallState.model_validate_json(step.state.at_rest().model_dump_json())
    assert saved.experiments == {"menu_order": "payment_first"}
    resumed = engine.resume(lab, saved)
    assert _listen(resumed).keys["1"] == "payment" and _prompts(resumed) == ["main.menu_help"]
    assert sum(t.kind == "experiment" for t in resumed.state.path) == 1  # assigned once, not again
    assert engine.step(lab, resumed.state, ev.Dtmf(digits="1")).state.result == {"outcome": "paid"}


def test_the_step_never_changes_the_state_it_was_given(lab):
    step = _start(lab, {"ani": "+15550100", "time": IN_WINDOW})
    before = step.state.model_dump_json()
    engine.step(lab, step.state, ev.Dtmf(digits="1"))
    assert step.state.model_dump_json() == before


def test_the_call_record_carries_the_arms_and_its_json_too(lab):
    step = _start(lab, {"ani": "+15550100"}, arms={"menu_order": "payment_first", "helper_version": "helper_b"})
    done = engine.step(lab, step.state, ev.Dtmf(digits="1"))  # payment, first in this arm: the call ends paid
    record = summarise(done.state, 1.0, 2.0)
    assert record.experiments == {"menu_order": "payment_first"}  # helper_version: never reached
    data = json.loads(json.dumps(record.to_json()))
    assert data["experiments"] == {"menu_order": "payment_first"}
    assert CallRecord.from_json(data).experiments == {"menu_order": "payment_first"}
    facts = CallFacts()
    facts.take(step.state.path, step.state)
    facts.take(done.state.path[len(step.state.path):], done.state)
    assert facts.record(done.state, 1.0, 2.0).experiments == {"menu_order": "payment_first"}


def test_a_journey_run_by_an_arms_flow_counts_as_that_journey():
    facts = CallFacts()
    turns = [Turn(flow="main_menu", node="cancel", kind="call", detail="cancellation_offer_first", matched="cancellation"),
             Turn(flow="cancellation_offer_first", node="done", kind="return", matched="done")]
    state = CallState(call_id="c", release="r", flow="main_menu", node="cancel", language="en", status="ended",
                      result={"outcome": "completed"})
    facts.take(turns, state)
    record = facts.record(state, 1.0, 2.0)
    assert record.intents == ["cancel"] and record.journeys[0].outcome == "contained"


def test_the_shipped_main_menu_experiment(tmp_path):
    shipped, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
    experiment = shipped.flow("main_menu").experiments["menu_wording"]
    assert experiment.node == "menu" and [a.arm for a in experiment.arms] == ["full_menu", "short_menu"]
    short = engine.start(shipped, "main_menu", "c1", call={"ani": "+15550100"}, arms={"menu_wording": "short_menu"})
    assert _prompts(short) == ["main.welcome", "main.menu_short"] and _listen(short).keys["4"] == "cancel"
    inside = {"ani": "+15550100", "time": "2026-10-01T10:00:00+08:00"}
    assert engine.start(shipped, "main_menu", "c1", call=inside).state.experiments.keys() == {"menu_wording"}
