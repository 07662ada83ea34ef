"""A call held in memory, with no phone: the engine plus an answering backend.

Designer tools (the terminal simulator, scripted callers) and the engine
benchmark talk to a flow through this. Backend actions are answered at once
by a responder (scripted outcomes, else the sample data), so a conversation
only ever waits for the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ivr import engine
from ivr.backend.sample import sample_result
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.state import CallState
from ivr.flow.catalog import FlowSet

Responder = Callable[[act.CallBackend], tuple[str, dict[str, Any]]]


@dataclass
class Heard:
    """What the caller heard or what happened, line by line, for display and checks."""

    kind: str  # prompt | listen | backend | transfer | hangup | experiment
    text: str
    key: str = ""
    language: str = ""  # of a prompt: the language it was spoken in


@dataclass
class Conversation:
    release: FlowSet
    flow: str
    responder: Responder = lambda call: sample_result(call.name)
    call: dict[str, Any] = field(default_factory=lambda: {"ani": "+15550100"})
    language: str | None = None
    arms: dict[str, str] = field(default_factory=dict)  # experiment -> arm, pinned (scripted callers)
    state: CallState | None = None
    listening: act.Listen | None = None
    transcript: list[Heard] = field(default_factory=list)

    def begin(self, call_id: str = "sim-1") -> list[Heard]:
        result = engine.start(self.release, self.flow, call_id, call=self.call, language=self.language,
                              arms=self.arms)
        return self._absorb(result)

    def send(self, event: ev.Event) -> list[Heard]:
        return self._absorb(engine.step(self.release, self.call_state, event))

    def _arms_taken(self, before: dict[str, str]) -> list[Heard]:
        """The experiments' arms the call was put in by this step: the designer sees which version ran."""
        after = self.call_state.experiments
        return [Heard("experiment", f"experiment {name}: {arm}", arm) for name, arm in after.items() if name not in before]

    @property
    def call_state(self) -> CallState:
        """`state`, once the call has begun."""
        assert self.state is not None, "begin() first"
        return self.state

    @property
    def finished(self) -> bool:
        return self.state is not None and self.state.status != "running"

    def _absorb(self, result: engine.Step) -> list[Heard]:
        heard: list[Heard] = []
        while True:
            before = dict(self.state.experiments) if self.state is not None else {}
            self.state = result.state
            backend_call: act.CallBackend | None = None
            described: list[Heard] = []
            for action in result.actions:
                described.extend(self._describe(action))
                if isinstance(action, act.Listen):
                    self.listening = action
                elif isinstance(action, act.CallBackend):
                    backend_call = action
            heard.extend(_before_waiting(described, self._arms_taken(before)))
            if backend_call is None:
                break
            outcome, data = self.responder(backend_call)
            heard.append(Heard("backend", f"{backend_call.name} → {outcome}", backend_call.name))
            result = engine.step(self.release, self.state,
                                 ev.BackendResult(name=backend_call.name, outcome=outcome, data=data))
        self.transcript.extend(heard)
        return heard

    def _describe(self, action: act.Action) -> list[Heard]:
        if isinstance(action, act.Play):
            prompts = self.release.prompts
            return [Heard("prompt", prompts.render(action.language, p.key, p.values), p.key, action.language)
                    for p in action.prompts]
        if isinstance(action, act.Listen):
            return [Heard("listen", action.mode)]
        if isinstance(action, act.Transfer):
            return [Heard("transfer", f"to {action.queue} ({action.reason}, priority {action.priority})"
                                      + (f": {action.detail}" if action.detail else ""), action.queue)]
        if isinstance(action, act.Hangup):
            return [Heard("hangup", action.outcome, action.outcome)]
        return []


def _before_waiting(described: list[Heard], arms: list[Heard]) -> list[Heard]:
    """The arms a step took, shown after what the caller heard and before the call waits or ends."""
    at = next((i for i, h in enumerate(described) if h.kind in ("listen", "transfer", "hangup")), len(described))
    return [*described[:at], *arms, *described[at:]]
