"""`ivr bench turns`: how fast a spoken answer gets the next prompt, and a spoken interruption stops one.

Callers (flite voices) phone the simulator, whose audio path is Asterisk's:
prompts play on the caller's channel, the controller hears the caller
through a snoop channel bridged with externalMedia. Each call answers a
menu (choices), then a yes/no question, in a small flow of the bench's own
(`BENCH_FLOW`: no "did you say" in between, so every answer is a turn
measured). Two controllers take the same callers: one listening by
streaming (early endpointing), one recording each answer and recognising
it afterwards (the baseline). On the simulator's clock:

- turn latency: the end of the caller's speech (last sample above the
  speech threshold in the audio the caller sent) to the first audio frame
  of the next prompt;
- barge-in (streaming only): callers who speak 0.6 s into the menu prompt;
  from the start of their voice to the prompt being stopped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

from ivr.demo import ROOT, placeholder_audio
from ivr.prompts import load_prompts
from ivr.redis_server import private_redis
from ivr.speech.audio import read_wav_8k

CHOICES = ["payment", "cancel my policy", "update my phone number", "policy information", "failed payment"]
YES_NO = ["no", "yes", "no thanks", "nope", "yes please", "correct"]
VOICES = ["slt", "rms", "awb", "kal16"]
NEXT_PROMPT_WITHIN = 20.0
BARGE_IN_AFTER = 0.6  # seconds into the menu prompt
SPEECH_LEVEL = 500  # sample magnitude that counts as the caller's voice
PROMPT_SECONDS_PER_CHAR = 0.06  # stand-in prompts as long as their text said at a calm pace
BENCH_FLOW = """\
flow: bench_turns
version: 1
description: A menu then a yes/no question, every answer a measured turn.
languages: [en]
start: menu
defaults:
  escape: {transfer: customer_service, reason: ivr_trouble, priority: 5}
  noinput: [common.noinput, common.still_there]
  nomatch: [common.nomatch, common.nomatch]
  confirm_below: 0
nodes:
  menu:
    ask:
      prompt: main.menu
      choices:
        policy: {say: {en: [policy information, my policy, premium]}, dtmf: "1"}
        payment: {say: {en: [payment, payments, failed payment]}, dtmf: "2"}
        phone: {say: {en: [update my phone number, phone number]}, dtmf: "3"}
        cancel: {say: {en: [cancel my policy, cancel]}, dtmf: "4"}
    next: {policy: again, payment: again, phone: again, cancel: again}
  again:
    ask:
      prompt: main.anything_else
      confirm: true
    next: {yes: goodbye, no: goodbye}
  goodbye:
    hangup: completed
    prompt: main.goodbye
"""


def run(calls: int = 20, concurrent: int = 2, recogniser: str | None = None) -> dict[str, Any]:
    """`recogniser`: the English engine (pocketsphinx, whisper); None is the settings' default."""
    if shutil.which("flite") is None:
        raise RuntimeError("flite is needed to make the callers' voices (apt install flite)")
    from ivr.speech.languages import choose

    engine = choose({"en": recogniser} if recogniser else {}, None, "zh")["en"]
    redis_url = os.environ.get("IVR_REDIS_URL")
    if redis_url:
        return asyncio.run(_run(redis_url, calls, concurrent, engine))
    with private_redis() as url:
        return asyncio.run(_run(url, calls, concurrent, engine))


async def _run(redis_url: str, calls: int, concurrent: int, engine: str) -> dict[str, Any]:
    scripts = [(CHOICES[i % len(CHOICES)], YES_NO[i % len(YES_NO)], VOICES[i % len(VOICES)]) for i in range(calls)]
    audio = {(text, voice): _speak(text, voice) for choice, answer, voice in scripts for text in (choice, answer)}
    modes = {mode: await _run_mode(redis_url, mode, scripts, audio, concurrent, engine) for mode in ("stream", "record")}
    stream, record = modes["stream"], modes["record"]
    ratio = {kind: _ratio(record[kind]["latency_ms"]["p95"], stream[kind]["latency_ms"]["p95"])
             for kind in ("choices", "yes_no")}
    return {
        "benchmark": "turns", "recogniser": engine, "cores": os.cpu_count(), "calls_per_mode": calls,
        "concurrent": concurrent,
        "measure": {"turns": "end of the caller's speech -> first audio frame of the next prompt (simulator clock)",
                    "barge_in": f"caller's voice starts {BARGE_IN_AFTER} s into the menu -> menu prompt stopped"},
        "modes": modes,
        "p95_ratio_record_over_stream": ratio,
        "goals": {"barge_in_p95_le_250ms": _at_most(stream["barge_in"]["latency_ms"]["p95"], 250),
                  "choices_p95_le_300ms": _at_most(stream["choices"]["latency_ms"]["p95"], 300),
                  "yes_no_p95_le_300ms": _at_most(stream["yes_no"]["latency_ms"]["p95"], 300),
                  "record_over_stream_ge_3x": all(r is not None and r >= 3 for r in ratio.values()),
                  "whisper_p95_le_400ms": _at_most(max(_p95s(stream), default=None), 400) if engine == "whisper" else None,
                  "no_turn_over_1s": all(_at_most(stream[k]["latency_ms"]["max"], 1000) for k in ("choices", "yes_no"))},
    }


def _p95s(stream: dict[str, Any]) -> list[float]:
    return [stream[k]["latency_ms"]["p95"] for k in ("choices", "yes_no") if stream[k]["latency_ms"]["p95"] is not None]


async def _run_mode(redis_url: str, mode: str, scripts: list[tuple[str, str, str]], audio: dict,
                    concurrent: int, engine: str) -> dict[str, Any]:
    from ivr.application import build, serve
    from ivr.config import Settings
    from ivr.sim import SimulatorConfig, start_simulator

    prompts, _ = load_prompts(ROOT / "prompts")
    with tempfile.TemporaryDirectory(prefix="ivr-bench-turns-") as tmp:
        sounds = placeholder_audio(prompts, Path(tmp) / "sounds", PROMPT_SECONDS_PER_CHAR)
        flows = Path(tmp) / "flows"
        flows.mkdir()
        (flows / "bench_turns.yaml").write_text(BENCH_FLOW, encoding="utf-8")
        config = SimulatorConfig(sounds_dirs=[sounds])
        sim = await start_simulator(config)
        settings = Settings(ari_url=sim.base_url, ari_user=config.username, ari_password=config.password,
                            redis_url=redis_url, http_port=0, flows_dir=flows, prompts_dir=ROOT / "prompts",
                            sounds_dir=sounds / "ivr", speech=mode, log_level="WARNING", entry_flow="bench_turns",
                            recognisers={"en": engine}, backend="sample")
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(await build(settings), stop=stop, ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 30)
            began = time.perf_counter()
            gate = asyncio.Semaphore(concurrent)
            turns = await asyncio.gather(*(_answering_caller(sim, gate, i, audio[(c, v)], audio[(a, v)])
                                           for i, (c, a, v) in enumerate(scripts)))
            barge = []
            if mode == "stream":
                barge = await asyncio.gather(*(_interrupting_caller(sim, gate, i, audio[(c, v)])
                                               for i, (c, _, v) in enumerate(scripts)))
            elapsed = time.perf_counter() - began
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await sim.stop()
    report = {"seconds": round(elapsed, 1),
              "choices": _summary([t[0] for t in turns], [f"{c!r} ({v})" for c, _, v in scripts], "main.anything_else"),
              "yes_no": _summary([t[1] for t in turns], [f"{a!r} ({v})" for _, a, v in scripts], "main.goodbye")}
    if mode == "stream":
        report["barge_in"] = _summary(barge, [f"{c!r} ({v})" for c, _, v in scripts])
    return report


Measured = tuple[float | None, str | None]  # (ms, the next prompt's key) or (None, None): no next prompt


async def _answering_caller(sim, gate: asyncio.Semaphore, index: int, choice, answer) -> tuple[Measured, Measured]:
    async with gate:
        call = sim.sim.inbound_call(ani=f"+1555077{index:04d}", exten="100")
        try:
            first = await _answer_after(call, sim, "main.menu", choice)
            second = await _answer_after(call, sim, "main.anything_else", answer) if first[1] else (None, None)
            return first, second
        finally:
            await call.hangup()


async def _answer_after(call, sim, prompt_key: str, speech: tuple[array, float, float]) -> Measured:
    """Wait for `prompt_key` to end, then speak; ms from the end of speech to the next prompt."""
    samples, _, speech_end = speech
    try:
        await call.wait_until(lambda c: any(p.media_uri.endswith(prompt_key) and p.finished_at is not None
                                            for p in c.prompts), timeout=NEXT_PROMPT_WITHIN)
        await call.silence(0.3)
        heard = len(call.prompts)
        start = sim.sim.clock.now()
        await call.say(samples, wait=False)
        await call.wait_until(lambda c: len(c.prompts) > heard, timeout=NEXT_PROMPT_WITHIN)
    except TimeoutError:
        return None, None
    following = call.prompts[heard]
    return 1000 * (following.started_at - (start + speech_end)), following.media_uri.rpartition("/")[2]


async def _interrupting_caller(sim, gate: asyncio.Semaphore, index: int, speech) -> Measured:
    samples, speech_start, _ = speech
    async with gate:
        call = sim.sim.inbound_call(ani=f"+1555078{index:04d}", exten="100")
        try:
            await call.wait_until(lambda c: any(p.media_uri.endswith("main.menu") for p in c.prompts),
                                  timeout=NEXT_PROMPT_WITHIN)
            menu = next(p for p in call.prompts if p.media_uri.endswith("main.menu"))
            await call.silence(max(0.0, menu.started_at + BARGE_IN_AFTER - sim.sim.clock.now()))
            start = sim.sim.clock.now()
            await call.say(samples, wait=False)
            await call.wait_until(lambda c: menu.finished_at is not None, timeout=NEXT_PROMPT_WITHIN)
            if not menu.stopped:
                return None, None  # the menu played to its end: the caller was not heard
            return 1000 * (menu.finished_at - (start + speech_start)), "main.menu"
        except TimeoutError:
            return None, None
        finally:
            await call.hangup()


def _speak(text: str, voice: str) -> tuple[array, float, float]:
    """The caller's audio, and where the speech in it starts and ends (seconds from its start)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True, capture_output=True)
        pcm = array("h", read_wav_8k(out))
    loud = [i for i, v in enumerate(pcm) if abs(v) > SPEECH_LEVEL]
    start, end = (loud[0] / 8000, (loud[-1] + 1) / 8000) if loud else (0.0, 0.0)
    return pcm + array("h", bytes(2 * 8000 * 2)), start, end


def _summary(measured: list[Measured], who: list[str], expected: str | None = None) -> dict[str, Any]:
    latencies = sorted(ms for ms, _ in measured if ms is not None)
    next_prompts: dict[str, int] = {}
    for _, key in measured:
        if key is not None:
            next_prompts[key] = next_prompts.get(key, 0) + 1
    misunderstood = [f"{w} -> {key} after {ms:.0f} ms" for w, (ms, key) in zip(who, measured)
                     if expected and key is not None and key != expected and ms is not None]
    slowest = sorted(((ms, w) for w, (ms, _) in zip(who, measured) if ms is not None), reverse=True)[:3]
    return {"turns": len(measured), "measured": len(latencies), "latency_ms": _percentiles(latencies),
            "next_prompts": next_prompts, "unanswered": [w for w, (ms, _) in zip(who, measured) if ms is None],
            "misunderstood": misunderstood, "slowest": [f"{w}: {ms:.0f} ms" for ms, w in slowest]}


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "max": round(max(values), 1)}


def _ratio(slow: float | None, fast: float | None) -> float | None:
    return round(slow / fast, 2) if slow and fast else None


def _at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit
