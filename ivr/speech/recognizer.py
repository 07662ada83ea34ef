"""The recogniser interface the call pipeline drives, whatever engine is behind it.

One recogniser per call, reused across turns: recognisers started fresh for
each utterance mishear short first words ("yes", "no"), measured on
pocketsphinx, and vosk spends ~0.8 s on a new recogniser's first chunk.
Audio in is 8 kHz mono signed 16-bit little-endian PCM, the call's own rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ivr.speech.grammar import Grammar

__all__ = ["Alternative", "Grammar", "Partial", "Recognizer", "Result"]


@dataclass(frozen=True, slots=True)
class Partial:
    """The best guess so far, while the caller is still speaking.

    `words_end`: where the guess's last word ends, in seconds of this
    utterance's audio, when the engine's segmentation tells (pocketsphinx);
    the end of turn can then count silence from the words themselves rather
    than from the voice-activity detector, which keeps calling a word's quiet
    tail speech for another 100-200 ms.
    """

    text: str
    words_end: float | None = None


@dataclass(frozen=True, slots=True)
class Alternative:
    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Result:
    """A final result; empty `text` means nothing in the grammar was heard.

    `confidence` is the probability that `text` is what the caller said, calibrated
    on held-out voices (`ivr.speech.confidence`), since the flows' thresholds read
    it as one: reject below `reject_below`, confirm a choice below `confirm_below`.
    A recogniser with such a model also keeps the features of its last result in
    `last_features` (a dict, or None), which `ivr bench asr --calibrate` refits from.
    `heard_speech` False: the audio held no speech at all (noise, breathing, music),
    which the turn reports as a noinput rather than a nomatch.
    """

    text: str
    confidence: float
    alternatives: tuple[Alternative, ...] = field(default_factory=tuple)
    heard_speech: bool = True

    @property
    def empty(self) -> bool:
        return not self.text.strip()


@runtime_checkable
class Recognizer(Protocol):
    """Streaming, grammar-constrained recognition of one utterance per turn."""

    languages: frozenset[str]

    def start_turn(self, grammar: Grammar) -> None:
        """Constrain recognition to `grammar` and begin a new utterance."""

    def feed(self, pcm16_8k: bytes) -> Partial | None:
        """Decode more audio; a `Partial` when the best guess changed."""

    def finish(self) -> Result:
        """End the utterance and return the final result (never raises on silence)."""

    def reset(self) -> None:
        """Drop any utterance in progress (barge-in cancelled, call ended)."""
