"""Jittered, capped exponential backoff: the one retry delay of the project.

Used where a failure is retried after a pause: reconnecting to Asterisk's
events websocket (`ivr.ari.events`) and retrying a core-system request
(`ivr.policyadmin.http_client`). One rule, so both spread their retries the
same way and a change to it is made once.

"Equal jitter": the n-th delay is uniformly drawn from [d/2, d] with
d = min(cap, initial * factor**n). The lower half-bound means a retry never
comes sooner than half the nominal delay (no tight loop even with bad luck),
while the random half spreads many clients retrying after the same outage
(controllers after an Asterisk restart, calls after a core-system blip).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace


@dataclass
class Backoff:
    """Delay policy; call :meth:`next_delay` per failure, :meth:`reset` after success."""

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random, repr=False)
    failures: int = 0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.cap < self.initial or self.factor < 1:
            raise ValueError("need 0 < initial <= cap and factor >= 1")

    def nominal(self) -> float:
        """The un-jittered delay for the current failure count."""
        return min(self.cap, self.initial * self.factor ** min(self.failures, 64))

    def next_delay(self) -> float:
        """Delay before the next attempt; counts one more failure."""
        nominal = self.nominal()
        self.failures += 1
        return self.rng.uniform(nominal / 2, nominal)

    def fresh(self) -> Backoff:
        """A new count under the same policy and random source.

        One policy can serve many operations at once (each core-system request
        retries on its own), but a failure count belongs to one of them.
        """
        return replace(self, failures=0)

    def reset(self) -> None:
        """Start again from `initial` (after a connection proved stable)."""
        self.failures = 0
