"""Does the recogniser's confidence mean what the flows' thresholds assume? Measured on held-out voices.

The flows reject speech below `reject_below` (a nomatch) and confirm a choice
below `confirm_below`; the confidence is meant to be the probability that
the answer is right (`ivr.speech.confidence`). This section speaks the
shipped flows' own turn grammars (every choices turn, the yes/no grammar of
the confirm turns, every digits turn that takes speech) in voices that
neither the tests nor the rest of `ivr bench asr` use, in conditions of a
phone line (speaking rates, telephone band with G.711 mu-law, white noise
at 20 and 10 dB SNR), plus out-of-grammar sentences, silence and noise
bursts, and counts per turn type what the engine would do:

- false reject: an in-grammar answer recognised right, below reject_below;
- wrong accepted without confirmation: an in-grammar answer heard as another
  outcome and acted on without a question (a yes/no turn never asks; a
  digits turn asks by reading back, unless the flow turns read-back off and
  the confidence clears confirm_below);
- out-of-grammar accepted (at all, and without confirmation); the same for
  silence and noise.

Two disjoint voice sets: FIT_VOICES, on which `--calibrate` fits the
logistic models the recogniser ships, and HELD_OUT_VOICES, on which every
rate is reported (and, under `--calibrate`, the refitted models too, from
the same decodes: features do not depend on the model). The tests use
flite slt/rms/awb/kal16 and espeak-ng ko; the fit set uses slt/rms/awb
only with a changed rate and pitch, the held-out set none of them.
All audio is made at run time.
"""

from __future__ import annotations

import functools
import itertools
import random
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ivr.digits import parse_digits
from ivr.engine.actions import Listen
from ivr.engine.events import Speech
from ivr.engine.matching import match, yes_no_grammar
from ivr.speech.audio import read_wav_8k
from ivr.speech.confidence import Logistic, fit

# (engine, voice, pitch for flite or None). Rates: espeak words per minute, flite duration stretch.
FIT_VOICES = [("espeak", "en-gb", None), ("espeak", "en-gb-x-gbclan", None), ("espeak", "en-gb-x-gbcwmd", None),
              ("espeak", "en-us+m3", None), ("espeak", "en-us+f2", None), ("espeak", "en-gb+klatt2", None),
              ("flite", "slt", 210), ("flite", "rms", 120), ("flite", "awb", 125)]
HELD_OUT_VOICES = [("espeak", "en-gb-x-rp", None), ("espeak", "en-029", None), ("espeak", "en-us-nyc", None),
                   ("espeak", "en-gb-scotland", None), ("espeak", "en-us+klatt", None), ("espeak", "en-gb+f4", None),
                   ("flite", "kal", None)]
RATES = {"espeak": (140, 175, 210), "flite": (1.2, 1.0, 0.85)}
BANDS = ("wide", "phone")  # 8 kHz as synthesised; 300-3400 Hz and mu-law, as a phone line carries it
SNRS = (None, 20.0, 10.0)
FIT_OUT_OF_GRAMMAR = ["the weather is nice today", "I want to buy a car", "what time is it", "hello",
                      "my address changed", "thank you very much", "can you hear me", "I lost my card",
                      "where is my nearest branch", "I would like a quote for home insurance", "um let me think",
                      "sorry I was talking to someone else", "maybe", "I'm not sure", "hang on a second",
                      "what did you say"]
HELD_OUT_OUT_OF_GRAMMAR = ["I don't know", "is anyone there", "my dog ate my homework", "just a moment please", "hmm",
                           "I need to think about it", "could you repeat the question", "the bus was late again",
                           "what are your opening hours", "I'm calling about my car", "okay", "well it depends",
                           "can I talk about something different", "hold on", "good morning", "my son handles that"]
DIGIT_WORDS = "zero one two three four five six seven eight nine".split()
TURN_TYPES = ("choices", "yes_no", "digits")


@dataclass(frozen=True)
class Condition:
    engine: str
    voice: str
    rate: float
    band: str
    snr: float | None
    pitch: int | None = None

    @property
    def label(self) -> str:
        noise = f"+{self.snr:g}dB" if self.snr is not None else ""
        return f"{self.engine}:{self.voice}@{self.rate:g}/{self.band}{noise}"


@dataclass(frozen=True)
class Sizes:
    conditions_per_phrase: int
    out_of_grammar_per_turn: int
    noise_per_turn: int  # each of: silence, steady noise, noise bursts
    digit_strings_per_turn: int


FULL = Sizes(4, 16, 3, 16)
QUICK = Sizes(1, 3, 1, 3)
CALIBRATE = Sizes(5, 16, 2, 60)


def conditions(voices: Iterable[tuple[str, str, int | None]]) -> list[Condition]:
    """Every voice × rate × band × noise; a flite voice the tests use only at a changed rate or pitch."""
    found = []
    for (engine, voice, pitch), band, snr in itertools.product(voices, BANDS, SNRS):
        for rate in RATES[engine]:
            found.append(Condition(engine, voice, rate, band, snr, pitch))
    return found


# ---------------------------------------------------------------- audio


@functools.lru_cache(maxsize=256)
def speak(text: str, condition: Condition) -> bytes:
    """8 kHz samples of `text` in the condition's voice, rate and band (noise is added by the turn runner)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        if condition.engine == "espeak":
            command = ["espeak-ng", "-v", condition.voice, "-s", f"{condition.rate:g}", "-w", str(out), text]
        else:
            command = ["flite", "-voice", condition.voice, "--setf", f"duration_stretch={condition.rate:g}"]
            command += ["--setf", f"int_f0_target_mean={condition.pitch}"] if condition.pitch else []
            command += ["-t", text, "-o", str(out)]
        subprocess.run(command, check=True, capture_output=True)
        pcm = read_wav_8k(out)
    return telephone(pcm) if condition.band == "phone" else pcm


def telephone(pcm: bytes) -> bytes:
    """300-3400 Hz (soft edges) and a G.711 mu-law round trip, as a phone line delivers speech."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if not len(samples):
        return pcm
    spectrum = np.fft.rfft(samples)
    hz = np.fft.rfftfreq(len(samples), 1 / 8000)
    spectrum *= np.clip((hz - 250) / 100, 0, 1) * np.clip((3500 - hz) / 200, 0, 1)
    banded = np.clip(np.fft.irfft(spectrum, len(samples)) / 32768, -1, 1)
    mu = 255.0
    code = np.round(np.sign(banded) * np.log1p(mu * np.abs(banded)) / np.log1p(mu) * 127) / 127
    decoded = np.sign(code) * np.expm1(np.abs(code) * np.log1p(mu)) / mu * 32768
    return np.clip(np.rint(decoded), -32768, 32767).astype("<i2").tobytes()


def non_speech(kind: str, seed: int) -> bytes:
    """1.5 s of silence, 2 s of steady white noise, or 1-3 noise bursts (knocks, rustle, a cough)."""
    rng = np.random.default_rng(seed)
    if kind == "silence":
        return b"\0\0" * 12000
    if kind == "noise":
        samples = rng.normal(0, rng.choice([300.0, 1000.0, 3000.0]), 16000)
    else:
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            length = int(8000 * rng.uniform(0.15, 0.6))
            burst = rng.normal(0, 1, length)
            if rng.random() < 0.5:  # duller, like a knock or breath
                burst = np.convolve(burst, np.ones(int(rng.integers(2, 8))) / 4, "same")
            gap = np.zeros(int(8000 * rng.uniform(0.05, 0.3)))
            parts += [burst * np.hanning(length) * rng.uniform(2000, 9000), gap]
        samples = np.concatenate(parts)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


# ---------------------------------------------------------------- the shipped turns


@dataclass(frozen=True)
class Turn:
    where: str
    type: str  # choices | yes_no | digits
    listen: Listen
    reject: float
    confirm: float
    readback: bool = True  # digits: the engine reads the number back (a confirmation) whatever the confidence


def shipped_turns(release) -> list[Turn]:
    """The choices turns, one yes/no turn (the confirm turns share the grammar), every spoken digits turn."""
    from ivr.bench.asr import _threshold, _timeouts, flow_turns
    from ivr.flow import model

    turns: list[Turn] = []
    yes_no_seen = False
    for info in flow_turns(release):
        kind = "choices" if info["listen"].mode == "choices" else "yes_no"
        if kind == "yes_no":
            if yes_no_seen:
                continue
            yes_no_seen = True
        turns.append(Turn(info["where"], kind, info["listen"], info["reject"], info["confirm"]))
    for name, flow in sorted(release.flows.items()):
        for node_id, node in flow.nodes.items():
            if not isinstance(node, model.AskNode) or model.ask_mode(node.ask) != "digits" or not node.ask.speech:
                continue
            spec = node.ask.digits
            if spec is None:  # never: a digits turn has its digits
                continue
            grammar: dict[str, str] = {}
            for global_name, choice in flow.globals.items():
                grammar.update({p: f"global:{global_name}" for p in model.phrases_for(choice, "en", flow.languages)})
            listen = Listen(mode="digits", language="en", grammar=grammar, min_digits=spec.min, max_digits=spec.max,
                            timeouts=_timeouts(flow, node.ask))
            turns.append(Turn(f"{name}.{node_id}", "digits", listen,
                              _threshold(node.ask.reject_below, flow.defaults.reject_below),
                              _threshold(node.ask.confirm_below, flow.defaults.confirm_below), bool(spec.readback)))
    return turns


@dataclass(frozen=True)
class Job:
    turn: Turn
    kind: str  # in_grammar | out_of_grammar | silence | noise | bursts
    text: str
    expected: str | None  # the outcome (or digit string) a right answer gives
    condition: Condition | None
    seed: int


def jobs(turns: list[Turn], voices: list, sentences: list[str], sizes: Sizes, seed: int) -> list[Job]:
    rng = random.Random(seed)
    pool = conditions(voices)
    found: list[Job] = []
    for turn in turns:
        if turn.type == "digits":
            for _ in range(sizes.digit_strings_per_turn):
                length = rng.randint(turn.listen.min_digits, turn.listen.max_digits)
                digits = "".join(rng.choice("0123456789") for _ in range(length))
                found.append(Job(turn, "in_grammar", _say_digits(digits, rng), digits, rng.choice(pool),
                                 rng.randrange(10**6)))
        else:
            for phrase, outcome in turn.listen.grammar.items():
                count = sizes.conditions_per_phrase
                if outcome.startswith("global:"):  # on every turn: fewer conditions each
                    count = max(1, count // 2)
                for condition in rng.sample(pool, min(count, len(pool))):
                    found.append(Job(turn, "in_grammar", phrase, outcome, condition, rng.randrange(10**6)))
        for sentence in rng.sample(sentences, min(sizes.out_of_grammar_per_turn, len(sentences))):
            found.append(Job(turn, "out_of_grammar", sentence, None, rng.choice(pool), rng.randrange(10**6)))
        for kind in ("silence", "noise", "bursts"):
            found += [Job(turn, kind, "", None, None, rng.randrange(10**6)) for _ in range(sizes.noise_per_turn)]
    rng.shuffle(found)
    return found


def _say_digits(digits: str, rng: random.Random) -> str:
    """Digit words, in groups of 2-4 with a pause (a comma) between some, as people read numbers."""
    words = [DIGIT_WORDS[int(d)] for d in digits]
    if rng.random() < 0.5:
        return " ".join(words)
    out, index = [], 0
    while index < len(words):
        size = rng.randint(2, 4)
        out.append(" ".join(words[index : index + size]))
        index += size
    return ", ".join(out)


# ---------------------------------------------------------------- decoding (pool workers)


def _worker(task: tuple[str, list[Job]]) -> list[dict[str, Any]]:
    from ivr.bench.asr import make_turn, recognizer_for, run_turn

    kind, jobs_part = task
    recognizer = recognizer_for(kind)
    turn = make_turn(recognizer)
    rows = []
    for job in jobs_part:
        recognizer.last_features = None
        audio = non_speech(job.kind, job.seed) if job.condition is None else speak(job.text, job.condition)
        snr = job.condition.snr if job.condition is not None else None
        event = run_turn(turn, job.turn.listen, audio, snr=snr, seed=job.seed)["event"]
        speech = isinstance(event, Speech)
        heard = _heard(job.turn, event.text) if speech else None
        rows.append({"turn": job.turn.where, "type": job.turn.type, "kind": job.kind, "said": job.text,
                     "condition": job.condition.label if job.condition else job.kind,
                     "snr": snr, "text": event.text if speech else None, "heard": heard,
                     "confidence": event.confidence if speech else None,
                     "right": heard is not None and heard == job.expected,
                     "features": dict(recognizer.last_features) if speech and recognizer.last_features else None})
    return rows


def _heard(turn: Turn, text: str) -> str | None:
    """The outcome (or the digit string) the engine would take from `text`."""
    outcome = match(text, turn.listen.grammar or yes_no_grammar("en"))
    if turn.type == "digits" and (outcome is None or not outcome.startswith("global:")):
        return parse_digits(text)
    return outcome


def decode(pool, workers: int, all_jobs: list[Job], kind: str = "pocketsphinx") -> list[dict[str, Any]]:
    parts = [(kind, all_jobs[i :: workers * 3]) for i in range(workers * 3) if all_jobs[i :: workers * 3]]
    return [row for part in pool.map(_worker, parts) for row in part]


# ---------------------------------------------------------------- what the engine would do


def decision(turn: Turn, row: dict[str, Any], confidence: float | None) -> str:
    """nomatch | confirm | act, as `ivr.engine.machine` treats the top hypothesis."""
    if confidence is None or row["text"] is None or confidence < turn.reject:
        return "nomatch"
    heard = row["heard"]
    if heard is None:
        return "nomatch"
    if heard.startswith("global:"):  # acted on at once when sure; otherwise as any answer of the turn
        if confidence >= turn.confirm:
            return "act"
        return {"choices": "confirm", "yes_no": "act", "digits": "nomatch"}[turn.type]
    if turn.type == "digits":
        return "confirm" if turn.readback or confidence < turn.confirm else "act"
    if turn.type == "choices" and confidence < turn.confirm:
        return "confirm"
    return "act"


def rates(rows: list[dict[str, Any]], turns: dict[str, Turn],
          model: dict[str, Logistic] | None = None) -> dict[str, Any]:
    """Per turn type: false rejects, wrong answers acted on, out-of-grammar and noise accepted.

    Shares of: right answers (false_reject, right_acted_on_without_question),
    answers heard as another outcome (wrong_...), out-of-grammar sentences,
    silence and noise. With `model`, each row's confidence is recomputed from
    its features (a refit scored on the same decodes).
    """
    report: dict[str, Any] = {}
    for kind in TURN_TYPES:
        pairs = [(r, decision(turns[r["turn"]], r, _confidence(r, model))) for r in rows if r["type"] == kind]
        if not pairs:
            continue
        spoken = [(r, a) for r, a in pairs if r["kind"] == "in_grammar"]
        right = [(r, a) for r, a in spoken if r["right"]]
        wrong = [(r, a) for r, a in spoken if not r["right"] and r["text"] is not None]
        oog = [(r, a) for r, a in pairs if r["kind"] == "out_of_grammar"]
        quiet = [(r, a) for r, a in pairs if r["kind"] in ("silence", "noise", "bursts")]
        report[kind] = {
            "in_grammar": len(spoken), "recognised_right": _share(r["right"] for r, _ in spoken),
            "right": len(right), "heard_as_another_answer": len(wrong),
            "false_reject": _share(a == "nomatch" for _, a in right),
            "right_acted_on_without_question": _share(a == "act" for _, a in right),
            "wrong_accepted_without_confirmation": _share(a == "act" for _, a in wrong),
            "out_of_grammar": len(oog), "out_of_grammar_accepted": _share(a != "nomatch" for _, a in oog),
            "out_of_grammar_accepted_without_confirmation": _share(a == "act" for _, a in oog),
            "silence_and_noise": len(quiet), "silence_and_noise_accepted": _share(a != "nomatch" for _, a in quiet),
            "silence_and_noise_accepted_without_confirmation": _share(a == "act" for _, a in quiet),
            "false_reject_by_snr": {_snr_label(snr): _share(a == "nomatch" for r, a in right if r["snr"] == snr)
                                    for snr in SNRS if any(r["snr"] == snr for r, _ in right)},
            "examples_false_reject": [_example(r, model) for r, a in right if a == "nomatch"][:5],
            "examples_acted_on_wrongly": [_example(r, model) for r, a in wrong + oog + quiet if a == "act"][:5],
        }
    report["reliability"] = reliability(rows, model)
    return report


def reliability(rows: list[dict[str, Any]], model: dict[str, Logistic] | None = None) -> list[dict[str, Any]]:
    """Confidence against how often it was right, in five bins (a calibrated scale lies near the diagonal)."""
    scored = [(c, r["right"]) for r in rows if (c := _confidence(r, model)) is not None]
    bins = []
    for low in (0.0, 0.2, 0.4, 0.6, 0.8):
        inside = [right for c, right in scored if low <= c < low + 0.2 or (low == 0.8 and c == 1.0)]
        bins.append({"confidence": f"{low:.1f}-{low + 0.2:.1f}", "results": len(inside), "right": _share(inside)})
    return bins


def _confidence(row: dict[str, Any], model: dict[str, Logistic] | None) -> float | None:
    if model is None or row["features"] is None:
        return row["confidence"]
    return model["digits" if row["type"] == "digits" else "phrases"].probability(row["features"])


def _example(row: dict[str, Any], model: dict[str, Logistic] | None) -> dict[str, Any]:
    confidence = _confidence(row, model)
    return {"turn": row["turn"], "said": row["said"] or row["kind"], "heard": row["text"],
            "condition": row["condition"], "confidence": round(confidence, 3) if confidence is not None else None}


def _snr_label(snr: float | None) -> str:
    return "clean" if snr is None else f"{snr:g}dB"


def _share(values) -> float | None:
    values = list(values)
    return round(sum(bool(v) for v in values) / len(values), 3) if values else None


# ---------------------------------------------------------------- fitting


FEATURES = {"pocketsphinx": ("gap_words", "gap_silence", "coverage", "snr_db"),
            "whisper": ("similarity", "logprob", "no_speech", "margin")}
SHIPPED_IN = {"pocketsphinx": "ivr/speech/pocketsphinx_asr.py", "whisper": "ivr/speech/whisper_asr.py"}


def calibrate(rows: list[dict[str, Any]], recogniser: str = "pocketsphinx") -> dict[str, Logistic]:
    """P(right) per grammar kind over the recogniser's FEATURES, from every result it returned (right or not)."""
    models = {}
    for kind, types in (("phrases", ("choices", "yes_no")), ("digits", ("digits",))):
        part = [r for r in rows if r["type"] in types and r["features"] is not None]
        if not part or all(r["right"] for r in part) or not any(r["right"] for r in part):
            raise RuntimeError(f"cannot fit {kind}: need right and wrong results, got {len(part)}")
        models[kind] = fit([r["features"] for r in part], [r["right"] for r in part], FEATURES[recogniser])
    return models


def source(models: dict[str, Logistic]) -> str:
    """The models as the recogniser's constant `CONFIDENCE` ships them."""
    lines = ["CONFIDENCE: dict[str, Logistic] = {"]
    lines += [f'    "{kind}": {model.source("    ")},' for kind, model in models.items()]
    return "\n".join(lines + ["}"])


def bench(release, pool, workers: int, quick: bool, refit: bool, progress=lambda message: None,
          recogniser: str = "pocketsphinx") -> dict[str, Any]:
    """The section of `ivr bench asr`: rates on held-out voices; with `refit`, a new fit on the fit voices."""
    turns = shipped_turns(release)
    by_name = {turn.where: turn for turn in turns}
    sizes = QUICK if quick else FULL
    progress(f"{recogniser}: confidence on held-out voices ({len(HELD_OUT_VOICES)} voices)")
    held_out = decode(pool, workers, jobs(turns, HELD_OUT_VOICES, HELD_OUT_OUT_OF_GRAMMAR, sizes, seed=2), recogniser)
    report: dict[str, Any] = {
        "what": "shipped flows' turn grammars spoken by voices no test uses; rates are what the engine would do "
                "with the top hypothesis at each turn's reject_below/confirm_below",
        "voices": [f"{e}:{v}" for e, v, _ in HELD_OUT_VOICES], "rates": {e: list(r) for e, r in RATES.items()},
        "bands": list(BANDS), "snr_db": [_snr_label(s) for s in SNRS],
        "turns": {t.where: {"type": t.type, "reject_below": t.reject, "confirm_below": t.confirm,
                            **({"readback": t.readback} if t.type == "digits" else {})} for t in turns},
        "utterances": len(held_out), "held_out": rates(held_out, by_name),
    }
    if refit:
        progress(f"{recogniser}: calibration utterances on the fit voices ({len(FIT_VOICES)} voices)")
        fitted_rows = decode(pool, workers, jobs(turns, FIT_VOICES, FIT_OUT_OF_GRAMMAR, CALIBRATE, seed=1), recogniser)
        models = calibrate(fitted_rows, recogniser)
        report["calibration"] = {
            "fit_voices": [f"{e}:{v}" + (f"(pitch {p})" if p else "") for e, v, p in FIT_VOICES],
            "fit_utterances": len(fitted_rows), "source": source(models), "paste_into": SHIPPED_IN[recogniser],
            "fit": rates(fitted_rows, by_name, models), "held_out_with_refit": rates(held_out, by_name, models),
        }
    return report


def summary_lines(section: dict[str, Any]) -> list[str]:
    """One line per turn type for people (held-out voices; with a refit, its held-out rates too)."""
    lines = []
    for label, key in (("", "held_out"), (" (refit)", None)):
        part = section[key] if key else section.get("calibration", {}).get("held_out_with_refit")
        if not part:
            continue
        for kind in TURN_TYPES:
            if kind in part:
                r = part[kind]
                lines.append(
                    f"confidence{label}, {kind} (held-out voices): right {_pct(r['recognised_right'])} of "
                    f"{r['in_grammar']}, false reject {_pct(r['false_reject'])}, wrong acted on "
                    f"{_pct(r['wrong_accepted_without_confirmation'])} of wrong; out-of-grammar accepted "
                    f"{_pct(r['out_of_grammar_accepted'])} (unasked {_pct(r['out_of_grammar_accepted_without_confirmation'])}); "
                    f"silence/noise accepted {_pct(r['silence_and_noise_accepted'])}")
    if "calibration" in section:
        lines.append(f"refitted confidence models, to paste into {section['calibration'].get('paste_into')}:")
        lines += section["calibration"]["source"].splitlines()
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


__all__ = ["Condition", "Turn", "bench", "calibrate", "conditions", "decision", "rates", "shipped_turns", "speak",
           "summary_lines", "telephone"]
