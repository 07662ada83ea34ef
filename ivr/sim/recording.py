"""``POST /channels/{id}/record`` and the stored recordings behind ``/recordings``.

Observed (trace ``playback-record``): the file is ``<name>.wav`` at 8 kHz
mono 16-bit; a recording ended by silence keeps 200 ms of trailing silence
(leading silence is kept); RecordingFinished's durations are whole,
inexact seconds (4 for a 3.24 s file).  The arithmetic below reproduces
that: Asterisk counts elapsed whole seconds and subtracts whole seconds of
trimmed silence.
"""
from __future__ import annotations

import asyncio
import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import audio
from . import events as ev
from .errors import AriError
from .registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from .emitter import Emitter
    from .model import Channel

FORMATS = {"wav": "wav", "wav16": "wav16", "sln": "sln", "sln16": "sln16"}
CONTENT_TYPES = {"wav": "audio/wav", "wav16": "audio/wav", "sln": "audio/slin", "sln16": "audio/slin16"}
TRAILING_SILENCE = 0.2


@dataclass
class RecordingOptions:
    name: str
    format: str
    max_duration: int = 0
    max_silence: int = 0
    if_exists: str = "fail"
    beep: bool = False
    terminate_on: str = "none"

    def validate(self) -> None:
        if not self.name:
            raise AriError(400, "Recording name is required")
        if "/" in self.name or ".." in self.name:
            raise AriError(400, "Recording name is invalid")
        if self.format not in FORMATS:
            raise AriError(422, f"Unknown format {self.format}")
        if self.if_exists not in ("fail", "overwrite", "append"):
            raise AriError(400, "ifExists invalid")


class RecordingStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path | None:
        for fmt in FORMATS:
            p = self.directory / f"{name}.{fmt}"
            if p.is_file():
                return p
        return None

    def exists(self, name: str) -> bool:
        return self.path(name) is not None

    def list(self) -> list[dict[str, str]]:
        out = []
        for p in sorted(self.directory.iterdir()):
            if p.is_file() and p.suffix[1:] in FORMATS:
                out.append({"name": p.stem, "format": p.suffix[1:]})
        return out

    def get(self, name: str) -> dict[str, str]:
        p = self.path(name)
        if p is None:
            raise AriError(404, "Recording not found")
        return {"name": name, "format": p.suffix[1:]}

    def delete(self, name: str) -> None:
        p = self.path(name)
        if p is None:
            raise AriError(404, "Recording not found")
        p.unlink()

    def write(self, name: str, fmt: str, samples: array, append: bool = False) -> Path:
        path = self.directory / f"{name}.{fmt}"
        if append and path.is_file():
            samples = audio.decode(path.read_bytes(), fmt) + samples
        if fmt == "wav":
            audio.write_wav(path, samples)
        elif fmt == "wav16":
            audio.write_wav(path, audio.upsample_to_16k(samples), rate=16000)
        elif fmt == "sln":
            path.write_bytes(audio.pcm_to_bytes(samples))
        else:
            path.write_bytes(audio.pcm_to_bytes(audio.upsample_to_16k(samples)))
        return path


class LiveRecording:
    """One ``/recordings/live/{name}``: records the channel's far end until a stop, silence or the limit."""

    def __init__(self, emitter: Emitter, store: RecordingStore, channel: Channel, options: RecordingOptions,
                 finished: Callable[[LiveRecording], None]) -> None:
        self.emitter = emitter
        self.store = store
        self.channel = channel
        self.options = options
        self.finished = finished        # told once, when it is no longer live
        self.state = "queued"
        self.samples = array("h")
        self.durations: tuple[int, int, int] | None = None
        self._stop = asyncio.Event()
        self._end_state = "done"
        self._finished = False
        self._paused = False
        self._muted = False
        self.started_at: float | None = None

    @property
    def name(self) -> str:
        return self.options.name

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "format": self.options.format, "state": self.state,
                                "target_uri": f"channel:{self.channel.id}"}
        if self.durations is not None:
            body["duration"], body["talking_duration"], body["silence_duration"] = self.durations
        return body

    async def run(self) -> None:
        if self._finished:
            return
        clock = self.emitter.clock
        self.state = "recording"
        self.started_at = clock.now()
        self.emitter.emit(ev.recording_event("RecordingStarted", self.emitter.ts(), self.to_json(), self.channel.id))
        if self.options.beep:
            await clock.sleep(0.25)
        t = clock.now()
        silent_frames = voiced_frames = 0
        by_silence = False
        while not self._stop.is_set() and not self._finished:
            await clock.sleep_until(t + audio.FRAME_SECONDS)
            frame = self.channel.audio_in.frame(t) if self.channel.audio_in else None
            t += audio.FRAME_SECONDS
            if frame is not None and not self._paused:
                if self._muted:
                    frame = array("h", bytes(len(frame) * 2))
                self.samples.extend(frame)
                if audio.is_voice(frame):
                    voiced_frames += 1
                    silent_frames = 0
                else:
                    silent_frames += 1
            if self.options.max_silence and silent_frames * audio.FRAME_SECONDS >= self.options.max_silence:
                by_silence = True
                break
            if self.options.max_duration and t - self.started_at >= self.options.max_duration:
                break
        if self._finished:
            return
        trimmed = 0.0
        if by_silence:
            trailing = silent_frames * audio.FRAME_SECONDS
            trimmed = max(0.0, trailing - TRAILING_SILENCE)
            keep = len(self.samples) - int(round(trimmed * audio.RATE))
            del self.samples[max(0, keep):]
        self._finish(self._end_state, trimmed, voiced_frames * audio.FRAME_SECONDS, t - self.started_at)

    def _finish(self, state: str, trimmed: float, voiced: float, elapsed: float | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        if elapsed is None:
            now = self.emitter.clock.now()
            elapsed = now - (self.started_at or now)
        duration = max(0, int(elapsed) - int(trimmed))
        talking = min(duration, math.ceil(voiced)) if voiced else 0
        self.durations = (duration, talking, max(0, duration - talking))
        if state == "canceled":
            self.durations = None
        else:
            self.store.write(self.name, FORMATS[self.options.format], self.samples,
                             append=self.options.if_exists == "append")
        self.state = state
        self.finished(self)
        self.emitter.emit(ev.recording_event("RecordingFinished", self.emitter.ts(), self.to_json(), self.channel.id))

    # -- control from REST / caller --------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        if self.state == "queued":
            self._finish("done", 0.0, 0.0)

    def cancel(self) -> None:
        self._end_state = "canceled"
        self._stop.set()
        if self.state == "queued":
            self._finish("canceled", 0.0, 0.0)

    def pause(self, on: bool) -> None:
        self._paused = on

    def mute(self, on: bool) -> None:
        self._muted = on

    def on_dtmf(self, digit: str) -> None:
        term = self.options.terminate_on
        if term == "any" or (term in ("*", "#") and digit == term):
            self._stop.set()

    def channel_gone(self) -> None:
        """Hang-up while recording: keep what was recorded."""
        if self.state == "recording" and not self._finished:
            voiced = sum(1 for i in range(0, len(self.samples), audio.FRAME_SAMPLES)
                         if audio.is_voice(self.samples[i:i + audio.FRAME_SAMPLES])) * audio.FRAME_SECONDS
            self._finish("done", 0.0, voiced)
        elif not self._finished:
            self._finished = True
            self.finished(self)


class LiveRecordings(Registry[LiveRecording]):
    """The recordings in progress, by name: read as a mapping, started and told of the channel here."""

    def __init__(self, emitter: Emitter, store: RecordingStore) -> None:
        super().__init__()
        self.emitter = emitter
        self.store = store

    def start(self, ch: Channel, options: RecordingOptions) -> LiveRecording:
        """``POST /channels/{id}/record`` on a channel in Stasis: queued behind its earlier commands."""
        options.validate()
        if options.name in self._items:
            raise AriError(409, "Recording with the same name is already in progress")
        if self.store.exists(options.name) and options.if_exists == "fail":
            raise AriError(409, f"Recording '{options.name}' already exists and can not be overwritten")
        rec = LiveRecording(self.emitter, self.store, ch, options, self._forget)
        self._items[options.name] = rec
        assert ch.control is not None
        ch.control.submit("record", rec.run)
        return rec

    def _forget(self, rec: LiveRecording) -> None:
        self._items.pop(rec.name, None)

    def on_dtmf(self, ch: Channel, digit: str) -> None:
        """The caller pressed a key: a recording with ``terminateOn`` that key stops."""
        for rec in list(self._items.values()):
            if rec.channel is ch:
                rec.on_dtmf(digit)

    def channel_gone(self, ch: Channel) -> None:
        """The channel hangs up or leaves Stasis: its recordings keep what they have."""
        for rec in list(self._items.values()):
            if rec.channel is ch:
                rec.channel_gone()
