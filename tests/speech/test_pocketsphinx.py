"""pocketsphinx with per-turn grammars on audio made now (flite, espeak-ng, noise) and FSDD."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("pocketsphinx")
pytest.importorskip("soxr")

from ivr.digits import parse_digits  # noqa: E402
from ivr.engine.matching import match, yes_no_grammar  # noqa: E402
from ivr.speech.grammar import DigitSpec, Grammar  # noqa: E402
from ivr.speech.pocketsphinx_asr import PocketsphinxRecognizer, fsg_for  # noqa: E402
from ivr.speech.recognizer import Recognizer, Result  # noqa: E402

from .sounds import MENU, fsdd_dir, silence, synth, with_noise  # noqa: E402

MENU_GRAMMAR = Grammar.of("en", list(MENU))
REJECT_BELOW = 0.25  # the shipped flows' thresholds (ivr.flow.model's default; flows/*.yaml defaults)
CONFIRM_BELOW = 0.85
WORDS = "zero one two three four five six seven eight nine".split()


def recognise(recognizer: PocketsphinxRecognizer, grammar: Grammar, pcm: bytes) -> Result:
    recognizer.start_turn(grammar)
    audio = silence(0.2) + pcm + silence(0.3)
    for start in range(0, len(audio), 320):
        recognizer.feed(audio[start : start + 320])
    return recognizer.finish()


def test_implements_the_recogniser_protocol(sphinx: PocketsphinxRecognizer) -> None:
    assert isinstance(sphinx, Recognizer)


@pytest.mark.parametrize("voice", ["slt", "rms", "awb", "kal16"])
def test_choices_from_flite_voices(sphinx: PocketsphinxRecognizer, voice: str) -> None:
    for phrase in ["payment", "cancel my policy", "update my phone number", "speak to someone"]:
        result = recognise(sphinx, MENU_GRAMMAR, synth(phrase, voice))
        assert result.text == phrase, (voice, phrase, result)
        assert result.confidence > REJECT_BELOW  # never rejected by the flows' default threshold


def test_choices_in_white_noise_at_20_db(sphinx: PocketsphinxRecognizer) -> None:
    """Every menu phrase in four voices with noise: measured 29/32 right (pocketsphinx
    itself is not bit-for-bit repeatable here, so the bar is a rate, not each phrase)."""
    said = [(phrase, voice) for voice in ["slt", "rms", "awb", "kal16"] for phrase in MENU]
    heard = [recognise(sphinx, MENU_GRAMMAR, with_noise(synth(p, v), snr_db=20)).text for p, v in said]
    right = sum(text == phrase for text, (phrase, _) in zip(heard, said))
    assert right >= 0.8 * len(said), list(zip(said, heard))


def test_yes_and_no_on_a_reused_decoder(sphinx: PocketsphinxRecognizer) -> None:
    table = yes_no_grammar("en")
    yes_no = Grammar.of("en", list(table))
    for word in ["yes", "no", "no", "yes", "no"]:
        heard = recognise(sphinx, yes_no, synth(word, "slt")).text
        assert match(heard, table) == word, heard


def test_out_of_grammar_speech_is_never_acted_on_unasked(sphinx: PocketsphinxRecognizer) -> None:
    """Empty, or confident enough at most to be confirmed ("Did you say ...?"): the confidence
    is a probability, and a grammar path that explains two thirds of a sentence ("I want to buy
    a car" as "my policy") is right about half the time."""
    for sentence in ["the weather is nice today", "I want to buy a car", "thank you very much"]:
        result = recognise(sphinx, MENU_GRAMMAR, synth(sentence, "slt"))
        assert result.empty or result.confidence < CONFIRM_BELOW, (sentence, result)


def test_alternatives_are_other_sentences_of_the_grammar() -> None:
    """N-best alternatives (phrase grammars; digit grammars have none, see below) are
    distinct sentences of the turn's grammar, never above the best's confidence."""
    recognizer = PocketsphinxRecognizer()  # its own: results depend on what a decoder heard before
    phrases = ["payment", "my policy", "agent", "cancel my policy", "policy information"]
    results = [recognise(recognizer, MENU_GRAMMAR, with_noise(synth(phrase, voice), snr_db=15))
               for phrase in phrases for voice in ["slt", "kal16"]]
    assert any(result.alternatives for result in results), results
    for result in results:
        texts = [a.text for a in result.alternatives]
        assert result.text not in texts and len(set(texts)) == len(texts)
        assert all(MENU_GRAMMAR.accepts(text) for text in texts)
        assert all(a.confidence <= result.confidence for a in result.alternatives)


def test_grammar_leaves_out_phrases_the_model_cannot_say() -> None:
    graph = fsg_for(Grammar.of("en", ["payment", "zzqx blorf"]), {"payment"})
    assert graph.words() == {"payment"}


def _accepts(graph, words: list[str]) -> bool:
    """Whether the graph has a path from state 0 to its final state saying exactly `words`."""
    states = _closure(graph, {0})
    for word in words:
        states = _closure(graph, {t[1] for t in graph.transitions if len(t) == 4 and t[0] in states and t[3] == word})
    return graph.final in states


def _closure(graph, states: set[int]) -> set[int]:
    while True:
        more = {t[1] for t in graph.transitions if len(t) == 3 and t[0] in states} - states
        if not more:
            return states
        states |= more


def test_a_phone_number_grammar_takes_8_to_15_digits_doubles_and_phrases_and_stays_small() -> None:
    grammar = Grammar("en", ("a person",), DigitSpec(8, 15, oh=True, double=True))
    graph = fsg_for(grammar, {"a", "person"})
    said = "five five five double zero one two three four one".split()
    assert _accepts(graph, said) and _accepts(graph, ["a", "person"])
    assert _accepts(graph, ["oh"] * 8) and _accepts(graph, ["nine"] * 15)
    assert not _accepts(graph, ["nine"] * 7) and not _accepts(graph, ["nine"] * 16)
    assert not _accepts(graph, ["nine"] * 14 + ["double", "two"])  # 16 digits
    assert not _accepts(graph, ["a"]) and not _accepts(graph, said + ["a", "person"])
    # one state per digit count: the copied JSGF rules were exponential in the longest number
    assert len(graph.transitions) < 12 * 2 * 16


def test_fsdd_digit_strings() -> None:
    """Real human digits: per-digit accuracy far above chance (10%); measured 53–78%."""
    folder = fsdd_dir()
    if not folder.is_dir():
        pytest.skip("FSDD not available (IVR_SHARED_DIR/audio/fsdd)")
    from ivr.speech.audio import read_wav_8k

    recognizer = PocketsphinxRecognizer()
    rng = random.Random(5)
    grammar = Grammar("en", (), DigitSpec(4, 4, oh=False, double=False))
    right = total = 0
    for _ in range(8):
        speaker = rng.choice(["george", "jackson", "nicolas", "yweweler"])
        digits = "".join(rng.choice("0123456789") for _ in range(4))
        pcm = b"".join(read_wav_8k(folder / f"{d}_{speaker}_{rng.randrange(50)}.wav") + silence(0.1) for d in digits)
        heard = parse_digits(recognise(recognizer, grammar, pcm).text) or ""
        right += sum(a == b for a, b in zip(heard, digits))
        total += len(digits)
    assert right / total >= 0.4, f"{right}/{total} digits right"


def test_same_audio_decodes_the_same_on_fresh_recognisers() -> None:
    """soxr dithers int16 output with a random seed; the recogniser resamples in float so
    that a result (and its confidence) is repeatable."""
    audio = synth("what is the weather like today", "slt")
    results = [recognise(PocketsphinxRecognizer(), MENU_GRAMMAR, audio) for _ in range(2)]
    assert results[0] == results[1]


def _start_a_digit_turn(_: int) -> str:
    from ivr.speech import pocketsphinx_asr

    pocketsphinx_asr._seed_dictionary.cache_clear()  # every process writes the seed dictionary itself
    try:
        PocketsphinxRecognizer().start_turn(Grammar("en", ("agent",), DigitSpec(8, 8)))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return repr(exc)
    return "ok"


def test_recognisers_start_together_in_many_processes() -> None:
    """Processes starting at once (speech workers, parallel test runs) once rewrote one
    shared seed dictionary in place, and a decoder reading it half-written failed."""
    import multiprocessing as mp

    from ivr.speech.pocketsphinx_asr import model_dictionary

    model_dictionary()  # parsed once, inherited by the forked processes
    with mp.get_context("fork").Pool(8) as pool:
        outcomes = pool.map(_start_a_digit_turn, range(32), chunksize=1)
    assert outcomes == ["ok"] * 32


def test_digit_results_skip_the_costly_lattice_nbest() -> None:
    """nbest() on an 8-digit grammar cost 0.4-2 s of CPU and repeated the best text."""
    import time

    recognizer = PocketsphinxRecognizer()
    audio = synth("four one five five zero seven two nine three", "rms")
    started = time.process_time()
    result = recognise(recognizer, Grammar("en", (), DigitSpec(8, 8)), audio)
    assert result.alternatives == () and len(parse_digits(result.text) or "") == 8
    assert time.process_time() - started < 5  # generous: a few hundred ms here, seconds with the lattice


def test_a_phrase_that_explains_little_of_the_speech_is_not_confident() -> None:
    """The phone-loop gap alone gave "a person" 0.999 for a long utterance whose rest the
    silence model absorbed (3 of 200 FSDD policy numbers would have gone to an agent);
    coverage of the loud frames by the words brings it under the reject threshold."""
    grammar = Grammar("en", ("a person", "agent"), DigitSpec(8, 8))
    recognizer = PocketsphinxRecognizer()
    for text, voice in [("a person, seven seven eight nine three two one four five six", "rms"),
                        ("a person. I want to talk about my car insurance today", "slt")]:
        result = recognise(recognizer, grammar, synth(text, voice))
        assert result.empty or result.confidence < REJECT_BELOW, (text, result)
        assert recognizer.last_coverage is not None and recognizer.last_coverage < 0.5
    for text, voice in [("a person", "kal16"), ("seven seven eight nine three two one four", "awb")]:
        result = recognise(recognizer, grammar, synth(text, voice))
        assert result.confidence > 0.6 and recognizer.last_coverage > 0.9, (text, result)


# Voices no other test uses (ivr.bench.confidence.HELD_OUT_VOICES), on the shipped flows' own turns.
HELD_OUT_RIGHT = [  # (turn, said, voice, rate, band, snr)
    ("cancellation.reason", "it's too expensive", "flite:kal", 1.0, "wide", None),
    ("cancellation.reason", "my family objects", "espeak:en-gb-x-rp", 175, "phone", None),
    ("main_menu.menu", "update my phone number", "espeak:en-us-nyc", 175, "wide", 20.0),
    ("cancellation.downgrade", "no", "flite:kal", 1.0, "phone", None),
    ("cancellation.downgrade", "that's wrong", "espeak:en-gb-x-rp", 175, "phone", None),
    ("cancellation.downgrade", "yes please", "espeak:en-us+klatt", 175, "phone", 20.0),
    ("phone_update.id_digits", "four five six seven", "flite:kal", 1.0, "phone", None),
]
HELD_OUT_WRONG = [
    ("main_menu.menu", "what are your opening hours", "flite:kal", 1.0, "wide", None),
    ("cancellation.reason", "the bus was late again", "flite:kal", 1.2, "wide", None),
    ("cancellation.downgrade", "I need to think about it", "espeak:en-us+klatt", 175, "wide", None),
    ("cancellation.downgrade", "is anyone there", "espeak:en-us+klatt", 175, "wide", None),
    ("payment.offer", "could you repeat the question", "espeak:en-us+klatt", 175, "wide", None),
]


@pytest.fixture(scope="module")
def shipped_turns():
    from pathlib import Path

    from ivr.bench.asr import load_release
    from ivr.bench.confidence import shipped_turns

    root = Path(__file__).resolve().parents[2]
    return {turn.where: turn for turn in shipped_turns(load_release(root / "flows", root / "prompts"))}


def _held_out(case):
    from ivr.bench.confidence import Condition, speak

    where, said, voice, rate, band, snr = case
    engine, name = voice.split(":")
    pcm = speak(said, Condition(engine, name, rate, band, snr))
    return with_noise(pcm, snr_db=snr) if snr is not None else pcm


def test_held_out_voices_right_answers_are_not_rejected_and_others_are_not_acted_on(shipped_turns) -> None:
    """The deployer's failure: a right "it's too expensive" scored 0.07-0.17 and was rejected
    three times. Right answers from held-out voices now clear reject_below; out-of-grammar
    speech, silence and noise are never acted on without a question on a choices turn (below
    confirm_below the engine asks "Did you say ...?"). A yes/no turn never asks: there the
    bar is only confirm_below, and `ivr bench asr` reports how much out-of-grammar speech
    such turns act on (pocketsphinx cannot keep it below reject_below without rejecting
    right answers)."""
    from ivr.bench.confidence import _heard, decision, non_speech
    from ivr.speech.grammar import Grammar

    def acted_on(turn, result) -> bool:
        if turn.type == "yes_no":
            return not result.empty and result.confidence >= turn.confirm
        row = {"text": None if result.empty else result.text, "heard": None if result.empty else _heard(turn, result.text)}
        return decision(turn, row, result.confidence) == "act"

    recognizer = PocketsphinxRecognizer()  # its own, for a repeatable history
    right = 0
    for case in HELD_OUT_RIGHT:
        turn = shipped_turns[case[0]]
        result = recognise(recognizer, Grammar.from_listen(turn.listen), _held_out(case))
        expected = parse_digits(case[1]) if turn.type == "digits" else turn.listen.grammar[case[1]]
        if not result.empty and _heard(turn, result.text) == expected:
            right += 1
            assert result.confidence >= turn.reject, (case, result)
    assert right >= len(HELD_OUT_RIGHT) - 1, "the recogniser itself got worse on these voices"
    for case in HELD_OUT_WRONG:
        turn = shipped_turns[case[0]]
        result = recognise(recognizer, Grammar.from_listen(turn.listen), _held_out(case))
        assert not acted_on(turn, result), (case, result)
    for where, kind, seed in [("main_menu.menu", "silence", 0), ("main_menu.menu", "noise", 1),
                              ("main_menu.menu", "bursts", 2), ("cancellation.downgrade", "bursts", 5)]:
        turn = shipped_turns[where]
        result = recognise(recognizer, Grammar.from_listen(turn.listen), non_speech(kind, seed))
        assert not acted_on(turn, result), (where, kind, seed, result)
