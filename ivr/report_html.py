"""`ivr report --html`: the report as one self-contained HTML page for a service-centre manager.

The page is made from the dict `ivr.report.build` gives (the same numbers
as `ivr report --json`): a heading and a few plain sentences per section,
a chart, and the chart's numbers in a table below it. Charts are drawn by
matplotlib straight to SVG (no GUI backend, no pyplot state) and inlined,
so the page needs no network, no script and no other file; the little
CSS there is sits in the page too.

Nothing personal is in the report: counts per journey, node, queue,
channel and experiment arm only.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Iterable
from typing import Any

from matplotlib import rc_context
from matplotlib.figure import Figure

from ivr.report import CHANNELS, MIN_CASES, RECOVERY_TARGET, percent
from ivr.stats import format_p

COLOURS = {"contained": "#2a9d8f", "transferred": "#e9c46a", "abandoned": "#e76f51", "other": "#b0b0b0"}
OUTCOME_LABELS = {"contained": "contained", "transferred": "transferred", "abandoned": "hung up", "other": "other"}
BAR, ACCENT, TARGET = "#4c78a8", "#e76f51", "#c0392b"
FUNNEL_BARS = 20  # nodes drawn per funnel; the table below it has them all
WIDTH = 9.0  # inches; the page scales the SVG to its column
RC: dict[Any, Any] = {"svg.fonttype": "none", "svg.hashsalt": "ivr-report", "font.size": 10, "axes.spines.top": False,
      "axes.spines.right": False, "font.family": ["DejaVu Sans", "sans-serif"]}

CSS = """
body { font-family: system-ui, sans-serif; color: #222; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.5rem; border-bottom: 2px solid #ddd; padding-bottom: .2rem; }
h3 { margin-top: 1.6rem; }
p.note { color: #444; max-width: 48rem; }
p.warn { color: #8a3b00; font-weight: 600; }
.chart { margin: 1rem 0; }
.chart svg { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: .8rem 0 1.2rem; font-size: .92rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e3e3e3; text-align: left; white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
p.verdict { font-weight: 600; }
td.repeat { color: #aaa; }
table.hours td, table.hours th { padding: .15rem .3rem; font-size: .8rem; }
td.zero { color: #bbb; }
"""


def page(report: dict[str, Any]) -> str:
    """The whole page, one string of HTML."""
    w = report["window"]
    since, until = w["since"].replace("T", " "), w["until"].replace("T", " ")
    parts = [f"<h1>IVR report</h1><p>Calls that ended between {_e(since)} and {_e(until)} (local time).</p>"]
    if not report["calls"]:
        parts.append("<p class=\"warn\">No calls in this window.</p>")
    else:
        o = report["outcomes"]
        parts.append(f"<p><strong>{report['calls']}</strong> calls: {o.get('contained', 0)} finished in self-service "
                     f"({percent(report['containment'])}), {o.get('transferred', 0)} transferred to a person, "
                     f"{o.get('abandoned', 0)} hung up midway.</p>")
        parts += [_hours(report), _journeys(report), _funnels(report), _recovery(report), _experiments(report)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>IVR report {_e(since)} – {_e(until)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


# sections


def _hours(report: dict[str, Any]) -> str:
    hours = report["calls_per_hour"]
    by_day: dict[str, dict[int, int]] = {}
    for h in hours:
        day, hour = h["hour"][:10], int(h["hour"][11:13])
        by_day.setdefault(day, {})[hour] = by_day.get(day, {}).get(hour, 0) + h["calls"]
    rows = [[day, *[_count(cells[hour]) if hour in cells else "" for hour in range(24)], sum(cells.values())]
            for day, cells in by_day.items()]
    busiest = max(hours, key=lambda h: h["calls"])
    return (_section("Calls per hour", "hourly")
            + _note("How many calls started in each hour of the window. Staff the agent queues for the busy hours: "
                    "the self-service share of those calls is in the next section.")
            + _chart("hourly", _hourly_chart, hours)
            + f"<p>Busiest hour: {_e(busiest['hour'].replace('T', ' '))}, {busiest['calls']} calls.</p>"
            + _table("t-hourly", ["day", *[f"{h:02d}" for h in range(24)], "total"], rows, css="hours"))


def _journeys(report: dict[str, Any]) -> str:
    journeys = report["journeys"]
    rows = [[name, j["entered"], j["contained"], j["transferred"], j["abandoned"], j["other"], percent(j["containment"])]
            for name, j in journeys.items()]
    out = (_section("Containment and transfer reasons per journey", "journeys")
           + _note("Of the callers who entered each journey, how many finished it in self-service (contained), "
                   "were transferred to a person, or hung up before the end. A high share of hang-ups points at a "
                   "step to look at in the next section; transfer reasons say why people needed an agent."))
    if journeys:
        out += _chart("journeys", _journeys_chart, journeys)
    out += _table("t-journeys", ["journey", "entered", "contained", "transferred", "hung up", "other", "containment"],
                  rows)
    out += "<h3>Transfer reasons by queue</h3>"
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for t in report["transfer_reasons"]:
        by_queue.setdefault(t["queue"], []).append(t)
    transfers = []
    for queue, reasons in sorted(by_queue.items(), key=lambda q: -sum(t["calls"] for t in q[1])):
        for index, t in enumerate(reasons):
            transfers.append([_Cell(queue, "repeat") if index else queue, t["reason"], t["calls"]])
    out += _table("t-transfers", ["queue", "reason", "calls"], transfers, labels=2, empty="No transfers.")
    if report["routing_rules"]:
        out += "<h3>Routing rules applied</h3>" + _table(
            "t-routing", ["rule", "sent to", "calls"], [[r["rule"], r["to"], r["calls"]] for r in report["routing_rules"]],
            labels=2)
    return out


def _funnels(report: dict[str, Any]) -> str:
    out = (_section("Where callers go and where they hang up", "funnels")
           + _note("For each flow, how many calls reached each step (the longest bar is the step most callers reached) "
                   "and, in orange, how many hung up there. A step where many hang up is worth listening to: an "
                   "unclear prompt, a question callers cannot answer, or a long wait. Steps of shared subflows "
                   "(verify) count in the journey that called them."))
    for funnel in report["funnels"]:
        fid = _ident(funnel["flow"])
        kind = "journey" if funnel["journey"] else "flow"
        out += f"<h3>{_e(funnel['flow'])} <small>({kind}, {funnel['calls']} calls)</small></h3>"
        out += _chart(f"funnel-{fid}", _funnel_chart, funnel)
        rows = [[n["node"], n["reached"], percent(n["reached"] / funnel["calls"]), n["hung_up"]] for n in funnel["nodes"]]
        out += _table(f"t-funnel-{fid}", ["step", "reached", "of the flow's calls", "hung up here"], rows)
    return out


def _recovery(report: dict[str, Any]) -> str:
    recovery = report["recovery_by_channel"]
    out = (_section("Failed-premium recovery by channel", "recovery")
           + _note(f"Of the policyholders told of a failed premium, the share who paid it or promised to pay by a "
                   f"date, per channel: when they called us (inbound), when a rescue campaign called them "
                   f"(outbound), or when they paid after a text message without a call. The dashed line is the "
                   f"{percent(recovery['target'])} target. Below {recovery['min_cases']} cases a channel's rate says "
                   f"little: it is marked \"not enough data\"."))
    if recovery["per_failed_debit"] is None:
        out += _note("Campaign results were not given: calls only, no text-message channel.")
    out += _chart("recovery", _recovery_chart, recovery)
    rows = [[c["label"], c["cases"], c["paid"], c["promised"], c["open"], c["lapsed"], c["recovered"], percent(c["rate"]),
             _against_target(c)] for c in recovery["channels"]]
    out += _table("t-recovery", ["channel", "cases", "paid", "promised", "not yet", "lapsed", "recovered", "rate",
                                 "against target"], rows)
    debits = recovery["per_failed_debit"]
    if debits is not None:
        out += "<h3>Per failed debit</h3>"
        out += _note("Every failed debit the campaign followed, by the channel it was settled through, whether or "
                     "not a call came of it: the overall recovery against the target.")
        out += (f"<p><strong>{debits['recovered']}</strong> of {debits['cases']} failed debits recovered "
                f"({percent(debits['rate'])}); target {percent(recovery['target'])}: {_against_target(debits)}.</p>")
        rows = [[label, d["cases"], d["paid"], d["promised"], d["open"], d["lapsed"], d["recovered"], percent(d["rate"])]
                for label, d in [*((CHANNELS[c], d) for c, d in debits["by_channel"].items()), ("all", debits)]]
        out += _table("t-debits", ["channel", "debits", "paid", "promised", "not yet", "lapsed", "recovered", "rate"],
                      rows)
    return out


def _experiments(report: dict[str, Any]) -> str:
    out = (_section("Experiments", "experiments")
           + _note("Callers in an A/B experiment heard one arm of it. Each arm's rates come with a 95% confidence "
                   "interval (the range the true rate very likely lies in; the black bars on the chart), and each "
                   "arm is compared with the first one, the control: a p-value under 0.05 means the difference is "
                   "unlikely to be chance. Until each arm has enough calls to tell a difference of the size seen, "
                   "the page says \"not enough data yet\"."))
    if not report["experiments"]:
        return out + "<p>No experiments in this window.</p>"
    for e in report["experiments"]:
        eid = _ident(e["name"])
        out += f"<h3>{_e(e['name'])} <small>(control: {_e(e['control'])})</small></h3>"
        out += "".join(f"<p class=\"{'warn' if 'not enough data' in s else 'verdict'}\">{_e(s)}</p>" for s in e["summary"])
        out += _chart(f"experiment-{eid}", _experiment_chart, e)
        rows = []
        for arm in e["arms"]:
            vs = arm.get("vs_control") or {}
            rows.append([arm["arm"], arm["calls"],
                         *[v for m in ("containment", "transfer", "recovery")
                           for v in (_interval(arm[m]), _p(vs.get(m)) if arm["arm"] != e["control"] else "control")]])
        out += _table(f"t-exp-{eid}", ["arm", "calls", "contained (95% CI)", "vs control", "transferred (95% CI)",
                                       "vs control", "recovered (95% CI)", "vs control"], rows)
    return out


# charts


def _hourly_chart(hours: list[dict[str, Any]]) -> Figure:
    fig, ax = _figure(2.8)
    ax.bar(range(len(hours)), [h["calls"] for h in hours], width=0.85, color=BAR)
    step = next(s for s in (1, 2, 3, 6, 12, 24, 48, 96, 168, 336) if len(hours) / s <= 16)
    ticks = [i for i, h in enumerate(hours) if int(h["hour"][11:13]) % min(step, 24) == 0][:: max(1, step // 24)]
    ax.set_xticks(ticks, [_hour_label(hours[i]["hour"], step) for i in ticks])
    ax.set_xlim(-0.6, len(hours) - 0.4)
    ax.set_ylabel("calls started")
    ax.yaxis.get_major_locator().set_params(integer=True)
    return fig


def _journeys_chart(journeys: dict[str, dict[str, Any]]) -> Figure:
    names = list(journeys)[::-1]
    fig, ax = _figure(0.9 + 0.5 * len(names))
    left = [0] * len(names)
    for outcome in ("contained", "transferred", "abandoned", "other"):
        values = [journeys[n][outcome] for n in names]
        if not any(values):
            continue
        bars = ax.barh(names, values, left=left, color=COLOURS[outcome], label=OUTCOME_LABELS[outcome], height=0.6)
        total = max(j["entered"] for j in journeys.values()) or 1
        for bar, value in zip(bars, values):
            if value and value / total > 0.04:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2, str(value),
                        ha="center", va="center", fontsize=9)
        left = [a + b for a, b in zip(left, values)]
    ax.set_xlabel("callers who entered the journey")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False)
    return fig


def _funnel_chart(funnel: dict[str, Any]) -> Figure:
    nodes = funnel["nodes"][:FUNNEL_BARS][::-1]
    fig, ax = _figure(0.8 + 0.28 * len(nodes))
    labels = [n["node"] for n in nodes]
    ax.barh(labels, [n["reached"] for n in nodes], color=BAR, height=0.7, label="reached the step")
    ax.barh(labels, [n["hung_up"] for n in nodes], color=ACCENT, height=0.7, label="hung up there")
    top = max((n["reached"] for n in nodes), default=1)
    for y, n in enumerate(nodes):
        text = f"{n['reached']}" + (f"  ({n['hung_up']} hung up)" if n["hung_up"] else "")
        ax.text(n["reached"] + top * 0.01, y, text, va="center", fontsize=8)
    ax.set_xlim(0, top * 1.22)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("calls")
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    if len(funnel["nodes"]) > FUNNEL_BARS:
        ax.set_title(f"the {FUNNEL_BARS} steps most reached of {len(funnel['nodes'])}", fontsize=9, loc="left")
    return fig


def _recovery_chart(recovery: dict[str, Any]) -> Figure:
    fig, ax = _figure(3.0, width=6.5)
    channels = recovery["channels"]
    labels = [c["label"] for c in channels]
    rates = [(c["rate"] or 0) * 100 for c in channels]
    bars = ax.bar(labels, rates, width=0.55, color=[BAR if c["enough_data"] else "#c9d6e6" for c in channels])
    for bar, c in zip(bars, channels):
        if not c["enough_data"]:
            bar.set_hatch("//")
            bar.set_edgecolor("#7f95b3")
        note = f"{percent(c['rate'])}, n = {c['cases']}" + ("" if c["enough_data"] else "\nnot enough data")
        inside = bar.get_height() > 25  # in the bar, clear of the target line; a short bar's note above it
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() - 3 if inside else bar.get_height() + 2, note,
                ha="center", va="top" if inside else "bottom", fontsize=9,
                color="white" if inside and c["enough_data"] else "#222",
                bbox=None if c["enough_data"] else {"facecolor": "white", "edgecolor": "none", "pad": 1.5})
    ax.axhline(RECOVERY_TARGET * 100, color=TARGET, linestyle="--", linewidth=1.2)
    ax.annotate(f"target {percent(RECOVERY_TARGET)}", (1.0, RECOVERY_TARGET * 100), xycoords=("axes fraction", "data"),
                xytext=(4, 0), textcoords="offset points", color=TARGET, va="center", fontsize=9)
    ax.set_ylim(0, 105)
    ax.set_yticks(range(0, 101, 20), [f"{v}%" for v in range(0, 101, 20)])
    ax.set_ylabel("recovered (paid or promised)")
    return fig


def _experiment_chart(experiment: dict[str, Any]) -> Figure:
    fig, ax = _figure(3.0, width=7.5)
    metrics = [("containment", "contained"), ("transfer", "transferred"), ("recovery", "recovered (failed premium)")]
    arms = experiment["arms"]
    width = 0.8 / len(arms)
    palette = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d"]
    for index, arm in enumerate(arms):
        xs, ys, low, high = [], [], [], []
        for x, (metric, _) in enumerate(metrics):
            p = arm[metric]
            if p["rate"] is None:
                continue
            xs.append(x - 0.4 + width * (index + 0.5))
            ys.append(p["rate"] * 100)
            low.append((p["rate"] - p["ci"][0]) * 100)
            high.append((p["ci"][1] - p["rate"]) * 100)
        ax.bar(xs, ys, width=width * 0.92, color=palette[index % len(palette)],
               label=_arm_label(arm["arm"], experiment["control"], arm["calls"]),
               yerr=[low, high], capsize=4, error_kw={"elinewidth": 1, "ecolor": "#222"})
    ax.set_xticks(range(len(metrics)), [label for _, label in metrics])
    ax.set_ylim(0, 105)
    ax.set_yticks(range(0, 101, 20), [f"{v}%" for v in range(0, 101, 20)])
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(arms), 4), frameon=False)
    return fig


# pieces


def _arm_label(arm: str, control: str, calls: int) -> str:
    if arm == control:
        return f"{arm} ({calls} calls)" if arm == "control" else f"{arm}, control ({calls} calls)"
    return f"{arm} ({calls} calls)"


def _figure(height: float, width: float = WIDTH) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


_IDS = re.compile(r'id="([^"]+)"')


def _chart(name: str, draw: Callable[[Any], Figure], data: Any) -> str:
    """The figure `draw` makes of `data` as an inline SVG; its ids prefixed with the chart's name, unique on the page."""
    buffer = io.StringIO()
    with rc_context(RC):
        draw(data).savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    for ident in set(_IDS.findall(svg)):
        svg = re.sub(rf'(id="|#){re.escape(ident)}(?=[")])', rf"\g<1>{name}-{ident}", svg)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{_e(name)} chart" ', 1)
    return f'<figure class="chart" data-chart="{_e(name)}">{svg}</figure>'


class _Cell:
    """A table cell with a CSS class."""

    def __init__(self, value: Any, css: str) -> None:
        self.value, self.css = value, css


def _table(ident: str, header: list[str], rows: Iterable[list[Any]], labels: int = 1, css: str = "",
           empty: str = "") -> str:
    """A table: its first `labels` columns name the row, the others hold numbers (right-aligned)."""
    rows = list(rows)
    if not rows and empty:
        return f"<p>{_e(empty)}</p>"
    head = "".join(_cell("th", h, i >= labels) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(_cell("td", v, i >= labels) for i, v in enumerate(row)) + "</tr>" for row in rows)
    klass = f' class="{css}"' if css else ""
    return f'<table id="{_e(ident)}"{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(tag: str, value: Any, number: bool) -> str:
    classes = (["num"] if number else []) + ([value.css] if isinstance(value, _Cell) else [])
    klass = f' class="{" ".join(classes)}"' if classes else ""
    return f"<{tag}{klass}>{_e(value.value if isinstance(value, _Cell) else value)}</{tag}>"


def _section(title: str, ident: str) -> str:
    return f'<h2 id="{ident}">{_e(title)}</h2>'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _count(calls: int) -> Any:
    return _Cell(0, "zero") if calls == 0 else calls


def _against_target(c: dict[str, Any]) -> str:
    if c["cases"] < MIN_CASES:
        return "not enough data"
    return "meets target" if c["rate"] >= RECOVERY_TARGET else "below target"


def _interval(p: dict[str, Any]) -> str:
    """45.0% (35.6–54.8%), or - when there were no cases."""
    if p["rate"] is None:
        return "-"
    return f"{p['rate'] * 100:.1f}% ({p['ci'][0] * 100:.1f}–{p['ci'][1] * 100:.1f}%)"


def _p(test: dict[str, Any] | None) -> str:
    return "-" if test is None else format_p(test["p"])


def _hour_label(hour: str, step: int) -> str:
    """09:00; at midnight the day under it (25/11); whole days alone when ticks are a day or more apart."""
    day = f"{hour[8:10]}/{hour[5:7]}"
    if step >= 24:
        return day
    return f"{hour[11:16]}\n{day}" if hour[11:13] == "00" else hour[11:16]


def _ident(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _e(value: Any) -> str:
    return html.escape(str(value))
