"""One listening turn of a call: 20 ms frames in, a barge-in signal and one engine event out.

`SpeechTurn` is pure of I/O and time: the controller feeds it frames from
its RTP socket (via `audio.RtpToFrames`), tests feed it WAV files, and every
time it reports is stream time (seconds of audio fed since `start`). Keep
one per call; it keeps the call's recogniser, which must be reused across
turns.

Per turn: VAD finds the speech start (→ `BargeIn`, so the controller can
stop the prompt) and feeds the recogniser from a short pre-roll before it;
partials that already are a complete answer shorten the silence needed to
end the turn (early endpointing); the end yields `Speech`, `NoMatch` (heard
something, nothing in the grammar) or `NoInput`.

Off the event loop: `feed` does the decoding, ~2–5 ms of CPU per 20 ms
frame. Threads do not scale here (the decoders hold the GIL; measured on
pocketsphinx), processes do: run turns in worker processes
(`ivr.speech.worker.SpeechWorkers`), each serving many calls.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ivr.engine.actions import Listen
from ivr.engine.events import Hypothesis, NoInput, NoMatch, Speech
from ivr.speech.endpoint import (
    EARLY_SILENCE,
    FRAME_BYTES,
    FRAME_SECONDS,
    Boundary,
    Detector,
    Endpointer,
    complete_answer,
)
from ivr.speech.grammar import Grammar
from ivr.speech.recognizer import Recognizer, Result


@dataclass(frozen=True, slots=True)
class BargeIn:
    """The caller started speaking at stream time `at`: stop the prompt."""

    at: float


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """The turn's engine event, and when (stream time) it became known."""

    event: Speech | NoInput | NoMatch
    at: float
    speech_start: float | None = None
    speech_end: float | None = None  # last voiced frame
    early: bool = False  # ended by early endpointing
    partial_count: int = 0


TurnOutput = BargeIn | TurnEnded


class SpeechTurn:
    """A call's speech pipeline (VAD + recogniser + endpointing), one `Listen` at a time."""

    def __init__(self, recognizer: Recognizer, early_silence: float = EARLY_SILENCE, pre_roll: float = 0.3,
                 aggressiveness: int = 2, nomatch_below: float = 0.0, detector: Detector = "webrtc") -> None:
        self.recognizer = recognizer
        self._detector = detector
        self._early_silence = early_silence
        self._aggressiveness = aggressiveness
        self._nomatch_below = nomatch_below
        self._pre_roll: deque[bytes] = deque(maxlen=max(1, round(pre_roll / FRAME_SECONDS)))
        self._listen: Listen | None = None
        self._endpointer: Endpointer | None = None
        self._pending = b""
        self._partials = 0
        self._origin = 0.0  # stream time of the first audio the recogniser got this turn

    @property
    def active(self) -> bool:
        return self._endpointer is not None and not self._endpointer.done

    def start(self, listen: Listen) -> None:
        """Begin listening for one `Listen` (call when the prompt ends, or at once for barge-in)."""
        self.recognizer.start_turn(Grammar.from_listen(listen))
        self._listen = listen
        self._endpointer = Endpointer(listen.timeouts, self._early_silence, self._aggressiveness,
                                      detector=self._detector)
        self._pre_roll.clear()
        self._pending = b""
        self._partials = 0

    def cancel(self) -> None:
        """Stop the turn without an event (DTMF answered it, the caller hung up)."""
        self.recognizer.reset()
        self._endpointer = None

    def feed(self, pcm16_8k: bytes) -> list[TurnOutput]:
        """Audio (8 kHz little-endian, any length); what happened in it."""
        if not self.active:
            return []
        self._pending += pcm16_8k
        outputs: list[TurnOutput] = []
        while len(self._pending) >= FRAME_BYTES and self.active:
            frame, self._pending = self._pending[:FRAME_BYTES], self._pending[FRAME_BYTES:]
            outputs.extend(self._frame(frame))
        return outputs

    def _frame(self, frame: bytes) -> list[TurnOutput]:
        endpointer, listen = self._endpointer, self._listen
        assert endpointer is not None and listen is not None
        was_in_speech = endpointer.in_speech
        boundary = endpointer.process(frame)
        if boundary and boundary.kind is Boundary.SPEECH_STARTED:
            self._origin = endpointer.time - (len(self._pre_roll) + 1) * FRAME_SECONDS
            for earlier in self._pre_roll:
                self._recognise(earlier)
            self._recognise(frame)
            return [BargeIn(boundary.at)]
        if was_in_speech:
            self._recognise(frame)
        else:
            self._pre_roll.append(frame)
        if boundary is None:
            return []
        if boundary.kind is Boundary.NOINPUT:
            self.recognizer.reset()
            return [TurnEnded(NoInput(), boundary.at)]
        result = self.recognizer.finish()
        return [TurnEnded(self._event(result), endpointer.time, endpointer.speech_start,
                          endpointer.last_voiced, boundary.early, self._partials)]

    def _recognise(self, frame: bytes) -> None:
        partial = self.recognizer.feed(frame)
        if partial is not None and self._endpointer is not None and self._listen is not None:
            self._partials += 1
            words_end = None if partial.words_end is None else self._origin + partial.words_end
            self._endpointer.set_complete(complete_answer(partial.text, self._listen), words_end)

    def _event(self, result: Result) -> Speech | NoMatch | NoInput:
        if not result.heard_speech:
            return NoInput()
        if result.empty or result.confidence < self._nomatch_below:
            return NoMatch()
        alternatives = [Hypothesis(text=a.text, confidence=_unit(a.confidence)) for a in result.alternatives]
        return Speech(text=result.text, confidence=_unit(result.confidence), alternatives=alternatives)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, value))
