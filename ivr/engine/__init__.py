"""The pure flow engine: `start` a call, then `step` it one event at a time."""

from ivr.engine.machine import Step, hand_off, resume, start, step
from ivr.engine.state import CallState

__all__ = ["CallState", "Step", "hand_off", "resume", "start", "step"]
