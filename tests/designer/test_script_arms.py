"""Scripted callers and experiments: outside every experiment's dates unless they pin an arm."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ivr.designer import repl
from ivr.designer.conversation import Conversation
from ivr.designer.script import Script, run_script
from ivr.flow.catalog import load_flow_set

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def release():
    flow_set, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
    return flow_set


def _menu_script(arms: dict[str, str], prompt: str) -> Script:
    return Script.model_validate({"script": "menu", "flow": "main_menu", "arms": arms,
                                  "steps": [{"at": "menu", "keys": "0"}],
                                  "expect": {"prompts": [prompt], "outcome": {"transfer": "customer_service"}}})


def test_a_script_hears_the_flow_as_written_unless_it_pins_an_arm(release):
    assert run_script(release, _menu_script({}, "main.menu")).ok
    pinned = run_script(release, _menu_script({"menu_wording": "short_menu"}, "main.menu_short"))
    assert pinned.ok, pinned.failures
    assert pinned.conversation.call_state.experiments == {"menu_wording": "short_menu"}
    assert any(h.kind == "experiment" and h.text == "experiment menu_wording: short_menu"
               for h in pinned.conversation.transcript)


def test_a_misspelt_pin_fails_the_script_instead_of_testing_the_control(release):
    result = run_script(release, _menu_script({"menu_wording": "shortmenu"}, "main.menu"))
    assert result.failures == ["arms: experiment 'menu_wording' has no arm 'shortmenu' (arms: full_menu, short_menu)"]
    result = run_script(release, _menu_script({"menu_wrding": "short_menu"}, "main.menu"))
    assert "no flow has an experiment 'menu_wrding'" in result.failures[0]


def test_the_terminal_simulator_runs_experiments_by_todays_date(release):
    inside = Conversation(release, "main_menu", call={"ani": "+15550100"})
    out = io.StringIO()
    lines = iter(["#0"])
    repl.run(inside, lambda: next(lines, None), out,
             now=lambda: __import__("datetime").datetime.fromisoformat("2026-10-01T10:00:00+08:00"))
    arm = inside.call_state.experiments["menu_wording"]
    assert f"⚗ experiment menu_wording: {arm}" in out.getvalue()
    assert f"experiments: menu_wording: {arm}" in out.getvalue()
