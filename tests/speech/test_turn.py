"""The per-call pipeline on streams made of real synthetic speech, silence and noise (stream time)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pocketsphinx")
pytest.importorskip("webrtcvad")

from ivr.engine.events import NoInput, NoMatch, Speech  # noqa: E402
from ivr.engine.matching import match  # noqa: E402
from ivr.speech.audio import RtpToFrames  # noqa: E402
from ivr.speech.recognizer import Partial  # noqa: E402
from ivr.speech.turn import BargeIn, SpeechTurn, TurnEnded  # noqa: E402

from .sounds import MENU, listen, noise, silence, synth  # noqa: E402

LEAD = 0.6  # seconds of silence before the caller speaks


def run(turn: SpeechTurn, pcm: bytes) -> list:
    outputs = []
    for start in range(0, len(pcm), 320):
        outputs.extend(turn.feed(pcm[start : start + 320]))
    return outputs


def ended(outputs: list) -> TurnEnded:
    found = [o for o in outputs if isinstance(o, TurnEnded)]
    assert len(found) == 1, outputs
    return found[0]


def onset(pcm: bytes) -> float:
    """Stream time of the first loud sample."""
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    return float(np.argmax(samples > 1000)) / 8000


@pytest.fixture(scope="module")
def turn(sphinx) -> SpeechTurn:
    return SpeechTurn(sphinx)


def test_right_choice_becomes_speech_event(turn: SpeechTurn) -> None:
    turn.start(listen(MENU))
    result = ended(run(turn, silence(LEAD) + synth("update my phone number", "awb") + silence(2)))
    assert isinstance(result.event, Speech)
    assert match(result.event.text, MENU) == "phone"


def test_silence_gives_noinput_at_the_noinput_timeout(turn: SpeechTurn) -> None:
    turn.start(listen(MENU, noinput=3.0))
    outputs = run(turn, silence(5))
    result = ended(outputs)
    assert isinstance(result.event, NoInput) and result.at == pytest.approx(3.0, abs=0.021)
    assert not any(isinstance(o, BargeIn) for o in outputs)
    assert not turn.active and turn.feed(silence(1)) == []


def test_out_of_grammar_speech_is_nomatch_or_low_confidence(turn: SpeechTurn) -> None:
    turn.start(listen(MENU))
    result = ended(run(turn, silence(LEAD) + synth("what is the weather like today", "slt") + silence(2)))
    assert isinstance(result.event, NoMatch) or result.event.confidence < 0.25, result


def test_noise_burst_is_nomatch_or_low_confidence(turn: SpeechTurn) -> None:
    turn.start(listen(MENU))
    result = ended(run(turn, silence(LEAD) + noise(1.0) + silence(5)))
    assert isinstance(result.event, (NoMatch, NoInput)) or result.event.confidence < 0.25, result


def test_barge_in_fires_near_speech_start(turn: SpeechTurn) -> None:
    speech = synth("cancel my policy", "rms")
    turn.start(listen(MENU))
    outputs = run(turn, silence(LEAD) + speech + silence(2))
    barge = [o for o in outputs if isinstance(o, BargeIn)]
    assert len(barge) == 1
    assert abs(barge[0].at - (LEAD + onset(speech))) <= 0.12
    assert outputs.index(barge[0]) < outputs.index(ended(outputs))


def test_early_endpointing_ends_the_turn_sooner_than_end_silence(sphinx) -> None:
    """Measured in stream time: result time minus the end of speech."""
    audio = silence(LEAD) + synth("cancel my policy", "slt") + silence(3)
    latencies = {}
    for early in (0.25, None):
        turn = SpeechTurn(sphinx, early_silence=early or 10.0)
        turn.start(listen(MENU, end_silence=1.0))
        result = ended(run(turn, audio))
        assert isinstance(result.event, Speech) and result.event.text == "cancel my policy"
        assert result.early is (early is not None)
        latencies[early] = result.at - result.speech_end
    assert latencies[0.25] <= 0.3 + 1e-6
    assert latencies[None] >= 1.0 - 1e-6
    assert latencies[None] - latencies[0.25] >= 0.7


class WithoutWordTimes:
    """The same recogniser, its partials without where the words end (as vosk's come)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.languages = inner.languages

    def start_turn(self, grammar) -> None:
        self.inner.start_turn(grammar)

    def feed(self, pcm16_8k: bytes):
        partial = self.inner.feed(pcm16_8k)
        return None if partial is None else Partial(partial.text)

    def finish(self):
        return self.inner.finish()

    def reset(self) -> None:
        self.inner.reset()


def test_early_end_does_not_wait_out_the_vad_tail(sphinx) -> None:
    """The VAD (mode 2) calls the quiet end of "policy" speech for a while; the decoder knows the
    word is over, and the strict VAD hears the tail go sooner: with word times or without
    (vosk's partials have none), the turn ends before 0.25 s of mode-2 silence."""
    audio = silence(LEAD) + synth("cancel my policy", "slt") + silence(3)
    for recognizer in (sphinx, WithoutWordTimes(sphinx)):
        turn = SpeechTurn(recognizer, early_silence=0.25)
        turn.start(listen(MENU, end_silence=1.0))
        result = ended(run(turn, audio))
        assert isinstance(result.event, Speech) and result.event.text == "cancel my policy" and result.early
        assert result.at <= result.speech_end + 0.25 - 0.06, (result.at, result.speech_end)


def test_incomplete_partial_waits_for_the_full_end_silence(sphinx) -> None:
    """ "payment" is not complete when "payment plan" is also allowed."""
    turn = SpeechTurn(sphinx, early_silence=0.25)
    turn.start(listen({"payment": "pay", "payment plan": "plan"}, end_silence=1.0))
    result = ended(run(turn, silence(LEAD) + synth("payment", "slt") + silence(3)))
    assert isinstance(result.event, Speech) and not result.early
    assert result.at - result.speech_end >= 1.0 - 1e-6


def test_max_speech_ends_a_long_utterance(turn: SpeechTurn) -> None:
    turn.start(listen(MENU, max_speech=1.0))
    talk = synth("I would like to know about my policy and my premium and my payment and my phone number", "rms")
    result = ended(run(turn, silence(LEAD) + talk + silence(1)))
    assert result.speech_start is not None and result.at - result.speech_start == pytest.approx(1.0, abs=0.03)


def test_rtp_payload_becomes_8k_little_endian() -> None:
    tone = (np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 8000).astype(np.int16)
    converter, out = RtpToFrames(), b""
    for start in range(0, len(tone), 320):  # 640-byte big-endian payloads
        out += converter.convert(tone[start : start + 320].astype(">i2").tobytes())
    samples = np.frombuffer(out, dtype="<i2")
    assert 8000 - 600 <= len(samples) <= 8000  # the streaming filter holds back < 75 ms
    spectrum = np.abs(np.fft.rfft(samples[1000:7000]))
    assert abs(np.argmax(spectrum) * 8000 / 6000 - 440) < 5


def test_frames_from_rtp_drive_a_turn(sphinx) -> None:
    """The controller's path: 16 kHz big-endian payloads → converter → turn."""
    from ivr.speech.audio import read_wav_8k, wav_bytes

    speech = silence(LEAD) + synth("payment", "kal16") + silence(1.5)
    wide = np.frombuffer(read_wav_8k(wav_bytes(speech)), dtype="<i2")
    import soxr

    up = soxr.resample(wide, 8000, 16000).astype(">i2").tobytes()
    turn, converter, outputs = SpeechTurn(sphinx), RtpToFrames(), []
    turn.start(listen(MENU))
    for start in range(0, len(up), 640):
        outputs.extend(turn.feed(converter.convert(up[start : start + 640])))
    result = ended(outputs)
    assert isinstance(result.event, Speech) and result.event.text == "payment"


def test_rtp_conversion_is_repeatable() -> None:
    """Same payloads, same samples (soxr's int16 output was dithered with a random seed)."""
    tone = (np.sin(2 * np.pi * 300 * np.arange(16000) / 16000) * 6000).astype(">i2").tobytes()
    outputs = []
    for _ in range(2):
        converter = RtpToFrames()
        outputs.append(b"".join(converter.convert(tone[i : i + 640]) for i in range(0, len(tone), 640)))
    assert outputs[0] == outputs[1]
