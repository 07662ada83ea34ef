"""How the controller reaches backend systems: one async call per flow action.

Implementations answer `(outcome, data)`. The controller adds the timeout and
turns exceptions into `error`, so a slow or broken backend never leaves a
caller in silence. Actions that write must be atomic: if the call is
cancelled (the caller hung up), nothing is left half written.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from ivr.backend.sample import sample_result

log = logging.getLogger(__name__)


class Backend(Protocol):
    async def call(self, name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]: ...


class SampleBackend:
    """Answers every action from the sample data (design, demo, load tests)."""

    def __init__(self, delay: float = 0.0, outcomes: dict[str, str] | None = None):
        self.delay = delay
        self.outcomes = outcomes or {}

    async def call(self, name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if self.delay:
            await asyncio.sleep(self.delay)
        outcome, data = sample_result(name)
        return self.outcomes.get(name, outcome), data


async def call_with_timeout(backend: Backend, name: str, args: dict[str, Any], timeout: float) -> tuple[str, dict[str, Any]]:
    """The backend's answer, or `timeout` / `error`; never raises (but for cancellation)."""
    try:
        return await asyncio.wait_for(backend.call(name, args), timeout)
    except TimeoutError:
        return "timeout", {}
    except asyncio.CancelledError:
        raise
    except Exception:  # a backend bug must become an apology and a person, not silence
        log.exception("backend action %s failed", name)
        return "error", {}
