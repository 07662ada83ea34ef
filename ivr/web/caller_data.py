"""Who the caller is beyond this call: their policies and their contact history.

The screen pop needs both, but neither belongs to the agent page: policies
live in the policy administration system and the contact history in the
caller history store. So the page asks two small interfaces, and ships
defaults that work with nothing else installed:

- :class:`CallStateDirectory` reads what the call itself learned (the
  ``caller`` and policy variables the flows saved); a real policy store
  replaces it through :class:`CallerDirectory`.
- :class:`RedisContactHistory` keeps recent contacts and agent outcomes per
  caller in Redis, capped and expiring; a fuller caller history replaces it
  through :class:`ContactHistory`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol, cast

import redis.asyncio as redis
from pydantic import BaseModel, Field

from ivr import redisconn
from ivr.engine.state import CallState
from ivr.redisguard import RedisGuard

log = logging.getLogger(__name__)

OUTCOMES = ("saved", "downgraded", "cancelled", "paid", "updated", "other")
HISTORY_KEEP = 50                       # contacts kept per caller
HISTORY_TTL_SECONDS = 400 * 24 * 3600   # a caller silent for over a year starts afresh


class PolicyInfo(BaseModel):
    """One policy as the agent needs to see it."""

    number: str
    product: str = ""
    status: str = ""
    premium: float | None = None
    first_year: bool = False
    orphan: bool = False           # the selling agent has left: service first, sales second
    sales_channel: str = ""        # agency, bancassurance, telesales, online...


class CallerProfile(BaseModel):
    caller_id: str
    name: str = ""
    policies: list[PolicyInfo] = Field(default_factory=list)


class Contact(BaseModel):
    """One earlier contact: a call's end, or an outcome an agent recorded."""

    at: float
    kind: str = "call"             # call | agent_outcome
    summary: str = ""
    outcome: str | None = None
    agent: str | None = None
    call_id: str | None = None


class CallerDirectory(Protocol):
    async def profile(self, caller_id: str, state: CallState) -> CallerProfile | None: ...


class ContactHistory(Protocol):
    async def recent(self, caller_id: str, limit: int = 5) -> list[Contact]: ...
    async def record_outcome(self, caller_id: str, contact: Contact) -> None: ...


def caller_of(state: CallState) -> dict[str, Any]:
    """The ``caller`` variable the verify flow saved (empty when unidentified)."""
    caller = state.variables().get("caller")
    return caller if isinstance(caller, dict) else {}


class CallStateDirectory:
    """Profile from the call's own variables: enough for a pop before a policy store exists."""

    async def profile(self, caller_id: str, state: CallState) -> CallerProfile | None:
        caller = caller_of(state)
        if not caller:
            return None
        name = " ".join(str(caller.get(k, "")) for k in ("first_name", "last_name")).strip()
        summaries = [v for v in state.variables().values() if isinstance(v, dict) and "product" in v]
        policies: list[PolicyInfo] = []
        for summary in summaries:
            policies.append(PolicyInfo(number=str(summary.get("number", caller.get("policy_number", ""))),
                                       product=str(summary.get("product", "")),
                                       status=str(summary.get("status", "")),
                                       premium=_number(summary.get("premium")),
                                       first_year=bool(caller.get("first_year")), orphan=bool(caller.get("orphan")),
                                       sales_channel=str(summary.get("sales_channel", caller.get("sales_channel", "")))))
        if not policies and caller.get("policy_number"):
            policies.append(PolicyInfo(number=str(caller["policy_number"]), first_year=bool(caller.get("first_year")),
                                       orphan=bool(caller.get("orphan")),
                                       sales_channel=str(caller.get("sales_channel", ""))))
        return CallerProfile(caller_id=caller_id, name=name, policies=policies)


class StaticDirectory:
    """Profiles given up front (tests, demos)."""

    def __init__(self, profiles: dict[str, CallerProfile]):
        self.profiles = profiles

    async def profile(self, caller_id: str, state: CallState) -> CallerProfile | None:
        return self.profiles.get(caller_id)


class RedisContactHistory:
    """Contacts per caller in a Redis sorted set (by time), capped and expiring.

    Redis being down must not break the agent page: reads give an empty
    history (through `RedisGuard`, logged once per outage) and writes fail
    loudly only to the agent who clicked (the caller is on the line; the
    outcome can be clicked again).
    """

    def __init__(self, client: redis.Redis, prefix: str = "ivr:contacts:"):
        self.client = client
        self.prefix = prefix
        self.guard = RedisGuard("contact history on screen pops", log)

    @classmethod
    def from_url(cls, url: str) -> RedisContactHistory:
        return cls(redisconn.connect(url))

    async def recent(self, caller_id: str, limit: int = 5) -> list[Contact]:
        raw = await self.guard.run(lambda: self.client.zrevrange(self.prefix + caller_id, 0, limit - 1), [])
        return [Contact.model_validate_json(item) for item in cast(list[bytes], raw)]

    async def add(self, caller_id: str, contact: Contact) -> None:
        key = self.prefix + caller_id
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {contact.model_dump_json(): contact.at})
            pipe.zremrangebyrank(key, 0, -HISTORY_KEEP - 1)
            pipe.expire(key, HISTORY_TTL_SECONDS)
            await pipe.execute()

    async def record_outcome(self, caller_id: str, contact: Contact) -> None:
        """One outcome per call: a second click replaces the first (the agent corrected it)."""
        key = self.prefix + caller_id
        for item in cast(list[bytes], await self.client.zrange(key, 0, -1)):
            data = json.loads(item)
            if data.get("kind") == "agent_outcome" and data.get("call_id") == contact.call_id:
                await self.client.zrem(key, item)
        await self.add(caller_id, contact)

    async def close(self) -> None:
        await self.client.aclose()


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def now() -> float:
    return time.time()


# --- the insurer's systems (ivr.policyadmin, ivr.history), when `ivr serve` runs them -------------

class PolicyAdminDirectory:
    """Profiles from the policy administration system (SQLite book or core system)."""

    def __init__(self, admin: Any, today: Any = None):
        import datetime as dt

        self.admin = admin
        self.today = today or dt.date.today

    async def profile(self, caller_id: str, state: CallState) -> CallerProfile | None:
        person = await self.admin.person(caller_id)
        if person is None:
            return None
        today = self.today()
        policies = [PolicyInfo(number=p.number, product=p.product_name or p.product,
                               status=p.status.replace("_", " "), premium=p.premium,
                               first_year=p.first_year(today), orphan=p.orphan, sales_channel=_sold_by(p))
                    for p in await self.admin.policies_of(caller_id)]
        return CallerProfile(caller_id=caller_id, name=f"{person.first_name} {person.last_name}".strip(),
                             policies=policies)


def _sold_by(policy: Any) -> str:
    """The book keeps the selling agent, not a channel name: an agency sale names its agent."""
    if not policy.agent_id:
        return "direct"
    return f"agency, agent {policy.agent_id}" + ("" if policy.agent_active else " (left)")


class CallerHistoryContacts:
    """Past calls from the caller history (ivr.history), agent outcomes kept beside them.

    The caller history records each call when it leaves the IVR; the agent's
    outcome comes later, from the page, so it lives in its own capped set
    (``outcomes``) and is joined to the call it belongs to when read. The
    agent who took the call is also noted as the caller's last agent, which
    the routing rules use to prefer them next time.
    """

    def __init__(self, history: Any, outcomes: RedisContactHistory):
        self.history = history
        self.outcomes = outcomes

    async def recent(self, caller_id: str, limit: int = 5) -> list[Contact]:
        calls = await self.history.past_calls(caller_id)
        outcomes = {c.call_id: c for c in await self.outcomes.recent(caller_id, HISTORY_KEEP)}
        contacts = []
        for call in calls:
            done = outcomes.pop(call.call_id, None)
            where = f"{call.queue}: {call.reason}" if call.queue else call.outcome
            summary = ", ".join(call.intents) + (f" → {where}" if where else "")
            contacts.append(Contact(at=call.ended, summary=summary or "call", call_id=call.call_id,
                                    outcome=done.outcome if done else call.outcome,
                                    agent=done.agent if done else None))
        contacts.extend(outcomes.values())
        return sorted(contacts, key=lambda c: c.at, reverse=True)[:limit]

    async def record_outcome(self, caller_id: str, contact: Contact) -> None:
        await self.outcomes.record_outcome(caller_id, contact)

    async def note_agent(self, caller_id: str, agent_id: str) -> None:
        await self.history.note_agent(caller_id, agent_id)
