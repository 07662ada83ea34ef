"""Redis commands that never take a call down with them.

History, one-time codes and verification counters live in Redis. When Redis
is unreachable, calls must go on (without history), and the log must say so
once, not once per call or per command; and once more when it is back.
While it is down, commands are not even tried for `retry_after` seconds, so
calls do not each wait for a connection timeout.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import RedisError

T = TypeVar("T")
_failures: Counter[str] = Counter()  # commands that failed, by what they were for, this process


def failures() -> dict[str, int]:
    """Commands that failed with a Redis error in this process, by guard (`what`): `ivr_redis_errors_total`."""
    return dict(_failures)


class RedisGuard:
    """Runs commands; on failure logs once per outage and answers a default."""

    def __init__(self, what: str, logger: logging.Logger, retry_after: float = 5.0):
        self.what = what  # e.g. "caller history"
        self.log = logger
        self.retry_after = retry_after
        self.down = False
        self._failed_at = 0.0

    async def run(self, command: Callable[[], Awaitable[T]], default: Any = None) -> T | Any:
        """`command()` builds the awaitable, so nothing is sent while Redis is known to be down."""
        if self.down and time.monotonic() - self._failed_at < self.retry_after:
            return default
        try:
            result = await command()
        except (RedisError, OSError) as exc:
            _failures[self.what] += 1
            if not self.down:
                self.log.error("Redis unavailable (%s): calls go on without %s until it is back",
                               exc.__class__.__name__, self.what)
            self.down = True
            self._failed_at = time.monotonic()
            return default
        if self.down:
            self.log.warning("Redis is back: %s resumes", self.what)
            self.down = False
        return result
