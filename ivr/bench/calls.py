"""`ivr bench calls`: many simultaneous keypad callers through simulator and controller.

The controller runs as its own process (`ivr serve`), as in production, so its
CPU time can be read from /proc; the simulator and the callers run here. Each
caller walks the policy journey by keypad. Latency is measured on the
simulator's clock, from the moment a key reaches the controller (the
ChannelDtmfReceived event) to the start of the next prompt.

With `controllers`, each level runs through N controllers in outbound mode
behind HAProxy (`ivr.bench.cluster`, the shipped asterisk-conf/scale-out
configuration), the simulator opening a websocket per call as Asterisk does;
calls per second and CPU are over all controllers.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.demo import ROOT, placeholder_audio
from ivr.prompts import load_prompts
from ivr.redis_server import private_redis
from ivr.sim import SimulatorConfig, start_simulator

JOURNEY = (("main.menu", "1"), ("verify.dob", "19800531"), ("policy.what_next", "9"), ("main.anything_else", "2"))
TARGET_P95_MS = 100.0


def run(concurrency: list[int], rounds: int = 1, speech: str = "off", controllers: list[int] | None = None
        ) -> dict[str, Any]:
    redis_url = os.environ.get("IVR_REDIS_URL")
    if redis_url:
        return asyncio.run(_run_all(redis_url, concurrency, rounds, speech, controllers))
    with private_redis() as url:
        return asyncio.run(_run_all(url, concurrency, rounds, speech, controllers))


async def _run_all(redis_url: str, concurrency: list[int], rounds: int, speech: str,
                   controllers: list[int] | None) -> dict[str, Any]:
    prompts, _ = load_prompts(ROOT / "prompts")
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        sounds = placeholder_audio(prompts, Path(tmp) / "sounds")
        if controllers:
            results = [await _run_cluster_level(redis_url, sounds, count, n, rounds, Path(tmp) / f"cluster{count}-{n}")
                       for count in controllers for n in concurrency]
        else:
            results = [await _run_level(redis_url, sounds, n, rounds, speech) for n in concurrency]
    passing = [r["concurrent"] for r in results if r["latency_ms"]["p95"] is not None
               and r["latency_ms"]["p95"] < TARGET_P95_MS and r["failed"] == 0]
    return {"benchmark": "calls", "cores": os.cpu_count(), "speech": speech, "journey": [m[0] for m in JOURNEY],
            "mode": "outbound websockets through haproxy" if controllers else "inbound events websocket",
            "levels": results, "largest_concurrent_with_p95_under_100ms": max(passing, default=None)}


@dataclass
class _Measured:
    outcomes: list[tuple[bool, list[float]]]
    seconds: float
    cpu: float  # controller CPU seconds, all controllers
    rss_mb: list[float]  # each controller's resident memory at the end


async def _waves(sim, pids: list[int], concurrent: int, rounds: int, prefix: str) -> _Measured:
    """`rounds` waves of `concurrent` keypad callers; the controllers' CPU and memory meanwhile."""
    cpu_before = sum(_cpu_seconds(pid) for pid in pids)
    began = time.perf_counter()
    outcomes: list[tuple[bool, list[float]]] = []
    for round_number in range(rounds):
        callers = [_caller(sim, f"{prefix}{round_number:02d}{i:05d}", i * 0.02) for i in range(concurrent)]
        outcomes += await asyncio.gather(*callers)
    elapsed = time.perf_counter() - began
    return _Measured(outcomes, elapsed, sum(_cpu_seconds(pid) for pid in pids) - cpu_before,
                     [_rss_mb(pid) for pid in pids])


def _result(measured: _Measured, **fields: Any) -> dict[str, Any]:
    outcomes = measured.outcomes
    latencies = sorted(ms for ok, samples in outcomes for ms in samples)
    handled = sum(ok for ok, _ in outcomes)
    return {
        **fields, "calls": len(outcomes), "handled": handled, "failed": len(outcomes) - handled,
        "seconds": round(measured.seconds, 2),
        "calls_per_second": round(handled / measured.seconds, 2) if measured.seconds else None,
        "controller_cpu_seconds": round(measured.cpu, 3),
        "controller_cpu_ms_per_call": round(1000 * measured.cpu / max(1, len(outcomes)), 2),
        "controller_rss_mb": measured.rss_mb, "latency_ms": _percentiles(latencies), "samples": len(latencies),
    }


async def _run_level(redis_url: str, sounds: Path, concurrent: int, rounds: int, speech: str) -> dict[str, Any]:
    config = SimulatorConfig(sounds_dirs=[sounds])
    sim = await start_simulator(config)
    controller = _start_controller(sim, config, redis_url, sounds, speech)
    try:
        await _wait_registered(sim)
        measured = await _waves(sim, [controller.pid], concurrent, rounds, "+1555")
    finally:
        controller.terminate()
        controller.wait(timeout=10)
        await sim.stop()
    return _result(measured, concurrent=concurrent)


async def _run_cluster_level(redis_url: str, sounds: Path, count: int, concurrent: int, rounds: int,
                             workdir: Path) -> dict[str, Any]:
    """One level through `count` controllers behind HAProxy (outbound websockets)."""
    from ivr.bench.cluster import Cluster, simulator_config

    env = {"IVR_FLOWS_DIR": str(ROOT / "flows"), "IVR_PROMPTS_DIR": str(ROOT / "prompts"),
           "IVR_SOUNDS_DIR": str(sounds / "ivr"), "IVR_LOG_LEVEL": "WARNING", "IVR_SPEECH": "off",
           "IVR_BACKEND": "sample"}
    cluster = Cluster(count, workdir, redis_url, env=env)
    await cluster.start()
    sim = await start_simulator(simulator_config(sounds, cluster.uri, cluster.password))
    try:
        measured = await _waves(sim, cluster.pids(), concurrent, rounds, "+1556")
    finally:
        await sim.stop()
        cluster.stop()
    return _result(measured, controllers=count, concurrent=concurrent)


async def _caller(sim, ani: str, delay: float) -> tuple[bool, list[float]]:
    await asyncio.sleep(delay)
    call = sim.sim.inbound_call(ani=ani, exten="100")
    samples: list[float] = []
    try:
        for prompt, keys in JOURNEY:
            await call.wait_until(lambda c, prompt=prompt: _finished(c, prompt), timeout=30)
            heard = len(call.prompts)
            await call.press(keys, interval=0.1)
            pressed_at = sim.sim.clock.now()
            await call.wait_until(lambda c, heard=heard: len(c.prompts) > heard, timeout=30)
            samples.append(1000 * (call.prompts[heard].started_at - pressed_at))
        await call.wait_ended(timeout=30)
    except TimeoutError:
        return False, samples
    return True, samples


def _finished(call, key: str) -> bool:
    return any(p.media_uri.endswith(key) and p.finished_at is not None for p in call.prompts)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50": round(cuts[49], 1), "p95": round(cuts[94], 1), "p99": round(cuts[98], 1), "max": round(max(values), 1)}


def _start_controller(sim, config, redis_url: str, sounds: Path, speech: str) -> subprocess.Popen:
    env = {**os.environ, "IVR_ARI_URL": sim.base_url, "IVR_ARI_USER": config.username,
           "IVR_ARI_PASSWORD": config.password, "IVR_REDIS_URL": redis_url, "IVR_HTTP_PORT": "0",
           "IVR_FLOWS_DIR": str(ROOT / "flows"), "IVR_PROMPTS_DIR": str(ROOT / "prompts"),
           "IVR_SOUNDS_DIR": str(sounds / "ivr"), "IVR_LOG_LEVEL": "WARNING", "IVR_SPEECH": speech,
           "IVR_BACKEND": "sample"}  # canned answers: the numbers stay comparable across versions
    return subprocess.Popen([sys.executable, "-m", "ivr.cli", "serve"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _wait_registered(sim, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (sim.sim.bus.apps.get("ivr") and sim.sim.bus.apps["ivr"].active):
        if time.monotonic() > deadline:
            raise RuntimeError("the controller did not connect to the simulator")
        await asyncio.sleep(0.05)


def _rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB, at the end of a level (calls still being torn down)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
