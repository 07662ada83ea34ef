"""What routing knows about a caller at call start: the number on file, and their history.

Only the caller number is known before anyone speaks, so facts come from the
policyholder that number identifies (the same identification the verify
flow uses: a number shared by several policyholders, or an agent's number,
identifies nobody) and from the history kept under that policyholder and
under the number. Nothing here is spoken to the caller; it only decides
where they go first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ivr.backend import identity
from ivr.backend.systems import Systems
from ivr.history import CallerHistory, PastCall, as_facts


async def gather(call: dict[str, Any], systems: Systems | None, history: CallerHistory | None,
                 now: Callable[[], float] = time.time) -> dict[str, Any]:
    """Facts for rules: `caller`, `history` and `call`."""
    ani = str(call.get("ani") or "")
    caller: dict[str, Any] = {"known": False}
    if systems is not None and ani:
        outcome, data = await identity.identify(systems, {"ani": ani})
        if outcome == "ok":
            caller = {"known": True, **data}
            caller["failure_reason"] = await _failure_reason(systems, data.get("policy_number"))
    facts_history = as_facts([], None, 0, now())
    if history is not None:
        keys = [k for k in (caller.get("id"), history.ani_key(ani)) if k]
        calls = _merge([await history.past_calls(k) for k in keys])
        agent = None
        for key in keys:
            agent = agent or await history.last_agent(key)
        failures = await history.failed_verifications(caller["policy_number"]) if caller.get("policy_number") else 0
        facts_history = as_facts(calls, agent, failures, now())
    return {"caller": caller, "history": facts_history, "call": dict(call)}


async def _failure_reason(systems: Systems, policy: str | None) -> str | None:
    failure = await systems.admin.debit_failure(policy) if policy else None
    return failure.reason if failure else None


def _merge(lists: list[list[PastCall]]) -> list[PastCall]:
    """One history, newest first, each call once (a call is kept under the person and the number)."""
    seen: dict[str, PastCall] = {}
    for calls in lists:
        for call in calls:
            seen.setdefault(call.call_id, call)
    return sorted(seen.values(), key=lambda c: c.ended, reverse=True)
