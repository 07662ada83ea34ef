"""A call's state between steps; plain data that round-trips through JSON.

The controller saves it after every step (in Redis) so that a call survives a
controller restart. Everything the engine needs to continue is here, and
nothing else: no clock, no handles, no open resources.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ivr.engine.events import Hypothesis

MAX_PATH = 200


class Frame(BaseModel):
    """Where to come back to when a sub-flow returns."""

    flow: str
    node: str


class Pending(BaseModel):
    """What the engine is waiting for."""

    kind: Literal["input", "confirm", "readback", "backend"]
    choice: str | None = None  # the choice being confirmed
    heard: str = ""
    alternatives: list[Hypothesis] = Field(default_factory=list)
    action: str | None = None  # the backend action awaited


class Turn(BaseModel):
    """One line of the call's path through the flows, for reports and the agent."""

    flow: str
    node: str
    kind: str
    heard: str | None = None
    confidence: float | None = None
    matched: str | None = None
    detail: str | None = None


class CallState(BaseModel):
    call_id: str
    release: str
    flow: str
    node: str
    language: str
    versions: dict[str, str] = Field(default_factory=dict)  # flow -> designer version, for the record
    stack: list[Frame] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    noinput: int = 0
    nomatch: int = 0
    buffer: str = ""
    pending: Pending | None = None
    status: Literal["running", "transferred", "ended"] = "running"
    result: dict[str, Any] = Field(default_factory=dict)
    path: list[Turn] = Field(default_factory=list)
    steps: int = 0

    def record(self, kind: str, **fields: Any) -> None:
        self.path.append(Turn(flow=self.flow, node=self.node, kind=kind, **fields))
        if len(self.path) > MAX_PATH:
            del self.path[: len(self.path) - MAX_PATH]
