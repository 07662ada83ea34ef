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
WITHHELD = "[withheld]"  # a keypad-only answer (card number) in a state written outside the process


class Frame(BaseModel):
    """Where to come back to when a sub-flow returns, and the calling flow's variables meanwhile.

    `vars` is None in a state saved before flows had variables of their own: the sub-flow
    then shares its caller's, as it did when that call began.
    """

    flow: str
    node: str
    vars: dict[str, Any] | None = None


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
    vars: dict[str, Any] = Field(default_factory=dict)  # the running flow's (and the shared ones)
    noinput: int = 0
    nomatch: int = 0
    buffer: str = ""
    pending: Pending | None = None
    status: Literal["running", "transferred", "ended"] = "running"
    result: dict[str, Any] = Field(default_factory=dict)
    path: list[Turn] = Field(default_factory=list)
    steps: int = 0
    played: int = 0  # prompts asked for so far: a controller compares it with what it wrote down it sent
    secret_vars: list[str] = Field(default_factory=list)  # saved from keypad-only turns
    secret_turn: bool = False  # the turn now open is keypad-only: its keys so far are in `buffer`
    experiments: dict[str, str] = Field(default_factory=dict)  # experiment -> the arm this call is in

    def at_rest(self) -> CallState:
        """The state as it may be written outside the process (Redis), for a restart or the agent's pop.

        Keypad-only answers (card numbers, expiry dates) and the keys of a
        keypad-only turn still open are withheld: they exist in the running
        controller's memory only, between the keypad and the gateway.
        """
        scopes = [self.vars, *(frame.vars for frame in self.stack if frame.vars is not None)]
        secret = [name for name in self.secret_vars
                  if any(scope.get(name) not in (None, WITHHELD) for scope in scopes)]
        if not secret and not (self.secret_turn and self.buffer):
            return self
        copy = self.model_copy(deep=True)
        for scope in [copy.vars, *(frame.vars for frame in copy.stack if frame.vars is not None)]:
            scope.update({name: WITHHELD for name in secret if scope.get(name) is not None})
        if copy.secret_turn and copy.buffer:
            copy.buffer = ""
            if copy.pending is not None:
                copy.pending.heard = ""  # a read-back holds the keys too
        return copy

    def withheld(self) -> list[str]:
        """Variables whose keypad-only values were not kept at rest (a state loaded after a restart)."""
        return [name for name in self.secret_vars if self.variables().get(name) == WITHHELD]

    def variables(self) -> dict[str, Any]:
        """Everything the call's flows hold now, for readers outside the engine (the agent's
        screen, the call record): the running flow's variables over those of the flows that
        called it."""
        merged: dict[str, Any] = {}
        for frame in self.stack:
            merged.update(frame.vars or {})
        merged.update(self.vars)
        return merged

    def record(self, kind: str, **fields: Any) -> None:
        self.path.append(Turn(flow=self.flow, node=self.node, kind=kind, **fields))
        if len(self.path) > MAX_PATH:
            del self.path[: len(self.path) - MAX_PATH]
