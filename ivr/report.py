"""`ivr report`: how the journeys did, from the call records in Redis.

For the calls that ended in a time window: per journey, how many callers
entered it and how many finished it in self-service (containment), were
transferred, or hung up midway; how many failed premiums the payment
journey recovered (paid now or promised by a date; the industry aims above
90%); why callers were transferred; where they hung up (drop-off per node);
and which routing rules sent callers where.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any

from ivr.callrecord import CallRecord

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RECOVERY_TARGET = 0.9


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


def build(records: list[CallRecord], since: float, until: float) -> dict[str, Any]:
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
    }


def render(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    w = report["window"]
    lines = [f"calls ended {w['since']} … {w['until']}: {report['calls']}"]
    if not report["calls"]:
        return lines[0] + "\n(no calls in this window)"
    o = report["outcomes"]
    lines.append(f"finished in self-service {o.get('contained', 0)} ({_pct(report['containment'])}), "
                 f"transferred {o.get('transferred', 0)}, hung up {o.get('abandoned', 0)}")
    lines += ["", f"{'journey':<16}{'entered':>8}{'contained':>11}{'transferred':>13}{'hung up':>9}{'containment':>13}"]
    for name, j in report["journeys"].items():
        lines.append(f"{name:<16}{j['entered']:>8}{j['contained']:>11}{j['transferred']:>13}{j['abandoned']:>9}"
                     f"{_pct(j['containment']):>13}")
    p = report["payment_recovery"]
    if p["callers"]:
        callers = f"{p['callers']} caller" + ("s" if p["callers"] != 1 else "")
        lines += ["", f"failed premiums: {callers}, paid now {p['paid']}, promised {p['promised']}, "
                      f"not recovered {p['open']}: recovered {_pct(p['recovered'])} "
                      f"(target over {_pct(p['target'])})"]
    lines += ["", "transfer reasons:"]
    lines += [f"  {t['calls']:>5}  {t['queue']}: {t['reason']}" for t in report["transfer_reasons"]] or ["  (none)"]
    lines += ["", "drop-off (caller hung up at):"]
    lines += [f"  {d['calls']:>5}  {d['node']}" for d in report["drop_off"]] or ["  (none)"]
    lines += ["", "routing rules applied:"]
    lines += [f"  {r['calls']:>5}  {r['rule']} → {r['to']}" for r in report["routing_rules"]] or ["  (none)"]
    return "\n".join(lines)


def _recovery(payments: Counter) -> dict[str, Any]:
    """Callers in the payment journey and how their failed premium ended."""
    callers = sum(payments.values())
    return {"callers": callers, "paid": payments["paid"], "promised": payments["promised"], "open": payments["open"],
            "recovered": _rate(payments["paid"] + payments["promised"], callers), "target": RECOVERY_TARGET}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment).isoformat(timespec="minutes")
