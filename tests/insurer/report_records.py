"""Synthetic call records and campaign recoveries for the report's tests: a day of calls through the
shipped journeys' steps, an A/B experiment whose arm B contains more callers, recoveries by channel."""

from __future__ import annotations

import random

from ivr.callrecord import CallRecord, JourneyOutcome
from ivr.report import Recovery

START = 1_795_046_400.0  # midnight UTC, 2026-11-19; the window is the day after it
DAY = 86_400.0
MENU = ["main_menu.greet", "main_menu.menu"]
VERIFY = ["verify.identify", "verify.ask_dob", "verify.check", "verify.verified"]
END = ["main_menu.anything_else", "main_menu.goodbye"]
STEPS = {  # journey flow -> (menu choice node, the journey's own steps to the end, its transfer queue)
    "policy_query": ("main_menu.policy", ["policy_query.summary", "policy_query.tell_status", "policy_query.what_next"],
                     "policy_service"),
    "payment": ("main_menu.payment", ["payment.failure", "payment.explain", "payment.offer", "payment.retry",
                                      "payment.paid", "payment.confirm_sms"], "payments"),
    "cancellation": ("main_menu.cancel", ["cancellation.intro", "cancellation.reason", "cancellation.options",
                                          "cancellation.confirm"], "save_specialists"),
    "phone_update": ("main_menu.phone", ["phone_update.id_digits", "phone_update.new_number", "phone_update.done"],
                     "customer_service"),
}
CONTAINMENT = {"A": 0.45, "B": 0.62}  # the experiment's arms: B's shorter greeting keeps more callers in self-service
REASONS = {"asked_for_agent": 3, "no_match": 2, "downgrade_accepted": 1}


def records(count: int = 500, seed: int = 14) -> list[CallRecord]:
    rng = random.Random(seed)
    made = []
    for index in range(count):
        journey = rng.choices(list(STEPS), weights=[4, 3, 2, 1])[0]
        choice, steps, queue = STEPS[journey]
        arm = "A" if index % 2 else "B"
        outbound = journey == "payment" and rng.random() < 0.3
        full = MENU + [choice, f"{journey}.verify", *VERIFY, *steps, *END]
        roll = rng.random()
        told = journey == "payment"
        experiments = {"short_greeting": arm}
        if told:  # a second experiment, too young to tell: the same containment in both arms
            experiments["sms_reminder"] = rng.choice(["control", "reminder"])
        started = START + rng.betavariate(2.5, 2.5) * (DAY - 600)  # most calls mid-day
        common = dict(call_id=f"call-{index}", started=started, ended=started + rng.uniform(30, 400),
                      direction="outbound" if outbound else "inbound", experiments=experiments,
                      attempt=f"attempt-{index}" if outbound else None, policy="40****45")
        if roll < CONTAINMENT[arm]:  # finished in self-service
            made.append(CallRecord(**common, status="ended", outcome="completed", path=full, last_node=full[-1],
                                   journeys=[JourneyOutcome(journey, "contained", full[-3])],
                                   payment=("paid" if rng.random() < 0.7 else "promised") if told else None))
            continue
        cut = rng.randrange(3, len(full) - 2)
        path = full[:cut]
        if roll < CONTAINMENT[arm] + 0.3:  # to a person
            reason = rng.choices(list(REASONS), weights=list(REASONS.values()))[0]
            made.append(CallRecord(**common, status="transferred", outcome=queue, queue=queue, reason=reason,
                                   path=path, last_node=path[-1],
                                   journeys=[JourneyOutcome(journey, "transferred", path[-1], reason)],
                                   payment="open" if told and "payment.failure" in path else None))
        else:  # hung up midway
            made.append(CallRecord(**common, status="ended", outcome="caller_hangup", path=path, last_node=path[-1],
                                   journeys=[JourneyOutcome(journey, "abandoned", path[-1])],
                                   payment="open" if told and "payment.failure" in path else None))
    return made


def recoveries(seed: int = 14) -> list[Recovery]:
    """What a rescue campaign reports of the failed debits it followed: by text mostly paid, a few lapsed
    (too few texts yet to say: "not enough data")."""
    rng = random.Random(seed)
    plan = {"text": (15, [0.8, 0.05, 0.07, 0.08]), "outbound_call": (70, [0.6, 0.25, 0.1, 0.05]),
            "inbound": (90, [0.7, 0.2, 0.06, 0.04])}
    return [Recovery(channel, rng.choices(["paid", "promised", "open", "lapsed"], weights=weights)[0],
                     START + rng.uniform(0, DAY))
            for channel, (count, weights) in plan.items() for _ in range(count)]
