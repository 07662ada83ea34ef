"""Where a campaign keeps what must outlive its process: Redis, sealed.

- the campaign state (`ivr:campaign:targets`, one JSON per target, and
  `ivr:campaign:meta` for the day's call count): a restarted campaign goes
  on where it stopped, no target contacted twice for one due contact;
- per placed call, its contact (`ivr:campaign:contact:<attempt>`: the person,
  the sealed policy number, the language), which the outbound flow's first
  action reads: the call itself carries only the opaque attempt id;
- the do-not-call list (`ivr:campaign:dnc`: keyed digests of numbers, never
  the numbers);
- the outcomes stream (`ivr:campaign:outcomes`), which the controller
  appends to when a campaign call ends or any caller pays a failed premium,
  and the campaign reads from its saved cursor;
- what each finished target came to (`ivr:campaign:finished`), for reports.

Phone and policy numbers are sealed in the state; keys are keyed digests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis

from ivr import redisconn, sealing
from ivr.campaign.model import CampaignState, Target
from ivr.report import Recovery
from ivr.sealing import Sealer

log = logging.getLogger(__name__)

PREFIX = "ivr:campaign:"
CONTACT_TTL = 3 * 24 * 3600
OUTCOMES_MAX = 100_000
FINISHED_MAX = 200_000


def target_key(sealer: Sealer, policy_number: str) -> str:
    """A failed debit's name in the campaign and in call outcomes: a keyed digest of its policy number."""
    return sealer.digest("campaign-target", policy_number)


class CampaignStore:
    def __init__(self, client: redis.Redis, sealer: Sealer, prefix: str = PREFIX):
        self.client = client
        self.sealer = sealer
        self.prefix = prefix

    # --- state ---------------------------------------------------------------

    async def load(self) -> CampaignState:
        raw_targets = await self.client.hgetall(f"{self.prefix}targets")
        meta = await self.client.hgetall(f"{self.prefix}meta")
        targets = {t.key: t for t in (Target.model_validate_json(raw) for raw in raw_targets.values())}
        day = _text(meta.get(b"day")) or ""
        return CampaignState(day=day, calls_today=int(meta.get(b"calls_today") or 0), targets=targets)

    async def save(self, state: CampaignState, keys: set[str]) -> None:
        """The day's count and the targets that changed (or were forgotten), in one transaction."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(f"{self.prefix}meta", mapping={"day": state.day, "calls_today": state.calls_today})
            changed = {k: state.targets[k].model_dump_json() for k in keys if k in state.targets}
            if changed:
                pipe.hset(f"{self.prefix}targets", mapping=changed)  # type: ignore[arg-type]
            if forgotten := [k for k in keys if k not in state.targets]:
                pipe.hdel(f"{self.prefix}targets", *forgotten)
            await pipe.execute()

    # --- contacts of placed calls -----------------------------------------------

    async def put_contact(self, attempt: str, target: Target) -> None:
        data = {"person": target.person, "policy": target.policy, "language": target.language}
        await self.client.set(f"{self.prefix}contact:{attempt}", json.dumps(data), ex=CONTACT_TTL)

    async def contact(self, attempt: str) -> dict[str, Any] | None:
        """Whom a campaign call is for: person id, policy number (opened), language; None if unknown."""
        if not attempt or len(attempt) > 64:
            return None
        raw = await self.client.get(f"{self.prefix}contact:{attempt}")
        if raw is None:
            return None
        data = json.loads(raw)
        return {**data, "policy": self.sealer.open(data["policy"])}

    # --- do not call -----------------------------------------------------------------

    def _dnc_digest(self, phone: str) -> str:
        return self.sealer.digest("do-not-call", phone)

    async def block(self, phone: str) -> None:
        await self.client.sadd(f"{self.prefix}dnc", self._dnc_digest(phone))

    async def unblock(self, phone: str) -> None:
        await self.client.srem(f"{self.prefix}dnc", self._dnc_digest(phone))

    async def blocked(self, phone: str) -> bool:
        return bool(await self.client.sismember(f"{self.prefix}dnc", self._dnc_digest(phone)))

    # --- outcomes ------------------------------------------------------------------------

    async def outcomes(self, count: int = 500) -> list[tuple[str, dict[str, str]]]:
        """Outcomes after the saved cursor, oldest first: (id, fields)."""
        cursor = _text(await self.client.get(f"{self.prefix}outcomes:cursor")) or "0"
        entries = await self.client.xrange(f"{self.prefix}outcomes", min=f"({cursor}" if cursor != "0" else "-",
                                           count=count)
        return [(_text(i) or "", {_text(k) or "": _text(v) or "" for k, v in (fields or {}).items()})
                for i, fields in entries or []]

    async def advance(self, entry_id: str) -> None:
        await self.client.set(f"{self.prefix}outcomes:cursor", entry_id)

    # --- finished targets, for reports -----------------------------------------------------

    async def note_finished(self, result: str, channel: str | None, at: float) -> None:
        entry = json.dumps({"outcome": result, "channel": channel or "", "at": at})
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.rpush(f"{self.prefix}finished", entry)
            pipe.ltrim(f"{self.prefix}finished", -FINISHED_MAX, -1)
            await pipe.execute()

    async def finished(self) -> list[dict[str, Any]]:
        return [json.loads(r) for r in await self.client.lrange(f"{self.prefix}finished", 0, -1)]

    async def recoveries(self, since: float, until: float) -> list[Recovery]:
        """The debits that finished in the window as `ivr report` counts them: recovered or not, by the
        channel that did it (a debit paid some other way after an answered campaign call counts for the call)."""
        return [Recovery(channel=f["channel"] if f["channel"] in ("inbound", "outbound_call", "text") else "outbound_call",
                         outcome=f["outcome"] if f["outcome"] in ("paid", "promised", "lapsed") else "open",
                         at=float(f["at"]))
                for f in await self.finished() if since <= float(f["at"]) <= until]


@asynccontextmanager
async def open_store(redis_url: str, settings: Any) -> AsyncIterator[CampaignStore]:
    """A store on its own Redis connection, sealed under the settings' keys, closed after use (commands)."""
    store = CampaignStore(redisconn.connect(redis_url), sealing.for_settings(settings))
    try:
        yield store
    finally:
        await store.client.aclose()


def outcome_fields(attempt: str | None, target: str | None, payment: str | None, outcome: str,
                   at: float) -> dict[str, str]:
    """One entry of the outcomes stream, as the controller writes it when a call ends."""
    return {"attempt": attempt or "", "target": target or "", "payment": payment or "", "outcome": outcome,
            "at": f"{at:.3f}"}


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
