"""The simulated caller: drive a call from Python and observe what happened.

A SimCall wraps the channel that faces the IVR app.  Test code presses
keys, speaks WAV files (the caller sends 20 ms frames all the time,
silence included), stays silent or hangs up at any moment, and inspects
which prompts were played, whether the call was continued into the
dialplan and where, which queue agent answered, and how the call ended.
"""
from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import audio
from .queues import QueueOutcome, agent_hangup, pick_up, ringing_members

if TYPE_CHECKING:  # pragma: no cover
    from .callees import CalleeScript
    from .core import Simulator
    from .model import Channel
    from .playback import Playback


@dataclass
class PromptRecord:
    """One prompt played to the caller (ARI channel or bridge playback, or dialplan Playback())."""
    media_uri: str
    playback_id: str | None
    started_at: float
    finished_at: float | None = None
    state: str | None = None
    stopped: bool = False
    # when the caller began to hear it: after a download (PlaybackStarted comes before the fetch);
    # None while nothing audible has played (a failed sound, silence/N)
    audio_from: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(frozen=True)
class DeadAir:
    """A stretch in which the caller heard no prompt and said nothing."""
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def longest_gap(covered: list[tuple[float, float]], start: float, end: float) -> DeadAir:
    """The longest part of [start, end] that none of the ``covered`` spans overlaps."""
    best = DeadAir(start, start)
    at = start
    for a, b in sorted(covered):
        if a > at and min(a, end) - at > best.seconds:
            best = DeadAir(at, min(a, end))
        at = max(at, b)
        if at >= end:
            return best
    return DeadAir(at, end) if end - at > best.seconds else best


@dataclass
class ContinueRecord:
    """Where ``POST /continue`` sent the call, with the channel variables at that time."""
    context: str
    extension: str
    priority: int
    label: str | None
    variables: dict[str, str] = field(default_factory=dict)
    at: float = 0.0


class SimCall:
    def __init__(self, sim: Simulator, channel: Channel, kind: str, exten: str) -> None:
        self.sim = sim
        self.channel = channel
        self.kind = kind                 # "inbound" | "local" | "outbound"
        self.exten = exten
        self.prompts: list[PromptRecord] = []
        self.dtmf_heard: list[str] = []
        self.continued: ContinueRecord | None = None
        self.queue: QueueOutcome | None = None
        self.moh: str | None = None
        self.moh_spans: list[list[float | None]] = []     # [started, stopped or None] per MOH start
        self.state = "ringing"
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.hangup_cause: int | None = None
        self.hungup_by: str | None = None
        self.stasis_app: str | None = None
        self.stasis_args: list[str] = []
        self.answer_after: float | None = None
        # an outbound call to a phone: the number dialled and its script (callees.py), if any;
        # a machine records from ``recording_from`` (after its beep) until the call ends
        self.callee_number: str | None = None
        self.callee: CalleeScript | None = None
        self.recording_from: float | None = None
        self.received_rtp = bytearray()   # audio the app streamed to the caller (externalMedia payloads)
        self.keyed: list[tuple[float, float]] = []  # (first key down, last key up): the caller busy keying
        self.in_stasis = asyncio.Event()
        self.ended = asyncio.Event()
        self._changed = asyncio.Event()

    # -- identity --------------------------------------------------------------
    @property
    def channel_id(self) -> str:
        return self.channel.id

    @property
    def ani(self) -> str:
        return self.channel.caller.number

    def variable(self, name: str) -> str | None:
        return self.sim.variables.get(self.channel, name)

    # -- acting as the caller ------------------------------------------------------
    async def press(self, digits: str, interval: float = 0.35, duration_ms: int = 100) -> None:
        """Press keys: one ChannelDtmfReceived per key when the key is released."""
        began = self.sim.clock.now()
        try:
            await self._press(digits, interval, duration_ms)
        finally:
            self.keyed.append((began, self.sim.clock.now()))

    async def _press(self, digits: str, interval: float, duration_ms: int) -> None:
        for i, digit in enumerate(digits):
            if self.ended.is_set():
                return
            await self.sim.clock.sleep(duration_ms / 1000)
            self.sim.dtmf_from_far_end(self.channel, digit, duration_ms)
            if i + 1 < len(digits):
                await self.sim.clock.sleep(max(0.0, interval - duration_ms / 1000))

    async def say(self, speech: Path | str | array, wait: bool = True) -> float:
        """Stream audio (a WAV path or 8 kHz samples) into the call; returns its length."""
        samples = speech if isinstance(speech, array) else audio.load_wav_8k(Path(speech))
        audio_in = self.channel.audio_in
        if audio_in is None or self.ended.is_set():
            return 0.0
        seg = audio_in.schedule(samples, self.sim.clock.now())
        if wait:
            await self._sleep_until(seg.end)
        return seg.end - seg.start

    async def silence(self, seconds: float) -> None:
        """Keep the line open sending silent frames."""
        await self._sleep_until(self.sim.clock.now() + seconds)

    async def hangup(self, cause: int = 16) -> None:
        if self.ended.is_set():
            return
        if self.channel.audio_in is not None:
            self.channel.audio_in.cut(self.sim.clock.now())
        self.sim.hangup_by_far_end(self.channel, cause)
        await asyncio.sleep(0)

    def agent_answer(self, interface: str) -> bool:
        """A queue member ringing for this caller picks up now (False: not ringing for them)."""
        return pick_up(self.channel, interface)

    def ringing_agents(self) -> list[str]:
        """Member interfaces whose phones ring for this queued caller."""
        return ringing_members(self.channel)

    def agent_hangup(self) -> None:
        """The queue agent talking to this caller hangs up."""
        agent_hangup(self.channel)

    async def _sleep_until(self, t: float) -> None:
        sleeper = asyncio.ensure_future(self.sim.clock.sleep_until(t))
        ended = asyncio.ensure_future(self.ended.wait())
        await asyncio.wait({sleeper, ended}, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
        ended.cancel()

    # -- waiting for observations -------------------------------------------
    async def wait_until(self, predicate: Callable[[SimCall], bool], timeout: float = 10.0) -> None:
        """Wait (simulated seconds) until ``predicate(call)`` holds."""
        deadline = self.sim.clock.now() + timeout
        while not predicate(self):
            remaining = deadline - self.sim.clock.now()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s on {self.channel.name}")
            self._changed.clear()
            await self.sim.clock.wait_for(self._changed, remaining)

    async def wait_in_stasis(self, timeout: float = 10.0) -> None:
        await self.wait_until(lambda c: c.in_stasis.is_set(), timeout)

    async def wait_ended(self, timeout: float = 10.0) -> None:
        await self.wait_until(lambda c: c.ended.is_set(), timeout)

    async def wait_prompt(self, count: int = 1, timeout: float = 10.0) -> PromptRecord:
        """Wait until ``count`` prompts have started; returns the latest."""
        await self.wait_until(lambda c: len(c.prompts) >= count, timeout)
        return self.prompts[count - 1]

    async def wait_prompt_finished(self, count: int = 1, timeout: float = 60.0) -> PromptRecord:
        await self.wait_until(lambda c: len(c.prompts) >= count and c.prompts[count - 1].finished_at is not None,
                              timeout)
        return self.prompts[count - 1]

    async def wait_continued(self, timeout: float = 10.0) -> ContinueRecord:
        await self.wait_until(lambda c: c.continued is not None, timeout)
        assert self.continued is not None
        return self.continued

    # -- notifications from the simulator ---------------------------------------
    # What the parts of the simulator tell the call as it happens; each wakes
    # wait_until() so a test sees it at once, not at its timeout.
    def _notify(self) -> None:
        self._changed.set()

    def on_continued(self, record: ContinueRecord) -> None:
        """``POST /continue`` sent the call on into the dialplan."""
        self.continued = record
        self._notify()

    def on_dtmf_heard(self, digit: str) -> None:
        """A key sent towards the caller (``POST /dtmf``, or the dialplan's SendDTMF())."""
        self.dtmf_heard.append(digit)

    def on_answer(self) -> None:
        if self.state == "ringing":
            self.state = "up"
        if self.answered_at is None:
            self.answered_at = self.sim.clock.now()
        self._notify()

    def on_stasis_start(self, app: str, args: list[str]) -> None:
        self.stasis_app, self.stasis_args = app, list(args)
        self.state = "up"
        self.in_stasis.set()
        self._notify()

    def on_prompt_started(self, pb: Playback) -> None:
        self.prompts.append(PromptRecord(",".join(pb.media), pb.id, self.sim.clock.now()))
        self._notify()

    def on_prompt_finished(self, pb: Playback) -> None:
        for rec in self.prompts:
            if rec.playback_id == pb.id and rec.finished_at is None:
                rec.finished_at, rec.state, rec.stopped = self.sim.clock.now(), pb.state, pb.stopped
        self._notify()

    def on_prompt_audio(self, pb: Playback) -> None:
        for rec in self.prompts:
            if rec.playback_id == pb.id and rec.finished_at is None and rec.audio_from is None:
                rec.audio_from = self.sim.clock.now()

    def on_dialplan_prompt(self, uri: str, start: float, end: float, audible: bool) -> None:
        self.prompts.append(PromptRecord(uri, None, start, end, "done", audio_from=start if audible else None))
        self._notify()

    def on_moh(self, moh_class: str | None) -> None:
        """MOH started (a class) or stopped (None) on the caller's channel."""
        self.moh = moh_class
        playing = bool(self.moh_spans) and self.moh_spans[-1][1] is None
        if moh_class is not None and not playing:
            self.moh_spans.append([self.sim.clock.now(), None])
        elif moh_class is None and playing:
            self.moh_spans[-1][1] = self.sim.clock.now()

    def on_hangup(self, cause: int, by: str) -> None:
        self.state = "hungup"
        self.ended_at = self.sim.clock.now()
        self.hangup_cause, self.hungup_by = cause, by
        for rec in self.prompts:
            if rec.finished_at is None:
                rec.finished_at, rec.state = self.sim.clock.now(), rec.state or "failed"
        self.ended.set()
        self._notify()

    # -- reporting -----------------------------------------------------------------
    def heard_by_machine(self) -> list[dict[str, Any]]:
        """What an answering machine recorded of the prompts: each prompt whose audio overlapped the
        recording (after the beep, until the call ended), with the part recorded.  A prompt played
        during the greeting is not on the tape, as on a real machine; one still playing counts up to now."""
        if self.recording_from is None:
            return []
        now = self.sim.clock.now()
        end = self.ended_at if self.ended_at is not None else now
        out = []
        for p in self.prompts:
            if p.audio_from is None:
                continue
            a, b = max(p.audio_from, self.recording_from), min(p.finished_at or now, end)
            if b > a:
                out.append({"media_uri": p.media_uri, "playback_id": p.playback_id,
                            "from": a, "to": b, "whole": a == p.audio_from and p.finished_at == b})
        return out

    def callee_summary(self) -> dict[str, Any] | None:
        if self.callee_number is None:
            return None
        return {"number": self.callee_number,
                "script": None if self.callee is None else self.callee.to_json(),
                "recording_from": self.recording_from, "heard": self.heard_by_machine(),
                "amd_status": self.variable("AMDSTATUS"), "amd_cause": self.variable("AMDCAUSE")}

    def longest_dead_air(self, start: float | None = None) -> DeadAir:
        """The longest time the caller heard no prompt audio and was not speaking.

        From the answer (or ``start``, simulated seconds) to the end of the
        call, or to its hand-off to a queue (then ringing or MOH is the
        queue's), or to now while the call goes on.  Heard: channel
        playbacks on the caller, bridge playbacks reaching it and dialplan
        Playback() from when their audio began, MOH from when it started;
        the caller's own turn: their voiced 20 ms frames and the time they spend keying.  A dialplan Playback()
        still playing is not known yet (recorded when it ends).
        """
        now = self.sim.clock.now()
        begin = start if start is not None else (self.answered_at if self.answered_at is not None else now)
        ends = [t for t in (self.ended_at, self.queue.entered_at if self.queue else None) if t is not None]
        end = min(ends) if ends else now
        heard = [(p.audio_from, p.finished_at if p.finished_at is not None else now)
                 for p in self.prompts if p.audio_from is not None]
        heard += [(a, b if b is not None else now) for a, b in self.moh_spans if a is not None]
        spoken = self.channel.audio_in.voiced if self.channel.audio_in is not None else []
        return longest_gap(heard + spoken + self.keyed, begin, max(begin, end))

    def summary(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel.id, "channel_name": self.channel.name, "kind": self.kind,
            "ani": self.ani, "exten": self.exten, "state": self.state,
            "stasis_app": self.stasis_app, "stasis_args": self.stasis_args,
            "prompts": [{"media_uri": p.media_uri, "playback_id": p.playback_id, "started_at": p.started_at,
                         "finished_at": p.finished_at, "state": p.state, "stopped": p.stopped}
                        for p in self.prompts],
            "dtmf_heard": "".join(self.dtmf_heard),
            "continued": None if self.continued is None else {
                "context": self.continued.context, "extension": self.continued.extension,
                "priority": self.continued.priority, "label": self.continued.label,
                "variables": self.continued.variables},
            "queue": None if self.queue is None else {
                "queue": self.queue.queue, "member_interface": self.queue.member_interface,
                "member_name": self.queue.member_name, "agent_channel": self.queue.agent_channel,
                "status": self.queue.status},
            "hangup_cause": self.hangup_cause, "hungup_by": self.hungup_by,
            "callee": self.callee_summary(),
        }
