"""`ivr bench turns`: how fast a spoken answer gets the next prompt, streaming versus recording.

The same callers (flite voices saying the main menu's choices) call the
simulator twice, into a controller that listens by streaming (externalMedia
RTP, early endpointing) and into one that records each answer and then
recognises it (the baseline). Measured on the simulator's clock, from the
end of the caller's speech (the last sample above the speech threshold in
the audio the caller sent) to the start of the next prompt, which for
`sound:` files is its first audio frame.
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

PHRASES = ["payment", "cancel my policy", "update my phone number", "policy information", "failed payment"]
VOICES = ["slt", "rms", "awb", "kal16"]
NEXT_PROMPT_WITHIN = 20.0


def run(calls: int = 20, concurrent: int = 2) -> dict[str, Any]:
    if shutil.which("flite") is None:
        raise RuntimeError("flite is needed to make the callers' voices (apt install flite)")
    redis_url = os.environ.get("IVR_REDIS_URL")
    if redis_url:
        return asyncio.run(_run(redis_url, calls, concurrent))
    with private_redis() as url:
        return asyncio.run(_run(url, calls, concurrent))


async def _run(redis_url: str, calls: int, concurrent: int) -> dict[str, Any]:
    utterances = [(PHRASES[i % len(PHRASES)], VOICES[i % len(VOICES)]) for i in range(calls)]
    audio = {u: _speak(*u) for u in set(utterances)}
    modes = {}
    for mode in ("stream", "record"):
        modes[mode] = await _run_mode(redis_url, mode, utterances, audio, concurrent)
    stream_p95, record_p95 = modes["stream"]["latency_ms"]["p95"], modes["record"]["latency_ms"]["p95"]
    return {
        "benchmark": "turns", "cores": os.cpu_count(), "calls_per_mode": calls, "concurrent": concurrent,
        "measure": "end of the caller's speech -> first audio frame of the next prompt (simulator clock)",
        "modes": modes,
        "p95_ratio_record_over_stream": round(record_p95 / stream_p95, 2) if stream_p95 and record_p95 else None,
        "stream_p95_under_300ms": bool(stream_p95 is not None and stream_p95 < 300),
    }


async def _run_mode(redis_url: str, mode: str, utterances: list[tuple[str, str]], audio: dict, concurrent: int):
    from ivr.backend.base import SampleBackend
    from ivr.config import Settings
    from ivr.controller.app import serve
    from ivr.sim import SimulatorConfig, start_simulator

    prompts, _ = load_prompts(ROOT / "prompts")
    with tempfile.TemporaryDirectory(prefix="ivr-bench-turns-") as tmp:
        sounds = placeholder_audio(prompts, Path(tmp) / "sounds")
        config = SimulatorConfig(sounds_dirs=[sounds])
        sim = await start_simulator(config)
        settings = Settings(ari_url=sim.base_url, ari_user=config.username, ari_password=config.password,
                            redis_url=redis_url, http_port=0, flows_dir=ROOT / "flows", prompts_dir=ROOT / "prompts",
                            sounds_dir=sounds / "ivr", speech=mode, log_level="WARNING")
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(settings, backend=SampleBackend(), stop=stop, ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 30)
            began = time.perf_counter()
            gate = asyncio.Semaphore(concurrent)
            results = await asyncio.gather(*(_caller(sim, gate, i, audio[u]) for i, u in enumerate(utterances)))
            unanswered = [f"{u[0]!r} ({u[1]})" for u, ms in zip(utterances, results) if ms is None]
            elapsed = time.perf_counter() - began
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await sim.stop()
    latencies = sorted(ms for ms in results if ms is not None)
    return {"calls": len(results), "answered": len(latencies), "unanswered": unanswered, "seconds": round(elapsed, 1),
            "latency_ms": _percentiles(latencies)}


async def _caller(sim, gate: asyncio.Semaphore, index: int, speech: tuple[array, float]) -> float | None:
    samples, spoken_seconds = speech
    async with gate:
        call = sim.sim.inbound_call(ani=f"+1555077{index:04d}", exten="100")
        try:
            await call.wait_until(lambda c: any(p.media_uri.endswith("main.menu") and p.finished_at is not None
                                                for p in c.prompts), timeout=20)
            await call.silence(0.3)
            heard = len(call.prompts)
            start = sim.sim.clock.now()
            await call.say(samples, wait=False)
            speech_end = start + spoken_seconds
            await call.wait_until(lambda c: len(c.prompts) > heard, timeout=NEXT_PROMPT_WITHIN)
            return 1000 * (call.prompts[heard].started_at - speech_end)
        except TimeoutError:
            return None
        finally:
            await call.hangup()


def _speak(text: str, voice: str) -> tuple[array, float]:
    """The caller's audio and where the speech in it ends (seconds from its start)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True, capture_output=True)
        pcm = array("h", read_wav_8k(out))
    loud = [i for i, v in enumerate(pcm) if abs(v) > 500]
    return pcm + array("h", bytes(2 * 8000 * 2)), (loud[-1] + 1) / 8000 if loud else 0.0


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "max": round(max(values), 1)}
