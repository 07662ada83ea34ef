"""The screen pop: everything an agent should know before saying hello.

Built from the call's saved state (the path through the flows, the
variables the flows saved, the transfer's queue and reason, the
experiments' arms the caller was in) and the
caller's profile and contact history. Plain JSON-able data: the page
renders it, tests read it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ivr.engine.state import CallState, Turn
from ivr.web.caller_data import CallerProfile, Contact, PolicyInfo, caller_of

# Turns that mean the IVR did not get what it needed from the caller.
FAILED_KINDS = {"noinput", "nomatch", "escape"}
FAILED_BACKEND = {"error", "timeout"}


class PathTurn(Turn):
    """A turn as the agent sees it: failed turns stand out."""

    failed: bool = False


class Routing(BaseModel):
    queue: str
    priority: int | None = None
    rule: str
    reason: str
    detail: str = ""
    preferred_agent: str | None = None     # routing rules' "prefer the agent who helped last"


class Cancellation(BaseModel):
    reason: str | None = None
    downgrade: dict[str, Any] | None = None     # what was offered (lower premium, lower sum assured)
    downgrade_answer: str | None = None         # accepted | declined | None (not asked)


class CallerView(BaseModel):
    caller_id: str | None = None
    name: str = ""
    verified: bool = False
    ani: str = ""
    language: str = ""


class ScreenPop(BaseModel):
    call_id: str
    agent_id: str
    queue: str
    routed_at: float
    answered_at: float | None
    caller: CallerView
    policies: list[PolicyInfo] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)
    path: list[PathTurn] = Field(default_factory=list)
    failed_at: PathTurn | None = None
    routing: Routing
    cancellation: Cancellation | None = None
    outcome: str | None = None
    call_status: str = "connected"
    experiments: dict[str, str] = Field(default_factory=dict)  # experiment -> arm: what this caller heard differs


def is_failure(turn: Turn) -> bool:
    """Did the IVR fail the caller at this turn (no answer, not understood, a backend down)?"""
    if turn.kind in FAILED_KINDS:
        return True
    if turn.kind == "backend" and turn.matched in FAILED_BACKEND:
        return True
    if turn.kind == "input" and turn.detail == "below reject threshold":
        return True
    return turn.kind == "return" and turn.matched in ("failed", "locked")


def path_of(state: CallState) -> list[PathTurn]:
    return [PathTurn(**turn.model_dump(), failed=is_failure(turn)) for turn in state.path if turn.kind != "prompt"]


def routing_of(state: CallState, queue: str) -> Routing:
    """Why the call went to a person: the routing decision if the flows saved one, else the transfer.

    A ``routing`` variable ({rule, to, reason}: main_menu copies the routing
    rules' decision it applied) wins;
    otherwise the rule is the flow node that transferred and the reason the
    transfer's reason.
    """
    result = state.result or {}
    decided = state.variables().get("routing")
    transfer = next((t for t in reversed(state.path) if t.kind == "transfer"), None)
    rule = f"{transfer.flow}.{transfer.node}" if transfer else f"{state.flow}.{state.node}"
    reason = str(result.get("reason") or "")
    if isinstance(decided, dict) and decided.get("rule"):
        rule = str(decided["rule"])
        reason = str(decided.get("reason") or reason)
    priority = result.get("priority")
    call = _mapping(state.variables().get("call"))
    decisions = _mapping(call.get("routing"))
    prefer = _mapping(decisions.get("prefer_agent"))
    return Routing(queue=str(result.get("queue") or queue), priority=priority if isinstance(priority, int) else None,
                   rule=rule, reason=reason, detail=str(result.get("detail") or ""),
                   preferred_agent=str(prefer["agent"]) if prefer.get("agent") else None)


def verified(state: CallState) -> bool:
    check = state.variables().get("verification")
    if isinstance(check, dict) and check.get("verified") is True:
        return any(t.kind == "return" and t.matched == "verified" for t in state.path) or \
            not any(t.flow == "verify" for t in state.path)
    return False


def cancellation_of(state: CallState) -> Cancellation | None:
    """For callers who came to cancel: their reason and the downgrade they were offered."""
    if not any(t.flow == "cancellation" for t in state.path):
        return None
    reason = state.variables().get("cancel_reason")
    offer = state.variables().get("options")
    answer = None
    for turn in state.path:
        if turn.flow == "cancellation" and turn.node == "downgrade" and turn.kind in ("input", "confirm"):
            answer = {"yes": "accepted", "no": "declined"}.get(turn.matched or "", answer)
    return Cancellation(reason=str(reason) if reason else None, downgrade=offer if isinstance(offer, dict) else None,
                        downgrade_answer=answer)


def build_pop(state: CallState, agent_id: str, queue: str, routed_at: float, answered_at: float | None,
              profile: CallerProfile | None, contacts: list[Contact]) -> ScreenPop:
    caller = caller_of(state)
    call = _mapping(state.variables().get("call"))
    name = profile.name if profile and profile.name else \
        " ".join(str(caller.get(k, "")) for k in ("first_name", "last_name")).strip()
    path = path_of(state)
    failures = [t for t in path if t.failed]
    return ScreenPop(
        call_id=state.call_id, agent_id=agent_id, queue=queue, routed_at=routed_at, answered_at=answered_at,
        caller=CallerView(caller_id=str(caller["id"]) if caller.get("id") else None, name=name,
                          verified=verified(state), ani=str(call.get("ani", "")), language=state.language),
        policies=list(profile.policies) if profile else [],
        contacts=contacts, path=path, failed_at=failures[-1] if failures else None,
        routing=routing_of(state, queue), cancellation=cancellation_of(state),
        experiments=dict(state.experiments))


def _mapping(value: Any) -> dict[str, Any]:
    """Call data read from the state: a mapping, or empty when a flow left something else there."""
    return value if isinstance(value, dict) else {}
