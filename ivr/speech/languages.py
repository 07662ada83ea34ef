"""One recogniser per call that serves every language the call may switch to.

A caller may press 9 for Chinese mid-call; the call keeps one recogniser
object, which hands each turn to the engine that has a model for the turn's
language: Whisper or pocketsphinx for English, vosk for the language of the
model the operator installed, a multilingual Whisper model for any language
the settings give it (`choose`). Engines are created on first use, so a call
that stays in English never loads the (large, shared) vosk model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

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


ENGINES = ("whisper", "pocketsphinx", "vosk")


def _pocketsphinx() -> Recognizer:
    from ivr.speech.pocketsphinx_asr import PocketsphinxRecognizer

    return PocketsphinxRecognizer()


def _vosk(path: str, language: str) -> Recognizer:
    from ivr.speech.vosk_asr import VoskRecognizer

    return VoskRecognizer.from_path(path, frozenset({language}))


def _whisper(path: str | None, language: str) -> Recognizer:
    from ivr.speech.whisper_asr import WhisperRecognizer

    return WhisperRecognizer(path, language=language)


def choose(recognisers: dict[str, str] | None, vosk_model: str | None, vosk_language: str,
           whisper_model: str | None = None) -> dict[str, str]:
    """Which engine serves each language: the settings' own choices over the defaults.

    Defaults: English by Whisper when it is installed with a model (the README's
    set-up installs it), else pocketsphinx; `vosk_language` by vosk when a vosk
    model is set. Raises ValueError for a choice that cannot work, so a bad
    setting stops the start-up instead of failing every caller's first turn.
    """
    from ivr.speech import whisper_asr

    chosen = {"en": "whisper" if whisper_model or whisper_asr.available() else "pocketsphinx"}
    if vosk_model:
        chosen[vosk_language] = "vosk"
    for language, engine in (recognisers or {}).items():
        if engine not in ENGINES:
            raise ValueError(f"recognisers: {language!r} asks for {engine!r}; engines are {', '.join(ENGINES)}")
        if engine == "vosk" and not (vosk_model and language == vosk_language):
            raise ValueError(f"recognisers: {language!r} by vosk needs vosk_model, with vosk_language {language!r}")
        if engine == "pocketsphinx" and language != "en":
            raise ValueError(f"recognisers: pocketsphinx has only an English model, not {language!r}")
        if engine == "whisper" and language != "en" and not whisper_model:
            raise ValueError(f"recognisers: {language!r} by Whisper needs a multilingual whisper_model "
                             "(the packaged one is English only)")
        if engine == "whisper" and not whisper_model and not whisper_asr.available():
            raise ValueError("recognisers: Whisper is not installed (faster-whisper and "
                             f"{whisper_asr.MODEL_PACKAGE}=={whisper_asr.MODEL_VERSION}; see the README)")
        chosen[language] = engine
    return chosen


def choose_for(settings) -> dict[str, str]:
    """`choose` with the controller's settings."""
    return choose(settings.recognisers, settings.vosk_model and str(settings.vosk_model), settings.vosk_language,
                  settings.whisper_model and str(settings.whisper_model))


def build(chosen: tuple[tuple[str, str], ...], vosk_model: str | None, whisper_model: str | None) -> Recognizer:
    makers: dict[str, Callable[[], Recognizer]] = {}
    for language, engine in chosen:
        if engine == "pocketsphinx":
            makers[language] = _pocketsphinx
        elif engine == "vosk":
            makers[language] = functools.partial(_vosk, str(vosk_model), language)
        else:
            makers[language] = functools.partial(_whisper, whisper_model, language)
    return ByLanguage(makers)


def factory(chosen: dict[str, str], vosk_model: Path | None = None,
            whisper_model: Path | None = None) -> Callable[[], Recognizer]:
    """A picklable factory for worker processes (they are spawned, not forked)."""
    return functools.partial(build, tuple(sorted(chosen.items())), str(vosk_model) if vosk_model else None,
                             str(whisper_model) if whisper_model else None)
