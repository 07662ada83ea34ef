"""The prompt and timing logic of one call, as a pure reducer (the shape of `ivr.engine`).

`step(state, input, now)` takes the call's prompt/turn state, one typed input and the
current time (the caller's clock, injected) and returns the new state and the outputs
to carry out, in order. No I/O, no clock, no asyncio: `CallSession` is the shell that
feeds it ARI events, timer expiries and engine steps, and performs what comes out
(posting and stopping playbacks, arming timers, stepping the engine, ...).

What it decides:

- Prompts: which playbacks are still playing (in play order, with whether each may be
  interrupted); a key or the caller's voice during a prompt that allows barge-in stops
  them, queued ones first (Asterisk starts the next queued prompt as soon as one stops).
- Timers: the no-input timer starts when the last prompt ends (or at once if none
  plays); talk detection pauses it; in a digits turn a pause between keys ends it
  (interdigit); an expiry whose audio the recogniser has not heard yet waits a little
  (at most HEARING_GRACE) before it becomes NoInput.
- Which engine event to deliver: Dtmf, NoInput, or what the speech turn heard.
- When a speech turn starts, the backend call and its fillers, and that Transfer and
  Hangup wait for the prompts before them.
- After the caller has gone (or been transferred, or hung up), nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from ivr.controller import notices as note
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.speech.turn import BargeIn, TurnEnded

HEARING_GRACE = 1.0  # seconds a noinput may wait at most for the recogniser to hear audio already here
HEARING_STEP = 0.05

TimerKind = Literal["noinput", "interdigit"]


# --- state -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prompt:
    playback_id: str
    barge_in: bool


@dataclass(frozen=True, slots=True)
class Timer:
    kind: TimerKind
    deadline: float  # on the injected clock
    generation: int  # an expiry counts only while this is the state's generation
    waited: float = 0.0  # for the recogniser to catch up


@dataclass(frozen=True, slots=True)
class TurnState:
    playing: tuple[Prompt, ...] = ()  # in play order
    deferred: tuple[act.Action, ...] = ()  # Transfer/Hangup (and what follows) waiting for the prompts
    listen: act.Listen | None = None
    heard_input: bool = False
    timer: Timer | None = None
    generation: int = 0
    turn_started: bool = False  # a speech turn runs for this Listen
    listener: bool | None = None  # None: no speech listener; else whether it takes barge-in
    running: bool = False  # the engine's call is running
    waiting_backend: bool = False  # the engine waits on a backend call
    gone: bool = False  # the call has left us: no more outputs


# --- inputs ------------------------------------------------------------------------------

Post = tuple[str, str]  # (playback id, media uri) of one prompt


@dataclass(frozen=True, slots=True)
class Stepped:
    """The engine took a step: its actions, each Play's planned posts, and the call's status after it."""

    actions: tuple[act.Action, ...]
    posts: tuple[tuple[Post, ...], ...] = ()
    running: bool = True
    collecting: bool = False  # a digits turn holds some keys already
    waiting_backend: bool = False


@dataclass(frozen=True, slots=True)
class Execute:
    """Carry out actions (without a new engine step)."""

    actions: tuple[act.Action, ...]
    posts: tuple[tuple[Post, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Posting:
    """A prompt outside any step (a filler) is to be played."""

    playback_id: str
    uri: str
    language: str
    barge_in: bool


@dataclass(frozen=True, slots=True)
class PromptEnded:
    playback_id: str


@dataclass(frozen=True, slots=True)
class Adopted:
    """Taking over a call: these prompts of the last step still play."""

    prompts: tuple[Prompt, ...]


@dataclass(frozen=True, slots=True)
class KeyPressed:
    digit: str


@dataclass(frozen=True, slots=True)
class Talking:
    """Talk detection: the caller began to speak."""


@dataclass(frozen=True, slots=True)
class Talked:
    """Talk detection: the caller stopped."""


@dataclass(frozen=True, slots=True)
class SpeechBegan:
    output: BargeIn


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    output: TurnEnded


@dataclass(frozen=True, slots=True)
class TimerFired:
    generation: int
    behind: bool = False  # the recogniser has audio of this turn it has not heard yet


@dataclass(frozen=True, slots=True)
class ListenerSet:
    barge_in: bool | None  # None: no listener (closed, or none opened)


@dataclass(frozen=True, slots=True)
class Gone:
    """The caller hung up (or the channel vanished)."""


Input = (Stepped | Execute | Posting | PromptEnded | Adopted | KeyPressed | Talking | Talked | SpeechBegan
         | SpeechEnded | TimerFired | ListenerSet | Gone)


# --- outputs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostPrompt:
    playback_id: str
    uri: str
    language: str
    barge_in: bool


@dataclass(frozen=True, slots=True)
class StopPrompts:
    """Stop these, in this order (queued ones first); what the caller cut short is theirs."""

    playback_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetTimer:
    timer: Timer | None  # None: cancel


@dataclass(frozen=True, slots=True)
class Deliver:
    event: ev.Event  # step the engine with it


@dataclass(frozen=True, slots=True)
class Notify:
    notice: note.Notice


@dataclass(frozen=True, slots=True)
class StartTurn:
    listen: act.Listen


@dataclass(frozen=True, slots=True)
class PreRoll:
    keep: bool


@dataclass(frozen=True, slots=True)
class StartBackend:
    action: act.CallBackend


@dataclass(frozen=True, slots=True)
class ArmFiller:
    """Silence while the backend runs: a filler prompt after a while."""


@dataclass(frozen=True, slots=True)
class Transfer:
    action: act.Transfer


@dataclass(frozen=True, slots=True)
class Hangup:
    action: act.Hangup


Output = (PostPrompt | StopPrompts | SetTimer | Deliver | Notify | StartTurn | PreRoll | StartBackend | ArmFiller
          | Transfer | Hangup)


# --- the reducer -------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """One step's working copy: the state as it changes and the outputs so far."""

    s: TurnState
    now: float
    out: list[Output] = field(default_factory=list)

    def set(self, **changes: object) -> None:
        self.s = replace(self.s, **changes)  # type: ignore[arg-type]

    def cancel_timer(self) -> None:
        self.set(timer=None, generation=self.s.generation + 1)
        self.out.append(SetTimer(None))

    def arm(self, seconds: float, kind: TimerKind, waited: float = 0.0) -> None:
        generation = self.s.generation + 2  # one for the cancel, one for the new timer
        timer = Timer(kind, self.now + seconds, generation, waited)
        self.set(timer=timer, generation=generation)
        self.out.append(SetTimer(timer))

    def stop_prompts(self) -> None:
        ids = tuple(p.playback_id for p in reversed(self.s.playing))
        self.set(playing=())
        self.out.append(StopPrompts(ids))

    def start_turn(self) -> None:
        """Listen for speech now if the turn takes it and no prompt that forbids barge-in plays."""
        s = self.s
        if s.listener is None or s.listen is None or not s.listen.speech or s.turn_started:
            return
        if s.playing and not (s.listener and all(p.barge_in for p in s.playing)):
            return
        self.set(turn_started=True)
        self.out.append(StartTurn(s.listen))

    def execute(self, actions: Sequence[act.Action], posts: Sequence[Sequence[Post]]) -> None:
        planned = iter(posts)
        for index, action in enumerate(actions):
            if isinstance(action, (act.Transfer, act.Hangup)) and self.s.playing:
                self.set(deferred=tuple(actions[index:]))
                return
            if isinstance(action, act.Play):
                self.set(listen=None, turn_started=False)
                self.cancel_timer()
                for playback_id, uri in next(planned, ()):
                    self.post(playback_id, uri, action.language, action.barge_in)
            elif isinstance(action, act.Listen):
                self.set(listen=action, heard_input=False)
                if self.s.listener is not None:
                    self.out.append(PreRoll(not action.sensitive))  # a keypad-only turn reaches no recogniser
                self.cancel_timer()
                if not self.s.playing:
                    self.arm(action.timeouts.noinput, "noinput")
                self.start_turn()
            elif isinstance(action, act.CallBackend):
                self.out.append(StartBackend(action))
                if not self.s.playing:
                    self.out.append(ArmFiller())
            elif isinstance(action, act.Transfer):
                self.set(listen=None)
                self.stop_prompts()
                self.out.append(Transfer(action))
                self.set(gone=True)
                return
            elif isinstance(action, act.Hangup):
                self.set(listen=None)
                self.out.append(Hangup(action))
                self.set(gone=True)
                return

    def post(self, playback_id: str, uri: str, language: str, barge_in: bool) -> None:
        self.set(playing=(*self.s.playing, Prompt(playback_id, barge_in)))
        self.out.append(PostPrompt(playback_id, uri, language, barge_in))


def step(state: TurnState, event: Input, now: float) -> tuple[TurnState, list[Output]]:
    """One input in, the new state and the outputs to perform (in order) out."""
    if state.gone:
        return state, []
    run = _Run(state, now)
    _handle(run, event)
    return run.s, run.out


def _handle(run: _Run, event: Input) -> None:  # noqa: C901 - one branch per input, like the engine
    s = run.s
    if isinstance(event, Stepped):
        run.set(running=event.running, waiting_backend=event.waiting_backend, turn_started=False)
        if not event.actions and s.listen is not None and event.collecting:
            run.arm(s.listen.timeouts.interdigit, "interdigit")  # keep collecting digits
            run.start_turn()  # the rest of the number may be spoken
        run.execute(event.actions, event.posts)
    elif isinstance(event, Execute):
        run.execute(event.actions, event.posts)
    elif isinstance(event, Posting):
        run.post(event.playback_id, event.uri, event.language, event.barge_in)
    elif isinstance(event, PromptEnded):
        _prompt_ended(run, event.playback_id)
    elif isinstance(event, Adopted):
        run.set(playing=event.prompts)
    elif isinstance(event, KeyPressed):
        if s.listen is None or not s.listen.dtmf or not s.running:
            return
        if s.playing and not s.playing[0].barge_in:
            return  # this prompt may not be interrupted: the key is discarded
        run.set(heard_input=True)
        run.out.append(Notify(note.KeyPressed(event.digit)))
        run.stop_prompts()
        run.cancel_timer()
        run.out.append(Deliver(ev.Dtmf(digits=event.digit)))
    elif isinstance(event, Talking):
        if s.listen is not None and s.listen.speech and not s.playing:
            run.set(heard_input=True)
            run.cancel_timer()
    elif isinstance(event, Talked):
        if s.listen is not None and s.listen.speech and not s.playing and s.timer is None:
            run.arm(s.listen.timeouts.noinput, "noinput")
    elif isinstance(event, SpeechBegan):
        if s.listen is None:
            return
        run.set(heard_input=True)
        run.cancel_timer()
        run.out.append(Notify(note.SpeechStarted(event.output)))
        if s.playing and s.playing[0].barge_in:
            run.stop_prompts()
    elif isinstance(event, SpeechEnded):
        if s.listen is None:
            return
        run.cancel_timer()
        run.out.append(Notify(note.SpeechHeard(event.output)))
        run.out.append(Deliver(event.output.event))
    elif isinstance(event, TimerFired):
        timer = s.timer
        if event.generation != s.generation or s.listen is None or timer is None:
            return
        run.set(timer=None)
        if timer.waited < HEARING_GRACE and event.behind:
            run.arm(HEARING_STEP, timer.kind, timer.waited + HEARING_STEP)
            return
        run.out.append(Deliver(ev.NoInput()))
    elif isinstance(event, ListenerSet):
        run.set(listener=event.barge_in)
    elif isinstance(event, Gone):
        run.cancel_timer()
        run.set(listen=None, gone=True)


def _prompt_ended(run: _Run, playback_id: str) -> None:
    run.set(playing=tuple(p for p in run.s.playing if p.playback_id != playback_id))
    if run.s.playing:
        return
    if run.s.waiting_backend and run.s.running:
        run.out.append(ArmFiller())
    if run.s.deferred:
        pending = run.s.deferred
        run.set(deferred=())
        run.execute(pending, ())
        return
    s = run.s
    if s.listen is not None and not s.heard_input and s.timer is None:
        run.arm(s.listen.timeouts.noinput, "noinput")
    run.start_turn()
