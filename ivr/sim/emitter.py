"""What a part of the simulator holds to tell the applications something.

Events are stamped with the simulated time when they are built (the
builders in ``events.py`` take the timestamp) and handed to the bus, which
routes them by subscription.  A part that emits takes an ``Emitter``
rather than the whole simulator, so that what it can reach is what it needs.
"""
from __future__ import annotations

from dataclasses import dataclass

from .clock import Clock
from .events import Event, Refs
from .stasis import EventBus


@dataclass(frozen=True)
class Emitter:
    clock: Clock
    bus: EventBus

    def ts(self) -> str:
        """Now, as ARI timestamps read."""
        return self.clock.timestamp()

    def emit(self, built: tuple[Event, Refs]) -> None:
        self.bus.publish(built)
