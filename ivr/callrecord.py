"""What one call amounts to, for history and reports: built as the call goes.

`CallFacts` takes each engine step as it happens (the path entries the step
added, `ivr.controller.notices.StepTaken`) and keeps the few facts people ask
about: which journeys the caller entered (their intents), how each ended
(contained in self-service, transferred, abandoned), the last node, the
nodes visited, whether a failed premium was recovered (paid now, or a
promise to pay by a date) and the routing decision the flow applied. The
call's path keeps its last `MAX_PATH` entries only; these facts do not
depend on it, so a long call keeps its first journey.

When the call has left the engine, `CallFacts.record` adds what its final
state says (status, outcome, the transfer's queue, reason and priority, the
caller, the masked policy number, the language, the cancellation reason,
the experiments' arms the caller was in)
and gives the `CallRecord` that history and `ivr report` read (its JSON is
what Redis holds). `summarise` does the same from a whole path at once, for
a call played in memory (designer conversations, tests).

What the flows do not declare (no flow marks itself a journey, no backend
action says it recovers a premium) is written here, in one place:
`JOURNEYS`, `FAILED_PREMIUM_FOUND_BY` and `RECOVERED_BY`; the routing rules
take their intents from `JOURNEYS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ivr.engine.state import CallState, Turn
from ivr.masking import mask_policy

# journey flows and the intent each serves (main_menu's choices)
JOURNEYS = {"policy_query": "policy", "payment": "payment", "phone_update": "phone", "cancellation": "cancel"}
PATH_LIMIT = 60
# the payment action whose `ok` means the caller was told of a failed premium
FAILED_PREMIUM_FOUND_BY = "payment.failure"
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
    direction: str = "inbound"  # inbound | outbound (a campaign called the policyholder)
    attempt: str | None = None  # the campaign contact attempt an outbound call belongs to
    experiments: dict[str, str] = field(default_factory=dict)  # experiment name -> the arm this caller was in

    @property
    def contained(self) -> bool:
        """Finished in self-service: the IVR ended the call, no person and no hang-up midway."""
        return self.status == "ended" and self.outcome != "caller_hangup"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallRecord:
        values = dict(data)
        values["journeys"] = [JourneyOutcome(**j) for j in values.get("journeys", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


class CallFacts:
    """One call's record as it goes: each engine step's new path entries folded in, nothing re-read."""

    def __init__(self) -> None:
        self.journeys: list[JourneyOutcome] = []
        self.journey: JourneyOutcome | None = None  # the one the caller is in
        self.journey_flow = ""  # the flow running it (another than the journey's in an experiment's arm)
        self.nodes: list[str] = []  # visited, repeats collapsed, the last PATH_LIMIT
        self.last_node = ""
        self.failed_premium = False
        self.recovered: str | None = None  # paid | promised: how the last recovery went
        self.route: dict[str, Any] | None = None
        self.cancel_reason: str | None = None

    @classmethod
    def from_path(cls, state: CallState) -> CallFacts:
        """The facts of a call as far as its path still holds them (a call played in memory, or
        resumed from another controller: the path keeps its last `MAX_PATH` entries)."""
        facts = cls()
        facts.take(state.path, state)
        return facts

    def take(self, turns: Iterable[Turn], state: CallState) -> None:
        """One engine step: the path entries it added, in order, and the state it left."""
        for turn in turns:
            self._turn(turn)
        applied = state.vars.get("routing")  # shared by the call's flows: the decision applied so far, if any
        self.route = dict(applied) if isinstance(applied, dict) else None
        reason = state.vars.get("cancel_reason")  # the cancellation flow's own: gone once it returns
        if reason:
            self.cancel_reason = _text(reason)

    def _turn(self, turn: Turn) -> None:
        where = f"{turn.flow}.{turn.node}"
        self.last_node = where
        if not self.nodes or self.nodes[-1] != where:
            self.nodes.append(where)
            del self.nodes[:-PATH_LIMIT]
        if turn.kind == "backend" and turn.matched == "ok":
            if turn.detail == FAILED_PREMIUM_FOUND_BY:
                self.failed_premium = True
            elif turn.detail in RECOVERED_BY:
                self.recovered = RECOVERED_BY[turn.detail]
        current = self.journey
        journey = turn.matched or turn.detail  # an experiment's arm may run another flow for the journey
        if turn.kind == "call" and journey in JOURNEYS:
            self.journey = JourneyOutcome(str(journey), node=where)
            self.journey_flow = turn.detail or ""
            self.journeys.append(self.journey)
        elif current is None:
            return
        elif turn.kind == "return" and turn.flow == self.journey_flow:
            current.outcome = "contained" if turn.matched == "done" else str(turn.matched)
            current.node = where
            self.journey = None
        elif turn.kind == "transfer":
            current.outcome, current.node = "transferred", where
            current.reason = (turn.detail or "").split(":")[0]
        elif turn.kind == "caller_hangup":
            current.outcome, current.node = "abandoned", where
        else:
            current.node = where

    @property
    def payment(self) -> str | None:
        """How a failed premium ended, for a caller the payment journey found one for (else None)."""
        if not self.failed_premium:
            return None
        return self.recovered or "open"

    def record(self, state: CallState, started: float, ended: float, ani_key: str = "") -> CallRecord:
        """The record of the call, once it has left the engine (transferred or ended) in `state`."""
        found = state.vars.get("caller")
        caller: dict[str, Any] = found if isinstance(found, dict) else {}
        line = state.vars.get("call")
        call: dict[str, Any] = line if isinstance(line, dict) else {}
        result = state.result
        if result.get("outcome") == "caller_hangup":
            last_node = f"{result.get('flow', state.flow)}.{result.get('node', state.node)}"
        else:
            last_node = self.last_node
        return CallRecord(
            call_id=state.call_id, started=started, ended=ended, status=state.status,
            outcome=str(result.get("outcome") or result.get("queue") or state.status),
            caller=caller.get("id"), ani_key=ani_key, policy=_masked(caller.get("policy_number")),
            language=state.language,
            intents=list(dict.fromkeys(JOURNEYS[j.journey] for j in self.journeys)),
            journeys=[JourneyOutcome(j.journey, j.outcome, j.node, j.reason) for j in self.journeys],
            queue=result.get("queue"), reason=result.get("reason"), priority=result.get("priority"),
            last_node=last_node, path=list(self.nodes), route=dict(self.route) if self.route else None,
            cancel_reason=_text(state.vars.get("cancel_reason")) or self.cancel_reason, payment=self.payment,
            direction="outbound" if call.get("direction") == "outbound" else "inbound",
            attempt=_text(call.get("attempt")), experiments=dict(state.experiments),
        )


def summarise(state: CallState, started: float, ended: float, ani_key: str = "") -> CallRecord:
    """The record of a call that has left the engine, from its whole path at once.

    For a call played in memory (designer conversations, tests); the path
    keeps its last `MAX_PATH` entries only, so a live call's record is built
    as it goes instead (`CallFacts`, `ivr.controller.recorder`).
    """
    return CallFacts.from_path(state).record(state, started, ended, ani_key)


def _masked(policy: Any) -> str | None:
    return mask_policy(policy) if policy else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
