"""The caller's voice into the speech pipeline: one listener per call, two ways to listen.

`StreamListener` (the default) takes the call's audio live, whatever plays.
Asterisk suspends a channel from its bridge while a prompt plays on it
(bridge_channel.c), so a caller bridged with externalMedia is not heard
during prompts. Instead the caller stays in no bridge: a snoop channel of
the caller (`spy=in`, the caller's voice only) is bridged with an
externalMedia channel that sends RTP (slin16, big-endian) to a UDP socket
of ours; each payload is converted to 8 kHz frames and fed to the call's
`SpeechTurn` in a worker process. Speech can start while a prompt plays
(barge-in), and early endpointing ends the turn as soon as a complete
answer is followed by a short silence.

`RecordListener` is the fallback and the benchmark's baseline: once the
prompts end, `POST /channels/{id}/record` with `maxSilenceSeconds` records
one utterance; Asterisk ends it after whole seconds of silence, and the
file is then recognised. No barge-in by voice.

Both report through `deliver(SpeechOut(generation, output))` into the
call's queue; the session ignores outputs of a turn it has moved past.
Which turn is current, whether one runs, what audio it has not answered
for and whether audio between turns is kept are decided by a pure reducer
(`ivr.controller.listener_turns`); the listeners carry out what it decides.
Helper channel ids carry the call id (`<call>-snoop-<hex>`,
`<call>-media-<hex>`) and the bridge id is derived from it, so a controller
that adopts a call after a restart recognises the old legs, hangs them up
and builds new ones in the call's bridge.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ivr.ari import AriClient, AriError, ChannelNotFound, NotFound
from ivr.ari.event_types import AriEvent, RecordingFinished, StasisStart
from ivr.controller import listener_turns as lt
from ivr.controller.rtp import RtpReceiver, open_receiver
from ivr.engine.actions import Listen, Timeouts
from ivr.speech.audio import RtpToFrames, read_wav_8k
from ivr.speech.turn import TurnOutput
from ivr.speech.worker import SpeechWorkers

log = logging.getLogger(__name__)

SpeechMode = Literal["stream", "record", "off"]
HELPER_MARKS = ("-media-", "-snoop-")  # externalMedia leg, snoop of the caller
HELPER_STASIS_TIMEOUT = 2.0
PRE_ROLL_PACKETS = 15  # 300 ms of 20 ms packets
NEVER = 24 * 3600.0  # the session's own timer decides no-input, not stream time


@dataclass(frozen=True, slots=True)
class SpeechOut:
    """What the call's speech turn `generation` produced."""

    generation: int
    output: TurnOutput


def helper_channel_id(call_id: str, mark: str) -> str:
    """A fresh id for one of the call's helper legs (ids are not reused: Asterisk may still hold the old one)."""
    return f"{call_id}{mark}{uuid.uuid4().hex[:8]}"


def owner_of_helper(channel_id: str) -> str | None:
    """The call a helper channel (media leg or snoop) belongs to; None for other channels."""
    for mark in HELPER_MARKS:
        owner, found, _ = channel_id.rpartition(mark)
        if found and owner:
            return owner
    return None


def bridge_id_for(call_id: str) -> str:
    return f"ivr-{call_id}"


def for_speech(listen: Listen) -> Listen:
    """The turn as the recogniser runs it: no-input is timed by the session (prompts may still play)."""
    timeouts = Timeouts(noinput=NEVER, end_silence=listen.timeouts.end_silence,
                        max_speech=listen.timeouts.max_speech, interdigit=listen.timeouts.interdigit)
    return listen.model_copy(update={"timeouts": timeouts})


class CallListener(Protocol):
    """One call's way of hearing the caller."""

    barge_in: bool  # can speech be heard while a prompt plays?
    media_id: str | None  # our externalMedia leg, if any
    snoop_id: str | None  # our snoop of the caller, if any

    @property
    def generation(self) -> int: ...  # of the current turn; outputs of older turns are stale

    async def open(self) -> None: ...
    def behind(self) -> bool: ...
    async def start_turn(self, listen: Listen) -> int: ...
    async def cancel_turn(self) -> None: ...
    def keep_pre_roll(self, keep: bool) -> None: ...
    def on_event(self, event: AriEvent) -> None: ...
    async def close(self) -> None: ...


class SpeechService:
    """Shared by all calls: the recogniser processes and where Asterisk sends audio."""

    def __init__(self, workers: SpeechWorkers, mode: SpeechMode = "stream", rtp_host: str = "127.0.0.1",
                 languages: frozenset[str] = frozenset({"en"})) -> None:
        self.workers = workers
        self.mode = mode
        self.rtp_host = rtp_host
        self.languages = languages

    def listener(self, ari: AriClient, app: str, call_id: str, deliver: Callable[[Any], None]) -> CallListener:
        if self.mode == "record":
            return RecordListener(self, ari, call_id, deliver)
        return StreamListener(self, ari, app, call_id, deliver)

    def close(self) -> None:
        self.workers.close()


class _Turns:
    """The shell both listeners share: carries out what `listener_turns.step` decides about turns."""

    def __init__(self, service: SpeechService, call_id: str, deliver: Callable[[Any], None]) -> None:
        self.service = service
        self.call_id = call_id
        self.deliver = deliver
        self.turns = lt.Turns()

    @property
    def generation(self) -> int:
        return self.turns.generation

    @property
    def active(self) -> bool:
        return self.turns.active

    def behind(self) -> bool:
        """A noinput timer must not outrun the recogniser: a busy worker (another call's decode,
        a recogniser being built) answers late for audio in which the caller already spoke."""
        return lt.behind(self.turns)

    def keep_pre_roll(self, keep: bool) -> None:
        """Whether audio heard between turns may open the next turn. Not from a sensitive
        (keypad-only) turn on, until the next turn that is not: a card number said aloud
        while keyed must not reach a recogniser. Only a listener with a pre-roll has anything to drop."""
        self._apply(lt.KeepPreRoll(keep))

    def _apply(self, item: lt.Input) -> None:
        """One input to the reducer, then what it decided, in order (none of it waits)."""
        self.turns, outputs = lt.step(self.turns, item)
        for output in outputs:
            self._perform(output)

    def _perform(self, output: lt.Output) -> None:
        workers = self.service.workers
        if isinstance(output, lt.SendStart):
            self._send(workers.start_turn(self.call_id, for_speech(output.listen)))
        elif isinstance(output, lt.SendCancel):
            self._send(workers.cancel(self.call_id))
        elif isinstance(output, lt.SendEndCall):
            self._send(workers.end_call(self.call_id))
        elif isinstance(output, lt.Deliver):
            self.deliver(SpeechOut(output.generation, output.output))
        else:
            self._audio(output)

    def _audio(self, output: lt.QueueAudio | lt.HoldAudio | lt.DropPreRoll) -> None:
        """Where the caller's audio goes; a listener without a stream has none."""

    def _start(self, listen: Listen, pre_rolled: int = 0) -> int:
        self._apply(lt.Start(listen, pre_rolled))
        return self.turns.generation

    def _send(self, request: Any) -> None:
        """Requests to the worker are not awaited: they run in order there, and the call's
        own queue must not wait on a recogniser being built. Failures are logged."""
        task = asyncio.ensure_future(request)
        generation = self.turns.generation
        task.add_done_callback(lambda done: self._sent(done, generation))

    def _sent(self, task: asyncio.Future, generation: int) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("call %s: speech worker: %s", self.call_id, task.exception())
            self._apply(lt.SendFailed(generation))

    async def _feed(self, generation: int, pcm: bytes) -> None:
        outputs = await self.service.workers.feed(self.call_id, pcm)
        for output in outputs:
            self._apply(lt.Heard(generation, output))

    async def cancel_turn(self) -> None:
        self._apply(lt.Cancel())

    def _end_call(self) -> None:
        self._apply(lt.EndCall())


class StreamListener(_Turns):
    """Live audio over externalMedia RTP (see the module docstring)."""

    barge_in = True

    def __init__(self, service: SpeechService, ari: AriClient, app: str, call_id: str,
                 deliver: Callable[[Any], None]) -> None:
        super().__init__(service, call_id, deliver)
        self.ari = ari
        self.app = app
        self.receiver: RtpReceiver | None = None
        self.started: dict[str, asyncio.Event] = {}  # helper leg id -> its StasisStart arrived
        self.audio: asyncio.Queue[bytes] = asyncio.Queue()
        self.recent: deque[bytes] = deque(maxlen=PRE_ROLL_PACKETS)  # heard between turns
        self.converter = RtpToFrames()
        self.feeder: asyncio.Task | None = None
        self.media_id: str | None = None
        self.snoop_id: str | None = None
        self.closed = False

    async def open(self) -> None:
        """Bridge a snoop of the caller with a fresh externalMedia leg streaming to our socket."""
        self.receiver, port = await open_receiver(self.service.rtp_host, self._on_payload)
        bridge = bridge_id_for(self.call_id)
        await self._fresh_bridge(bridge)
        snoop_id = self.snoop_id = helper_channel_id(self.call_id, "-snoop-")
        media_id = self.media_id = helper_channel_id(self.call_id, "-media-")
        self.started = {snoop_id: asyncio.Event(), media_id: asyncio.Event()}
        await self.ari.snoop(self.call_id, self.app, snoop_id=snoop_id, app_args=f"snoop-of,{self.call_id}")
        await self.ari.external_media(self.app, f"{self.service.rtp_host}:{port}", "slin16", channel_id=media_id)
        for started in self.started.values():  # else 422 on addChannel
            await asyncio.wait_for(started.wait(), HELPER_STASIS_TIMEOUT)
        await self.ari.add_channel(bridge, [snoop_id, media_id])
        self.feeder = asyncio.create_task(self._feed_loop())

    async def _fresh_bridge(self, bridge: str) -> None:
        """The call's bridge, emptied of legs a controller before us left in it (after a restart)."""
        try:
            await self.ari.create_bridge("mixing", bridge_id=bridge, name="ivr-speech")
            return
        except AriError as exc:
            if exc.status != 409:
                raise
        for member in (await self.ari.get_bridge(bridge)).channels:
            if owner_of_helper(member) == self.call_id:
                await _hang_up_quietly(self.ari, member)
            else:  # the caller, bridged by an older release: it would be deaf during prompts
                await self.ari.remove_channel(bridge, member)

    def on_event(self, event: AriEvent) -> None:
        if isinstance(event, StasisStart) and event.channel.id in self.started:
            self.started[event.channel.id].set()

    async def start_turn(self, listen: Listen) -> int:
        """A turn hears from a moment before it starts: a word begun as a prompt that may not be
        interrupted ends is not cut (the snoop carries the caller only, never the prompt)."""
        _drain(self.audio)
        for payload in self.recent:
            self.audio.put_nowait(payload)
        self.recent.clear()
        self.converter = RtpToFrames()
        return self._start(listen, self.audio.qsize())

    def _audio(self, output: lt.QueueAudio | lt.HoldAudio | lt.DropPreRoll) -> None:
        if isinstance(output, lt.QueueAudio):
            self.audio.put_nowait(output.payload)
        elif isinstance(output, lt.HoldAudio):
            self.recent.append(output.payload)
        else:
            self.recent.clear()

    def _on_payload(self, payload: bytes) -> None:
        self._apply(lt.Packet(payload))

    async def _feed_loop(self) -> None:
        """Feeds the worker in arrival order; a backlog goes over in one message."""
        while True:
            payloads = [await self.audio.get()]
            while not self.audio.empty():
                payloads.append(self.audio.get_nowait())
            generation = lt.feeding(self.turns)
            pcm = b"".join(self.converter.convert(p) for p in payloads)
            if generation is not None and pcm:
                try:
                    await self._feed(generation, pcm)
                except RuntimeError as exc:  # the worker refused (e.g. a language without a model)
                    log.warning("call %s: speech unavailable for this turn: %s", self.call_id, exc)
                    self._apply(lt.Refused(generation))
            self._apply(lt.Fed(generation, len(payloads)))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.feeder is not None:
            self.feeder.cancel()
        if self.receiver is not None:
            self.receiver.close()
        for helper in (self.snoop_id, self.media_id):
            if helper is not None:
                await _hang_up_quietly(self.ari, helper)
        try:
            await self.ari.destroy_bridge(bridge_id_for(self.call_id))
        except (NotFound, AriError):
            pass
        self._end_call()


class RecordListener(_Turns):
    """Record one utterance after the prompts, then recognise the file (see the module docstring)."""

    barge_in = False
    TAIL = b"\0\0" * 8000 * 2  # silence after the file so the endpointer sees the end

    def __init__(self, service: SpeechService, ari: AriClient, call_id: str, deliver: Callable[[Any], None]) -> None:
        super().__init__(service, call_id, deliver)
        self.ari = ari
        self.listen: Listen | None = None
        self.recording: str | None = None
        self.fetch: asyncio.Task | None = None
        self.media_id: str | None = None  # record mode has no media leg and no snoop
        self.snoop_id: str | None = None

    async def open(self) -> None:
        """Asterisk's talk detection tells the session that the caller has begun answering, so the
        noinput timer does not run out while they speak (the recording says nothing until its end)."""
        await self.ari.enable_talk_detect(self.call_id)

    async def start_turn(self, listen: Listen) -> int:
        self.listen = listen
        generation = self._start(listen)
        await self._record(generation)
        return generation

    async def _record(self, generation: int) -> None:
        assert self.listen is not None
        self.recording = f"ivr-{self.call_id}-{generation}"
        timeouts = self.listen.timeouts
        await self.ari.record(self.call_id, self.recording, format="wav", if_exists="overwrite", beep=False,
                              max_silence_seconds=max(1, math.ceil(timeouts.end_silence)),
                              max_duration_seconds=max(1, math.ceil(timeouts.max_speech)), terminate_on="none")

    def on_event(self, event: AriEvent) -> None:
        if isinstance(event, RecordingFinished) and event.recording.name == self.recording and self.active:
            self.fetch = asyncio.create_task(self._recognise(self.generation, event.recording.name))

    async def _recognise(self, generation: int, name: str) -> None:
        try:
            pcm = read_wav_8k(await self.ari.get_recording_file(name))
            await self.ari.delete_stored_recording(name)
        except (AriError, ValueError) as exc:
            log.warning("call %s: recording %s unusable: %s", self.call_id, name, exc)
            pcm = b""
        ended = False
        for start in range(0, len(pcm + self.TAIL), 8000):
            if generation != self.generation:
                return
            before = self.generation, self.active
            await self._feed(generation, (pcm + self.TAIL)[start : start + 8000])
            if before[1] and not self.active:
                ended = True
                break
        if not ended and generation == self.generation and self.listen is not None:  # no speech in it: listen again
            self._send(self.service.workers.start_turn(self.call_id, for_speech(self.listen)))
            await self._record(generation)

    async def cancel_turn(self) -> None:
        if self.active and self.recording:
            try:
                await self.ari.cancel_recording(self.recording)
            except (NotFound, AriError):
                pass
        await super().cancel_turn()

    async def close(self) -> None:
        if self.fetch is not None:
            self.fetch.cancel()
        self._end_call()


async def _hang_up_quietly(ari: AriClient, channel_id: str) -> None:
    try:
        await ari.hangup(channel_id, "normal")
    except (ChannelNotFound, NotFound):
        pass
    except AriError as exc:
        log.debug("hang-up of %s: %s", channel_id, exc)


def _drain(queue: asyncio.Queue) -> None:
    while not queue.empty():
        queue.get_nowait()
