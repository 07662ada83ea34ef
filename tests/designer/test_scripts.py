"""Scripted callers next to the shipped flows, and the terminal simulator."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.designer import repl
from ivr.designer.conversation import Conversation
from ivr.designer.script import Script, load_script, run_script
from ivr.flow.catalog import load_flow_set

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "flows" / "scripts").glob("*.yaml"))


@pytest.fixture(scope="module")
def release():
    flow_set, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
    return flow_set


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_shipped_script_passes(release, path):
    result = run_script(release, load_script(path), str(path))
    assert result.ok, "\n".join(result.failures)


def test_there_is_a_script_for_every_journey():
    flows = {load_script(p).flow for p in SCRIPTS}
    visited = " ".join(p.read_text() for p in SCRIPTS)
    for journey in ("policy_query", "payment", "phone_update", "cancellation"):
        assert journey in flows or f"{journey}." in visited or journey in visited


def test_a_wrong_expectation_fails_with_the_path_taken(release):
    script = Script.model_validate({
        "script": "expects the wrong queue", "flow": "main_menu",
        "steps": [{"at": "menu", "keys": "0"}],
        "expect": {"outcome": {"transfer": "payments"}, "visits": ["main_menu.menu", "payment.offer"]},
    })
    result = run_script(release, script)
    assert not result.ok
    assert any("expected a transfer to payments" in f for f in result.failures)
    assert any("payment.offer" in f and "main_menu.menu" in f for f in result.failures)


def test_a_prompt_heard_in_another_language_than_expected_fails(release):
    script = load_script(ROOT / "flows" / "scripts" / "chinese_policyholder_found_by_policy_number.yaml")
    script.expect.prompts = ["verify.dob@en"]
    result = run_script(release, script)
    assert result.failures == [f"expected to hear prompt 'verify.dob@en' (in order); heard: "
                               f"{', '.join(f'{h.key}@{h.language}' for h in result.conversation.transcript if h.kind == 'prompt')}"]
    assert "verify.dob@zh" in result.failures[0]


def test_a_list_of_backend_answers_is_given_one_per_call_the_last_repeating(release):
    script = Script.model_validate({
        "script": "s", "flow": "main_menu",
        "backend": {"caller.identify": ["declined", "ok"], "caller.verify": ["declined"]},
        "steps": [{"at": "menu", "keys": "1"}, {"at": "ask_policy", "keys": "40012345"}, {"at": "ask_policy", "keys": "1"},
                  {"at": "ask_dob", "keys": "19800101"}, {"at": "ask_dob", "keys": "19800102"}],
    })
    result = run_script(release, script)
    assert result.ok, result.failures
    answers = [h.text for h in result.conversation.transcript if h.kind == "backend"]
    assert answers == ["caller.identify → declined", "caller.identify → ok",
                       "caller.verify → declined", "caller.verify → declined"]


def test_a_step_at_the_wrong_turn_stops_the_script(release):
    script = Script.model_validate({"script": "s", "flow": "main_menu",
                                    "steps": [{"at": "offer", "keys": "1"}]})
    result = run_script(release, script)
    assert result.failures == ["step 1: expected the call at 'offer', it is at 'main_menu.menu'"]


def test_cli_replays_scripts_and_fails_on_a_broken_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["simulate", "--script", str(ROOT / "flows" / "scripts")]) == 0
    assert f"{len(SCRIPTS)} passed, 0 failed" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("script: bad\nflow: main_menu\nsteps: [{keys: '0'}]\nexpect: {outcome: {hangup: completed}}\n")
    assert main(["simulate", "--script", str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_terminal_simulator_shows_prompts_matches_and_path(release):
    lines = iter(["payment @0.4", "yes", "", "#19800531", "!hangup"])
    out = io.StringIO()
    repl.run(Conversation(release, "main_menu"), lambda: next(lines, None), out)
    text = out.getvalue()
    assert "How can I help you today?" in text
    assert "heard 'payment' → payment (0.40)" in text
    assert "I think you said payment. Is that right?" in text
    assert "✗ noinput #1" not in text.split("Is that right?")[0]
    assert "caller.identify → ok" in text
    assert "path: main_menu.greet → main_menu.menu → main_menu.payment → payment.verify → verify.identify" in text
    assert "status: ended" in text and "caller_hangup" in text


@pytest.mark.parametrize("line,expected", [
    ("#12#", {"type": "dtmf", "digits": "12#"}),
    ("", {"type": "noinput"}),
    ("!noise", {"type": "nomatch"}),
    ("cancel @0.35", {"type": "speech", "text": "cancel", "confidence": 0.35, "alternatives": []}),
])
def test_terminal_input_syntax(line, expected):
    assert repl.parse_line(line).model_dump() == expected


def test_bench_engine_reports_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "bench.json"
    assert main(["bench", "engine", "--nodes", "200", "--calls", "20", "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["generated_flow_nodes"] == 201
    assert report["shipped_flows"]["calls"] == 20 and report["shipped_flows"]["steps"] > 20 * 5
    assert report["validation_seconds"]["min"] > 0
