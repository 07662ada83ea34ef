"""The broken-flow corpus: each case is one designer mistake and the diagnostic it must produce.

A case is a file in `broken/`, or a folder of flow files (with its own `prompts/`
when it needs special texts). The files say what they expect in header comments:

    # expect: error 12:9 missing-node "goes to 'pay_now'"

(severity, line:column, code, and a substring of the message). The diagnostics
found must be exactly the expected ones: one mistake, no collateral noise.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr import cli
from ivr.diagnostics import Severity, has_errors
from ivr.flow.catalog import check_flows, flow_files
from ivr.flow.loader import load_flow_text

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).parent / "broken"
EXPECT = re.compile(r'^# expect: (error|warning) (\d+):(\d+) ([a-z-]+) "(.*)"\s*$')


@dataclass(frozen=True)
class Expected:
    file: Path
    severity: Severity
    line: int
    column: int
    code: str
    text: str


@dataclass(frozen=True)
class Case:
    name: str
    flows: list[Path]
    prompts: Path
    expected: list[Expected]


def _case(path: Path) -> Case:
    flows = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    prompts = path / "prompts" if (path / "prompts").is_dir() else ROOT / "prompts"
    headers = [*flows, *sorted(prompts.glob("*.yaml"))] if prompts != ROOT / "prompts" else flows
    expected = []
    for file in headers:
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.startswith("# expect"):
                match = EXPECT.match(line)
                assert match, f"{file}: malformed header {line!r}"
                severity, row, column, code, text = match.groups()
                expected.append(Expected(file, Severity(severity), int(row), int(column), code, text))
    return Case(path.name, flows, prompts, expected)


CASES = [_case(p) for p in sorted(BROKEN.iterdir()) if p.suffix == ".yaml" or p.is_dir()]


def test_corpus_covers_every_code():
    codes = {e.code for case in CASES for e in case.expected}
    assert codes >= {
        "yaml", "duplicate-key", "structure", "unknown-key", "missing-key", "missing-node", "unreachable",
        "no-human", "endless-loop", "ask-mode", "unknown-outcome", "missing-outcome", "duplicate-dtmf",
        "empty-choice", "digits-range", "unknown-action", "unknown-flow", "no-return", "recursive-call",
        "missing-prompt", "undefined-variable", "expression", "duplicate-flow", "thresholds", "no-phrases",
        "language", "file-name", "prompt-format", "dead-air", "system-prompt", "unused-default",
        "keypad-only", "quoted-literal", "unmarked-expression", "routes",
    }
    assert all(case.expected for case in CASES), [c.name for c in CASES if not c.expected]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_flow_is_reported_where_it_is_wrong(case: Case, capsys):
    _, _, diagnostics = check_flows(case.flows, case.prompts)
    unmatched = list(diagnostics)
    for e in case.expected:
        match = [d for d in unmatched if (Path(d.file).resolve(), d.severity, d.line, d.column, d.code)
                 == (e.file.resolve(), e.severity, e.line, e.column, e.code) and e.text in d.message]
        assert match, f"expected {e}, got:\n" + "\n".join(map(str, diagnostics))
        unmatched.remove(match[0])
    assert not unmatched, "unexpected extra diagnostics:\n" + "\n".join(map(str, unmatched))

    status = cli.main(["validate", *map(str, case.flows), "--prompts", str(case.prompts)])
    assert status == (1 if any(e.severity is Severity.ERROR for e in case.expected) else 0)
    assert f"[{case.expected[0].code}]" in capsys.readouterr().out


def test_shipped_flows_have_no_errors():
    loaded, _, diagnostics = check_flows(flow_files(ROOT / "flows"), ROOT / "prompts")
    assert not has_errors(diagnostics), "\n".join(map(str, diagnostics))
    assert {"main_menu", "payment", "verify", "policy_query", "phone_update", "cancellation"} <= set(loaded)
    assert cli.main(["validate", str(ROOT / "flows"), "--prompts", str(ROOT / "prompts")]) == 0


# --- regressions for the loader's and validator's own mistakes ---------------------


def _only(text: str):
    _, diagnostics = load_flow_text(text, "f.yaml")
    return diagnostics


def test_inline_transfer_as_whole_next_of_a_turn_is_a_target(tmp_path):
    flow = tmp_path / "claim_number.yaml"
    flow.write_text(
        "flow: claim_number\nlanguages: [en]\nstart: number\n"
        "defaults: {escape: {transfer: claims}}\n"
        "nodes:\n"
        "  number:\n"
        "    ask: {prompt: verify.policy_number, digits: {min: 8, max: 8}}\n"
        "    next: {transfer: claims, reason: claim_number_given}\n"
    )
    loaded, _, diagnostics = check_flows([flow], ROOT / "prompts")
    assert diagnostics == []
    assert loaded["claim_number"].flow.nodes["number"].next.transfer == "claims"


def test_a_bad_outcome_is_reported_once_at_the_outcome():
    diagnostics = _only(
        "flow: f\nstart: a\nnodes:\n"
        "  a:\n    action: {name: payment.retry}\n    next: {ok: done, error: 12}\n"
        "  done: {hangup: completed}\n"
    )
    assert [(d.line, d.column, d.code) for d in diagnostics] == [(6, 29, "structure")]


def test_a_key_valid_elsewhere_is_not_suggested_to_itself():
    diagnostics = _only("flow: f\nstart: a\nnodes:\n  a: {hangup: completed, note: x, reason: y}\n")
    assert len(diagnostics) == 1
    assert "did you mean 'reason'" not in diagnostics[0].message
    assert diagnostics[0].code == "unknown-key" and "'reason'" in diagnostics[0].message
    assert "check its indentation" in diagnostics[0].message


def test_shared_escape_prompt_is_reported_once_not_per_turn(tmp_path):
    flow = tmp_path / "two_turns.yaml"
    flow.write_text(
        "flow: two_turns\nlanguages: [en]\nstart: one\n"
        "defaults: {escape: {transfer: customer_service, prompt: common.connectin}}\n"
        "nodes:\n"
        "  one: {ask: {prompt: main.anything_else, confirm: true}, next: {yes: two, no: {hangup: done}}}\n"
        "  two: {ask: {prompt: main.anything_else, confirm: true}, next: {yes: one, no: {hangup: done}}}\n"
    )
    _, _, diagnostics = check_flows([flow], ROOT / "prompts")
    assert [(d.line, d.code) for d in diagnostics] == [(4, "missing-prompt")]
    assert "did you mean 'common.connecting'?" in diagnostics[0].message


def test_recursion_points_at_the_call_that_recurses(tmp_path):
    shutil.copy(ROOT / "flows" / "verify.yaml", tmp_path)
    (tmp_path / "menu.yaml").write_text(
        "flow: menu\nstart: who\nnodes:\n"
        "  who: {call: verify, next: {verified: again, failed: again, locked: again}}\n"
        "  again: {call: menu}\n"
    )
    _, _, diagnostics = check_flows(flow_files(tmp_path), ROOT / "prompts")
    recursive = [d for d in diagnostics if d.code == "recursive-call"]
    assert [(Path(d.file).name, d.line, d.column) for d in recursive] == [("menu.yaml", 5, 17)]
