"""One call: ARI events and timers in, engine steps, ARI requests out.

Everything that happens to a call goes through one queue and one task, so
events, timers and backend replies are handled strictly one at a time. The
engine decides; this class only carries its actions out on the channel:

- Play: one playback per prompt, with our own ids so it can be stopped.
- Listen: keys are delivered to the engine; a key during a prompt that allows
  barge-in stops the remaining prompts (queued ones first, as Asterisk starts
  the next queued prompt as soon as one stops); the no-input timer starts
  when the last prompt ends; in a digits turn, a pause between keys ends it.
- Speech (`ivr.controller.speech`): a speech turn runs beside each Listen
  that accepts speech, from the start when the prompts allow barge-in (the
  caller's voice stops them), else from when they end. A key or any other
  event that moves the call on cancels the turn.
- CallBackend: runs beside the prompt with its timeout; after 1.5 s of silence
  while it runs, a filler prompt ("One moment, please."), then another after
  each further 1.5 s, so the caller never sits in dead air.
- Transfer / Hangup: wait for the prompts before them, then act.

A call runs on one release (`FlowSet`), given with its first item (`Begin`,
`Resume`): the engine steps it with that release's flows, and every prompt is
resolved with that release's texts and audio, so a reload meanwhile changes
nothing for this call.

The state is saved after every engine step, and the step's prompts are
written down (`step_audio`) before they are posted, so another controller can
resume the call from its last step without the caller missing a word.
Events that reach the controller before it knows a call (`held`) are handled
right after the call is begun or resumed: a key pressed during a takeover counts.

Observers (`Services.observers`: the call log, the history recorder) are told
what happens as typed notices (`ivr.controller.notices`), inline, each engine
step with the path entries it added.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ivr import engine
from ivr.ari import AriClient, AriError, ChannelNotFound, NotFound, WrongState
from ivr.ari import event_types as ari
from ivr.backend.base import Backend, call_with_timeout
from ivr.controller import notices as note
from ivr.controller import turnstate as ts
from ivr.controller.media import KeyedHash, MediaResolver
from ivr.controller.speech import CallListener, SpeechOut, SpeechService
from ivr.controller.step_audio import Live, StepAudio, recover, sent_prompt
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine import experiments
from ivr.engine.state import CallState
from ivr.flow.catalog import FlowSet
from ivr.prompts import STILL_WAITING, WAIT_FILLER
from ivr.speech.turn import BargeIn, TurnEnded
from ivr.store import CallStore

log = logging.getLogger(__name__)
FILLER_AFTER = 1.5  # seconds of silence during a backend wait before a filler prompt
FILLER_KEYS = (WAIT_FILLER, STILL_WAITING)  # the first filler, then every later one
Post = tuple[str, str]  # (playback id, media uri) of one prompt
Observer = Callable[["CallSession", note.Notice], None]  # see ivr.controller.notices


@dataclass
class Services:
    """What a session needs from the outside world."""

    ari: AriClient
    store: CallStore
    backend: Backend
    media: MediaResolver
    app: str
    transfer_context: str = "ivr-transfer"
    desk_app: str | None = None  # outbound mode: the persistent application that follows routed callers
    observers: list[Observer] = field(default_factory=list)
    speech: SpeechService | None = None
    keyed_hash: KeyedHash | None = None  # Sealer.digest: callers' experiment arms, the same on every controller


@dataclass
class _Timer:
    generation: int  # the expiry of the reducer's timer of that generation (`turnstate.TimerFired`)


@dataclass
class _BackendReply:
    event: ev.BackendResult


@dataclass
class _Filler:
    generation: int


def assignment_facts(call: dict[str, Any], keyed_hash: KeyedHash | None, now: dt.datetime) -> dict[str, Any]:
    """What the engine needs to put the caller in an experiment's arm (`ivr.engine.experiments`): the
    call's time, and a keyed hash of the caller number (never the number: the state keeps only the
    arm), the same on every controller so a caller keeps their arm. None for a caller with no number."""
    number = str(call.get("ani") or "")
    known = keyed_hash is not None and any(ch.isdigit() for ch in number)
    return {experiments.CALL_TIME: now.isoformat(timespec="seconds"),
            experiments.CALLER_KEY: keyed_hash("experiment", number, 32) if keyed_hash and known else None}


@dataclass
class Begin:
    """Answer and start the flow: the first item of a new call's queue."""

    flow: str
    call: dict[str, Any]
    release: FlowSet  # the call's for its whole life: the current one when it started


@dataclass
class Resume:
    """Continue a call another controller left at `state`."""

    state: CallState
    release: FlowSet  # the one `state.release` names


class CallSession:
    def __init__(self, services: Services, channel_id: str):
        self.services = services
        self.channel_id = channel_id
        self.channel_name: str | None = None  # the channel's name, where known (outbound websockets name calls by it)
        self.release: FlowSet | None = None  # from the first item (Begin or Resume), with `state`
        self.state: CallState | None = None
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.turn = ts.TurnState()  # prompts, listening, timers: decided by `turnstate.step`
        self._listener: CallListener | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.backend_task: asyncio.Task | None = None
        self.fillers = 0  # filler prompts played during the current backend wait
        self.filler_generation = 0
        self.held: list[Any] = []  # events that came before the call was known
        self.done = asyncio.Event()
        self.task: asyncio.Task | None = None

    @property
    def playing(self) -> list[tuple[str, bool]]:
        """(playback id, barge-in) of the prompts still playing, in play order."""
        return [(p.playback_id, p.barge_in) for p in self.turn.playing]

    @playing.setter
    def playing(self, prompts: list[tuple[str, bool]]) -> None:
        self.turn = ts.step(self.turn, ts.Adopted(tuple(ts.Prompt(*p) for p in prompts)), self._now())[0]

    @property
    def turn_started(self) -> bool:
        return self.turn.turn_started

    @turn_started.setter
    def turn_started(self, started: bool) -> None:
        self.turn = replace(self.turn, turn_started=started)

    @property
    def listener(self) -> CallListener | None:
        return self._listener

    @listener.setter
    def listener(self, listener: CallListener | None) -> None:
        self._listener = listener
        self.turn = ts.step(self.turn, ts.ListenerSet(None if listener is None else listener.barge_in), self._now())[0]

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _feed(self, item: ts.Input) -> None:
        """One input to the reducer, then carry out what it decided, in order."""
        self.turn, outputs = ts.step(self.turn, item, self._now())
        for index, output in enumerate(outputs):
            try:
                await self._perform(output)
            except NotFound:
                if isinstance(output, ts.PostPrompt):  # the prompt and those after it will never play
                    for later in outputs[index:]:
                        if isinstance(later, ts.PostPrompt):
                            await self._feed(ts.PromptEnded(later.playback_id))
                raise

    async def _perform(self, output: ts.Output) -> None:
        if isinstance(output, ts.PostPrompt):
            await self.services.ari.play(self.channel_id, output.uri, playback_id=output.playback_id,
                                         lang=output.language)
        elif isinstance(output, ts.StopPrompts):
            await self._stop_ids(list(output.playback_ids))
            if output.playback_ids:  # what the caller cut short is theirs: a controller taking over does not replay it
                await self.services.store.save_audio(self._step_audio())
        elif isinstance(output, ts.SetTimer):
            self._cancel_timer()
            if output.timer is not None:
                delay = max(0.0, output.timer.deadline - self._now())
                self.timer = asyncio.get_running_loop().call_later(delay, self.submit, _Timer(output.timer.generation))
        elif isinstance(output, ts.Deliver):
            await self._step(output.event)
        elif isinstance(output, ts.Notify):
            self._notify(output.notice)
        elif isinstance(output, ts.StartTurn):
            await self._start_turn(output.listen)
        elif isinstance(output, ts.PreRoll):
            if self.listener is not None:
                self.listener.keep_pre_roll(output.keep)
        elif isinstance(output, ts.StartBackend):
            self.backend_task = asyncio.create_task(self._call_backend(output.action))
            self.fillers = 0
        elif isinstance(output, ts.ArmFiller):
            self._arm_filler()
        elif isinstance(output, ts.Transfer):
            await self._transfer(output.action)
        elif isinstance(output, ts.Hangup):
            await self._hang_up(output.action)

    # --- life cycle ----------------------------------------------------------

    async def _begin(self, item: Begin) -> None:
        try:
            await self.services.ari.answer(self.channel_id)
        except WrongState:
            pass  # already answered (a call adopted after a restart)
        await self._open_listener()
        self.release = item.release
        call = {**item.call, **assignment_facts(item.call, self.services.keyed_hash, dt.datetime.now().astimezone())}
        result = engine.start(item.release, item.flow, self.channel_id, call=call)
        self._notify(note.CallStarted(item.call))
        await self._apply(result, None)

    async def _resume(self, item: Resume) -> None:
        self._notify(note.CallResumed(item.state))
        await self._open_listener()
        self.release = item.release
        result = engine.resume(item.release, item.state)
        audio = await self.services.store.load_audio(self.channel_id)
        if audio is not None and audio.played == item.state.played:
            result = await self._recover(audio, result)
        await self._apply(result, item.state)

    async def _recover(self, audio: StepAudio, result: engine.Step) -> engine.Step:
        """Carry on with the prompts of the step a controller before us had sent.

        Asterisk may still be playing them: keep what it plays, stop and play
        again what the caller has not heard in full, or, when that cannot be
        played again, stop it and let the engine's resume ask afresh.
        """
        live = [await self._playback_state(p.playback_id) for p in audio.prompts]
        if any(isinstance(a, (act.Transfer, act.Hangup)) for a in result.actions):
            await self._stop_ids([p.playback_id for p, state in reversed(list(zip(audio.prompts, live))) if state])
            return result
        media, servable = self.services.media, []
        for prompt in audio.prompts:  # also renders per-call audio again, for Asterisk to fetch from us
            servable.append(prompt.replayable and media.servable(
                await media.uri(self._pinned(), prompt.language, prompt.prompt(), self.channel_id)))
        plan = recover(audio, live, time.time(), servable)
        await self._stop_ids(plan.stop)
        if plan.ask_again:
            return result
        await self._feed(ts.Adopted(tuple(ts.Prompt(p.playback_id, p.barge_in) for p in plan.keep)))
        rest = [a for a in result.actions if not isinstance(a, act.Play)]
        log.info("call %s: taken over mid-step: %d prompt(s) still playing, %d played again",
                 self.channel_id, len(plan.keep), len(plan.replay))
        return engine.Step(result.state, [p.as_play() for p in plan.replay] + rest)

    async def _playback_state(self, playback_id: str) -> Live:
        try:
            state = (await self.services.ari.get_playback(playback_id)).state
        except NotFound:
            return None
        if state == "playing":
            return "playing"
        return "queued" if state == "queued" else None

    def _pinned(self) -> FlowSet:
        """The release the call runs on: set by its first item, before anything asks for it."""
        if self.release is None:
            raise RuntimeError(f"call {self.channel_id} has no release yet")
        return self.release

    def submit(self, item: Any) -> None:
        self.queue.put_nowait(item)

    async def run(self) -> None:
        """Handle events until the call has left us; `held` events right after the first item."""
        try:
            while not self.done.is_set():
                await self._handle_safely(await self.queue.get())
                held, self.held = self.held, []
                for event in held:
                    await self._handle_safely(event)
        finally:
            self._cancel_timer()
            if self.backend_task and not self.backend_task.done():
                self.backend_task.cancel()
            await self._close_listener()
            if self.done.is_set():  # the call has left us (on a stop it stays in Stasis for the next controller)
                await self.services.media.end_call(self.channel_id)

    # --- events --------------------------------------------------------------

    async def _handle_safely(self, item: Any) -> None:
        if self.done.is_set():
            return
        try:
            await self._handle(item)
        except ChannelNotFound:
            await self._caller_gone("channel gone")
        except AriError as exc:
            log.warning("call %s: ARI request failed: %s", self.channel_id, exc)

    async def _handle(self, item: Any) -> None:
        if isinstance(item, Begin):
            await self._begin(item)
        elif isinstance(item, Resume):
            await self._resume(item)
        elif isinstance(item, _Timer):
            await self._timer(item)
        elif isinstance(item, _BackendReply):
            await self._step(item.event)
        elif isinstance(item, _Filler):
            await self._filler(item)
        elif isinstance(item, SpeechOut):
            await self._speech(item)
        elif isinstance(item, ari.RecordingFinished):
            if self.listener is not None:
                self.listener.on_event(item)
        elif isinstance(item, ari.ChannelDtmfReceived):
            await self._feed(ts.KeyPressed(item.digit))
        elif isinstance(item, ari.ChannelTalkingStarted):  # talk detection (record mode): the noinput timer stops
            await self._feed(ts.Talking())
        elif isinstance(item, ari.ChannelTalkingFinished):  # if no answer comes of it (a cough), it runs again
            await self._feed(ts.Talked())
        elif isinstance(item, ari.PlaybackFinished):
            await self._feed(ts.PromptEnded(item.playback.id))
        elif isinstance(item, ari.PlaybackStarted):
            self._notify(note.PromptStarted(item.playback.id))
        elif isinstance(item, (ari.ChannelHangupRequest, ari.StasisEnd, ari.ChannelDestroyed)):
            await self._caller_gone(item.type)

    async def _speech(self, item: SpeechOut) -> None:
        if self.listener is None or item.generation != self.listener.generation:
            return  # a turn the call has moved past
        output = item.output
        if isinstance(output, BargeIn):
            await self._feed(ts.SpeechBegan(output))
        elif isinstance(output, TurnEnded):
            await self._feed(ts.SpeechEnded(output))

    async def _caller_gone(self, why: str) -> None:
        if self.done.is_set():
            return
        await self._feed(ts.Gone())
        if self.backend_task and not self.backend_task.done():
            self.backend_task.cancel()  # backends are atomic: a cancelled write leaves nothing
        if self.state is not None and self.state.status == "running":
            before, result = self.state, engine.step(self._pinned(), self.state, ev.Hangup())
            self.state = result.state
            await self.services.store.save(self.state)
            self._notify(note.StepTaken(result, note.turns_added(before, result.state)))
        await self._close_listener()
        self._notify(note.CallerLeft(why))
        self.done.set()

    # --- engine --------------------------------------------------------------

    async def _step(self, event: ev.Event) -> None:
        if self.state is None:
            return
        if self.listener is not None:
            await self.listener.cancel_turn()  # whatever moved the call on, the turn is over
        self.filler_generation += 1
        await self._apply(engine.step(self._pinned(), self.state, event), self.state)

    async def _apply(self, result: engine.Step, before: CallState | None) -> None:
        """Carry out a step the engine took from `before` (None: the call's first)."""
        self.state = result.state
        audio, posts = await self._plan_prompts(result.actions)
        await self.services.store.save(self.state, audio)
        self._notify(note.StepTaken(result, note.turns_added(before, result.state)))
        state = self.state
        await self._feed(ts.Stepped(tuple(result.actions), tuple(tuple(p) for p in posts),
                                    running=state.status == "running",
                                    collecting=bool(state.pending and state.buffer),
                                    waiting_backend=self._waiting_for_backend()))

    async def _plan_prompts(self, actions: list[act.Action]) -> tuple[StepAudio | None, list[list[Post]]]:
        """Playback id and audio of every prompt of the step, written down before the first is posted."""
        audio, media = None, self.services.media
        posts: list[list[Post]] = []
        for action in actions:
            if isinstance(action, act.Play):
                audio = audio or self._step_audio()
                posts.append([])
                for prompt in action.prompts:
                    uri = await media.uri(self._pinned(), action.language, prompt, self.channel_id)
                    playback_id = f"ivr-{uuid.uuid4().hex}"
                    audio.prompts.append(sent_prompt(playback_id, prompt, action, media.seconds(uri)))
                    posts[-1].append((playback_id, uri))
        return audio, posts

    async def _execute(self, actions: list[act.Action], posts: list[list[Post]] | None = None) -> None:
        await self._feed(ts.Execute(tuple(actions), tuple(tuple(p) for p in posts or [])))

    # --- filler prompts during backend waits -----------------------------------

    def _waiting_for_backend(self) -> bool:
        state = self.state
        return state is not None and state.pending is not None and state.pending.kind == "backend" \
            and state.status == "running"

    def _arm_filler(self) -> None:
        self.filler_generation += 1
        asyncio.get_running_loop().call_later(FILLER_AFTER, self.submit, _Filler(self.filler_generation))

    async def _filler(self, item: _Filler) -> None:
        """Still waiting on the backend after a silence: tell the caller so (not part of the step)."""
        if item.generation != self.filler_generation or self.playing or not self._waiting_for_backend():
            return
        assert self.state is not None
        key = FILLER_KEYS[min(self.fillers, len(FILLER_KEYS) - 1)]
        if not self._pinned().prompts.has(self.state.language, key):
            log.warning("call %s: no filler prompt %s/%s: the caller waits in silence", self.channel_id,
                        self.state.language, key)
            return
        self.fillers += 1
        uri = await self.services.media.uri(self._pinned(), self.state.language, act.PromptRef(key=key))
        await self._feed(ts.Posting(f"ivr-{uuid.uuid4().hex}", uri, self.state.language, True))

    async def _start_turn(self, listen: act.Listen) -> None:
        """Listen for speech now (the reducer decided when)."""
        if self.listener is None:
            return
        try:
            await self.listener.start_turn(self._rest_of_number(listen))
        except RuntimeError as exc:  # e.g. no recogniser for this language: keys still work
            log.warning("call %s: no speech for this turn: %s", self.channel_id, exc)

    def _rest_of_number(self, listen: act.Listen) -> act.Listen:
        """After some keys, the voice is expected to give exactly the digits still missing."""
        typed = len(self.state.buffer) if self.state is not None and listen.mode == "digits" else 0
        if not typed or typed >= listen.max_digits:
            return listen
        return listen.model_copy(update={"min_digits": max(1, listen.min_digits - typed),
                                         "max_digits": listen.max_digits - typed})

    async def _open_listener(self) -> None:
        speech = self.services.speech
        if speech is None or speech.mode == "off" or self.listener is not None:
            return
        listener = self.listener = speech.listener(self.services.ari, self.services.app, self.channel_id, self.submit)
        try:
            await listener.open()
        except (TimeoutError, AriError, OSError) as exc:
            log.warning("call %s: no audio stream, keys only: %s", self.channel_id, exc)
            await self._close_listener()

    def helper_event(self, event: ari.AriEvent) -> None:
        """An event of our own media leg (its StasisStart), delivered at once, not queued:
        the session's task is waiting for it inside `_open_listener`."""
        if self.listener is not None:
            self.listener.on_event(event)

    async def _close_listener(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            try:
                await listener.close()
            except AriError as exc:
                log.debug("call %s: closing the audio stream: %s", self.channel_id, exc)

    async def _call_backend(self, action: act.CallBackend) -> None:
        outcome, data = await call_with_timeout(self.services.backend, action.name, action.args, action.timeout)
        self.submit(_BackendReply(ev.BackendResult(name=action.name, outcome=outcome, data=data)))

    async def _transfer(self, action: act.Transfer) -> None:
        await self._close_listener()  # out of the speech bridge before the queue
        await continue_to_queue(self.services, self.channel_id, action.queue, action.priority, action.reason)
        self._notify(note.Transferred(action))
        self.done.set()

    async def _hang_up(self, action: act.Hangup) -> None:
        await self._close_listener()
        self._notify(note.HungUp(action.outcome))
        try:
            await self.services.ari.hangup(self.channel_id, "normal")
        except ChannelNotFound:
            pass
        self.done.set()

    def _step_audio(self) -> StepAudio:
        return StepAudio(call_id=self.channel_id, played=self.state.played if self.state else 0,
                         sent_at=time.time(), prompts=[])

    async def _stop_ids(self, playback_ids: list[str]) -> None:
        for playback_id in playback_ids:
            try:
                await self.services.ari.stop_playback(playback_id)
            except NotFound:
                pass

    # --- timers --------------------------------------------------------------

    async def _timer(self, item: _Timer) -> None:
        """Silence ran out, unless audio that came in before it has not been heard yet (the reducer
        then gives the recogniser a moment to say whether the caller spoke in it)."""
        if item.generation != self.turn.generation:
            return
        listener = self.listener
        await self._feed(ts.TimerFired(item.generation, behind=listener is not None and listener.behind()))

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    async def reconcile(self) -> None:
        """After events may have been lost: forget prompts that have ended meanwhile."""
        for playback_id, _ in list(self.playing):
            try:
                await self.services.ari.get_playback(playback_id)
            except NotFound:
                self.submit(ari.PlaybackFinished(playback={"id": playback_id, "media_uri": "", "state": "done"}))

    def _notify(self, notice: note.Notice) -> None:
        for observer in self.services.observers:
            try:
                observer(self, notice)
            except Exception:  # an observer's bug must not take the caller's call down
                log.exception("call %s: observer %r failed on %s", self.channel_id, observer, type(notice).__name__)


async def continue_to_queue(services: Services, channel: str, queue: str, priority: int, reason: str) -> None:
    """Hand the caller to the dialplan's queue step with where, how urgent and why; still
    subscribed, so that the agent's screen pop follows the call (a per-call outbound websocket
    carries nothing after StasisEnd: there the desk's persistent application is subscribed)."""
    for name, value in (("IVR_QUEUE", queue), ("IVR_PRIORITY", str(priority)), ("IVR_REASON", reason),
                        ("__IVR_CALL_ID", channel)):
        await services.ari.set_variable(channel, name, value)
    follower = services.app if services.ari.follows_after_stasis else services.desk_app
    if follower:
        await services.ari.subscribe(follower, f"channel:{channel}")
    await services.ari.continue_in_dialplan(channel, services.transfer_context, "queue", 1)
