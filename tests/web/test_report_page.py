"""`ivr report --html`'s page in headless Chromium (Debian's chromium, driven by Playwright).

A day of 500 synthetic calls (tests/insurer/report_records.py: four journeys,
an experiment whose arm B contains more callers, a younger one that cannot
tell yet, the campaign's recoveries by channel) is written as the page and
opened from its file: every chart is drawn with a size, the sections'
headings are there, and the page asks for nothing from anywhere (every
request that is not the file itself fails the test). A full-page
screenshot goes to the test's tmp_path (report.png).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ivr import report
from ivr.report_html import page
from tests.insurer.report_records import DAY, START, records, recoveries

CHROMIUM = os.environ.get("IVR_CHROMIUM", "/usr/bin/chromium")

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright not installed (pip install -e '.[test]')")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]

SECTIONS = ["Calls per hour", "Containment and transfer reasons per journey", "Where callers go and where they hang up",
            "Failed-premium recovery by channel", "Experiments"]


async def test_the_report_page_draws_every_chart_and_fetches_nothing(tmp_path):
    built = report.build(records(), START, START + DAY, recoveries=recoveries())
    path = tmp_path / "report.html"
    path.write_text(page(built), encoding="utf-8")
    charts = 2 + len(built["funnels"]) + 1 + len(built["experiments"])
    elsewhere: list[str] = []

    async def only_the_file(route) -> None:
        if route.request.url.startswith("file:"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = await chromium.new_context(viewport={"width": 1200, "height": 900}, java_script_enabled=False)
            await context.route("**/*", only_the_file)
            tab = await context.new_page()
            response = await tab.goto(path.as_uri(), wait_until="load")
            assert response is not None and response.ok
            assert [h.strip() for h in await tab.locator("h2").all_inner_texts()] == SECTIONS
            assert await tab.locator("h1").inner_text() == "IVR report"
            svgs = tab.locator("figure.chart > svg")
            assert await svgs.count() == charts
            for index in range(charts):
                box = await svgs.nth(index).bounding_box()
                name = await svgs.nth(index).get_attribute("aria-label")
                assert box is not None and box["width"] > 200 and box["height"] > 100, (name, box)
                assert await svgs.nth(index).locator("path, rect, use").count() > 5, name  # drawn, not an empty frame
            assert await tab.locator("text=not enough data").count() >= 1
            assert "arm B contains more callers than A" in await tab.inner_text("body")
            await tab.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            await chromium.close()
    assert elsewhere == [], "the page asked for something besides its own file"
    assert (tmp_path / "report.png").stat().st_size > 50_000
