"""`ivr report`'s numbers for people: calls per hour, funnels, recovery by channel, experiments, and the HTML page.

Fast: no browser (tests/web/test_report_page.py opens the page in Chromium).
"""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from statistics import NormalDist

import pytest

from ivr import report, stats
from ivr.callrecord import CallRecord
from ivr.cli import main
from ivr.report_html import page
from tests.insurer.report_records import DAY, START, records, recoveries

Z = NormalDist().inv_cdf(0.975)


def call(index: int, path: list[str], outcome: str = "completed", status: str = "ended", **fields) -> CallRecord:
    return CallRecord(call_id=f"c{index}", started=START + 60 * index, ended=START + 60 * index + 30, status=status,
                      outcome=outcome, path=path, last_node=path[-1] if path else "", **fields)


def arm_calls(arm: str, contained: int, calls: int, first: int = 0) -> list[CallRecord]:
    """`calls` calls in `arm` of the experiment "greeting", the first `contained` of them finished in self-service."""
    return [call(first + i, ["main_menu.menu"], "completed" if i < contained else "caller_hangup",
                 experiments={"greeting": arm}) for i in range(calls)]


# funnels


def test_funnel_counts_each_call_once_per_node_and_where_it_hung_up():
    menu = ["main_menu.greet", "main_menu.menu"]
    pay = ["main_menu.payment", "payment.verify", "verify.identify", "verify.ask_dob", "payment.offer"]
    calls = [
        call(0, menu + pay + ["main_menu.goodbye"]),
        call(1, menu + pay[:4], "caller_hangup"),  # hung up at the date of birth, in the payment journey
        call(2, menu + pay[:2] + ["verify.identify"], "caller_hangup"),
        call(3, menu, "caller_hangup"),  # hung up at the menu
        call(4, menu + ["main_menu.policy", "policy_query.verify", "verify.identify", "policy_query.summary",
                        "main_menu.menu", "main_menu.policy", "policy_query.verify", "verify.identify",
                        "policy_query.summary", "main_menu.goodbye"]),  # the policy journey twice: counted once
    ]
    funnels = {f["flow"]: f for f in report.build(calls, START, START + DAY)["funnels"]}
    assert [f for f in funnels] == ["policy_query", "payment", "main_menu"]  # journeys first, in JOURNEYS order
    payment = funnels["payment"]
    assert payment["calls"] == 3 and payment["journey"]
    assert payment["nodes"] == [
        {"node": "payment.verify", "reached": 3, "hung_up": 0},
        {"node": "verify.identify", "reached": 3, "hung_up": 1},  # verify counts in the journey that called it
        {"node": "verify.ask_dob", "reached": 2, "hung_up": 1},
        {"node": "payment.offer", "reached": 1, "hung_up": 0},
    ]
    menu_nodes = {n["node"]: n for n in funnels["main_menu"]["nodes"]}
    assert funnels["main_menu"]["calls"] == 5 and not funnels["main_menu"]["journey"]
    assert menu_nodes["main_menu.menu"] == {"node": "main_menu.menu", "reached": 5, "hung_up": 1}
    assert menu_nodes["main_menu.payment"]["reached"] == 3 and menu_nodes["main_menu.goodbye"]["reached"] == 2
    assert funnels["policy_query"]["nodes"][0] == {"node": "policy_query.verify", "reached": 1, "hung_up": 0}
    reached = [n["reached"] for f in funnels.values() for n in f["nodes"]]
    assert all(a >= b for f in funnels.values() for a, b in zip([n["reached"] for n in f["nodes"]],
                                                                [n["reached"] for n in f["nodes"]][1:])), reached


def test_calls_per_hour_cover_the_window_hour_by_hour():
    calls = [call(i, ["main_menu.menu"]) for i in range(3)]  # START, +1 min, +2 min
    calls.append(CallRecord("late", START + 5 * 3600 + 10, START + 5 * 3600 + 40, "ended", "completed"))
    hours = report.build(calls, START, START + 6 * 3600)["calls_per_hour"]
    assert [h["calls"] for h in hours] == [3, 0, 0, 0, 0, 1]
    assert hours[0]["hour"] == report._iso(START)


# recovery by channel


def test_recovery_by_channel_from_the_calls_and_the_campaign():
    told = [call(i, ["payment.offer"], payment=p, direction=d) for i, (p, d) in enumerate(
        [("paid", "inbound")] * 18 + [("open", "inbound")] * 2 + [("promised", "outbound")] * 3
        + [("open", "outbound")])]
    calls = told + [call(99, ["main_menu.menu"])]  # not told of a failed premium: not counted
    campaign = ([report.Recovery("text", "paid", START + 10)] * 5 + [report.Recovery("text", "lapsed", START + 20)]
                + [report.Recovery("outbound_call", "promised", START + 30)] * 4
                + [report.Recovery("text", "paid", START - 10)])  # settled before the window: left out
    built = report.build(calls, START, START + DAY, recoveries=campaign)["recovery_by_channel"]
    channels = {c["channel"]: c for c in built["channels"]}
    assert channels["inbound"] == {"channel": "inbound", "label": "inbound call", "cases": 20, "paid": 18,
                                   "promised": 0, "open": 2, "lapsed": 0, "recovered": 18, "rate": 0.9,
                                   "enough_data": True}
    assert (channels["outbound_call"]["cases"], channels["outbound_call"]["recovered"]) == (4, 3)
    assert not channels["outbound_call"]["enough_data"]
    assert (channels["text"]["cases"], channels["text"]["paid"], channels["text"]["lapsed"]) == (6, 5, 1)
    debits = built["per_failed_debit"]
    assert (debits["cases"], debits["recovered"], debits["lapsed"], debits["rate"]) == (10, 9, 1, 0.9)
    assert debits["by_channel"]["outbound_call"]["promised"] == 4 and debits["by_channel"]["inbound"]["cases"] == 0
    assert built["target"] == report.RECOVERY_TARGET == 0.9


def test_without_campaign_results_the_recovery_section_has_the_calls_only():
    built = report.build([call(0, ["payment.offer"], payment="paid")], START, START + DAY)["recovery_by_channel"]
    assert [c["channel"] for c in built["channels"]] == ["inbound", "outbound_call"]
    assert built["per_failed_debit"] is None
    assert "Campaign results were not given" in page(report.build([call(0, ["m.n"])], START, START + DAY))


def test_a_recovery_says_which_channel_and_outcome_it_is():
    with pytest.raises(ValueError, match="channel"):
        report.Recovery("email", "paid", 0.0)
    with pytest.raises(ValueError, match="outcome"):
        report.Recovery("text", "refunded", 0.0)


# experiments


def wilson(count: int, of: int) -> tuple[float, float]:
    """Wilson's 95% interval, by hand."""
    p = count / of
    centre = (p + Z * Z / (2 * of)) / (1 + Z * Z / of)
    half = Z * math.sqrt(p * (1 - p) / of + Z * Z / (4 * of * of)) / (1 + Z * Z / of)
    return centre - half, centre + half


def z_test(a: int, n: int, b: int, m: int) -> float:
    """Two-sided p of the pooled two-proportion z-test, by hand."""
    pooled = (a + b) / (n + m)
    z = (a / n - b / m) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    return 2 * (1 - NormalDist().cdf(abs(z)))


def test_interval_and_p_value_of_a_known_case():
    """A: 45 of 100 contained, B: 60 of 100. Wilson: 35.6-54.8% for A; z = 2.12, p = 0.034."""
    low, high = wilson(45, 100)
    assert (round(low, 4), round(high, 4)) == (0.3561, 0.5476)
    assert stats.proportion(45, 100) == {"count": 45, "of": 100, "rate": 0.45, "ci": [round(low, 3), round(high, 3)]}
    assert stats.proportion(60, 100)["ci"] == [round(v, 3) for v in wilson(60, 100)]
    test = stats.compare(stats.proportion(60, 100), stats.proportion(45, 100))
    assert test is not None and test["p"] == pytest.approx(z_test(60, 100, 45, 100), rel=5e-3)  # p is kept to 3 significant digits
    assert test["p"] == pytest.approx(0.0337, abs=1e-4) and test["z"] == pytest.approx(2.124, abs=1e-3)
    assert test["difference"] == 0.15
    h = 2 * math.asin(math.sqrt(0.6)) - 2 * math.asin(math.sqrt(0.45))  # Cohen's h
    by_hand = 2 * ((Z + NormalDist().inv_cdf(0.8)) / h) ** 2  # per arm, alpha 0.05 two-sided, power 0.8
    assert stats.calls_needed(0.6, 0.45) == math.ceil(by_hand) == 173


def test_experiment_says_not_enough_data_until_each_arm_has_the_calls_needed():
    built = report.build(arm_calls("A", 45, 100) + arm_calls("B", 60, 100, first=100), START, START + DAY)
    [experiment] = built["experiments"]
    assert experiment["control"] == "A" and [a["arm"] for a in experiment["arms"]] == ["A", "B"]
    b = experiment["arms"][1]
    assert b["verdict"]["kind"] == "not_enough_data"  # p = 0.034, but 100 calls an arm when 173 are needed
    assert (b["verdict"]["needed_per_arm"], b["verdict"]["more_calls_needed"]) == (173, 146)
    assert experiment["summary"] == ["B vs A: not enough data yet: telling a difference of 15.0 points in containment "
                                     "from chance takes about 173 calls per arm; 146 more calls needed"]
    assert "not enough data yet" in report.render(built) and "not enough data yet" in page(built)


def test_experiment_with_enough_calls_names_the_arm_that_contains_more():
    built = report.build(arm_calls("control", 180, 400) + arm_calls("short", 240, 400, first=400), START,
                         START + DAY)
    [experiment] = built["experiments"]
    assert experiment["control"] == "control"  # an arm called control is the control, whatever the names
    short = experiment["arms"][1]
    assert short["vs_control"]["containment"]["p"] == pytest.approx(z_test(240, 400, 180, 400), rel=5e-3)  # p is kept to 3 significant digits
    assert experiment["summary"] == ["arm short contains more callers than control (p < 0.001)"]
    built = report.build(arm_calls("A", 50, 100) + arm_calls("B", 50, 100, first=100), START, START + DAY)
    assert built["experiments"][0]["summary"] == ["B vs A: no significant difference in containment (p = 1.000)"]
    few = report.build(arm_calls("A", 5, 10) + arm_calls("B", 9, 10, first=10), START, START + DAY)
    assert few["experiments"][0]["summary"][0].startswith("B vs A: not enough data yet: ")


def test_the_control_is_the_flows_first_arm_when_given():
    calls = arm_calls("short_menu", 30, 50) + arm_calls("full_menu", 20, 50, first=50)
    assert report.build(calls, START, START + DAY)["experiments"][0]["control"] == "full_menu"  # first by name
    given = report.build(calls, START, START + DAY, controls={"greeting": "short_menu"})["experiments"][0]
    assert given["control"] == "short_menu" and [a["arm"] for a in given["arms"]] == ["short_menu", "full_menu"]
    assert "vs_control" not in given["arms"][0] and given["arms"][1]["verdict"]["kind"]
    from ivr.cli import _experiment_controls
    from tests.conftest import ROOT
    assert _experiment_controls(ROOT / "flows").get("menu_wording") == "full_menu"  # main_menu.yaml's first arm


def test_experiment_rates_among_callers_told_of_a_failed_premium():
    calls = [call(i, ["payment.offer"], payment="paid" if i < 3 else "open", experiments={"x": "A"})
             for i in range(4)] + [call(9, ["main_menu.menu"], experiments={"x": "A"})]
    [arm] = report.build(calls, START, START + DAY)["experiments"][0]["arms"]
    assert (arm["calls"], arm["recovery"]["count"], arm["recovery"]["of"], arm["recovery"]["rate"]) == (5, 3, 4, 0.75)
    assert arm["transfer"]["count"] == 0


def test_channel_with_few_cases_says_not_enough_data():
    built = report.build([call(0, ["payment.offer"], payment="paid")], START, START + DAY, recoveries=[])
    assert "not enough data" in report.render(built)
    rows = Tables.of(page(built))["t-recovery"]
    assert [r[-1] for r in rows] == ["not enough data"] * 3


# the page


class Tables(HTMLParser):
    """The page's tables: id -> rows of cell texts (header row left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.table: list[list[str]] | None = None
        self.cell: list[str] | None = None
        self.in_body = False

    @classmethod
    def of(cls, html: str) -> dict[str, list[list[str]]]:
        parser = cls()
        parser.feed(html)
        return parser.tables

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.table = self.tables.setdefault(dict(attrs)["id"], [])
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body and self.table is not None:
            self.table.append([])
        elif tag == "td" and self.in_body:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None and self.table is not None:
            self.table[-1].append("".join(self.cell))
            self.cell = None
        elif tag == "tbody":
            self.in_body = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def interval(p: dict) -> str:
    return "-" if p["rate"] is None else f"{p['rate'] * 100:.1f}% ({p['ci'][0] * 100:.1f}–{p['ci'][1] * 100:.1f}%)"


@pytest.fixture(scope="module")
def day():
    """A day of 500 synthetic calls and the campaign's recoveries: the report, as JSON would carry it."""
    return json.loads(json.dumps(report.build(records(), START, START + DAY, recoveries=recoveries())))


def test_the_page_tables_show_the_json_numbers(day):
    tables = Tables.of(page(day))
    hours = {h["hour"]: h["calls"] for h in day["calls_per_hour"]}
    [row] = tables["t-hourly"]
    assert row[0] == report._iso(START)[:10] and int(row[-1]) == sum(hours.values()) == day["calls"] == 500
    assert [int(c) for c in row[1:-1]] == [hours[f"{row[0]}T{h:02d}:00"] for h in range(24)]
    assert tables["t-journeys"] == [[name, str(j["entered"]), str(j["contained"]), str(j["transferred"]),
                                     str(j["abandoned"]), str(j["other"]), pct(j["containment"])]
                                    for name, j in day["journeys"].items()]
    assert sorted((q, r, int(n)) for q, r, n in tables["t-transfers"]) == sorted(
        (t["queue"], t["reason"], t["calls"]) for t in day["transfer_reasons"])
    for funnel in day["funnels"]:
        assert tables[f"t-funnel-{funnel['flow']}"] == [
            [n["node"], str(n["reached"]), pct(n["reached"] / funnel["calls"]), str(n["hung_up"])]
            for n in funnel["nodes"]]
    recovery = day["recovery_by_channel"]
    assert [r[:8] for r in tables["t-recovery"]] == [
        [c["label"], *(str(c[k]) for k in ("cases", "paid", "promised", "open", "lapsed", "recovered")), pct(c["rate"])]
        for c in recovery["channels"]]
    debits = recovery["per_failed_debit"]
    assert tables["t-debits"][-1] == ["all", *(str(debits[k]) for k in ("cases", "paid", "promised", "open", "lapsed",
                                                                        "recovered")), pct(debits["rate"])]
    assert [int(r[1]) for r in tables["t-debits"][:-1]] == [d["cases"] for d in debits["by_channel"].values()]
    for experiment in day["experiments"]:
        rows = tables[f"t-exp-{experiment['name']}"]
        assert [r[:3] for r in rows] == [[a["arm"], str(a["calls"]), interval(a["containment"])]
                                         for a in experiment["arms"]]
        for row, arm in zip(rows[1:], experiment["arms"][1:]):
            p = arm["vs_control"]["containment"]["p"]
            assert row[3] == ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")
            assert row[4] == interval(arm["transfer"]) and row[6] == interval(arm["recovery"])


def test_the_day_reads_as_expected(day):
    """The synthetic day: arm B of short_greeting contains more (62% against 45%), the young experiment cannot tell."""
    greeting, reminder = day["experiments"]
    assert greeting["name"] == "short_greeting" and greeting["summary"][0].startswith("arm B contains more callers")
    assert reminder["name"] == "sms_reminder" and "not enough data yet" in reminder["summary"][0]
    text = {c["channel"]: c for c in day["recovery_by_channel"]["channels"]}["text"]
    assert text["cases"] == 15 and not text["enough_data"]


def test_the_page_is_self_contained_and_has_every_section(day):
    html = page(day)
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\((?!#)", html)
    assert not re.search(r"""(src|href)=["'](?!#)""", html), "nothing fetched: no src or href but in-page ones"
    assert [h for h in re.findall(r"<h2[^>]*>([^<]+)</h2>", html)] == [
        "Calls per hour", "Containment and transfer reasons per journey", "Where callers go and where they hang up",
        "Failed-premium recovery by channel", "Experiments"]
    charts = re.findall(r'<figure class="chart" data-chart="([^"]+)"><svg ', html)
    assert charts == ["hourly", "journeys", *[f"funnel-{f['flow']}" for f in day["funnels"]], "recovery",
                      *[f"experiment-{e['name']}" for e in day["experiments"]]]
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "the charts' ids are unique on the page"
    assert "40****45" not in html and "call-1" not in html and "attempt-" not in html  # nothing about a caller


def test_the_page_of_an_empty_window():
    built = report.build([], START, START + 3600)
    assert "No calls in this window." in page(built) and "(no calls in this window)" in report.render(built)


def test_ivr_report_writes_the_page(redis_url, tmp_path, capsys):
    import asyncio
    import time

    from ivr.history import CallerHistory
    from ivr.sealing import Sealer

    now = time.time()

    async def write():
        history = CallerHistory.from_url(redis_url, Sealer.generate())
        for record in records(40, seed=3):
            record.started, record.ended = now - 300, now - 200
            await history.record(record, [])
        await history.close()
    asyncio.run(write())
    out = tmp_path / "report.html"
    assert main(["report", "--redis", redis_url, "--since", "10m", "--json", "--html", str(out)]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["calls"] >= 40 and built["experiments"][0]["name"] == "short_greeting"
    assert "Failed-premium recovery by channel" in out.read_text(encoding="utf-8")
