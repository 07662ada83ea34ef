"""An expression over its budget at run time fails the turn to a person (issue 11, item 2).

The flows below pass `ivr validate`: what makes them too big is the caller's
data, known only during the call. The engine must neither crash nor leave
the caller in silence, and the state it hands on must still save.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr import engine
from ivr.engine import actions as act
from ivr.engine.state import CallState
from ivr.flow.catalog import FlowSet, load_flow_set

BANNER_FLOW = """\
flow: banner
start: prepare
variables: {banner: null}
defaults: {escape: {transfer: service, reason: trouble}}
nodes:
  prepare:
    set: {banner: "=call.caller_name * 40"}
    next: check
  check:
    branch: [{if: "len(str([call.caller_name] * 400)) > 0", then: {hangup: done}}]
    else: {hangup: done}
"""


@pytest.fixture
def release(tmp_path: Path) -> FlowSet:
    (tmp_path / "flows").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "flows" / "banner.yaml").write_text(BANNER_FLOW)
    (tmp_path / "prompts" / "en.yaml").write_text("t:\n  hi: hi\n")
    flow_set, _ = load_flow_set(tmp_path / "flows", tmp_path / "prompts")
    return flow_set


def test_a_short_name_runs_the_flow(release):
    result = engine.start(release, "banner", "c1", call={"caller_name": "Ann"})
    assert result.state.status == "ended" and result.state.result == {"outcome": "done"}
    assert result.state.vars["banner"] == "Ann" * 40


def test_a_set_over_budget_sends_the_caller_to_a_person(release):
    result = engine.start(release, "banner", "c1", call={"caller_name": "A" * 200})
    [transfer] = [a for a in result.actions if isinstance(a, act.Transfer)]
    assert transfer.queue == "service" and transfer.reason == "trouble"
    assert transfer.detail.startswith("flow_error:") and "5000" in transfer.detail
    assert result.state.status == "transferred" and result.state.vars["banner"] is None
    assert _escaped_at(result.state) == "prepare"
    saved = CallState.model_validate_json(result.state.at_rest().model_dump_json())
    assert saved.status == "transferred"


def test_a_condition_over_budget_sends_the_caller_to_a_person(release):
    result = engine.start(release, "banner", "c1", call={"caller_name": "A" * 100})
    assert result.state.vars["banner"] == "A" * 4000
    [transfer] = [a for a in result.actions if isinstance(a, act.Transfer)]
    assert transfer.queue == "service" and transfer.detail.startswith("flow_error:")
    assert _escaped_at(result.state) == "check"


def _escaped_at(state: CallState) -> str:
    [escape] = [t for t in state.path if t.kind == "escape"]
    assert escape.matched == "flow_error"
    return escape.node
