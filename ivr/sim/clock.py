"""Simulated time.

Every delay inside the simulator (audio durations, dialplan Wait(), ringing,
RTP pacing) goes through one Clock so that tests can run a recorded
scenario faster than real time (``scale`` < 1) while keeping every
duration *relative* to the others exactly as Asterisk would.  With the
default scale of 1.0 simulated time is wall-clock time.
"""
from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


class Clock:
    """Maps simulated seconds onto the event loop's monotonic clock."""

    def __init__(self, scale: float = 1.0, epoch: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._epoch = time.time() if epoch is None else epoch
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since the simulator started."""
        return (time.monotonic() - self._t0) / self.scale

    def wall(self) -> float:
        """Simulated wall-clock time (epoch seconds) used in ids and timestamps."""
        return self._epoch + self.now()

    def real_seconds(self, sim_seconds: float) -> float:
        return max(0.0, sim_seconds) * self.scale

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(self.real_seconds(sim_seconds))

    async def sleep_until(self, sim_t: float) -> None:
        await asyncio.sleep(self.real_seconds(sim_t - self.now()))

    async def wait_for(self, aw: asyncio.Future | asyncio.Event, sim_timeout: float) -> bool:
        """Wait for an Event (or future) at most ``sim_timeout``; True if it fired."""
        waiter = aw.wait() if isinstance(aw, asyncio.Event) else aw
        try:
            await asyncio.wait_for(waiter, self.real_seconds(sim_timeout))
            return True
        except TimeoutError:
            return False

    def timestamp(self) -> str:
        """Asterisk's ARI timestamp format: 2026-11-22T11:15:55.670+0000."""
        return format_timestamp(self.wall())


def format_timestamp(epoch: float) -> str:
    dt = datetime.fromtimestamp(epoch, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"
