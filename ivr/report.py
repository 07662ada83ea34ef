"""`ivr report`: how the journeys did, from the call records in Redis.

For the calls that ended in a time window: per journey, how many callers
entered it and how many finished it in self-service (containment), were
transferred, or hung up midway; how many failed premiums the payment
journey recovered (paid now or promised by a date; the industry aims above
90%); why callers were transferred; where they hung up (drop-off per node);
and which routing rules sent callers where.

For people rather than terminals the same report has more: calls per hour,
the path callers took through each flow (how many reached each node, where
they hung up), failed premiums recovered per channel (an inbound call, a
rescue campaign's outbound call, a text message) and the A/B experiments'
arms compared (`ivr.stats`). `build` gives it all as one dict (the JSON of
`ivr report --json`); `render` prints it for a terminal and
`ivr.report_html.page` makes the HTML page of `ivr report --html`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ivr.callrecord import JOURNEYS, CallRecord

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RECOVERY_TARGET = 0.9
MIN_CASES = 20  # fewer failed premiums than this on a channel and its rate says little: "not enough data"
CHANNELS = {"inbound": "inbound call", "outbound_call": "outbound call", "text": "text message"}
RECOVERY_OUTCOMES = ("paid", "promised", "open", "lapsed")
HOURS_AT_MOST = 40 * 24  # a longer window's hourly chart starts at its first call (records are kept 35 days)


@dataclass(frozen=True)
class Recovery:
    """How one failed premium (debit) ended, and through which channel: what a rescue campaign reports.

    channel: inbound (the policyholder called), outbound_call (the campaign called them) or text (they
    paid after a text message, with no call); outcome: paid, promised (to pay by a date), open (not yet)
    or lapsed (the policy lapsed unpaid); at: when it was settled (Unix time)."""

    channel: str
    outcome: str
    at: float

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"recovery channel {self.channel!r} is not one of {', '.join(CHANNELS)}")
        if self.outcome not in RECOVERY_OUTCOMES:
            raise ValueError(f"recovery outcome {self.outcome!r} is not one of {', '.join(RECOVERY_OUTCOMES)}")


def parse_when(text: str, now: float) -> float:
    """`24h`, `30m`, `7d` (that long ago), an ISO date/time, or `now`: a Unix time."""
    text = text.strip()
    if text == "now":
        return now
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a duration (30m, 24h, 7d) or a date/time (2026-11-25T09:00)") from None
    return moment.timestamp()


def build(records: list[CallRecord], since: float, until: float, recoveries: Iterable[Recovery] | None = None,
          controls: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The report of the calls that ended between `since` and `until` (Unix times).

    `recoveries` are the failed premiums a rescue campaign followed, however each ended (those settled
    in the window count): the text-message channel and the per-debit view come from them; without
    them the recovery section has the calls only. `controls` names each experiment's control arm (the
    first its flow declares); without it, `ivr.stats.experiment` chooses. Pure: nothing is read or written."""
    journeys: dict[str, Counter] = {}
    reasons: Counter = Counter()
    drop_off: Counter = Counter()
    rules: Counter = Counter()
    outcomes: Counter = Counter()
    payments: Counter = Counter()
    for record in records:
        if record.payment:
            payments[record.payment] += 1
        outcomes["contained" if record.contained else "transferred" if record.status == "transferred"
                 else "abandoned" if record.outcome == "caller_hangup" else "other"] += 1
        for journey in record.journeys:
            counts = journeys.setdefault(journey.journey, Counter())
            counts["entered"] += 1
            counts[journey.outcome if journey.outcome in ("contained", "transferred", "abandoned") else "other"] += 1
        if record.status == "transferred":
            reasons[(record.queue or "?", record.reason or "?")] += 1
        if record.outcome == "caller_hangup":
            drop_off[record.last_node or "?"] += 1
        if record.route and record.route.get("rule"):
            rules[(record.route["rule"], record.route.get("to") or "")] += 1
    calls = len(records)
    return {
        "window": {"since": _iso(since), "until": _iso(until)},
        "calls": calls,
        "outcomes": dict(outcomes),
        "containment": _rate(outcomes["contained"], calls),
        "journeys": {name: {"entered": c["entered"], "contained": c["contained"], "transferred": c["transferred"],
                            "abandoned": c["abandoned"], "other": c["other"],
                            "containment": _rate(c["contained"], c["entered"])}
                     for name, c in sorted(journeys.items())},
        "payment_recovery": _recovery(payments),
        "transfer_reasons": [{"queue": q, "reason": r, "calls": n} for (q, r), n in reasons.most_common()],
        "drop_off": [{"node": node, "calls": n} for node, n in drop_off.most_common()],
        "routing_rules": [{"rule": rule, "to": to, "calls": n} for (rule, to), n in rules.most_common()],
        "calls_per_hour": calls_per_hour(records, since, until),
        "funnels": funnels(records),
        "recovery_by_channel": recovery_by_channel(
            records, None if recoveries is None else [r for r in recoveries if since <= r.at <= until]),
        "experiments": experiments(records, controls or {}),
    }


def calls_per_hour(records: list[CallRecord], since: float, until: float) -> list[dict[str, Any]]:
    """Calls by the hour they started in (local time), every hour of the window, those without calls too."""
    if until - since > HOURS_AT_MOST * 3600 and records:
        since = max(since, min(r.started for r in records))
    first = dt.datetime.fromtimestamp(since).replace(minute=0, second=0, microsecond=0).timestamp()
    hours = [0] * max(1, math.ceil((until - first) / 3600))
    for record in records:
        hours[min(max(int((record.started - first) // 3600), 0), len(hours) - 1)] += 1
    return [{"hour": _iso(first + 3600 * index), "calls": n} for index, n in enumerate(hours)]


def funnels(records: list[CallRecord]) -> list[dict[str, Any]]:
    """Per flow, how many calls reached each of its nodes and how many hung up there, most reached first.

    A call's path is cut where it enters a journey flow or comes back to the flow it started in; the
    subflows a journey calls (verify) count in that journey's funnel. A call counts once per node
    however often it came back to it. Journey flows come first, in `JOURNEYS` order."""
    reached: dict[str, Counter] = {}
    entered: Counter = Counter()
    hung_up: dict[str, Counter] = {}
    for record in records:
        hangup = record.outcome == "caller_hangup" and record.last_node
        path = record.path + ([record.last_node] if hangup and record.path[-1:] != [record.last_node] else [])
        if not path:
            continue
        visited = _by_flow(path)
        for flow, nodes in _grouped(visited).items():
            entered[flow] += 1
            reached.setdefault(flow, Counter()).update(nodes)
        if hangup:
            hung_up.setdefault(visited[-1][0], Counter())[record.last_node] += 1
    order = [f for f in JOURNEYS if f in entered] + sorted((f for f in entered if f not in JOURNEYS),
                                                           key=lambda f: -entered[f])
    return [{"flow": flow, "calls": entered[flow], "journey": flow in JOURNEYS,
             "nodes": [{"node": node, "reached": n, "hung_up": hung_up.get(flow, Counter())[node]}
                       for node, n in reached[flow].most_common()]}
            for flow in order]


def _by_flow(path: list[str]) -> list[tuple[str, str]]:
    """Each node of a path with the flow it counts for: the journey it is in, or the flow the call started in."""
    top = owner = path[0].split(".")[0]
    owned = []
    for node in path:
        flow = node.split(".")[0]
        if flow in JOURNEYS or flow == top:
            owner = flow
        owned.append((owner, node))
    return owned


def _grouped(owned: list[tuple[str, str]]) -> dict[str, list[str]]:
    """The nodes per flow, each once, in the order first visited."""
    nodes: dict[str, dict[str, None]] = {}
    for flow, node in owned:
        nodes.setdefault(flow, {})[node] = None
    return {flow: list(n) for flow, n in nodes.items()}


def recovery_by_channel(records: list[CallRecord], recoveries: list[Recovery] | None) -> dict[str, Any]:
    """Failed premiums recovered (paid or promised) per channel, against `RECOVERY_TARGET`.

    The calls' channels come from the call records (callers told of a failed premium, by direction),
    the text channel from the campaign's recoveries; `per_failed_debit` is all the campaign's
    recoveries, whatever the channel (None without them)."""
    counts: dict[str, Counter] = {"inbound": Counter(), "outbound_call": Counter()}
    for record in records:
        if record.payment:
            counts["outbound_call" if record.direction == "outbound" else "inbound"][record.payment] += 1
    if recoveries is not None:
        counts["text"] = Counter(r.outcome for r in recoveries if r.channel == "text")
    per_debit = None
    if recoveries is not None:
        per_debit = _recovered(Counter(r.outcome for r in recoveries))
        per_debit["by_channel"] = {channel: _recovered(Counter(r.outcome for r in recoveries if r.channel == channel))
                                   for channel in CHANNELS}
    return {"target": RECOVERY_TARGET, "min_cases": MIN_CASES,
            "channels": [{"channel": channel, "label": CHANNELS[channel], **_recovered(c),
                          "enough_data": sum(c.values()) >= MIN_CASES} for channel, c in counts.items()],
            "per_failed_debit": per_debit}


def _recovered(outcomes: Counter) -> dict[str, Any]:
    cases = sum(outcomes.values())
    recovered = outcomes["paid"] + outcomes["promised"]
    return {"cases": cases, **{o: outcomes[o] for o in RECOVERY_OUTCOMES}, "recovered": recovered,
            "rate": _rate(recovered, cases)}


def experiments(records: list[CallRecord], controls: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each A/B experiment the callers were in: its arms' rates compared with the control (`ivr.stats`)."""
    arms: dict[str, dict[str, Counter]] = {}
    for record in records:
        for name, arm in record.experiments.items():
            c = arms.setdefault(name, {}).setdefault(arm, Counter())
            c["calls"] += 1
            c["contained"] += record.contained
            c["transferred"] += record.status == "transferred"
            if record.payment:
                c["told"] += 1
                c["recovered"] += record.payment in ("paid", "promised")
    if not arms:
        return []
    from ivr import stats  # statsmodels takes a second to load: only when there is an experiment

    keys = ("calls", "contained", "transferred", "told", "recovered")
    return [stats.experiment(name, {arm: {k: c[k] for k in keys} for arm, c in by_arm.items()}, controls.get(name))
            for name, by_arm in sorted(arms.items())]


def render(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    w = report["window"]
    lines = [f"calls ended {w['since']} … {w['until']}: {report['calls']}"]
    if not report["calls"]:
        return lines[0] + "\n(no calls in this window)"
    o = report["outcomes"]
    lines.append(f"finished in self-service {o.get('contained', 0)} ({percent(report['containment'])}), "
                 f"transferred {o.get('transferred', 0)}, hung up {o.get('abandoned', 0)}")
    lines += ["", f"{'journey':<16}{'entered':>8}{'contained':>11}{'transferred':>13}{'hung up':>9}{'containment':>13}"]
    for name, j in report["journeys"].items():
        lines.append(f"{name:<16}{j['entered']:>8}{j['contained']:>11}{j['transferred']:>13}{j['abandoned']:>9}"
                     f"{percent(j['containment']):>13}")
    p = report["payment_recovery"]
    if p["callers"]:
        callers = f"{p['callers']} caller" + ("s" if p["callers"] != 1 else "")
        lines += ["", f"failed premiums: {callers}, paid now {p['paid']}, promised {p['promised']}, "
                      f"not recovered {p['open']}: recovered {percent(p['recovered'])} "
                      f"(target over {percent(p['target'])})"]
    lines += ["", "transfer reasons:"]
    lines += [f"  {t['calls']:>5}  {t['queue']}: {t['reason']}" for t in report["transfer_reasons"]] or ["  (none)"]
    lines += ["", "drop-off (caller hung up at):"]
    lines += [f"  {d['calls']:>5}  {d['node']}" for d in report["drop_off"]] or ["  (none)"]
    lines += ["", "routing rules applied:"]
    lines += [f"  {r['calls']:>5}  {r['rule']} → {r['to']}" for r in report["routing_rules"]] or ["  (none)"]
    busiest = max(report["calls_per_hour"], key=lambda h: h["calls"])
    lines += ["", f"busiest hour: {busiest['hour']}, {busiest['calls']} calls"]
    lines += _render_funnels(report["funnels"])
    lines += _render_recovery(report["recovery_by_channel"])
    for e in report["experiments"]:
        lines += ["", f"experiment {e['name']} (control {e['control']}):"]
        for arm in e["arms"]:
            lines.append(f"  {arm['arm']:<12}{arm['calls']:>6} calls  contained {_interval(arm['containment'])}  "
                         f"transferred {_interval(arm['transfer'])}")
        lines += [f"  {text}" for text in e["summary"]]
    return "\n".join(lines)


FUNNEL_LINES = 12  # nodes per flow in the terminal; --json and --html have them all


def _render_funnels(funnels: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for funnel in funnels:
        lines += ["", f"{funnel['flow']} ({funnel['calls']} calls): reached, hung up there"]
        lines += [f"  {n['reached']:>5} {n['hung_up'] or '':>5}  {n['node']}" for n in funnel["nodes"][:FUNNEL_LINES]]
        if len(funnel["nodes"]) > FUNNEL_LINES:
            lines.append(f"  … {len(funnel['nodes']) - FUNNEL_LINES} more nodes (--json, --html)")
    return lines


def _render_recovery(recovery: dict[str, Any]) -> list[str]:
    lines = ["", f"failed premiums recovered by channel (target over {percent(recovery['target'])}):"]
    for c in recovery["channels"]:
        enough = "" if c["enough_data"] else "  not enough data"
        lines.append(f"  {c['label']:<16}{c['cases']:>6} cases  recovered {c['recovered']:>5} "
                     f"({percent(c['rate'])}){enough}")
    debits = recovery["per_failed_debit"]
    if debits is not None:
        lines.append(f"  all failed debits followed: {debits['cases']}, recovered {debits['recovered']} "
                     f"({percent(debits['rate'])}), lapsed {debits['lapsed']}")
    return lines


def _interval(p: dict[str, Any]) -> str:
    if p["rate"] is None:
        return "-"
    return f"{p['rate'] * 100:.1f}% [{p['ci'][0] * 100:.1f}–{p['ci'][1] * 100:.1f}%]"


def _recovery(payments: Counter) -> dict[str, Any]:
    """Callers in the payment journey and how their failed premium ended."""
    callers = sum(payments.values())
    return {"callers": callers, "paid": payments["paid"], "promised": payments["promised"], "open": payments["open"],
            "recovered": _rate(payments["paid"] + payments["promised"], callers), "target": RECOVERY_TARGET}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def percent(rate: float | None) -> str:
    """A rate as people read it (`-` when there was nothing to count); the text and the page both."""
    return "-" if rate is None else f"{rate * 100:.0f}%"


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment).isoformat(timespec="minutes")
