"""What a channel's far end is sending into the call, on a timeline.

The simulated caller (or the Local ;2 half's dialplan) schedules audio
segments; anything between segments is silence.  Consumers that need audio
(recording, talk detection, externalMedia RTP) read 20 ms frames by
simulated time.  Real phones send frames all the time (silence included);
a Local channel in ``Wait()`` sends none, which ``sending`` models.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass

from .audio import FRAME_SAMPLES, RATE, is_voice


@dataclass
class Segment:
    start: float
    samples: array

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / RATE


class AudioIn:
    def __init__(self, sending: bool = True) -> None:
        self.segments: list[Segment] = []
        self.sending = sending
        self.silent_from: float | None = None   # sim time since which no frames flow
        # when the far end was voiced (20 ms frames above the voice threshold), kept for the
        # whole call while segments are pruned: what SimCall's dead-air measure needs
        self.voiced: list[tuple[float, float]] = []

    def schedule(self, samples: array, start: float) -> Segment:
        """Queue audio to begin at ``start`` or after what is already scheduled."""
        if self.segments:
            start = max(start, self.segments[-1].end)
        seg = Segment(start, samples)
        self.segments.append(seg)
        self._note_voiced(seg)
        return seg

    def _note_voiced(self, seg: Segment) -> None:
        for i in range(0, len(seg.samples), FRAME_SAMPLES):
            frame = seg.samples[i:i + FRAME_SAMPLES]
            if not is_voice(frame):
                continue
            t0, t1 = seg.start + i / RATE, seg.start + (i + len(frame)) / RATE
            if self.voiced and self.voiced[-1][1] >= t0 - 1e-9:
                self.voiced[-1] = (self.voiced[-1][0], t1)
            else:
                self.voiced.append((t0, t1))

    def cut(self, at: float) -> None:
        """Stop everything scheduled after ``at`` (hang-up, caller interrupted)."""
        kept: list[Segment] = []
        for seg in self.segments:
            if seg.start >= at:
                continue
            if seg.end > at:
                seg = Segment(seg.start, seg.samples[: int((at - seg.start) * RATE)])
            kept.append(seg)
        self.segments = kept
        self.voiced = [(a, min(b, at)) for a, b in self.voiced if a < at]

    def frame(self, t: float) -> array | None:
        """160 samples covering [t, t+20ms), or None when no frames flow."""
        if not self.sending:
            return None
        out = array("h", bytes(2 * FRAME_SAMPLES))
        end = t + FRAME_SAMPLES / RATE
        for seg in self.segments:
            if seg.end <= t or seg.start >= end:
                continue
            first = int(round((t - seg.start) * RATE))
            lo, hi = max(0, first), min(len(seg.samples), first + FRAME_SAMPLES)
            if lo < hi:
                out[lo - first:hi - first] = seg.samples[lo:hi]
        self._prune(t)
        return out

    def _prune(self, t: float) -> None:
        while self.segments and self.segments[0].end < t - 1.0:
            self.segments.pop(0)

    def busy_until(self) -> float:
        return self.segments[-1].end if self.segments else 0.0
