"""``TALK_DETECT(set)``: ChannelTalkingStarted / ChannelTalkingFinished.

Observed: Started about 60 ms after the caller's speech starts (two voiced
20 ms frames), Finished once silence has lasted the threshold (2500 ms by
default, the value set on the variable otherwise), with ``duration`` the
talking time in ms.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from . import audio
from . import events as ev

if TYPE_CHECKING:  # pragma: no cover
    from .emitter import Emitter
    from .model import Channel

FRAMES_TO_START = 2


class TalkDetector:
    def __init__(self, emitter: Emitter, channel: Channel, silence_ms: int, threshold: int) -> None:
        self.emitter = emitter
        self.channel = channel
        self.silence_ms = silence_ms
        self.threshold = threshold
        self.task: asyncio.Task[Any] | None = None
        self.talking = False

    def start(self) -> None:
        self.task = self.channel.spawn(self._run(), "talkdetect")

    def stop(self) -> None:
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    async def _run(self) -> None:
        clock = self.emitter.clock
        t = clock.now()
        voiced_run = silent_run = 0
        started = last_voice_end = 0.0
        while True:
            await clock.sleep_until(t + audio.FRAME_SECONDS)
            frame = self.channel.audio_in.frame(t) if self.channel.audio_in else None
            t += audio.FRAME_SECONDS
            if frame is None:
                continue
            voiced = audio.mean_abs(frame) > self.threshold
            if not self.talking:
                voiced_run = voiced_run + 1 if voiced else 0
                if voiced_run >= FRAMES_TO_START:
                    self.talking, started, last_voice_end, silent_run = True, t, t, 0
                    self.emitter.emit(ev.channel_event("ChannelTalkingStarted", self.emitter.ts(), self.channel))
            elif voiced:
                silent_run, last_voice_end = 0, t
            else:
                silent_run += 1
                if silent_run * audio.FRAME_SECONDS * 1000 >= self.silence_ms:
                    self.talking, voiced_run = False, 0
                    duration = int((last_voice_end - started) * 1000)
                    self.emitter.emit(ev.talking_finished(self.emitter.ts(), self.channel, duration))
