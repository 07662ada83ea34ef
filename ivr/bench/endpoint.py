"""Where a turn's speech starts and ends, by each voice detector, against where the speech really is.

A section of `ivr bench asr`. Phrases of the shipped flows' turns (flite and
espeak-ng voices) and FSDD digit strings (human speakers, pauses between
digits), clean and with white noise through the whole stream at 20 and 10 dB
SNR; and clips with no words at all (silence, line noise, breathing, a
swelling chord like hold music). Each runs through the `Endpointer` alone (no
recogniser, so no early end) with the flows' usual timeouts, once per
detector (`ivr.speech.endpoint.Voice`: webrtc, silero, both). The truth is
the clean speech's own extent (10 ms frames within 35 dB of its loudest).

- missed: speech that never started a turn (a noinput);
- false start: a clip with no words that started one;
- premature end: the turn ended while the caller was still speaking;
- clipped: the last voiced frame is more than 0.15 s before the speech ends;
- start late / end delay: the turn's speech start after the truth's, and the
  turn's end after the speech's end (about end_silence, 0.8 s, when right).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from ivr.engine.actions import Timeouts
from ivr.speech.endpoint import Boundary, Detector, Endpointer

DETECTORS: tuple[Detector, ...] = ("webrtc", "silero", "both")
TIMEOUTS = Timeouts(noinput=5.0, end_silence=0.8, max_speech=15.0, interdigit=3.0)
LEAD, TAIL = 0.5, 2.5
VOICES = ["slt", "rms", "awb", "kal16", "espeak:en-us", "espeak:en-gb"]
SNRS = (None, 20.0, 10.0)
CLIP_SECONDS = 0.15


def extent(pcm: bytes) -> tuple[float, float]:
    """First and last 10 ms frame of speech (within 35 dB of the loudest), in seconds."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frames = samples[: len(samples) // 80 * 80].reshape(-1, 80)
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1.0)
    loud = np.flatnonzero(energy >= energy.max() - 35.0)
    return float(loud[0]) * 0.01, float(loud[-1] + 1) * 0.01


def non_speech(kind: str, seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    n = int(8000 * seconds)
    t = np.arange(n) / 8000
    if kind == "silence":
        samples = np.zeros(n)
    elif kind == "line noise":
        samples = rng.normal(0, 1500, n)
    elif kind == "breathing":  # slow bursts of low-passed noise
        envelope = np.clip(np.sin(2 * np.pi * 0.35 * t), 0, None) ** 2
        samples = np.convolve(rng.normal(0, 2500, n), np.ones(12) / 12, mode="same") * envelope
    else:  # hold music: a chord swelling and fading
        chord = sum(np.sin(2 * np.pi * f * t) for f in (262, 330, 392, 523))
        samples = chord * 2000 * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def cases(turns: list[dict[str, Any]], folder: Path | None, quick: bool, seed: int = 9) -> list[dict[str, Any]]:
    """The clips: speech with its truth, and clips with no words."""
    from ivr.bench.asr import fsdd_string, random_digits, synth

    rng = random.Random(seed)
    phrases = sorted({p for t in turns for p in t["listen"].grammar})
    rng.shuffle(phrases)
    out = []
    for index, phrase in enumerate(phrases[: 10 if quick else 40]):
        out.append({"kind": "phrase", "pcm": synth(phrase, VOICES[index % len(VOICES)]), "what": phrase})
    if folder is not None:
        for index in range(3 if quick else 20):
            digits = random_digits(rng)
            speaker = ["george", "jackson", "nicolas", "yweweler"][index % 4]
            out.append({"kind": "digits", "pcm": fsdd_string(folder, digits, speaker, rng), "what": digits})
    speech = [{**case, "snr": snr} for case in out for snr in SNRS]
    quiet = [{"kind": kind, "pcm": non_speech(kind, 3.0, k), "what": kind, "snr": None}
             for k in range(1 if quick else 4) for kind in ("silence", "line noise", "breathing", "hold music")]
    return speech + quiet


def run_case(case: dict[str, Any], detector: Detector) -> dict[str, Any]:
    from ivr.bench.asr import add_noise, silence

    pcm = case["pcm"]
    audio = silence(LEAD) + pcm + silence(TAIL)
    if case["snr"] is not None:
        audio = add_noise(audio, case["snr"], 5, speech=pcm)
    endpointer = Endpointer(TIMEOUTS, detector=detector)
    started = ended = voiced_end = None
    for start in range(0, len(audio) - 319, 320):
        event = endpointer.process(audio[start : start + 320])
        if event is None:
            continue
        if event.kind is Boundary.SPEECH_STARTED:
            started = event.at
        elif event.kind is Boundary.NOINPUT:
            break
        else:
            ended, voiced_end = endpointer.time, event.at
            break
    row: dict[str, Any] = {"kind": case["kind"], "snr": case["snr"], "what": case["what"], "started": started}
    if case["kind"] in ("phrase", "digits"):
        first, last = extent(pcm)
        truth_start, truth_end = LEAD + first, LEAD + last
        row.update(missed=started is None,
                   premature=ended is not None and ended < truth_end,
                   clipped=voiced_end is not None and voiced_end < truth_end - CLIP_SECONDS,
                   start_late=None if started is None else round(started - truth_start, 3),
                   end_delay=None if ended is None else round(ended - truth_end, 3))
    else:
        row["false_start"] = started is not None
    return row


def _worker(task: tuple[Detector, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    detector, part = task
    return [run_case(case, detector) for case in part]


def bench(turns: list[dict[str, Any]], folder: Path | None, pool, workers: int, quick: bool) -> dict[str, Any]:
    all_cases = cases(turns, folder, quick)
    report: dict[str, Any] = {"what": __doc__.split("\n\n")[0].split(":", 1)[-1].strip(),
                              "timeouts": {"end_silence": TIMEOUTS.end_silence, "noinput": TIMEOUTS.noinput},
                              "clips": len(all_cases)}
    for detector in DETECTORS:
        tasks = [(detector, all_cases[i :: workers * 2]) for i in range(workers * 2) if all_cases[i :: workers * 2]]
        rows = [row for part in pool.map(_worker, tasks) for row in part]
        report[detector] = summarise(rows)
    return report


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from ivr.bench.asr import _share, _stats

    out: dict[str, Any] = {}
    speech = [r for r in rows if "missed" in r]
    for label, snr in (("clean", None), ("20dB", 20.0), ("10dB", 10.0)):
        part = [r for r in speech if r["snr"] == snr]
        out[label] = {
            "clips": len(part), "missed": _share(r["missed"] for r in part),
            "premature_end": _share(r["premature"] for r in part), "clipped": _share(r["clipped"] for r in part),
            "start_late_s": _stats([r["start_late"] for r in part if r["start_late"] is not None]),
            "end_delay_s": _stats([r["end_delay"] for r in part if r["end_delay"] is not None]),
        }
    quiet = [r for r in rows if "false_start" in r]
    out["no_words"] = {kind: _share(r["false_start"] for r in quiet if r["kind"] == kind)
                       for kind in sorted({r["kind"] for r in quiet})}
    out["errors"] = [{k: r.get(k) for k in ("kind", "snr", "what", "started", "end_delay")}
                     for r in speech if r["missed"] or r["premature"] or r["clipped"]][:12]
    return out


def summary_lines(section: dict[str, Any]) -> list[str]:
    lines = []
    for detector in DETECTORS:
        d = section[detector]
        parts = ", ".join(f"{label} missed {_pct(d[label]['missed'])} premature {_pct(d[label]['premature_end'])} "
                          f"clipped {_pct(d[label]['clipped'])}" for label in ("clean", "20dB", "10dB"))
        quiet = ", ".join(f"{k} {_pct(v)}" for k, v in d["no_words"].items())
        lines.append(f"end of speech by {detector}: {parts}; false starts: {quiet}")
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"
