"""Designer expressions cannot freeze calls (issue 11, item 2).

A security probe found expressions that took seconds to minutes of CPU on the
event loop, and one whose result could not be saved with the call. What could
explode is refused where it is written (`ivr validate`, with file and line);
what depends on call data is refused while it runs, as an ExpressionError
that routing treats as "the rule does not apply" (tests/engine has the flow's
side: the caller goes to a person).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr import cli, expr
from ivr.engine.state import CallState
from ivr.flow.catalog import check_flows
from ivr.routing.router import decide_with
from ivr.routing.rules import load_rules_text
from tests.conftest import ROOT

PROBES = ["9**3999999 * 9**3999999", "[[1]*99999]*99999", "2**100000"]
# each explodes without touching call data: refused when read, before any work
WRITTEN_BOMBS = [
    *PROBES,
    "[[[1]*1000]*1000]*1000",
    "'%99999999d' % 1",
    "f'{1:>99999999}'",
    "f'{1:.{9**9}f}'",
    "'a'.ljust(10**8)",
    "'-' * 10**6",
    "[0] * n",
    "n ** n",
    "[c for c in 'abc']",
    "x == " + "1 + " * 200 + "1",
    "-" * 40 + "1",
]
DATA = {"n": 10**300, "text": "ab" * 100, "row": [0] * 1000, "x": 0}
# each passes the validator (the size comes from call data, or is computed) and is refused while it runs
DATA_BOMBS = ["round(5, -10**7)", "n ** 9", "n * n * n * n", "text * 1000", "[row] * 3000",
              "str([row] * 4) + str([row] * 4)",
              "max([10**7], key=text.zfill)", "(text + text) * 20"]


def _flow(tmp_path: Path, expression: str) -> Path:
    path = tmp_path / "probe.yaml"
    path.write_text(
        "flow: probe\nlanguages: [en]\nstart: compute\nvariables: {x: null, n: 1}\n"
        "defaults: {escape: {transfer: customer_service, reason: trouble}}\n"
        "nodes:\n"
        "  compute:\n"
        f"    set: {{x: {'=' + expression!r}}}\n"        # line 8
        "    next: check\n"
        "  check:\n"
        "    branch:\n"
        f"      - if: {expression!r}\n"                   # line 12
        "        then: {hangup: done}\n"
        "    else: {hangup: done}\n")
    return path


@pytest.mark.parametrize("expression", WRITTEN_BOMBS, ids=lambda e: e[:40])
def test_validate_refuses_an_expression_that_could_explode_in_a_flow(tmp_path, expression):
    _, _, diagnostics = check_flows([_flow(tmp_path, expression)], ROOT / "prompts")
    errors = [(d.line, d.code) for d in diagnostics if d.severity.value == "error"]
    assert errors == [(8, "expression"), (12, "expression")], "\n".join(map(str, diagnostics))
    assert all(d.file.endswith("probe.yaml") for d in diagnostics)


@pytest.mark.parametrize("expression", WRITTEN_BOMBS, ids=lambda e: e[:40])
def test_an_expression_that_could_explode_is_refused_when_run(expression):
    with pytest.raises(expr.LimitExceeded):
        expr.evaluate(expression, DATA)


RULES = """\
routing: 1
rules:
  - rule: probed
    when: {when}
    to: payment
    reason: "probe {{{reason}}}"
  - rule: known
    when: caller.known
    to: orphan_desk
    reason: known caller
"""


@pytest.mark.parametrize("expression", PROBES)
def test_validate_refuses_a_probe_in_a_routing_rule_at_its_line(expression):
    when = f"caller.known and {expression} > 0"
    _, diagnostics = load_rules_text(RULES.format(when=when, reason="history.calls_7d"), "routing.yaml")
    assert [(d.file, d.line, d.code) for d in diagnostics] == [("routing.yaml", 4, "expression")]
    _, diagnostics = load_rules_text(RULES.format(when="caller.known", reason=expression), "routing.yaml")
    assert [(d.file, d.line, d.code) for d in diagnostics] == [("routing.yaml", 6, "expression")]


def test_ivr_validate_names_the_routing_file_and_line(tmp_path, capsys):
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    routing = flows / "routing.yaml"
    text = routing.read_text()
    assert text.count("when: caller.orphan\n") == 1
    routing.write_text(text.replace("when: caller.orphan\n", "when: caller.orphan and [[1]*99999]*99999\n"))
    line = routing.read_text().splitlines().index("    when: caller.orphan and [[1]*99999]*99999") + 1
    assert cli.main(["validate", str(flows), "--prompts", str(ROOT / "prompts")]) == 1
    assert f"routing.yaml:{line}:" in capsys.readouterr().out


@pytest.mark.parametrize("expression", DATA_BOMBS)
def test_an_expression_that_explodes_only_when_run_is_refused_while_it_runs(expression):
    expr.parse(expression)
    with pytest.raises(expr.LimitExceeded):
        expr.evaluate(expression, DATA)


def test_what_an_expression_may_build_can_be_saved_with_the_call():
    largest = expr.evaluate("n * n * 2**71", {"n": 2**476})
    assert largest.bit_length() == expr.MAX_INT_BITS
    with pytest.raises(expr.LimitExceeded):
        expr.evaluate("n * n * 2**72", {"n": 2**476})
    state = CallState(call_id="c", release="r", flow="f", node="n", language="en", vars={"x": largest})
    assert CallState.model_validate_json(state.model_dump_json()).vars["x"] == largest


def test_ordinary_expressions_still_work():
    data = {"caller": {"first_quarter": True, "policies": [1, 2], "name": "Ann"},
            "history": {"intents_7d": ["payment"]}, "intent": "payment", "text": "Ab"}
    assert expr.evaluate("' (first three months)' if caller.first_quarter else ''", data) == " (first three months)"
    assert expr.evaluate("intent in history.intents_7d and len(caller.policies) == 2", data) is True
    assert expr.evaluate("1.05 ** 12 > 1.7 and 10 ** 6 == 1000000 and round(2.345, 2) == 2.35", data) is True
    assert expr.evaluate("text.lower() * 3 + f'{len(text):>3}' + '-' * 2", data) == "ababab  2--"
    assert expr.evaluate("caller.get('name').upper()", data) == "ANN"


def test_a_routing_rule_over_budget_for_this_caller_does_not_apply():
    rules, diagnostics = load_rules_text(RULES.format(when="len(caller.first_name * 40) > 100",
                                                      reason="history.calls_7d"), "routing.yaml")
    assert rules is not None, diagnostics

    def facts(first_name: str) -> dict:
        return {"caller": {"known": True, "first_name": first_name}, "history": {}, "call": {}}

    assert decide_with(rules, facts("Annabel"))["route_start"] == "payment"
    assert decide_with(rules, facts("A" * 200))["route_start"] == "orphan_desk"
