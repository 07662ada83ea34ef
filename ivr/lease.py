"""Who runs a call: a lease in Redis, held by one controller at a time.

With several controllers behind a load balancer, Asterisk may hand a call's
connection to any of them (a new call, or the same call after its controller
died). The call's state is in Redis, so any controller can resume it; the lease
makes sure only one does. The holder renews it (`renew_all`, every `ttl / 3`); a controller
that dies stops renewing, and the lease lapses after `ttl`, when another may
take the call over. A holder that finds its lease taken (it was partitioned
away for longer than `ttl`) stops acting on the call at once.

Keys `ivr:lease:<channel id>` hold the controller's id and nothing personal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

import redis.asyncio as redis

from ivr.redisguard import RedisGuard

log = logging.getLogger(__name__)

PREFIX = "ivr:lease:"
NAMES = "ivr:channel:"  # keyed hash of a channel name -> its channel id: which call a new socket is for
POLL = 0.05  # seconds between looks at a lease held by another controller

# Renew when still ours; take it again when it lapsed and nobody took it meanwhile.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def controller_id() -> str:
    """This process, as leases name it: host and pid (unique among live controllers)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leases:
    """The calls this controller holds, renewed together by one task."""

    def __init__(self, client: redis.Redis, owner: str, ttl: float = 1.5,
                 name_digest: Callable[[str], str] = lambda name: name) -> None:
        """`name_digest`: how channel names are keyed (a keyed hash: a name may hold a trunk's
        or a person's label)."""
        self.client = client
        self.name_digest = name_digest
        self.owner = owner
        self.ttl = ttl
        self.held: set[str] = set()
        self.guard = RedisGuard("call leases", log)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def _px(self) -> int:
        return max(1, int(self.ttl * 1000))

    async def acquire(self, call_id: str, wait: float = 0.0) -> bool:
        """Take the call's lease, waiting up to `wait` seconds for another holder's to lapse.
        Redis unreachable counts as taken: the call then goes on without a lease, as calls go
        on without saved state (the store's guard), rather than in silence."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            taken = await self._renewed(call_id)
            if taken is None or taken:  # None: Redis is down
                self.held.add(call_id)
                return True
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(POLL)

    async def _renewed(self, call_id: str) -> int | None:
        """1 when the lease is (again) ours, 0 when another holds it, None when Redis is down."""
        return await self.guard.run(lambda: self._renew(keys=[PREFIX + call_id], args=[self.owner, self._px]))

    async def remember(self, channel_name: str, call_id: str, ttl: int) -> None:
        """Note which call a channel name is: an outbound websocket names only the channel."""
        await self.guard.run(lambda: self.client.set(NAMES + self.name_digest(channel_name), call_id, ex=ttl))

    async def call_named(self, channel_name: str) -> str | None:
        """The call a channel name was noted for, if any (a call that began elsewhere)."""
        value = await self.guard.run(lambda: self.client.get(NAMES + self.name_digest(channel_name)))
        return value.decode() if isinstance(value, bytes) else value

    async def holder(self, call_id: str) -> str | None:
        value = await self.client.get(PREFIX + call_id)
        return value.decode() if isinstance(value, bytes) else value

    async def release(self, call_id: str) -> None:
        """Let the call go (it ended, or this controller stops): the next one need not wait."""
        self.held.discard(call_id)
        await self.guard.run(lambda: self._release(keys=[PREFIX + call_id], args=[self.owner]))  # else it lapses

    async def renew_all(self) -> list[str]:
        """One round of renewals; returns the calls whose lease another controller took."""
        lost = []
        for call_id in list(self.held):
            kept = await self._renewed(call_id)  # None: Redis down, and nobody else can take it either
            if kept == 0 and call_id in self.held:
                self.held.discard(call_id)
                log.warning("call %s: lease taken by another controller", call_id)
                lost.append(call_id)
        return lost

    async def release_all(self) -> None:
        """A controller stopping cleanly hands its calls over at once instead of after `ttl`."""
        for call_id in list(self.held):
            await self.release(call_id)
