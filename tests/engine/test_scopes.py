"""Each flow keeps its own variables: a sub-flow sees what it is given (`with` for its `takes`),
hands back what it `gives`, and the call's `shared` variables follow the caller everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr import engine
from ivr.diagnostics import FlowError
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.state import WITHHELD, CallState, Frame
from ivr.flow.catalog import FlowSet, load_flow_set

ESCAPE = "defaults: {escape: {transfer: service}}\n"

MAIN = """\
flow: main
start: first
variables: {secret_plan: gold, got: null}
""" + ESCAPE + """\
nodes:
  first:
    call: lookup
    with: {number: "=secret_plan + '-42'"}
    next: {found: second}
  second:
    call: reader
    next: {done: ask}
  ask:
    ask: {prompt: t.sure, confirm: true}
    next: {yes: {hangup: done}, no: {hangup: done}}
"""

LOOKUP = """\
flow: lookup
start: save
variables: {number: none-given, scratch: null, got: null}
shared: {who: null}
takes: [number]
gives: [got]
""" + ESCAPE + """\
nodes:
  save:
    set: {scratch: =number, got: =number + '!', who: Ada, language: zh}
    next: {return: found}
"""

READER = """\
flow: reader
start: look
languages: [en, zh]
variables: {seen: null, plan_seen: null}
shared: {who: null}
""" + ESCAPE + """\
nodes:
  look:
    set: {seen: =who, plan_seen: =secret_plan if False else None}
    next: {return: done}
"""


def _release(tmp_path: Path, flows: dict[str, str]) -> FlowSet:
    (tmp_path / "flows").mkdir()
    (tmp_path / "prompts").mkdir()
    for language in ("en", "zh"):
        (tmp_path / "prompts" / f"{language}.yaml").write_text("t:\n  sure: Sure?\n  card: Key your card.\n")
    for name, text in flows.items():
        (tmp_path / "flows" / f"{name}.yaml").write_text(text.replace("start:", "languages: [en, zh]\nstart:", 1)
                                                          if "languages" not in text else text)
    release, _ = load_flow_set(tmp_path / "flows", tmp_path / "prompts")
    return release


@pytest.fixture
def release(tmp_path: Path) -> FlowSet:
    reader = READER.replace(", plan_seen: =secret_plan if False else None", "")
    return _release(tmp_path, {"main": MAIN, "lookup": LOOKUP, "reader": reader})


def test_a_sub_flow_gets_what_it_takes_and_hands_back_only_what_it_gives(release):
    state = engine.start(release, "main", "c1", call={}).state
    assert (state.flow, state.node) == ("main", "ask")
    assert state.vars["got"] == "gold-42!", "given back under its own name"
    assert "scratch" not in state.vars and "number" not in state.vars, "the sub-flow's own variables stay its own"
    assert state.vars["secret_plan"] == "gold", "the caller's variables are as it left them"


def test_shared_variables_follow_the_call_through_flows_that_do_not_name_them(release):
    state = engine.start(release, "main", "c1", call={}).state
    assert state.vars["who"] == "Ada", "kept in main although main does not declare it"
    assert state.language == "zh" and state.vars["language"] == "zh"
    reader = next(t for t in state.path if t.flow == "reader" and t.kind == "return")
    assert reader.matched == "done"


def test_a_sub_flow_reading_its_callers_variable_is_refused_before_any_call(tmp_path):
    with pytest.raises(FlowError) as refused:
        _release(tmp_path, {"main": MAIN, "lookup": LOOKUP, "reader": READER})
    [problem] = [d for d in refused.value.diagnostics if d.severity.value == "error"]
    assert (Path(problem.file).name, problem.code) == ("reader.yaml", "undefined-variable")
    assert "'secret_plan' is not defined" in problem.message


def test_a_value_not_given_takes_the_declared_default(tmp_path):
    main = MAIN.replace('    with: {number: "=secret_plan + \'-42\'"}\n', "")
    release = _release(tmp_path, {"main": main, "lookup": LOOKUP, "reader": READER.replace(
        ", plan_seen: =secret_plan if False else None", "")})
    state = engine.start(release, "main", "c1", call={}).state
    assert state.vars["got"] == "none-given!"


def test_the_running_flows_variables_over_their_callers_for_readers_outside(release):
    state = CallState(call_id="c", release=release.id, flow="lookup", node="save", language="en",
                      stack=[Frame(flow="main", node="first", vars={"secret_plan": "gold", "got": None})],
                      vars={"got": "x", "who": "Ada"})
    assert state.variables() == {"secret_plan": "gold", "got": "x", "who": "Ada"}
    assert CallState.model_validate_json(state.model_dump_json()) == state


OUTER = """\
flow: outer
start: card
variables: {card: null, plan: gold}
""" + ESCAPE + """\
nodes:
  card:
    ask: {prompt: t.card, digits: {min: 4, max: 19, readback: false}, speech: false, save_as: card}
    next: check
  check:
    call: inner
    next: {done: {hangup: done}}
"""
INNER = """\
flow: inner
start: sure
""" + ESCAPE + """\
nodes:
  sure:
    ask: {prompt: t.sure, confirm: true}
    next: {yes: {return: done}, no: {return: done}}
"""


def test_a_keyed_card_in_a_calling_flow_is_withheld_at_rest(tmp_path):
    release = _release(tmp_path, {"outer": OUTER, "inner": INNER})
    state = engine.start(release, "outer", "c1", call={}).state
    state = engine.step(release, state, ev.Dtmf(digits="4111111111111111#")).state
    assert (state.flow, state.stack[0].vars["card"]) == ("inner", "4111111111111111")
    rest = state.at_rest()
    assert "4111111111111111" not in rest.model_dump_json()
    assert rest.stack[0].vars["card"] == WITHHELD and rest.withheld() == ["card"]
    ended = engine.step(release, state, ev.Dtmf(digits="1"))
    assert any(isinstance(a, act.Hangup) for a in ended.actions)
    assert ended.state.vars["card"] is None, "wiped when the call ends"


def test_a_call_saved_before_flows_had_their_own_variables_returns_with_them_all(tmp_path):
    """A frame without variables (saved by an older engine): the sub-flow shared its caller's."""
    release = _release(tmp_path, {"outer": OUTER, "inner": INNER})
    state = engine.start(release, "outer", "c1", call={}).state
    state = engine.step(release, state, ev.Dtmf(digits="4111#")).state
    frame = state.stack[0]
    old = state.model_copy(update={"stack": [Frame(flow=frame.flow, node=frame.node)],
                                   "vars": {**(frame.vars or {}), **state.vars, "inner_note": "kept"}})
    assert CallState.model_validate_json(old.model_dump_json()).stack[0].vars is None
    back = engine.step(release, old, ev.Dtmf(digits="1")).state
    assert back.status == "ended" and back.vars["plan"] == "gold" and back.vars["inner_note"] == "kept"
