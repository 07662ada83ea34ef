"""The agent page in headless Chromium (Debian's chromium, driven by Playwright).

An agent signs in through the form, a cancellation caller keys through the
shipped flows into save_specialists, the agent's phone rings and they pick
up: the pop must be on their screen within a second, with the caller, the
policies, the path, the routing and the cancellation; one click records the
outcome. Another agent who rang too sees nothing personal, and a browser
without a token gets a 401 and the sign-in form only.

Screenshots of the queue view and the pop (wide and narrow laptop screens)
go to ``test-artifacts/screenshots`` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from ivr.web.caller_data import Contact
from tests.conftest import ROOT
from tests.web.conftest import CALLER_ID, TOKENS, wait_for, walk_cancellation

CHROMIUM = os.environ.get("IVR_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts" / "screenshots"

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright not installed (pip install -e '.[test]')")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture
async def browser():
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        await chromium.close()


async def signed_in_page(browser, base: str, agent: str, width: int = 1280, height: int = 800):
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    response = await page.goto(f"{base}/agent/")
    assert response.status == 401
    await page.fill("#agent", agent)
    await page.fill("#token", TOKENS[agent])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#link[data-state=live]")
    return page


async def test_no_token_no_page(browser, desk_rig):
    context = await browser.new_context()
    page = await context.new_page()
    response = await page.goto(f"{desk_rig.base_url}/agent/")
    assert response.status == 401
    assert await page.is_visible("form#signin") and not await page.query_selector("#queues")
    for path in ("/agent/static/desk.js", "/agent/api/queues", "/agent/api/calls"):
        status = await page.evaluate("async (p) => (await fetch(p)).status", path)
        assert status == 401, path
    ws_opened = await page.evaluate("""() => new Promise((resolve) => {
        const ws = new WebSocket(`ws://${location.host}/agent/ws`);
        ws.onopen = () => resolve(true); ws.onerror = () => resolve(false); })""")
    assert ws_opened is False
    await page.fill("#agent", "101")
    await page.fill("#token", "wrong-token-typed")
    await page.click("button[type=submit]")
    assert "not recognised" in await page.inner_text(".error")
    assert await page.evaluate("async () => (await fetch('/agent/api/queues')).status") == 401
    await context.close()


async def test_cancellation_caller_pops_on_the_answering_agents_screen(browser, desk_rig):
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = desk_rig.base_url
    mei = await signed_in_page(browser, base, "101")
    tom = await signed_in_page(browser, base, "102", width=1024, height=700)
    assert "Mei Chen (101)" in await mei.inner_text("#agent-name")
    assert await mei.is_visible("#no-pop")

    await desk_rig.history.add(CALLER_ID, Contact(at=time.time() - 3 * 86400, summary="payment: failed debit",
                                                  outcome="transferred"))
    call = desk_rig.call()
    await walk_cancellation(call)
    row = 'section[data-queue="save_specialists"] li.waiting.ringing-you'
    await mei.wait_for_selector(row)
    await mei.wait_for_function(
        "() => document.querySelector('section[data-queue=save_specialists] .reason').textContent"
        " === 'Accepted a downgrade offer'")
    assert "P7" in await mei.inner_text(row)
    await wait_for(lambda: len(call.ringing_agents()) == 2)
    await mei.wait_for_timeout(1200)                 # let the wait time tick
    await mei.screenshot(path=str(SHOTS / "queue-view.png"), full_page=True)
    await tom.screenshot(path=str(SHOTS / "queue-view-narrow.png"), full_page=True)

    answered_ms = time.time() * 1000
    assert call.agent_answer("PJSIP/agent101")
    card = f'article.pop[data-call="{call.channel_id}"]'
    await mei.wait_for_selector(card, timeout=1000)
    received_ms = await mei.evaluate("(id) => window.__desk.popReceivedAt[id]", call.channel_id)
    latency = received_ms - answered_ms
    print(f"pop on screen {latency:.0f} ms after the agent answered")
    assert latency < 1000

    text = await mei.inner_text(card)
    assert "Ann Lee" in text and "Verified" in text and "+15550100" in text
    for expected in ("40012345", "Term Life 20", "86.40", "first year", "bancassurance",
                     "40077001", "Home Contents", "orphan", "agency",
                     "Accepted a downgrade offer", "rule cancellation.downgrade", "priority 7",
                     "Too expensive", "premium 52.00", "sum assured 150,000.00", "accepted",
                     "keyed 4", "→ cancel", "keyed 2", "→ expensive", "keyed 1", "→ yes",
                     "payment: failed debit"):
        assert expected in text, expected
    assert await mei.inner_text(f"{card} [data-field=cancel-reason]") == "Too expensive"
    assert await mei.is_hidden("#no-pop")
    await mei.screenshot(path=str(SHOTS / "screen-pop.png"), full_page=True)
    await mei.set_viewport_size({"width": 1024, "height": 700})
    await mei.screenshot(path=str(SHOTS / "screen-pop-narrow.png"), full_page=True)

    # Tom's phone rang too, but the call is Mei's: nothing personal on his screen
    await tom.wait_for_timeout(300)
    assert await tom.query_selector("article.pop") is None
    assert "Ann" not in await tom.inner_text("body")

    await mei.click(f'{card} button[data-outcome="downgraded"]')
    await mei.wait_for_selector(f'{card} [data-field=outcome]:has-text("Recorded: Downgraded")')
    assert await mei.get_attribute(f'{card} button[data-outcome="downgraded"]', "aria-pressed") == "true"
    contacts = await desk_rig.history.recent(CALLER_ID)
    assert [(c.outcome, c.agent, c.call_id) for c in contacts if c.kind == "agent_outcome"] == \
        [("downgraded", "101", call.channel_id)]

    call.agent_hangup()
    await mei.wait_for_selector(f'{card} [data-field=call-status]:has-text("Call ended")')
    await mei.set_viewport_size({"width": 1280, "height": 800})
    await mei.screenshot(path=str(SHOTS / "screen-pop-recorded.png"), full_page=True)
    await mei.context.close()
    await tom.context.close()
