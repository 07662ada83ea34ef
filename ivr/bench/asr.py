"""`ivr bench asr`: how well and how fast speech recognition works on this machine.

For each recogniser available (pocketsphinx always; vosk only for a model's
own language, so it is listed but not scored on English):
- choices: every `ask` with choices in the shipped flows, its Listen grammar
  built as the engine does (choices + globals, English), each phrase spoken
  by flite voices slt/rms/awb/kal16, espeak-ng en-us, and rms with white
  noise at 20 dB SNR; right = the engine's `match` on the result gives the
  phrase's outcome and the confidence clears the flows' reject threshold.
  Out-of-grammar sentences measure false accepts on the main menu.
- digits: 8-digit strings concatenated from FSDD takes (human speakers,
  0.1–0.3 s gaps): per-digit and per-string accuracy, and how often the
  truth is in the N-best list.
- latency: end of speech → result in stream time, with early endpointing
  (complete partial + 0.25 s) and with the plain end_silence, plus the CPU
  time `finish()` takes.
- rtf: CPU seconds per second of audio for one stream (pipeline incl. VAD).
- streams_per_core: processes pinned to one core, each pacing a stream in
  real time; the most streams whose frames are all processed on time
  (p95 lag ≤ 100 ms).
- task: simulated FSDD callers giving an 8-digit policy number, as the
  engine runs the turn: voice → read-back "I have …, is that correct?" →
  the caller says yes/no (flite voice, recognised too) → on no, a nomatch or
  a noinput the engine asks to key it in, and the caller keys it. Success =
  the right number captured within those two turns; a wrong number
  confirmed by a misheard "yes" is the failure that matters.

All audio passes through `SpeechTurn` (VAD + recogniser + endpointing) in
20 ms frames, as a call's would.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ivr.digits import parse_digits
from ivr.engine.actions import Listen, Timeouts
from ivr.engine.events import NoInput, NoMatch, Speech
from ivr.engine.matching import match, yes_no_grammar
from ivr.speech.audio import read_wav_8k

FLITE_VOICES = ["slt", "rms", "awb", "kal16"]
REJECT_BELOW = 0.25  # the flows' default reject_below
OUT_OF_GRAMMAR = ["the weather is nice today", "I want to buy a car", "what time is it", "hello",
                  "my address changed", "thank you very much", "can you hear me", "I lost my card"]
TIMEOUTS = Timeouts(noinput=5.0, end_silence=0.8, max_speech=15.0, interdigit=3.0)
SPEAKERS = ["george", "jackson", "nicolas", "yweweler"]


# ---------------------------------------------------------------- audio

def synth(text: str, voice: str) -> bytes:
    """8 kHz samples from flite (`slt`…) or espeak-ng (`espeak:en-us`)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        if voice.startswith("espeak:"):
            command = ["espeak-ng", "-v", voice.split(":", 1)[1], "-w", str(out), text]
        else:
            command = ["flite", "-voice", voice, "-t", text, "-o", str(out)]
        subprocess.run(command, check=True, capture_output=True)
        return read_wav_8k(out)


def add_noise(pcm: bytes, snr_db: float, seed: int) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    loud = samples[np.abs(samples) > 200]
    power = float(np.mean(loud**2)) if len(loud) else 1e6
    noise = np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(samples))
    return np.clip(samples + noise, -32768, 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(8000 * seconds)


def fsdd_string(folder: Path, digits: str, speaker: str, rng: random.Random) -> bytes:
    takes = [read_wav_8k(folder / f"{d}_{speaker}_{rng.randrange(50)}.wav") for d in digits]
    return b"".join(take + silence(rng.uniform(0.1, 0.3)) for take in takes)


# ---------------------------------------------------------------- turns

def make_turn(early_silence: float = 0.25):
    from ivr.speech.pocketsphinx_asr import PocketsphinxRecognizer
    from ivr.speech.turn import SpeechTurn

    return SpeechTurn(PocketsphinxRecognizer(), early_silence=early_silence)


def run_turn(turn, listen: Listen, speech: bytes, lead: float = 0.5, tail: float = 2.5) -> dict[str, Any]:
    """Feed one answer in 20 ms frames; the event, its timing and the CPU it took."""
    from ivr.speech.turn import TurnEnded

    audio = silence(lead) + speech + silence(tail)
    turn.start(listen)
    cpu = time.process_time()
    ended = None
    for start in range(0, len(audio), 320):
        for output in turn.feed(audio[start : start + 320]):
            if isinstance(output, TurnEnded):
                ended = output
        if ended:
            break
    cpu = time.process_time() - cpu
    if ended is None:
        turn.cancel()
        return {"event": NoInput(), "cpu": cpu, "audio": len(audio) / 16000}
    latency = ended.at - ended.speech_end if ended.speech_end is not None else None
    return {"event": ended.event, "early": ended.early, "latency": latency, "cpu": cpu,
            "audio": ended.at}


def choices_listen(grammar: dict[str, str]) -> Listen:
    return Listen(mode="choices", language="en", grammar=grammar, timeouts=TIMEOUTS)


def digits_listen(length: int = 8, globals_: dict[str, str] | None = None) -> Listen:
    return Listen(mode="digits", language="en", grammar=globals_ or {}, min_digits=length, max_digits=length,
                  timeouts=TIMEOUTS)


def confirm_listen() -> Listen:
    return Listen(mode="confirm", language="en", grammar=yes_no_grammar("en"), timeouts=TIMEOUTS)


# ---------------------------------------------------------------- grammars of the shipped flows

def flow_turns(flows_dir: Path, prompts_dir: Path) -> list[tuple[str, dict[str, str]]]:
    """(flow.node, phrase → outcome) for every ask with choices, as the engine builds it."""
    from ivr.flow import model
    from ivr.flow.catalog import load_flow_set

    flow_set, _ = load_flow_set(flows_dir, prompts_dir)
    turns = []
    for name, flow in sorted(flow_set.flows.items()):
        for node_id, node in flow.nodes.items():
            if not (isinstance(node, model.AskNode) and node.ask.choices):
                continue
            grammar: dict[str, str] = {}
            for choice_name, choice in node.ask.choices.items():
                grammar.update({p: choice_name for p in model.phrases_for(choice, "en", flow.languages)})
            for global_name, choice in flow.globals.items():
                grammar.update({p: f"global:{global_name}" for p in model.phrases_for(choice, "en", flow.languages)})
            turns.append((f"{name}.{node_id}", grammar))
    return turns


# ---------------------------------------------------------------- workers (one process each)

def _choices_worker(jobs: list[tuple[str, dict[str, str], str, str, float | None]]) -> list[dict[str, Any]]:
    turn, plain = make_turn(0.25), make_turn(10.0)
    rows = []
    for index, (where, grammar, phrase, voice, snr) in enumerate(jobs):
        speech = synth(phrase, voice)
        if snr is not None:
            speech = add_noise(speech, snr, seed=index)
        listen = choices_listen(grammar)
        result = run_turn(turn, listen, speech)
        event = result["event"]
        expected = grammar.get(phrase)
        heard = match(event.text, grammar) if isinstance(event, Speech) else None
        accepted = isinstance(event, Speech) and event.confidence >= REJECT_BELOW
        row = {"turn": where, "phrase": phrase, "voice": voice + (f"+noise{snr:g}dB" if snr is not None else ""),
               "expected": expected, "heard": heard, "right": accepted and heard == expected,
               "confidence": getattr(event, "confidence", None), "early": result.get("early"),
               "latency": result.get("latency"), "cpu": result["cpu"], "audio": result["audio"],
               "gap": getattr(turn.recognizer, "last_gap", None)}
        if snr is None and voice in ("slt", "rms"):
            row["latency_plain"] = run_turn(plain, listen, speech).get("latency")
        rows.append(row)
    return rows


def _oog_worker(jobs: list[tuple[dict[str, str], str, str]]) -> list[dict[str, Any]]:
    turn = make_turn()
    rows = []
    for grammar, sentence, voice in jobs:
        event = run_turn(turn, choices_listen(grammar), synth(sentence, voice))["event"]
        accepted = isinstance(event, Speech) and event.confidence >= REJECT_BELOW
        rows.append({"sentence": sentence, "voice": voice, "false_accept": accepted,
                     "gap": getattr(turn.recognizer, "last_gap", None),
                     "text": getattr(event, "text", None), "confidence": getattr(event, "confidence", None)})
    return rows


def _digits_worker(args: tuple[str, list[tuple[str, str, int]]]) -> list[dict[str, Any]]:
    folder, jobs = Path(args[0]), args[1]
    turn = make_turn()
    rows = []
    for digits, speaker, seed in jobs:
        speech = fsdd_string(folder, digits, speaker, random.Random(seed))
        result = run_turn(turn, digits_listen(), speech)
        event = result["event"]
        heard = parse_digits(event.text) if isinstance(event, Speech) else None
        nbest = [parse_digits(a.text) for a in getattr(event, "alternatives", [])]
        rows.append({"digits": digits, "speaker": speaker, "heard": heard,
                     "digit_right": sum(a == b for a, b in zip(heard or "", digits)),
                     "in_nbest": heard == digits or digits in nbest, "confidence": getattr(event, "confidence", None),
                     "cpu": result["cpu"], "audio": result["audio"], "latency": result.get("latency")})
    return rows


def _task_worker(args: tuple[str, list[tuple[str, str, int, str]]]) -> list[dict[str, Any]]:
    """One simulated caller per job: voice turn, read-back, yes/no, keypad fallback."""
    folder, jobs = Path(args[0]), args[1]
    turn = make_turn()
    answers = {(w, v): synth(w, v) for w in ("yes", "no") for v in FLITE_VOICES}
    rows = []
    for digits, speaker, seed, voice in jobs:
        event = run_turn(turn, digits_listen(), fsdd_string(folder, digits, speaker, random.Random(seed)))["event"]
        heard = _digits_of(event)
        row = {"digits": digits, "speaker": speaker, "heard": heard, "turns": 1}
        if heard is None or len(heard) != 8:
            row.update(outcome="keyed", captured=digits, turns=2)  # engine: nomatch → "please key it in"
        else:
            said = "yes" if heard == digits else "no"
            reply = run_turn(turn, confirm_listen(), answers[(said, voice)])["event"]
            understood = match(reply.text, yes_no_grammar("en")) if isinstance(reply, Speech) else None
            if understood == "yes":
                row.update(outcome="voice", captured=heard, confirm=said)
            else:
                row.update(outcome="keyed", captured=digits, turns=2, confirm=said)
        row["success"] = row["captured"] == digits
        rows.append(row)
    return rows


def _digits_of(event: Speech | NoMatch | NoInput) -> str | None:
    """The engine's reading: the best hypothesis, else the first alternative that parses."""
    if not isinstance(event, Speech) or event.confidence < REJECT_BELOW:
        return None
    for text in [event.text, *[a.text for a in event.alternatives]]:
        digits = parse_digits(text)
        if digits is not None:
            return digits
    return None


def _pace_worker(audio: bytes, duration: float, barrier: Any, results: Any) -> None:
    """Feed a stream in real time on core 0; lag of each frame behind its due time."""
    os.sched_setaffinity(0, {0})
    turn = make_turn()
    listen = choices_listen({p: p for p in ["payment", "cancel my policy", "update my phone number", "agent"]})
    turn.start(listen)
    barrier.wait()
    lags, start, frames = [], time.monotonic(), len(audio) // 320
    for index in range(int(duration / 0.02)):
        due = start + index * 0.02
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        chunk = audio[(index % frames) * 320 : (index % frames) * 320 + 320]
        if not turn.active:
            turn.start(listen)
        turn.feed(chunk)
        lags.append(time.monotonic() - due)
    results.put(lags)


# ---------------------------------------------------------------- sections

def _split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts) if items[i::parts]]


def bench_choices(flows_dir: Path, prompts_dir: Path, pool, workers: int, limit: int | None) -> dict[str, Any]:
    turns = flow_turns(flows_dir, prompts_dir)
    voices: list[tuple[str, float | None]] = [(v, None) for v in FLITE_VOICES] + [("espeak:en-us", None), ("rms", 20.0)]
    jobs = [(where, grammar, phrase, voice, snr) for where, grammar in turns
            for phrase in grammar if not grammar[phrase].startswith("global:") for voice, snr in voices]
    jobs += [(turns[0][0], turns[0][1], phrase, "slt", None) for phrase in turns[0][1] if turns[0][1][phrase].startswith("global:")]
    if limit:
        jobs = random.Random(3).sample(jobs, min(limit, len(jobs)))
    rows = [row for part in pool.map(_choices_worker, _split(jobs, workers)) for row in part]
    menu = next(g for w, g in turns if w.startswith("main_menu")) if turns else {}
    oog = [r for part in pool.map(_oog_worker, _split([(menu, s, v) for s in OUT_OF_GRAMMAR for v in ("slt", "rms", "espeak:en-us")], workers)) for r in part]
    by_voice: dict[str, list[bool]] = {}
    for row in rows:
        by_voice.setdefault(row["voice"], []).append(row["right"])
    early = [r["latency"] for r in rows if r.get("latency_plain") is not None and r["latency"] is not None]
    plain = [r["latency_plain"] for r in rows if r.get("latency_plain") is not None]
    return {
        "turns": [w for w, _ in turns], "utterances": len(rows),
        "accuracy": _share(r["right"] for r in rows),
        "accuracy_by_voice": {v: _share(x) for v, x in sorted(by_voice.items())},
        "accuracy_flite_clean": _share(r["right"] for r in rows if r["voice"] in FLITE_VOICES),
        "out_of_grammar_false_accepts": _share(r["false_accept"] for r in oog), "out_of_grammar_tried": len(oog),
        "latency_end_of_speech_to_result_s": {
            "early_endpointing": _stats(early), "plain_end_silence_0.8": _stats(plain),
            "early_share": _share(bool(r["early"]) for r in rows if r.get("latency_plain") is not None)},
        "errors": [{k: r[k] for k in ("turn", "phrase", "voice", "heard", "confidence")} for r in rows if not r["right"]][:40],
        "_cpu": sum(r["cpu"] for r in rows), "_audio": sum(r["audio"] for r in rows),
    }


def bench_digits(folder: Path, pool, workers: int, strings: int) -> dict[str, Any]:
    rng = random.Random(11)
    jobs = [("".join(rng.choice("0123456789") for _ in range(8)), SPEAKERS[i % 4], rng.randrange(10**6)) for i in range(strings)]
    rows = [r for part in pool.map(_digits_worker, [(str(folder), j) for j in _split(jobs, workers)]) for r in part]
    per_speaker = {s: _share(r["heard"] == r["digits"] for r in rows if r["speaker"] == s) for s in SPEAKERS}
    return {"strings": len(rows), "string_accuracy": _share(r["heard"] == r["digits"] for r in rows),
            "digit_accuracy": round(sum(r["digit_right"] for r in rows) / (8 * len(rows)), 3) if rows else None,
            "truth_in_nbest": _share(r["in_nbest"] for r in rows), "string_accuracy_by_speaker": per_speaker,
            "_cpu": sum(r["cpu"] for r in rows), "_audio": sum(r["audio"] for r in rows)}


def bench_task(folder: Path, pool, workers: int, callers: int) -> dict[str, Any]:
    rng = random.Random(23)
    jobs = [("".join(rng.choice("0123456789") for _ in range(8)), SPEAKERS[i % 4], rng.randrange(10**6),
             FLITE_VOICES[i % 4]) for i in range(callers)]
    rows = [r for part in pool.map(_task_worker, [(str(folder), j) for j in _split(jobs, workers)]) for r in part]
    return {"callers": len(rows), "task_success": _share(r["success"] for r in rows),
            "captured_by_voice_first_turn": _share(r["outcome"] == "voice" and r["success"] for r in rows),
            "fell_back_to_keypad": _share(r["outcome"] == "keyed" for r in rows),
            "wrong_number_confirmed": sum(not r["success"] for r in rows),
            "misheard_confirmations": sum(1 for r in rows if r.get("confirm") == "yes" and r["outcome"] == "keyed")}


def bench_streams(max_streams: int, seconds: float) -> dict[str, Any]:
    audio = b"".join(synth(p, v) + silence(0.8) for p, v in [("payment", "slt"), ("cancel my policy", "rms"),
                                                            ("update my phone number", "awb")])
    results: dict[int, float] = {}
    best = 0
    ctx = mp.get_context("fork")
    for count in [1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 32]:
        if count > max_streams:
            break
        barrier, queue = ctx.Barrier(count), ctx.Queue()
        procs = [ctx.Process(target=_pace_worker, args=(audio, seconds, barrier, queue)) for _ in range(count)]
        for proc in procs:
            proc.start()
        lags = [lag for _ in procs for lag in queue.get()]
        for proc in procs:
            proc.join()
        p95 = float(np.percentile(lags, 95))
        results[count] = round(p95 * 1000, 1)
        if p95 > 0.1:
            break
        best = count
    return {"streams_per_core": best, "p95_frame_lag_ms_by_streams": results, "seconds_per_trial": seconds}


def run(flows_dir: Path = Path("flows"), prompts_dir: Path = Path("prompts"), shared_dir: Path | None = None,
        quick: bool = False, max_streams: int = 32) -> dict[str, Any]:
    """Every section; `quick` shrinks the samples (for CI smoke runs)."""
    if shutil.which("flite") is None:
        return {"error": "flite is not installed"}
    shared = shared_dir or Path(os.environ.get("IVR_SHARED_DIR", Path.cwd().parent / "shared"))
    folder = shared / "audio" / "fsdd"
    workers = max(1, os.cpu_count() or 1)
    started = time.monotonic()
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "recognisers": _available()}
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        choices = bench_choices(flows_dir, prompts_dir, pool, workers, 40 if quick else None)
        report["pocketsphinx"] = {"choices": choices}
        cpu, audio = choices.pop("_cpu"), choices.pop("_audio")
        if folder.is_dir():
            digits = bench_digits(folder, pool, workers, 8 if quick else 100)
            cpu, audio = cpu + digits.pop("_cpu"), audio + digits.pop("_audio")
            report["pocketsphinx"]["digits"] = digits
            report["pocketsphinx"]["task"] = bench_task(folder, pool, workers, 8 if quick else 200)
        else:
            report["pocketsphinx"]["digits"] = {"skipped": f"no FSDD at {folder}"}
    report["pocketsphinx"]["rtf"] = round(cpu / audio, 4) if audio else None
    report["pocketsphinx"]["concurrency"] = bench_streams(4 if quick else max_streams, 3.0 if quick else 8.0)
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def _available() -> dict[str, str]:
    found = {}
    for name, module in [("pocketsphinx", "pocketsphinx"), ("vosk", "vosk")]:
        try:
            found[name] = __import__(module).__dict__.get("__version__", "installed")
        except ImportError:
            found[name] = "absent"
    if found.get("vosk") != "absent":
        found["vosk"] += " (scored only in its model's language: tests/speech/test_vosk.py)"
    return found


def _share(values) -> float | None:
    values = list(values)
    return round(sum(bool(v) for v in values) / len(values), 3) if values else None


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"mean": round(statistics.fmean(ordered), 3), "p50": round(ordered[len(ordered) // 2], 3),
            "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3), "n": len(ordered)}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1, ensure_ascii=False))
