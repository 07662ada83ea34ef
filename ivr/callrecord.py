"""What one finished call amounts to, from its engine state: for history and reports.

The engine's path says everything that happened; this module reads it into
the few facts people ask about: which journeys the caller entered (their
intents), how each ended (contained in self-service, transferred, abandoned),
where the caller hung up, the transfer's queue and reason, and whether a
failed premium was recovered (paid now, or a promise to pay by a date).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ivr.engine.state import CallState
from ivr.masking import mask_policy

# journey flows and the intent each serves (main_menu's choices)
JOURNEYS = {"policy_query": "policy", "payment": "payment", "phone_update": "phone", "cancellation": "cancel"}
PATH_LIMIT = 60
# payment actions whose `ok` recovers a failed premium, and how
RECOVERED_BY = {"payment.retry": "paid", "payment.switch_method": "paid", "payment.promise": "promised"}


@dataclass
class JourneyOutcome:
    journey: str  # flow name
    outcome: str = "unfinished"  # contained | transferred | abandoned | <returned value> | unfinished
    node: str = ""  # where it ended (flow.node)
    reason: str = ""  # transfer reason


@dataclass
class CallRecord:
    call_id: str
    started: float
    ended: float
    status: str  # ended | transferred
    outcome: str  # completed, caller_hangup, ... or the transfer queue
    caller: str | None = None  # person id once identified
    ani_key: str = ""
    policy: str | None = None  # masked: records outlive the call by weeks and serve reports only
    language: str = "en"
    intents: list[str] = field(default_factory=list)
    journeys: list[JourneyOutcome] = field(default_factory=list)
    queue: str | None = None
    reason: str | None = None
    priority: int | None = None
    last_node: str = ""
    path: list[str] = field(default_factory=list)
    route: dict[str, Any] | None = None
    cancel_reason: str | None = None
    payment: str | None = None  # callers told of a failed premium: paid | promised | open

    @property
    def contained(self) -> bool:
        """Finished in self-service: the IVR ended the call, no person and no hang-up midway."""
        return self.status == "ended" and self.outcome != "caller_hangup"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CallRecord":
        values = dict(data)
        values["journeys"] = [JourneyOutcome(**j) for j in values.get("journeys", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def summarise(state: CallState, started: float, ended: float, ani_key: str = "") -> CallRecord:
    """The record of a call that has left the engine (transferred or ended)."""
    caller = state.vars.get("caller") if isinstance(state.vars.get("caller"), dict) else {}
    result = state.result
    record = CallRecord(
        call_id=state.call_id, started=started, ended=ended, status=state.status,
        outcome=str(result.get("outcome") or result.get("queue") or state.status),
        caller=caller.get("id"), ani_key=ani_key, policy=_masked(caller.get("policy_number")), language=state.language,
        queue=result.get("queue"), reason=result.get("reason"), priority=result.get("priority"),
        route=_routing(state), cancel_reason=_text(state.vars.get("cancel_reason")),
    )
    record.journeys = _journeys(state)
    record.payment = _payment(state)
    record.intents = list(dict.fromkeys(JOURNEYS[j.journey] for j in record.journeys))
    last = state.path[-1] if state.path else None
    if result.get("outcome") == "caller_hangup":
        record.last_node = f"{result.get('flow', state.flow)}.{result.get('node', state.node)}"
    elif last is not None:
        record.last_node = f"{last.flow}.{last.node}"
    record.path = _compact_path(state)
    return record


def _journeys(state: CallState) -> list[JourneyOutcome]:
    journeys: list[JourneyOutcome] = []
    current: JourneyOutcome | None = None
    for turn in state.path:
        where = f"{turn.flow}.{turn.node}"
        if turn.kind == "call" and turn.detail in JOURNEYS:
            current = JourneyOutcome(turn.detail, node=where)
            journeys.append(current)
        elif current is None:
            continue
        elif turn.kind == "return" and turn.flow == current.journey:
            current.outcome = "contained" if turn.matched == "done" else str(turn.matched)
            current.node = where
            current = None
        elif turn.kind == "transfer":
            current.outcome, current.node = "transferred", where
            current.reason = (turn.detail or "").split(":")[0]
        elif turn.kind == "caller_hangup":
            current.outcome, current.node = "abandoned", where
        else:
            current.node = where
    return journeys


def _payment(state: CallState) -> str | None:
    """How a failed premium ended, for a caller the payment journey found one for (else None)."""
    succeeded = [t.detail for t in state.path if t.kind == "backend" and t.matched == "ok"]
    if "payment.failure" not in succeeded:
        return None
    recovered = [RECOVERED_BY[name] for name in succeeded if name in RECOVERED_BY]
    return recovered[-1] if recovered else "open"


def _compact_path(state: CallState) -> list[str]:
    """Nodes visited, repeats collapsed, the last PATH_LIMIT kept: what an agent can read at a glance."""
    nodes: list[str] = []
    for turn in state.path:
        where = f"{turn.flow}.{turn.node}"
        if not nodes or nodes[-1] != where:
            nodes.append(where)
    return nodes[-PATH_LIMIT:]


def _routing(state: CallState) -> dict[str, Any] | None:
    """The routing decision the flow applied ({rule, to, reason}), else None."""
    applied = state.vars.get("routing")
    return dict(applied) if isinstance(applied, dict) else None


def _masked(policy: Any) -> str | None:
    return mask_policy(policy) if policy else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
