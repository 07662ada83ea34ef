"""``AMD()``: app_amd's answering machine detection, run on the channel's 20 ms frames.

Nothing here is scripted: the decision comes from the audio the far end
sends (``Channel.audio_in``), analysed frame by frame as
``isAnsweringMachine()`` in apps/app_amd.c does, with the same defaults,
amd.conf keys, argument order and AMDSTATUS/AMDCAUSE strings.  A scripted
callee (callees.py) therefore gets its verdict from its greeting: a human's
short "hello" then silence gives ``HUMAN-800-800``, a machine's long greeting
``LONGGREETING-1500-1500``, a phone that answers and says nothing
``MACHINE`` / ``INITIALSILENCE-2500-2500`` (app_amd's verdict on silence).

Two sources of truth:

* apps/app_amd.c: the algorithm, the defaults (``dflt*``), ``load_config()``
  (the amd.conf keys) and ``load_module()``: without amd.conf the module
  declines to load ("Configuration file amd.conf missing"), so there is no
  AMD application at all.  The simulator copies that: ``SimulatorConfig.amd``
  is None unless an amd.conf was loaded (or a test sets one), and AMD() is
  then an unknown application (the channel is hung up).
* main/dsp.c ``__ast_dsp_silence_noise()``: a frame is silent when the mean
  of its absolute samples is below the threshold; ``ast_dsp_silence()``
  reports the silence accumulated so far (0 on a voiced frame).
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from . import audio

if TYPE_CHECKING:  # pragma: no cover
    from .clock import Clock
    from .model import Channel

FRAME_MS = 20

# amd.conf [general] keys (app_amd.c load_config) -> AmdSettings field
CONF_KEYS = {
    "initial_silence": "initial_silence", "greeting": "greeting",
    "after_greeting_silence": "after_greeting_silence", "silence_threshold": "silence_threshold",
    "total_analysis_time": "total_analysis_time", "min_word_length": "minimum_word_length",
    "between_words_silence": "between_words_silence", "maximum_number_of_words": "maximum_number_of_words",
    "maximum_word_length": "maximum_word_length",
}


@dataclass(frozen=True)
class AmdSettings:
    """app_amd.c's ``dflt*`` values (milliseconds, words, mean |sample|)."""
    initial_silence: int = 2500
    greeting: int = 1500
    after_greeting_silence: int = 800
    total_analysis_time: int = 5000
    minimum_word_length: int = 100
    between_words_silence: int = 50
    maximum_number_of_words: int = 2
    silence_threshold: int = 256        # dsp.conf silencethreshold default (THRESHOLD_SILENCE)
    maximum_word_length: int = 5000

    def with_args(self, data: str) -> AmdSettings:
        """``AMD(initialSilence,greeting,afterGreetingSilence,totalAnalysisTime,minimumWordLength,
        betweenWordsSilence,maximumNumberOfWords,silenceThreshold,maximumWordLength,audioFile)``:
        each non-empty argument overrides (atoi, as app_amd does).  ``audioFile`` is refused: the
        simulator does not play a file during the analysis."""
        parts = [p.strip() for p in data.split(",")] if data.strip() else []
        if len(parts) > 9 and parts[9]:
            raise ValueError("AMD(): the audioFile argument is not simulated")
        order = ["initial_silence", "greeting", "after_greeting_silence", "total_analysis_time",
                 "minimum_word_length", "between_words_silence", "maximum_number_of_words",
                 "silence_threshold", "maximum_word_length"]
        changes = {name: atoi(value) for name, value in zip(order, parts) if value}
        return replace(self, **changes)


def atoi(text: str) -> int:
    """C ``atoi``: leading digits (with a sign), 0 when there are none."""
    digits = ""
    for i, ch in enumerate(text.strip()):
        if ch.isdigit() or (i == 0 and ch in "+-"):
            digits += ch
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


@dataclass(frozen=True)
class AmdResult:
    status: str     # HUMAN | MACHINE | NOTSURE | HANGUP
    cause: str      # e.g. HUMAN-800-800, LONGGREETING-1500-1500, INITIALSILENCE-2500-2500, TOOLONG-5000


class AmdAnalysis:
    """The state of ``isAnsweringMachine()``'s loop; ``feed()`` one 20 ms voice frame at a time."""

    def __init__(self, s: AmdSettings) -> None:
        self.s = s
        self.in_initial_silence = True
        self.in_greeting = False
        self.voice_duration = 0
        self.silence_duration = 0
        self.total_time = 0
        self.words = 0
        self.in_word = True          # currentState starts as STATE_IN_WORD
        self.consecutive_voice = 0
        self.dsp_silence = 0          # the DSP's running total of silence (dsp->totalsilence)

    def feed(self, frame: array) -> AmdResult | None:
        """One AST_FRAME_VOICE frame of FRAME_MS: the verdict, or None to read on."""
        self.total_time += FRAME_MS
        if self.total_time >= self.s.total_analysis_time:
            return AmdResult("NOTSURE", f"TOOLONG-{self.total_time}")
        silent = audio.mean_abs(frame) < self.s.silence_threshold
        self.dsp_silence = self.dsp_silence + FRAME_MS if silent else 0
        if self.dsp_silence > 0:
            return self._silence()
        return self._voice()

    def _silence(self) -> AmdResult | None:
        s = self.s
        self.silence_duration = self.dsp_silence
        if self.silence_duration >= s.between_words_silence:
            self.in_word = False
            self.consecutive_voice = 0
        if self.in_initial_silence and self.silence_duration >= s.initial_silence:
            return AmdResult("MACHINE", f"INITIALSILENCE-{self.silence_duration}-{s.initial_silence}")
        if self.silence_duration >= s.after_greeting_silence and self.in_greeting:
            return AmdResult("HUMAN", f"HUMAN-{self.silence_duration}-{s.after_greeting_silence}")
        return None

    def _voice(self) -> AmdResult | None:
        s = self.s
        self.consecutive_voice += FRAME_MS
        self.voice_duration += FRAME_MS
        if self.consecutive_voice >= s.minimum_word_length and not self.in_word:
            self.words += 1
            self.in_word = True
        if self.consecutive_voice >= s.maximum_word_length:
            return AmdResult("MACHINE", f"MAXWORDLENGTH-{self.consecutive_voice}")
        if self.words > s.maximum_number_of_words:
            return AmdResult("MACHINE", f"MAXWORDS-{self.words}-{s.maximum_number_of_words}")
        if self.in_greeting and self.voice_duration >= s.greeting:
            return AmdResult("MACHINE", f"LONGGREETING-{self.voice_duration}-{s.greeting}")
        if self.voice_duration >= s.minimum_word_length:
            self.silence_duration = 0
        if self.consecutive_voice >= s.minimum_word_length and not self.in_greeting:
            self.in_initial_silence = False
            self.in_greeting = True
        return None


async def analyse(clock: Clock, ch: Channel, settings: AmdSettings) -> AmdResult:
    """Read the channel's frames in simulated time until app_amd decides.

    A channel whose far end hangs up mid-analysis is cancelled by the hang-up
    (the caller of this sees the CancelledError), as ``ast_read()`` returning
    NULL ends app_amd with HANGUP on a channel that is then gone.  A channel
    sending no frames (``audio_in`` None or not sending) reaches the
    real-time check: NOTSURE, ``NOAUDIODATA-0`` after total_analysis_time.
    """
    analysis = AmdAnalysis(settings)
    start = t = clock.now()
    frames = 0
    while True:
        await clock.sleep_until(t + FRAME_MS / 1000)
        frame = ch.audio_in.frame(t) if ch.audio_in is not None else None
        t += FRAME_MS / 1000
        if frame is None:
            if (t - start) * 1000 > settings.total_analysis_time:
                return AmdResult("NOTSURE", f"NOAUDIODATA-{analysis.total_time}" if frames == 0
                                 else f"TOOLONG-{analysis.total_time}")
            continue
        frames += 1
        result = analysis.feed(frame)
        if result is not None:
            return result
