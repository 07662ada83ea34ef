"""A speech listener's turn bookkeeping, as a pure reducer (the shape of `ivr.controller.turnstate`).

A call's listener (`ivr.controller.speech`) runs one speech turn at a time in a worker
process, while the caller's audio and the worker's answers arrive between awaits. What
must stay straight:

- `generation`: each turn, cancel and call end moves it on; what the worker answers for
  audio of an older generation is stale and dropped (the session compares it too).
- `active`: a turn runs in the worker; it ends with the turn's end, a cancel, the call's
  end, or a worker that refused the turn's audio or failed a request.
- `unheard`: packets of the turn queued or with the worker, not yet answered for; while
  any are, the listener is `behind` and the session's no-input timer waits a little.
- `pre_roll`: whether audio heard between turns is kept to open the next turn; off from
  a sensitive (keypad-only) turn on, until the next turn that is not.

`step(state, input) -> (state, outputs)`: no I/O, no clock, no asyncio. The listener
classes are the shell: they send the worker its requests, queue or hold the audio, and
deliver the outputs to the call's queue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ivr.engine.actions import Listen
from ivr.speech.turn import TurnEnded, TurnOutput

# --- state -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Turns:
    generation: int = 0  # of the current turn; outputs of older ones are stale
    active: bool = False  # a turn runs in the worker
    unheard: int = 0  # packets of the turn queued or with the worker, not yet answered for
    pre_roll: bool = True  # audio between turns may open the next one


# --- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """A turn starts; `pre_rolled` packets heard just before it are already queued for it."""

    listen: Listen
    pre_rolled: int = 0


@dataclass(frozen=True, slots=True)
class Cancel:
    """Whatever moved the call on: the turn, if one runs, is over."""


@dataclass(frozen=True, slots=True)
class EndCall:
    """The listener closes: the worker forgets the call."""


@dataclass(frozen=True, slots=True)
class Heard:
    """One output of the worker for audio fed while `generation` was current."""

    generation: int
    output: TurnOutput


@dataclass(frozen=True, slots=True)
class Refused:
    """The worker refused audio fed while `generation` was current (a language without a model):
    keys still work."""

    generation: int


@dataclass(frozen=True, slots=True)
class SendFailed:
    """A request sent while `generation` was current failed: no turn runs there any more."""

    generation: int


@dataclass(frozen=True, slots=True)
class Packet:
    """A packet of the caller's audio arrived."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Fed:
    """The worker has answered for this many packets, fed while `generation` was current (or they
    were dropped: `generation` None)."""

    generation: int | None
    packets: int


@dataclass(frozen=True, slots=True)
class KeepPreRoll:
    keep: bool


Input = Start | Cancel | EndCall | Heard | Refused | SendFailed | Packet | Fed | KeepPreRoll


# --- outputs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendStart:
    """Ask the worker to start a turn."""

    listen: Listen


@dataclass(frozen=True, slots=True)
class SendCancel:
    """Ask the worker to drop the turn it runs."""


@dataclass(frozen=True, slots=True)
class SendEndCall:
    """Ask the worker to forget the call."""


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand the session what the current turn produced."""

    generation: int
    output: TurnOutput


@dataclass(frozen=True, slots=True)
class QueueAudio:
    """For the worker: the turn runs."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class HoldAudio:
    """Between turns: keep it as the next turn's pre-roll."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class DropPreRoll:
    """Forget the audio held between turns."""


Output = SendStart | SendCancel | SendEndCall | Deliver | QueueAudio | HoldAudio | DropPreRoll


# --- the reducer -------------------------------------------------------------------------


def step(state: Turns, event: Input) -> tuple[Turns, list[Output]]:
    """One input in, the new state and the outputs to perform (in order) out."""
    if isinstance(event, Start):
        turns = Turns(state.generation + 1, active=True, unheard=event.pre_rolled, pre_roll=state.pre_roll)
        return turns, [SendStart(event.listen)]
    if isinstance(event, Cancel):
        if not state.active:
            return state, []
        return replace(state, active=False, generation=state.generation + 1), [SendCancel()]
    if isinstance(event, EndCall):
        return replace(state, active=False, generation=state.generation + 1), [SendEndCall()]
    if isinstance(event, Heard):
        return _heard(state, event)
    if isinstance(event, (Refused, SendFailed)):  # an older turn's trouble leaves a newer one running
        return (replace(state, active=False), []) if event.generation == state.generation else (state, [])
    if isinstance(event, Packet):
        return _packet(state, event.payload)
    if isinstance(event, Fed):  # an older turn's packets were never counted in this one's `unheard`
        if event.generation not in (None, state.generation):
            return state, []
        return replace(state, unheard=max(0, state.unheard - event.packets)), []
    return replace(state, pre_roll=event.keep), ([] if event.keep else [DropPreRoll()])


def _heard(state: Turns, event: Heard) -> tuple[Turns, list[Output]]:
    """Only the current turn speaks; its end leaves no turn running."""
    if event.generation != state.generation:
        return state, []
    if isinstance(event.output, TurnEnded):
        state = replace(state, active=False)
    return state, [Deliver(event.generation, event.output)]


def _packet(state: Turns, payload: bytes) -> tuple[Turns, list[Output]]:
    """Audio goes to the running turn, else is held for the next unless a sensitive turn forbids it."""
    if state.active:
        return replace(state, unheard=state.unheard + 1), [QueueAudio(payload)]
    if state.pre_roll:
        return state, [HoldAudio(payload)]
    return state, []


def behind(state: Turns) -> bool:
    """Audio of the running turn has arrived that the recogniser has not answered for yet."""
    return state.active and state.unheard > 0


def feeding(state: Turns) -> int | None:
    """The generation audio fed now belongs to; None when no turn runs (the audio is dropped)."""
    return state.generation if state.active else None
