"""One-time codes sent by SMS to prove the caller holds a phone.

Codes live five minutes and allow three tries; only a keyed hash (HMAC under
the server's hash key, `ivr.sealing`) of phone and code is kept, under a key
that is itself a keyed hash of the phone: Redis alone cannot give a code
back, where a salted SHA-256 beside its salt fell to trying all 10^6 codes.
A code checked correctly leaves a confirmation for that phone (ten
minutes), which the phone update consumes: the number cannot be changed
without the code, whatever a flow does.
They are kept in Redis so any controller can check a code another one sent
(a call resumed after a restart). With Redis down they are kept in this
process instead, which is enough for the call that asked for them.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from typing import Literal

import redis.asyncio as redis

from ivr.redisguard import RedisGuard
from ivr.sealing import Sealer

log = logging.getLogger(__name__)
CODE_TTL_SECONDS = 300
CONFIRMED_TTL_SECONDS = 600
MAX_ATTEMPTS = 3
Check = Literal["ok", "wrong", "expired"]
_MISSING = object()


class OneTimeCodes:
    def __init__(self, client: redis.Redis | None, sealer: Sealer, prefix: str = "ivr:otp:"):
        self.client = client
        self.sealer = sealer
        self.prefix = prefix
        self.guard = RedisGuard("shared one-time codes", log)
        self._memory: dict[str, dict[str, str]] = {}

    async def issue(self, phone: str) -> str:
        code = f"{secrets.randbelow(10**6):06d}"
        record = {"hash": self._hash(phone, code), "attempts": "0", "expires": str(time.time() + CODE_TTL_SECONDS)}
        key = self._key(phone)
        self._memory[key] = record
        if self.client is not None:
            async def store():
                async with self.client.pipeline(transaction=True) as pipe:
                    pipe.delete(key).hset(key, mapping=record).expire(key, CODE_TTL_SECONDS)
                    await pipe.execute()
            await self.guard.run(store)
        return code

    async def check(self, phone: str, code: str) -> Check:
        key = self._key(phone)
        record = await self._load(key)
        if not record or float(record.get("expires", 0)) < time.time():
            await self._forget(key)
            return "expired"
        tries = await self._count_try(key, record)
        if tries > MAX_ATTEMPTS:  # tries made at once by parallel calls: each was counted, none gets extra
            await self._forget(key)
            return "expired"
        if hmac.compare_digest(record.get("hash", ""), self._hash(phone, code)):
            await self._forget(key)
            await self._confirm(phone)
            return "ok"
        if tries >= MAX_ATTEMPTS:
            await self._forget(key)
            return "expired"
        return "wrong"

    async def _count_try(self, key: str, record: dict[str, str]) -> int:
        """This try's number, counted where every controller sees it (HINCRBY: atomic), else here."""
        tries = int(record.get("attempts", 0)) + 1
        if (client := self.client) is not None:
            counted = await self.guard.run(lambda: client.eval(_COUNT_TRY, 1, key), None)
            if counted is not None:
                tries = int(counted)
        record["attempts"] = str(tries)
        self._memory[key] = record
        return tries

    async def consume_confirmation(self, phone: str) -> bool:
        """True once after the code for `phone` was checked correctly (within ten minutes)."""
        key = self._key(phone) + ":ok"
        expires = float(self._memory.pop(key, {}).get("expires", 0))
        if (client := self.client) is not None:
            deleted = await self.guard.run(lambda: client.delete(key), None)
            if deleted is not None:
                return bool(deleted)
        return expires > time.time()

    async def _confirm(self, phone: str) -> None:
        key = self._key(phone) + ":ok"
        self._memory[key] = {"expires": str(time.time() + CONFIRMED_TTL_SECONDS)}
        if (client := self.client) is not None:
            await self.guard.run(lambda: client.set(key, "1", ex=CONFIRMED_TTL_SECONDS))

    async def _load(self, key: str) -> dict[str, str] | None:
        if (client := self.client) is not None:
            raw = await self.guard.run(lambda: client.hgetall(key), _MISSING)
            if raw is not _MISSING:
                return {_text(k): _text(v) for k, v in raw.items()} if raw else None
        return self._memory.get(key)

    async def _forget(self, key: str) -> None:
        self._memory.pop(key, None)
        if (client := self.client) is not None:
            await self.guard.run(lambda: client.delete(key))

    def _key(self, phone: str) -> str:
        return self.prefix + self.sealer.digest("otp-phone", phone)

    def _hash(self, phone: str, code: str) -> str:
        return self.sealer.digest("otp-code", f"{phone}\0{code}", size=64)


# one more try on a code still there; a code gone meanwhile (used, burnt, expired) is not made again
_COUNT_TRY = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
return 1000
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
