"""Statistics of an A/B experiment's arms, for `ivr report`: is one arm really better than the control?

Each arm's rates (containment, transfers, failed premiums recovered) come
with a 95% confidence interval (Wilson's, right for small counts and for
rates near 0% or 100%), and each arm is compared with the control by a
two-proportion z-test. How many calls each arm needs before a difference
of the size observed can be told from chance (alpha 0.05, power 0.8) is
what "not enough data yet" is measured against.

statsmodels does the arithmetic; it is imported here only, and only
`ivr report` imports this module (it takes about a second to load).
"""

from __future__ import annotations

import math
from typing import Any

from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize, proportions_ztest

ALPHA = 0.05  # a difference is significant when p < ALPHA
POWER = 0.8  # the chance of seeing a real difference of the observed size, for the calls needed
MIN_CALLS = 20  # fewer calls in an arm than this and nothing is said about it, whatever the difference


def proportion(count: int, of: int) -> dict[str, Any]:
    """`count` out of `of`, its rate and the rate's 95% Wilson interval (None when `of` is 0)."""
    if not of:
        return {"count": count, "of": of, "rate": None, "ci": None}
    low, high = proportion_confint(count, of, alpha=ALPHA, method="wilson")
    return {"count": count, "of": of, "rate": round(count / of, 3), "ci": [round(float(low), 3), round(float(high), 3)]}


def compare(arm: dict[str, Any], control: dict[str, Any]) -> dict[str, Any] | None:
    """Two-proportion z-test of an arm's rate against the control's (pooled variance, two-sided).

    None when either has no cases, or when both rates are 0% or both 100% (nothing to tell apart)."""
    counts, sizes = [arm["count"], control["count"]], [arm["of"], control["of"]]
    if not all(sizes):
        return None
    if sum(counts) in (0, sum(sizes)):
        return None
    z, p = proportions_ztest(counts, sizes)
    return {"difference": round(arm["count"] / arm["of"] - control["count"] / control["of"], 3),
            "z": round(float(z), 3), "p": _significant_digits(float(p))}


def calls_needed(rate: float, control_rate: float) -> int | None:
    """Calls per arm to tell `rate` from `control_rate` (alpha 0.05, power 0.8); None when they are equal."""
    effect = abs(float(proportion_effectsize(rate, control_rate)))
    if effect < 1e-9:
        return None
    return math.ceil(NormalIndPower().solve_power(effect_size=effect, alpha=ALPHA, power=POWER, ratio=1.0))


def experiment(name: str, arms: dict[str, dict[str, int]], control: str | None = None) -> dict[str, Any]:
    """One experiment: per arm its rates and intervals, each arm against the control, and what can be said.

    `arms` maps each arm to its counts: calls, contained, transferred, told (callers told of a failed
    premium) and recovered (of those, paid or promised). The control is `control` (the flow's first
    arm) when it has calls, else the arm called "control" if there is one, else the first by name."""
    if control not in arms:
        control = "control" if "control" in arms else sorted(arms)[0]
    order = [control] + sorted(a for a in arms if a != control)
    rows: list[dict[str, Any]] = []
    for arm in order:
        counts = arms[arm]
        rows.append({"arm": arm, "calls": counts["calls"],
                     "containment": proportion(counts["contained"], counts["calls"]),
                     "transfer": proportion(counts["transferred"], counts["calls"]),
                     "recovery": proportion(counts["recovered"], counts["told"])})
    base = rows[0]
    for row in rows[1:]:
        row["vs_control"] = {metric: compare(row[metric], base[metric]) for metric in ("containment", "transfer", "recovery")}
        row["verdict"] = verdict(row, base)
    return {"name": name, "control": control, "arms": rows,
            "summary": [f"{r['verdict']['text']}" for r in rows[1:]] or [f"only one arm ({control}) so far"]}


def verdict(arm: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """What can be said of an arm's containment against the control's, in plain words."""
    name, base = arm["arm"], control["arm"]
    rate, base_rate = arm["containment"]["rate"], control["containment"]["rate"]
    needed = calls_needed(rate, base_rate) if rate is not None and base_rate is not None else None
    fewest = min(arm["calls"], control["calls"])
    test = arm["vs_control"]["containment"]
    result: dict[str, Any] = {"needed_per_arm": needed, "more_calls_needed": None, "p": test["p"] if test else None}
    if fewest < MIN_CALLS or (needed is not None and fewest < needed):
        per_arm = max(needed or 0, MIN_CALLS)
        more = max(0, per_arm - arm["calls"]) + max(0, per_arm - control["calls"])
        result.update(kind="not_enough_data", more_calls_needed=more)
        if needed is None or needed < MIN_CALLS:
            why = f"at least {MIN_CALLS} calls per arm are needed"
        else:
            why = (f"telling a difference of {_points(rate - base_rate)} in containment from chance takes "
                   f"about {needed:,} calls per arm")
        result["text"] = f"{name} vs {base}: not enough data yet: {why}; {more:,} more calls needed"
    elif test is None or test["p"] >= ALPHA:
        result.update(kind="no_difference")
        p = f" ({format_p(test['p'])})" if test else ""
        result["text"] = f"{name} vs {base}: no significant difference in containment{p}"
    else:
        more_or_fewer = "more" if rate > base_rate else "fewer"
        result.update(kind=more_or_fewer)
        result["text"] = f"arm {name} contains {more_or_fewer} callers than {base} ({format_p(test['p'])})"
    return result


def format_p(p: float) -> str:
    """"p = 0.003", or "p < 0.001" for smaller ones."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _points(difference: float) -> str:
    return f"{abs(difference) * 100:.1f} points"


def _significant_digits(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")
