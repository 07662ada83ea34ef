"""`ivr bench experiment`: the shipped main-menu experiment with enough simulated callers to decide.

Callers run through the shipped flows in memory (the engine, the flows'
experiment assignment by keyed caller hash, sample backend answers), at a time
inside the experiment's dates. What differs between arms is only how often a
caller, having heard the menu prompt of their arm, finds their option
(`follows`, an assumption stated in the output): one who does not asks for a
person. The call records then go through `ivr report`'s experiment statistics
(Wilson intervals, two-proportion z-test, calls still needed), which say
whether there is a decision yet.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

from ivr import report
from ivr.backend.sample import sample_result
from ivr.callrecord import CallRecord, summarise
from ivr.designer.conversation import Conversation
from ivr.engine import events as ev
from ivr.engine.experiments import CALL_TIME, CALLER_KEY
from ivr.flow.catalog import load_flow_set

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = "menu_wording"
WHEN = "2026-10-15T10:00:00+00:00"  # inside menu_wording's dates
# keys after the menu choice, per intent (the sample backend's caller: date of birth 1980-05-31)
JOURNEYS = {"1": ["19800531", "9", "2"], "2": ["19800531", "1", "2"]}
SPACING = 30.0  # seconds between simulated calls (a busy line over the day)
FOLLOWS = {"full_menu": 0.90, "short_menu": 0.85}  # callers who find their option after hearing the arm's prompt


def run(callers: int = 2000, seed: int = 3, follows: dict[str, float] | None = None,
        html: Path | None = None) -> dict[str, Any]:
    release, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
    rng = random.Random(seed)
    rates = follows or FOLLOWS
    records = [_call(release, rng, rates, n) for n in range(callers)]
    start = dt.datetime.fromisoformat(WHEN).timestamp()
    built = report.build(records, start, start + callers * SPACING + 60, controls={EXPERIMENT: "full_menu"})
    if html is not None:
        from ivr.report_html import page

        html.write_text(page(built), encoding="utf-8")
    experiment = next((e for e in built["experiments"] if e["name"] == EXPERIMENT), None)
    return {"benchmark": "experiment", "experiment": EXPERIMENT, "callers": callers, "seed": seed,
            "assumed_share_finding_their_option": rates, "containment": built["containment"],
            "result": experiment}


def _call(release: Any, rng: random.Random, follows: dict[str, float], n: int) -> CallRecord:
    call = {"ani": "", CALL_TIME: WHEN, CALLER_KEY: f"{rng.getrandbits(128):032x}"}  # as the keyed hash gives it
    conversation = Conversation(release, "main_menu", responder=lambda a: sample_result(a.name), call=call)
    conversation.begin(call_id=f"bench-{n}")
    arm = conversation.call_state.experiments.get(EXPERIMENT, "full_menu")
    intent = rng.choice(list(JOURNEYS))
    moves = [intent, *JOURNEYS[intent]] if rng.random() < follows.get(arm, 0.9) else ["0"]
    for keys in moves:
        if conversation.finished:
            break
        conversation.send(ev.Dtmf(digits=keys))
    started = dt.datetime.fromisoformat(WHEN).timestamp() + n * SPACING
    return summarise(conversation.call_state, started, started + 60)
