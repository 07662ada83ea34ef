"""The screen pop shows the experiments' arms the caller was in: in its data, and on the agent's page."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from ivr.engine.state import CallState, Turn
from ivr.web.pop import ScreenPop, build_pop

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("IVR_CHROMIUM", "/usr/bin/chromium")


def _state(experiments: dict[str, str]) -> CallState:
    return CallState(call_id="c1", release="r", flow="main_menu", node="menu", language="en",
                     vars={"call": {"ani": "+15550100"}}, status="transferred", experiments=experiments,
                     result={"queue": "customer_service", "reason": "asked_for_agent", "priority": 5},
                     path=[Turn(flow="main_menu", node="menu", kind="experiment", matched="short_menu", detail="menu_wording"),
                           Turn(flow="main_menu", node="menu", kind="transfer", matched="customer_service")])


def test_the_pop_carries_the_arms_and_the_path_shows_where_they_were_taken():
    pop = build_pop(_state({"menu_wording": "short_menu"}), "101", "customer_service", 1.0, 2.0, None, [])
    assert pop.experiments == {"menu_wording": "short_menu"}
    assert [(t.kind, t.matched, t.detail) for t in pop.path][0] == ("experiment", "short_menu", "menu_wording")
    sent = json.loads(pop.model_dump_json())
    assert sent["experiments"] == {"menu_wording": "short_menu"}
    assert ScreenPop.model_validate(sent).experiments == {"menu_wording": "short_menu"}


def test_a_caller_in_no_experiment_has_none_on_the_pop():
    assert build_pop(_state({}), "101", "customer_service", 1.0, 2.0, None, []).experiments == {}


@pytest.mark.skipif(not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)), reason=f"no Chromium at {CHROMIUM}")
async def test_the_agents_page_shows_experiment_arm_lines():
    playwright_api = pytest.importorskip("playwright.async_api")
    pop = build_pop(_state({"menu_wording": "short_menu", "helper_version": "helper_b"}),
                    "101", "customer_service", 1.0, 2.0, None, [])
    desk = (ROOT / "ivr" / "web" / "static" / "desk.js").read_text(encoding="utf-8")
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await chromium.new_page()
            await page.set_content("<div id=pops></div>")
            await page.add_script_tag(content=desk.replace("\nconnect();", "\n"))  # its code, without the websocket
            lines = await page.evaluate("""(pop) => [...renderPop(pop).querySelectorAll(
                '[data-field=experiments] [data-experiment]')].map((n) => n.textContent)""", pop.model_dump(mode="json"))
            none = await page.evaluate("(pop) => renderPop(pop).querySelector('[data-field=experiments]')",
                                       build_pop(_state({}), "101", "customer_service", 1.0, 2.0, None, []).model_dump(mode="json"))
        finally:
            await chromium.close()
    assert lines == ["menu_wording: short_menu", "helper_version: helper_b"]
    assert none is None
