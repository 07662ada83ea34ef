"""When a turn's speech starts and ends, in stream time, from 20 ms frames of 8 kHz audio.

Voice activity comes from WebRTC's VAD (`webrtcvad-wheels`: binary wheels,
8 kHz native, ~10 µs a frame). pocketsphinx's Endpointer was the other
candidate; its fixed window made it wait ~0.5 s after speech before
reporting the end, where a turn needs its own end_silence and a much
shorter silence once the words already match the grammar.

Timing rules of one turn (all in seconds of audio fed, never wall time):
- noinput: no speech started within `timeouts.noinput`;
- speech starts after `start_frames` voiced frames out of the last
  `start_window` (a click is not a caller); its time is the first of them;
- speech ends after `timeouts.end_silence` of unvoiced frames, or after only
  `early_silence` when the recogniser's partial already is a complete,
  unambiguous answer (early endpointing; see `set_complete`). When the
  recogniser says where the answer's words end, that silence counts from
  there, once the VAD hears no voice: the VAD keeps calling a word's quiet
  tail speech for 100-200 ms (flite phrases), which cost every turn that much.
  Counted from the words, `ivr bench turns` went from p95 536 to 483 ms with
  the same choice accuracy (`ivr bench asr`: 87.8% clean against 88.0%).
  Only when the voice stopped within `VAD_TAIL` of the words: otherwise the
  caller went on talking past a complete-looking answer. The early end
  listens with WebRTC's strictest mode (3), which lets a word's fading tail
  go 100-200 ms sooner than mode 2 does; the start of speech and the full
  end_silence keep mode 2, so quiet callers and pauses inside a number are
  not cut. Counted from the words, the strict VAD must also have heard no
  voice for `QUIET`: a partial's word end is only as fresh as the partial,
  and a stale one ("duplicate" during "too ex-p-ensive") ended turns mid-word
  (2 in 20 trials of that phrase through the simulator's audio path before,
  none after). With early_silence 0.12 s, speech end -> turn end offline went
  from p95 393/494 ms (choices/yes-no, mode 2, 0.25 s) to 233/245 ms, with
  no answer cut short (`ivr bench turns` has the end-to-end figures);
- `timeouts.max_speech` of speech ends the turn regardless.

WebRTC's VAD calls steady line noise speech (every frame of white noise at
-30 dBFS, and of the gaps in 20 dB-SNR speech): a frame also needs a
spectral flatness below `NOISE_FLATNESS` to count as voiced. Measured on
flite speech: voiced frames have median flatness 0.01-0.02 clean and
0.13-0.5 at 20 dB SNR, white noise 0.48-0.64 (p10-p90).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import numpy as np
import webrtcvad

from ivr.digits import parse_digits
from ivr.engine.actions import Listen, Timeouts
from ivr.engine.matching import match, normalise

FRAME_SECONDS = 0.02
FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit mono
EARLY_SILENCE = 0.12  # silence after a complete answer that ends the turn
QUIET = 0.1  # and the strict VAD must have heard no voice (a stop inside a word is shorter)
VAD_TAIL = 0.2  # the VAD hears a word's quiet tail as speech this long after the word (flite: 0.1-0.2 s)
NOISE_FLATNESS = 0.45
_WINDOW = np.hanning(FRAME_BYTES // 2)


def spectral_flatness(frame: bytes) -> float:
    """Geometric over arithmetic mean of the power spectrum in 100-3400 Hz (the telephone
    band: resamplers on the way empty the top bins): ~0 for a voice, ~0.6 for hiss."""
    power = np.abs(np.fft.rfft(np.frombuffer(frame, dtype="<i2") * _WINDOW))[2:68] ** 2 + 1e-9
    return float(np.exp(np.mean(np.log(power))) / np.mean(power))


Detector = Literal["webrtc", "silero", "both"]
SILERO_ON = 0.5  # silero's speech probability that makes a frame voiced
SILERO_HOLD = 0.35  # and once in speech, that keeps it voiced (hysteresis: a word's tail)


class Voice:
    """Whether a 20 ms frame is voiced, by the chosen detector.

    `webrtc`: WebRTC's VAD and the spectral-flatness check (see the module
    docstring); `silero`: silero's neural VAD (`ivr.speech.silero`), which
    tells speech from steady noise, breathing and music by itself; `both`:
    voiced only when both say so.
    """

    def __init__(self, detector: Detector = "webrtc", aggressiveness: int = 2) -> None:
        self._webrtc = webrtcvad.Vad(aggressiveness) if detector != "silero" else None
        self._silero = None
        if detector != "webrtc":
            from ivr.speech.silero import SileroStream

            self._silero = SileroStream()
        self._was = False

    def voiced(self, frame: bytes) -> bool:
        heard = True
        if self._silero is not None:
            probability = self._silero.feed(frame)
            heard = probability >= (SILERO_HOLD if self._was else SILERO_ON)
        if self._webrtc is not None:
            heard = heard and self._webrtc.is_speech(frame, 8000) and spectral_flatness(frame) < NOISE_FLATNESS
        self._was = heard
        return heard


def default_detector() -> Detector:
    """silero where its model is installed (with faster-whisper), else webrtc.

    Measured (`ivr bench asr`, section endpoint: 60 speech clips per line
    condition and 16 clips with no words): webrtc started a turn on every
    breathing and hold-music clip, and clipped 7% of speech ends at 10 dB SNR
    while waiting 1.4 s (p95 2.3 s) past them; silero started on none of them,
    clipped none, and ended 0.89 s after the speech (end_silence 0.8 s), at
    the cost of hearing a start 50 ms later (the pre-roll keeps those words).
    """
    from importlib.util import find_spec

    return "silero" if find_spec("faster_whisper") and find_spec("onnxruntime") else "webrtc"


def detector_for(setting: str) -> Detector:
    """The detector a `voice_detector` setting means; ValueError for one that is not installed."""
    if setting == "auto":
        return default_detector()
    if setting != "webrtc" and default_detector() != "silero":
        raise ValueError(f"voice_detector {setting!r} needs silero (faster-whisper and onnxruntime); see the README")
    return setting  # type: ignore[return-value]


class Boundary(Enum):
    SPEECH_STARTED = "speech_started"
    SPEECH_ENDED = "speech_ended"
    NOINPUT = "noinput"
    MAX_SPEECH = "max_speech"


@dataclass(frozen=True, slots=True)
class EndpointEvent:
    kind: Boundary
    at: float  # stream time of the boundary itself (speech start, last voiced frame, …)
    early: bool = False  # ended by early endpointing rather than the full end_silence


class Endpointer:
    """Per-turn speech boundaries; feed 20 ms frames with `process`."""

    def __init__(self, timeouts: Timeouts, early_silence: float = EARLY_SILENCE, aggressiveness: int = 2,
                 start_frames: int = 4, start_window: int = 6, detector: Detector = "webrtc") -> None:
        self._voice = Voice(detector, aggressiveness)
        self._strict_vad = webrtcvad.Vad(3)  # for the early end only (see the module docstring)
        self._timeouts = timeouts
        self._early = min(early_silence, timeouts.end_silence)
        self._can_end_early = self._early < timeouts.end_silence
        self._start_frames = start_frames
        self._recent: deque[bool] = deque(maxlen=start_window)
        self._frames = 0
        self.time = 0.0  # stream time after the last frame processed
        self.speech_start: float | None = None
        self.last_voiced: float | None = None
        self._last_strict: float | None = None  # last frame the strict VAD calls voiced
        self._complete = False
        self._words_end: float | None = None
        self.done = False

    @property
    def in_speech(self) -> bool:
        return self.speech_start is not None and not self.done

    def set_complete(self, complete: bool, words_end: float | None = None) -> None:
        """The recogniser's partial is (or no longer is) a complete match of the turn;
        `words_end` (stream time) is where its words end, when the recogniser knows."""
        self._complete = complete
        self._words_end = words_end if complete else None

    def process(self, frame: bytes) -> EndpointEvent | None:
        """One 20 ms frame (320 bytes); the boundary it reveals, if any."""
        if self.done:
            return None
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"frames must be {FRAME_BYTES} bytes (20 ms at 8 kHz), got {len(frame)}")
        start = self.time
        self._frames += 1
        self.time = round(self._frames * FRAME_SECONDS, 3)
        voiced = self._voice.voiced(frame)
        if self.speech_start is None:
            return self._before_speech(start, voiced)
        # The early end's own voice test, whatever the detector: silero drops to silence in the short gap
        # between words ("cancel | my policy"), and a complete-looking first word then ended the turn.
        strict = self._can_end_early and self._strict_vad.is_speech(frame, 8000) and (
            spectral_flatness(frame) < NOISE_FLATNESS)
        return self._during_speech(voiced, strict)

    def _before_speech(self, start: float, voiced: bool) -> EndpointEvent | None:
        self._recent.append(voiced)
        if sum(self._recent) >= self._start_frames:
            first = len(self._recent) - 1 - list(self._recent).index(True)
            self.speech_start = round(start - first * FRAME_SECONDS, 3)
            self.last_voiced = self._last_strict = self.time
            return EndpointEvent(Boundary.SPEECH_STARTED, self.speech_start)
        if self.time >= self._timeouts.noinput - 1e-9:
            self.done = True
            return EndpointEvent(Boundary.NOINPUT, self.time)
        return None

    def _during_speech(self, voiced: bool, strict: bool) -> EndpointEvent | None:
        assert self.speech_start is not None and self.last_voiced is not None and self._last_strict is not None
        if voiced:
            self.last_voiced = self.time
        if strict:
            self._last_strict = self.time
        if self.time - self.speech_start >= self._timeouts.max_speech - 1e-9:
            self.done = True
            return EndpointEvent(Boundary.MAX_SPEECH, self.time)
        if self._can_end_early and self._complete and (
                self._words_over(strict) or self.time - self._last_strict >= self._early - 1e-9):
            self.done = True
            end = self._last_strict if self._words_end is None else min(self._words_end, self._last_strict)
            return EndpointEvent(Boundary.SPEECH_ENDED, round(end, 3), early=True)
        if self.time - self.last_voiced >= self._timeouts.end_silence - 1e-9:
            self.done = True
            return EndpointEvent(Boundary.SPEECH_ENDED, round(self.last_voiced, 3))
        return None

    def _words_over(self, voiced: bool) -> bool:
        """A complete answer whose words ended `early_silence` ago, the voice gone since, and
        no more voice after them than a word's tail: speech the recogniser absorbed as
        noise after a complete-looking answer ("mandarin" for "the weather is...") is not an end."""
        words_end, last_voiced = self._words_end, self._last_strict
        assert last_voiced is not None  # in speech
        return (words_end is not None and not voiced and self.time - words_end >= self._early - 1e-9
                and self.time - last_voiced >= QUIET - 1e-9 and last_voiced <= words_end + VAD_TAIL)


def complete_answer(partial: str, listen: Listen) -> bool:
    """Whether a partial already is a whole, unambiguous answer to the turn.

    A phrase of the turn that no phrase of another outcome extends ("payment"
    is not complete while "payment plan" means something else; "no" is, though
    "no thanks" is also allowed: both mean no), or a digit string of the turn's
    maximum length. Anything else waits for the full end_silence.
    """
    heard = normalise(partial)
    if not heard:
        return False
    if listen.mode == "digits":
        digits = parse_digits(heard)
        if digits is not None:
            return len(digits) >= max(listen.max_digits, 1)
    table = {normalise(phrase): outcome for phrase, outcome in listen.grammar.items()}
    outcome = match(heard, listen.grammar)
    if heard not in table or outcome is None:
        return False
    return all(other == outcome for phrase, other in table.items() if phrase != heard and _extends(phrase, heard))


def _extends(phrase: str, heard: str) -> bool:
    """`phrase` goes on where `heard` stops (by words; by characters in Chinese)."""
    return phrase.startswith(heard + " ") or (not heard.isascii() and phrase.startswith(heard))
