"""Embedded recognition with pocketsphinx's bundled en-us model and a per-turn grammar (a finite-state graph).

Facts this follows (measured, see shared/speech/README.md): the model is
16 kHz, so 8 kHz call audio is upsampled in-process with a streaming soxr
resampler; a grammar with `bestpath=False` and a small dictionary of the
turn's words is fast and accurate where free decoding is not; one decoder
per call is reused across turns.

Confidence. pocketsphinx's own posterior is 1.0 without `bestpath`, and a
grammar search always returns *some* phrase when it can, so it cannot tell
"payment" from "the weather is nice". A second decoder runs a free phone
loop (allphone search) over the same audio, in step with the grammar
decoder so the end of an utterance costs no extra decoding: the phone loop
is roughly the best any words could score, and the grammar path's acoustic
score minus the phone loop's, frame by frame, measures how much the grammar
had to bend the audio. The confidence is a probability of being right: a
logistic model (`ivr.speech.confidence`) over four features of the result
(`features`), fitted on held-out voices by `ivr bench asr --calibrate`.

Why these features, and not the gap per frame of the whole utterance used
before: that average counted the utterance's silence as perfectly fitting
frames, so the more of an utterance the words filled, the worse it scored.
A right "it's too expensive" scored 0.07-0.17 on a deployer's voices and
was rejected three times, while a wrong "yeah" for "no" (fewer frames of
words in as much audio) kept 0.78. Now the gap is taken over the words' own
frames (`gap_words`), and apart over the frames the grammar gave to silence
and fillers (`gap_silence`: speech the grammar could not place scores badly
there). `coverage` is the share of loud 10 ms frames (within 20 dB of the
utterance's peak and 10 dB above its noise floor) inside recognised words:
a path covering only part of the speech ("a person" for a whole spoken
policy number, a short phrase for an out-of-grammar sentence) fits its own
frames well and is caught only by this. `snr_db` (the spread of frame
energies, capped) lets the model trust a gap less on a noisy line, where
right answers fit worse too. Alternatives come from the N-best list
(distinct texts): the same features with `gap_words` shifted by the
alternative's score difference to the best, never above the best.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pocketsphinx
import soxr

from ivr.speech.confidence import Logistic
from ivr.speech.grammar import EN_DIGIT_WORDS, EN_REPEATS, Grammar, tokens
from ivr.speech.recognizer import Alternative, Partial, Result

log = logging.getLogger(__name__)

MODEL_RATE = 16000
CALL_RATE = 8000
FRAME_SAMPLES = 160  # the decoder's 10 ms frame shift at 16 kHz
# Cepstral mean of telephone-band (8 kHz, upsampled) speech after a few dozen
# utterances. The model's default start (40,3,-1) is wide-band speech: a
# fresh decoder then failed 14 of 32 short phrases (clean and 20 dB noise);
# starting here failed 5. Live CMN adapts from there as the call goes on.
# The phone loop only needs a rough best-case score: narrow beams, every
# second frame, few HMMs per frame (RTF 0.065 → 0.03; the grammar decoder
# itself costs ~0.01).
PHONE_LOOP = dict(lw=2.0, beam=1e-8, pbeam=1e-8, ds=2, maxhmmpf=200)
TELEPHONE_CMN = "30.1,14.6,-20.8,34.3,-14.8,1.3,12.0,-16.0,8.1,-6.9,0.8,9.0,-10.2"


# P(right) over `features`, per grammar kind; fitted by `ivr bench asr --calibrate`
# (see ivr/bench/confidence.py for the voices, conditions and turns) and pasted here.
CONFIDENCE: dict[str, Logistic] = {
    "phrases": Logistic(
        intercept=-5.717,
        weights=(("gap_words", 0.7072), ("gap_silence", 0.169), ("coverage", 6.714), ("snr_db", 0.08501)),
        ranges=(("gap_words", -5.046, 0.4101), ("gap_silence", -2.898, 1.564), ("coverage", 0.1648, 1), ("snr_db", 12.67, 35))),
    "digits": Logistic(
        intercept=-13.9,
        weights=(("gap_words", 1.498), ("gap_silence", 0.4977), ("coverage", 10.54), ("snr_db", 0.1533)),
        ranges=(("gap_words", -4.284, -0.3928), ("gap_silence", -2.736, 1.092), ("coverage", 0.4065, 1), ("snr_db", 13.33, 35))),
}
GAP_UNIT = 1000.0  # gaps are log-score differences per 10 ms frame, ~0.001: features in thousandths
SNR_CAP_DB = 35.0  # above this a line is clean; espeak's digital silence spreads energies to 70 dB
LOUD_DB = 20.0  # a frame is loud within this many dB of the utterance's peak (99th percentile)
ABOVE_FLOOR_DB = 10.0  # and this far above its floor (10th percentile): steady line noise is not speech
FILLER_MARKS = ("<", "[", "+", "(")  # <sil>, [NOISE], ++BREATH++, (NULL)


@functools.lru_cache(maxsize=1)
def model_dictionary() -> dict[str, list[str]]:
    """Pronunciations from the model's dictionary: word → [phones, alternates…]."""
    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    words: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 2:
                words.setdefault(parts[0].split("(")[0], []).append(" ".join(parts[1:]))
    return words


@functools.lru_cache(maxsize=1)
def _seed_dictionary() -> str:
    """A tiny dictionary file to start decoders with (6.6 MB and 20 ms, not 28 MB)."""
    pron = model_dictionary()
    seed = sorted(set(EN_DIGIT_WORDS) | set(EN_REPEATS) | {"yes", "no"})
    text = "".join(f"{w} {pron[w][0]}\n" for w in seed)
    # Named by its content and written atomically: processes starting together (speech
    # workers, test runs side by side) rewrote one shared file in place, and a decoder
    # that read it half-written lacked the seed words ("Failed to parse JSGF").
    path = Path(tempfile.gettempdir()) / f"ivr-speech-seed-{hashlib.sha1(text.encode()).hexdigest()[:12]}.dict"
    try:
        if path.read_text(encoding="utf-8") == text:
            return str(path)
    except OSError:
        pass
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".ivr-speech-seed-", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)
    return str(path)


Transition = tuple  # (from, to, probability) or (from, to, probability, word)


@dataclass(frozen=True)
class TurnFsg:
    """A turn's grammar as a finite-state graph: state 0 starts, `final` ends."""

    final: int
    transitions: tuple[Transition, ...]

    def words(self) -> set[str]:
        return {t[3] for t in self.transitions if len(t) == 4}

    def key(self) -> str:
        return hashlib.sha1(repr((self.final, self.transitions)).encode()).hexdigest()[:12]


def fsg_for(grammar: Grammar, known: set[str]) -> TurnFsg:
    """The turn's phrases and digit string as one graph; phrases with words the model cannot say are left out.

    Built as a graph, not JSGF: a JSGF digit rule ("one digit then K-1, or
    double d then K-2", for every allowed length) is copied at each use, so
    8-15 digits grew to thousands of states and cost 17 s of CPU for 6 s of
    audio. Here a number is one state per digit count: 2 x max states.
    """
    phrases = [" ".join(tokens(p)) for p in grammar.phrases]
    usable = sorted({p for p in phrases if p and all(w in known for w in p.split())})
    for dropped in sorted(set(phrases) - set(usable)):
        log.warning("phrase %r has words outside the model's dictionary; not recognisable", dropped)
    graph = _Graph()
    branches = len(usable) + (1 if grammar.digits else 0)
    for phrase in usable:
        graph.path(0, phrase.split(), 1 / branches)
    if grammar.digits:
        entry = graph.state()
        graph.null(0, entry, 1 / branches)
        _digit_graph(graph, entry, grammar)
    if not branches:
        graph.null(0, graph.FINAL, 1.0)  # a turn with nothing sayable still needs a grammar
    return TurnFsg(graph.FINAL, tuple(graph.transitions))


class _Graph:
    FINAL = 1

    def __init__(self) -> None:
        self.count = 2
        self.transitions: list[Transition] = []

    def state(self) -> int:
        self.count += 1
        return self.count - 1

    def word(self, source: int, target: int, probability: float, word: str) -> None:
        self.transitions.append((source, target, probability, word))

    def null(self, source: int, target: int, probability: float) -> None:
        self.transitions.append((source, target, probability))

    def path(self, source: int, words: list[str], probability: float) -> None:
        for index, word in enumerate(words):
            target = self.FINAL if index == len(words) - 1 else self.state()
            self.word(source, target, probability if index == 0 else 1.0, word)
            source = target


def _digit_graph(graph: _Graph, entry: int, grammar: Grammar) -> None:
    """State k = k digits said; "double d" moves two counts on; counts min..max may end."""
    spec = grammar.digits
    assert spec is not None
    words = [w for w in EN_DIGIT_WORDS if w != "oh" or spec.oh]
    said = [entry] + [graph.state() for _ in range(spec.max)]
    for count, state in enumerate(said):
        can_double = spec.double and count + 2 <= spec.max
        ends = spec.min <= count
        moves = (len(words) if count < spec.max else 0) + (1 if can_double else 0) + (1 if ends else 0)
        if count < spec.max:
            for word in words:
                graph.word(state, said[count + 1], 1 / moves, word)
        if can_double:
            doubled = graph.state()
            graph.word(state, doubled, 1 / moves, "double")
            for word in words:
                graph.word(doubled, said[count + 2], 1 / len(words), word)
        if ends:
            graph.null(state, graph.FINAL, 1 / moves)


class PocketsphinxRecognizer:
    """One call's recogniser: a grammar decoder and a phone-loop decoder fed in step."""

    languages = frozenset({"en"})

    def __init__(self, nbest: int = 5, confidence: dict[str, Logistic] | None = None) -> None:
        model = Path(pocketsphinx.get_model_path()) / "en-us"
        common = dict(hmm=str(model / "en-us"), bestpath=False, loglevel="ERROR", cmninit=TELEPHONE_CMN)
        self._decoder = pocketsphinx.Decoder(dict=_seed_dictionary(), **common)
        self._phones = pocketsphinx.Decoder(allphone=str(model / "en-us-phone.lm.bin"), **PHONE_LOOP, **common)
        self._known: set[str] = set(EN_DIGIT_WORDS) | set(EN_REPEATS) | {"yes", "no"}
        self._searches: dict[str, str] = {}
        self._nbest = nbest
        self._models = confidence or CONFIDENCE
        self._resampler: soxr.ResampleStream | None = None
        self._partial: Partial | None = None
        self._fed = False
        self._grammar: Grammar | None = None
        self._energies: list[np.ndarray] = []  # log energy of each 10 ms frame of this utterance
        self._energy_tail = np.zeros(0, dtype=np.float64)
        self.last_features: dict[str, float] | None = None  # the last result's, for `ivr bench asr --calibrate`

    @property
    def last_coverage(self) -> float | None:
        return None if self.last_features is None else self.last_features["coverage"]

    def start_turn(self, grammar: Grammar) -> None:
        self.reset()
        self._grammar = grammar
        self.last_features = None
        if grammar.language not in self.languages:
            raise ValueError(f"pocketsphinx has no model for language {grammar.language!r}")
        self._decoder.activate_search(self._search_for(grammar))
        # float32, not int16: soxr dithers int16 output with a per-process random
        # seed, which made the same audio decode differently from run to run.
        self._resampler = soxr.ResampleStream(CALL_RATE, MODEL_RATE, 1, dtype="float32")
        self._decoder.start_utt()
        self._phones.start_utt()

    def feed(self, pcm16_8k: bytes) -> Partial | None:
        if self._resampler is None:
            raise RuntimeError("feed() before start_turn()")
        self._process(self._resampler.resample_chunk(np.frombuffer(pcm16_8k, dtype="<i2").astype(np.float32)))
        hyp = self._decoder.hyp()
        text = hyp.hypstr if hyp else ""
        if not text:
            return None
        partial = Partial(text, self._words_end())
        if partial != self._partial:
            self._partial = partial
            return partial
        return None

    def _words_end(self) -> float | None:
        """End of the best path's last word, in seconds of the utterance (100 frames a second).

        Not for digit strings: counted from there, the end of turn clipped final
        digits (FSDD 8-digit strings: 8.5% right against 10%, `ivr bench asr`).
        """
        if self._grammar is None or self._grammar.kind == "digits":
            return None
        words = [s for s in self._decoder.seg() or () if s.word and not s.word.startswith(FILLER_MARKS)]
        return (words[-1].end_frame + 1) / 100 if words else None

    def finish(self) -> Result:
        if self._resampler is None:
            return Result("", 0.0)
        self._process(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        self._resampler = None
        if not self._fed:  # nothing decoded: end_utt on an empty utterance is pointless
            self.reset()
            return Result("", 0.0)
        self._decoder.end_utt()
        self._phones.end_utt()
        return self._result()

    def reset(self) -> None:
        for decoder in (self._decoder, self._phones):
            if self._resampler is not None:
                try:
                    decoder.end_utt()
                except RuntimeError:
                    pass
        self._resampler = None
        self._partial = None
        self._fed = False
        self._energies = []
        self._energy_tail = np.zeros(0, dtype=np.float64)

    def _process(self, samples: np.ndarray) -> None:
        if len(samples) == 0:  # process_raw(b"") raises IndexError
            return
        clipped = np.clip(np.rint(samples), -32768, 32767)
        data = clipped.astype("<i2").tobytes()
        self._decoder.process_raw(data, False, False)
        self._phones.process_raw(data, False, False)
        self._fed = True
        pending = np.concatenate([self._energy_tail, clipped.astype(np.float64)])
        count = len(pending) // FRAME_SAMPLES
        if count:
            frames = pending[: count * FRAME_SAMPLES].reshape(count, FRAME_SAMPLES)
            self._energies.append(10 * np.log10(np.mean(frames**2, axis=1) + 1.0))
        self._energy_tail = pending[count * FRAME_SAMPLES :]

    def _result(self) -> Result:
        hyp = self._decoder.hyp()
        if hyp is None or not hyp.hypstr.strip():
            return Result("", 0.0)
        features = self._features()
        self.last_features = features
        model = self._models[self._grammar.kind if self._grammar else "phrases"]
        confidence = model.probability(features)
        if self._grammar is None or self._grammar.kind == "digits":
            # The lattice behind nbest() cost 0.4-2 s of CPU per 8-digit string and gave back
            # the best text again (40 FSDD strings, `ivr bench asr`): no alternatives for numbers.
            return Result(hyp.hypstr, confidence, ())
        best_log = math.log(max(hyp.score, 1e-300))
        words = max(1.0, features["word_frames"])
        alternatives: list[Alternative] = []
        seen = {hyp.hypstr}
        for index, entry in enumerate(self._decoder.nbest()):
            if index >= self._nbest * 4 or len(alternatives) >= self._nbest - 1:
                break
            if entry is None or entry.hypstr in seen or not self._grammar.accepts(entry.hypstr):
                continue
            seen.add(entry.hypstr)
            shift = (math.log(max(entry.score, 1e-300)) - best_log) / words * GAP_UNIT
            shifted = model.probability({**features, "gap_words": features["gap_words"] + shift})
            alternatives.append(Alternative(entry.hypstr, min(shifted, confidence)))
        return Result(hyp.hypstr, confidence, tuple(alternatives))

    def _features(self) -> dict[str, float]:
        """What the confidence is computed from (see the module docstring).

        `gap_words` and `gap_silence`: grammar minus phone-loop acoustic
        log-score per frame (in thousandths), over the frames of the words and
        over the rest; the phone loop's score of a phone is spread evenly over
        its frames, since its segments do not line up with the words'.
        """
        frames = max(1, self._decoder.n_frames())
        loop = np.zeros(frames)
        for segment in self._phones.seg() or ():
            start, end = max(0, segment.start_frame), min(frames - 1, segment.end_frame)
            if end >= start:
                loop[start : end + 1] = math.log(max(segment.ascore, 1e-300)) / (end - start + 1)
        in_words = np.zeros(frames, dtype=bool)
        grammar = {True: 0.0, False: 0.0}
        for segment in self._decoder.seg() or ():
            word = bool(segment.word) and not segment.word.startswith(FILLER_MARKS)
            grammar[word] += math.log(max(segment.ascore, 1e-300))
            if word and segment.start_frame >= 0:
                in_words[segment.start_frame : segment.end_frame + 1] = True
        in_words = in_words[:frames]
        word_frames, other_frames = int(in_words.sum()), int((~in_words).sum())
        energies = np.concatenate(self._energies) if self._energies else np.zeros(0)
        return {
            "gap_words": (grammar[True] - float(loop[in_words].sum())) / max(1, word_frames) * GAP_UNIT,
            "gap_silence": (grammar[False] - float(loop[~in_words].sum())) / max(1, other_frames) * GAP_UNIT
            if other_frames else 0.0,
            "coverage": _coverage(energies, in_words),
            "snr_db": min(SNR_CAP_DB, float(np.percentile(energies, 95) - np.percentile(energies, 10)))
            if len(energies) else 0.0,
            "word_frames": float(word_frames),
        }

    def _search_for(self, grammar: Grammar) -> str:
        """The decoder's search for this grammar, adding missing words once per call."""
        self._add_words(grammar.words())
        graph = fsg_for(grammar, self._known)
        name = "g" + graph.key()
        if name not in self._searches:
            if len(self._searches) > 32:  # a call has few distinct turns; bound it anyway
                for old in list(self._searches)[:16]:
                    self._decoder.remove_search(self._searches.pop(old))
            fsg = self._decoder.create_fsg(name, 0, graph.final, list(graph.transitions))
            self._decoder.add_fsg(name, fsg)
            self._searches[name] = name
        return name

    def _add_words(self, words: set[str]) -> None:
        pron = model_dictionary()
        missing = sorted(w for w in words - self._known if w in pron)
        for index, word in enumerate(missing):
            last = index == len(missing) - 1
            for variant, phones in enumerate(pron[word]):
                name = word if variant == 0 else f"{word}({variant + 1})"
                self._decoder.add_word(name, phones, last and variant == len(pron[word]) - 1)
            self._known.add(word)


def _coverage(energies: np.ndarray, in_words: np.ndarray) -> float:
    """Share of the utterance's loud frames that fall inside recognised words (not fillers).

    The floor is the line's noise (10th percentile: pre-roll and end silence
    are in the utterance); loud is within LOUD_DB of the peak (99th) and
    ABOVE_FLOOR_DB over the floor. No loud frame at all: nothing to cover (1.0).
    """
    count = min(len(energies), len(in_words))
    if not count:
        return 1.0
    energies, in_words = energies[:count], in_words[:count]
    floor = float(np.percentile(energies, 10))
    loud = energies >= max(float(np.percentile(energies, 99)) - LOUD_DB, floor + ABOVE_FLOOR_DB)
    return float(in_words[loud].mean()) if loud.any() else 1.0

