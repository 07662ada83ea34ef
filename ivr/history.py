"""Caller history in Redis: what each caller called about before, and how it went.

Routing reads it at call start (a repeat caller, the last agent who helped),
the verification check counts failures in it, and `ivr report` reads the
call records. Keys and how long they live (also in the README):

| key | holds | expires |
|---|---|---|
| `ivr:hist:<caller>` | the caller's last 50 calls: intents, outcome, transfer reason | 90 days after their last call |
| `ivr:caller:<caller>` | last agent who helped | 180 days after it was noted |
| `ivr:verify:fail:<policy>` | failed verifications, one entry per failure | each entry counts for 24 hours |
| `ivr:rec:<call id>` | the full call record (path, journeys, routing decision) | 35 days |
| `ivr:rec:index` | call ids by end time, for reports | entries older than 35 days are dropped on write |

`<caller>` is the policyholder id once identified, else `ani:` and a keyed
hash (HMAC, `ivr.sealing`) of the caller number; `<policy>` is a keyed hash
of the policy number. Numbers are never kept in clear, and a plain hash
would give them away to anyone trying every number. Redis down:
calls go on without history, logged once; verification failures are then
counted in this process so a lock-out still works within the outage.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as redis

from ivr import redisconn
from ivr.callrecord import CallRecord
from ivr.campaign.store import OUTCOMES_MAX
from ivr.redisguard import RedisGuard
from ivr.sealing import Sealer

log = logging.getLogger(__name__)
DAY = 86400.0
HISTORY_CALLS = 50
HISTORY_TTL = 90 * DAY
AGENT_TTL = 180 * DAY
RECORD_TTL = 35 * DAY
VERIFY_WINDOW = 1 * DAY


def ani_key(ani: str | None, sealer: Sealer) -> str:
    """The history key of an unidentified caller number."""
    return "ani:" + sealer.digest("ani", ani) if ani else ""


@dataclass(frozen=True)
class PastCall:
    """One line of a caller's history."""

    call_id: str
    ended: float
    intents: list[str] = field(default_factory=list)
    outcome: str = ""
    queue: str | None = None
    reason: str | None = None
    cancel_reason: str | None = None

    def within(self, days: float, now: float) -> bool:
        return now - self.ended <= days * DAY


class CallerHistory:
    def __init__(self, client: redis.Redis | None, sealer: Sealer, now: Callable[[], float] = time.time,
                 prefix: str = "ivr:"):
        self.client = client
        self.sealer = sealer
        self.now = now
        self.prefix = prefix
        self.guard = RedisGuard("caller history", log)
        self._failures: dict[str, list[float]] = {}  # used while Redis is down

    @classmethod
    def from_url(cls, url: str, sealer: Sealer) -> CallerHistory:
        return cls(redisconn.connect(url), sealer)

    def ani_key(self, ani: str | None) -> str:
        return ani_key(ani, self.sealer)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    # --- calls -------------------------------------------------------------------

    async def record(self, call: CallRecord, callers: Sequence[str | None],
                     outcome: dict[str, str] | None = None) -> None:
        """Keep a finished call: its full record for reports, a line in each caller's history
        (of each of `callers` that is known: None and "" are skipped), and, for a rescue
        campaign's call or a failed premium recovered, `outcome` on the campaign's outcomes stream."""
        if self.client is None:
            return
        entry = json.dumps({"call_id": call.call_id, "ended": call.ended, "intents": call.intents,
                            "outcome": call.outcome, "queue": call.queue, "reason": call.reason,
                            "cancel_reason": call.cancel_reason})
        p = self.prefix

        async def write():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(f"{p}rec:{call.call_id}", json.dumps(call.to_json()), ex=int(RECORD_TTL))
                pipe.zadd(f"{p}rec:index", {call.call_id: call.ended})
                pipe.zremrangebyscore(f"{p}rec:index", 0, self.now() - RECORD_TTL)
                for caller in dict.fromkeys(c for c in callers if c):
                    pipe.lpush(f"{p}hist:{caller}", entry).ltrim(f"{p}hist:{caller}", 0, HISTORY_CALLS - 1)
                    pipe.expire(f"{p}hist:{caller}", int(HISTORY_TTL))
                if outcome is not None:
                    pipe.xadd(f"{p}campaign:outcomes", outcome, maxlen=OUTCOMES_MAX, approximate=True)
                await pipe.execute()
        await self.guard.run(write)

    async def past_calls(self, caller: str) -> list[PastCall]:
        """The caller's recent calls, newest first ([] when unknown or Redis is down)."""
        client = self.client
        if client is None or not caller:
            return []
        raw = await self.guard.run(lambda: client.lrange(f"{self.prefix}hist:{caller}", 0, -1), [])
        calls = []
        for item in raw:
            try:
                calls.append(PastCall(**json.loads(item)))
            except (ValueError, TypeError):
                continue
        return calls

    async def records(self, since: float, until: float) -> list[CallRecord]:
        """Call records that ended in [since, until], oldest first (for `ivr report`)."""
        client = self.client
        if client is None:
            return []
        ids = await self.guard.run(lambda: client.zrangebyscore(f"{self.prefix}rec:index", since, until), [])
        if not ids:
            return []
        # redis-py types the members as str or tuples too: without decode_responses and scores they are bytes
        keys = [f"{self.prefix}rec:{i.decode()}" for i in ids]  # type: ignore[union-attr]  # bytes, see above
        raws = await self.guard.run(lambda: client.mget(keys), [])
        return [CallRecord.from_json(json.loads(r)) for r in raws if r]

    # --- agents ------------------------------------------------------------------

    async def note_agent(self, caller: str, agent_id: str) -> None:
        """Who helped this caller last (the agent page reports who took a call)."""
        if self.client is None or not caller:
            return
        key = f"{self.prefix}caller:{caller}"

        async def write():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"last_agent": agent_id, "last_agent_at": str(self.now())})
                pipe.expire(key, int(AGENT_TTL))
                await pipe.execute()
        await self.guard.run(write)

    async def last_agent(self, caller: str) -> str | None:
        client = self.client
        if client is None or not caller:
            return None
        value = await self.guard.run(lambda: client.hget(f"{self.prefix}caller:{caller}", "last_agent"))
        return value.decode() if value else None  # type: ignore[union-attr]  # redis-py says str too: bytes here (no decode_responses)

    # --- failed verifications ------------------------------------------------------

    async def add_failed_verification(self, policy: str) -> int:
        """Count one failure; answer the failures within the last 24 hours, this one included."""
        now = self.now()
        self._remember_failure(policy, now)
        key = self._failures_key(policy)
        if self.client is not None:
            async def write():
                async with self.client.pipeline(transaction=True) as pipe:
                    pipe.zadd(key, {uuid.uuid4().hex: now}).zremrangebyscore(key, 0, now - VERIFY_WINDOW)
                    pipe.zcard(key).expire(key, int(VERIFY_WINDOW))
                    return (await pipe.execute())[2]
            count = await self.guard.run(write)
            if count is not None:
                return max(int(count), self._memory_failures(policy, now))
        return self._memory_failures(policy, now)

    async def failed_verifications(self, policy: str) -> int:
        now = self.now()
        client = self.client
        if client is not None:
            count = await self.guard.run(
                lambda: client.zcount(self._failures_key(policy), now - VERIFY_WINDOW, "+inf"))
            if count is not None:
                return max(int(count), self._memory_failures(policy, now))
        return self._memory_failures(policy, now)

    def _failures_key(self, policy: str) -> str:
        return f"{self.prefix}verify:fail:{self.sealer.digest('policy', policy)}"

    def _remember_failure(self, policy: str, now: float) -> None:
        stamps = [t for t in self._failures.get(policy, []) if now - t < VERIFY_WINDOW]
        stamps.append(now)
        self._failures[policy] = stamps
        if len(self._failures) > 10_000:  # bounded: the oldest policies are forgotten first
            self._failures.pop(next(iter(self._failures)))

    def _memory_failures(self, policy: str, now: float) -> int:
        return sum(1 for t in self._failures.get(policy, []) if now - t < VERIFY_WINDOW)


def recent_intents(calls: list[PastCall], days: float, now: float) -> list[str]:
    """Intents of the calls within `days`, newest first, each once."""
    return list(dict.fromkeys(i for c in calls if c.within(days, now) for i in c.intents))


def as_facts(calls: list[PastCall], last_agent: str | None, failures: int, now: float) -> dict[str, Any]:
    """What routing rules may ask about a caller's history."""
    return {
        "calls_7d": sum(1 for c in calls if c.within(7, now)),
        "calls_30d": sum(1 for c in calls if c.within(30, now)),
        "intents_7d": recent_intents(calls, 7, now),
        "cancel_intents_30d": sum(1 for c in calls if c.within(30, now) and "cancel" in c.intents),
        "transfers_7d": sum(1 for c in calls if c.within(7, now) and c.queue),
        "last_reason": calls[0].reason if calls else None,
        "last_agent": last_agent,
        "failed_verifications": failures,
    }
