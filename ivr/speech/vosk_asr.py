"""Recognition with a Kaldi model through vosk, for languages pocketsphinx has no model for.

An operator installs a vosk model (a directory) and points the configuration
at it (`VoskRecognizer.from_path`, or env `IVR_VOSK_MODEL`). Facts this
follows (shared/speech/README.md): a model takes ~2.5 s and ~500 MB to load,
so it is loaded once per process and shared by every call's recogniser;
a recogniser is reused across turns (a new one spends ~0.8 s on its first
chunk); grammars are set with `SetGrammar` and serialised with
`ensure_ascii=False` (escaped Unicode counts as unknown words); words
outside the model's vocabulary are dropped by vosk with a warning.

vosk's grammar bounds the *words* (a phrase's words may come out alone,
"주세요" from "상담원 연결해 주세요"); the engine's phrase matching decides.
`Reset()` alone lets buffered audio leak into the next turn, so a cancelled
utterance is finalised first.

Confidence is the mean of vosk's per-word posteriors (`SetWords`). vosk's
own endpointer may close a segment mid-turn on a pause: segments are joined
and the turn's end is decided by `ivr.speech.endpoint`, not by vosk.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from ivr.speech.grammar import Grammar, tokens
from ivr.speech.recognizer import Partial, Result

SAMPLE_RATE = 8000
# Words `ivr.digits.parse_digits` turns into digits, by language, for digit turns
# (a Korean model gets none: parse_digits has no Korean digits, so only keys work there).
DIGIT_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "double"),
    "zh": ("零", "一", "幺", "二", "两", "三", "四", "五", "六", "七", "八", "九"),
}


@functools.lru_cache(maxsize=4)
def load_model(path: str) -> Any:
    """The model at `path`, loaded once per process and shared by all calls."""
    import vosk

    vosk.SetLogLevel(-1)
    if not Path(path, "am").exists() and not Path(path, "conf").exists():
        raise FileNotFoundError(f"{path} does not look like a vosk model directory")
    return vosk.Model(path)


def configured_model_path() -> str | None:
    return os.environ.get("IVR_VOSK_MODEL") or None


class VoskRecognizer:
    """One call's vosk recogniser over a shared model."""

    def __init__(self, model: Any, languages: frozenset[str]) -> None:
        import vosk

        self.languages = languages
        self._recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE)
        self._recognizer.SetWords(True)
        self._grammar_json = ""
        self._segments: list[dict[str, Any]] = []
        self._partial = ""
        self._active = False
        self._nothing = False  # this turn has nothing sayable

    @classmethod
    def from_path(cls, path: str | Path, languages: frozenset[str]) -> VoskRecognizer:
        return cls(load_model(str(path)), languages)

    def start_turn(self, grammar: Grammar) -> None:
        if grammar.language not in self.languages:
            raise ValueError(f"this vosk model serves {sorted(self.languages)}, not {grammar.language!r}")
        self.reset()
        self._active = True
        phrases = {" ".join(tokens(p)) for p in grammar.phrases} - {""}
        if grammar.digits:  # digit words as one-word phrases: vosk's grammar lets them follow each other
            phrases |= set(DIGIT_WORDS.get(grammar.language, ()))
        self._nothing = not phrases
        if self._nothing:  # SetGrammar("[]") decodes free-form: nonsense text, and 5x the CPU
            return
        encoded = json.dumps(sorted(phrases), ensure_ascii=False)
        if encoded != self._grammar_json:
            self._recognizer.SetGrammar(encoded)
            self._grammar_json = encoded

    def feed(self, pcm16_8k: bytes) -> Partial | None:
        if not self._active:
            raise RuntimeError("feed() before start_turn()")
        if self._nothing:
            return None
        if self._recognizer.AcceptWaveform(pcm16_8k):
            self._segments.append(json.loads(self._recognizer.Result()))
            text = self._joined("")
        else:
            text = self._joined(json.loads(self._recognizer.PartialResult()).get("partial", ""))
        if text and text != self._partial:
            self._partial = text
            return Partial(text)
        return None

    def finish(self) -> Result:
        if not self._active:
            return Result("", 0.0)
        if self._nothing:
            self._active = False
            return Result("", 0.0)
        self._segments.append(json.loads(self._recognizer.FinalResult()))
        self._active = False
        words = [w for segment in self._segments for w in segment.get("result", [])]
        text = self._joined("")
        self._segments = []
        if not text:
            return Result("", 0.0)
        confidence = sum(float(w.get("conf", 0.0)) for w in words) / len(words) if words else 0.5
        return Result(text, min(1.0, max(0.0, confidence)))

    def reset(self) -> None:
        if self._active and not self._nothing:  # Reset() alone leaves buffered audio that leaks into the next turn
            self._recognizer.FinalResult()
            self._recognizer.Reset()
        self._segments = []
        self._partial = ""
        self._active = False

    def _joined(self, tail: str) -> str:
        parts = [s.get("text", "") for s in self._segments] + [tail]
        return " ".join(p for p in parts if p).strip()
