"""What a call session tells its observers: one small frozen dataclass per thing that happened.

A session (`ivr.controller.session.CallSession`) hands each notice to every
observer in `Services.observers`, inline and in order, as
`observer(session, notice)`. Observers (the operator's call log, the caller
history recorder, the demo's printer, tests) take the notices they care
about with `match` or `isinstance` and ignore the rest; the union `Notice`
lists them all. An observer must not raise: it runs inside the call's task.

| notice | when |
|---|---|
| `CallStarted` | a new call was answered and its flow started |
| `CallResumed` | a call another controller left is continued here |
| `PromptStarted` | Asterisk started playing one of the call's prompts |
| `KeyPressed` | a key counted as input (not one discarded during a prompt that forbids barge-in) |
| `SpeechStarted` | the caller began speaking in a speech turn (barge-in) |
| `SpeechHeard` | a speech turn ended with its engine event |
| `StepTaken` | the engine took a step (saved before the notice), with the path entries it added |
| `Transferred` | the call was handed to a queue and has left the IVR |
| `HungUp` | the flow ended the call |
| `CallerLeft` | the caller hung up (or the channel went away) before the flow ended the call |

`Transferred`, `HungUp` and `CallerLeft` end a call: exactly one of them
comes last (`CallLeft`), unless the controller stops with the call still in
Stasis for the next controller to resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivr.engine import Step
from ivr.engine import actions as act
from ivr.engine.state import CallState, Turn
from ivr.speech.turn import BargeIn, TurnEnded


@dataclass(frozen=True, slots=True)
class CallStarted:
    call: dict[str, Any]  # the call data the flow started with: ani, dnis, routing decisions, ...


@dataclass(frozen=True, slots=True)
class CallResumed:
    state: CallState  # as the controller before us saved it


@dataclass(frozen=True, slots=True)
class PromptStarted:
    playback_id: str


@dataclass(frozen=True, slots=True)
class KeyPressed:
    digit: str


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    barge_in: BargeIn


@dataclass(frozen=True, slots=True)
class SpeechHeard:
    ended: TurnEnded


@dataclass(frozen=True, slots=True)
class StepTaken:
    step: Step
    turns: tuple[Turn, ...]  # the path entries this step added, in order (`turns_added`)


@dataclass(frozen=True, slots=True)
class Transferred:
    transfer: act.Transfer


@dataclass(frozen=True, slots=True)
class HungUp:
    outcome: str  # the flow's hang-up outcome (completed, ...)


@dataclass(frozen=True, slots=True)
class CallerLeft:
    why: str  # the ARI event that said so (ChannelHangupRequest, StasisEnd, ChannelDestroyed) or "channel gone"


CallLeft = Transferred | HungUp | CallerLeft
Notice = (CallStarted | CallResumed | PromptStarted | KeyPressed | SpeechStarted | SpeechHeard | StepTaken
          | Transferred | HungUp | CallerLeft)


def turns_added(before: CallState | None, after: CallState) -> tuple[Turn, ...]:
    """The path entries a step appended to `before`'s path to make `after`'s.

    The path keeps its last `MAX_PATH` entries only, so lengths cannot tell;
    the engine copies the path list but keeps its entries, so the step's
    entries are those after `before`'s last entry, found by identity (two
    entries of a menu loop can be equal). When a single step recorded more
    than the path holds, the ones still in it are all there is.
    """
    path = after.path
    if before is None or not before.path:
        return tuple(path)
    last = before.path[-1]
    for index in range(len(path) - 1, -1, -1):
        if path[index] is last:
            return tuple(path[index + 1:])
    return tuple(path)
