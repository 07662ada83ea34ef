"""One recogniser per call that serves every language the call may switch to.

A caller may press 9 for Chinese mid-call; the call keeps one recogniser
object, which hands each turn to the engine that has a model for the turn's
language: pocketsphinx for English (bundled), vosk for the language of the
model the operator installed. Engines are created on first use, so a call
that stays in English never loads the (large, shared) vosk model.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

from ivr.speech.grammar import Grammar
from ivr.speech.recognizer import Partial, Recognizer, Result


class ByLanguage:
    """Delegates each turn to the recogniser for its language."""

    def __init__(self, makers: dict[str, Callable[[], Recognizer]]) -> None:
        self._makers = makers
        self._made: dict[str, Recognizer] = {}
        self._current: Recognizer | None = None
        self.languages = frozenset(makers)

    def start_turn(self, grammar: Grammar) -> None:
        maker = self._makers.get(grammar.language)
        if maker is None:
            self._current = None
            raise ValueError(f"no speech model for language {grammar.language!r}")
        if grammar.language not in self._made:
            self._made[grammar.language] = maker()
        self._current = self._made[grammar.language]
        self._current.start_turn(grammar)

    def feed(self, pcm16_8k: bytes) -> Partial | None:
        return self._current.feed(pcm16_8k) if self._current else None

    def finish(self) -> Result:
        return self._current.finish() if self._current else Result("", 0.0)

    def reset(self) -> None:
        if self._current:
            self._current.reset()


def _pocketsphinx() -> Recognizer:
    from ivr.speech.pocketsphinx_asr import PocketsphinxRecognizer

    return PocketsphinxRecognizer()


def _vosk(path: str, language: str) -> Recognizer:
    from ivr.speech.vosk_asr import VoskRecognizer

    return VoskRecognizer.from_path(path, frozenset({language}))


def build(vosk_model: str | None, vosk_language: str) -> Recognizer:
    makers: dict[str, Callable[[], Recognizer]] = {"en": _pocketsphinx}
    if vosk_model:
        makers[vosk_language] = functools.partial(_vosk, vosk_model, vosk_language)
    return ByLanguage(makers)


def factory(vosk_model: Path | None = None, vosk_language: str = "zh") -> Callable[[], Recognizer]:
    """A picklable factory for worker processes (they are spawned, not forked)."""
    return functools.partial(build, str(vosk_model) if vosk_model else None, vosk_language)


def languages(vosk_model: Path | None, vosk_language: str) -> frozenset[str]:
    return frozenset({"en", vosk_language} if vosk_model else {"en"})
