"""`ivr bench engine`: how fast the engine steps and how fast validation runs.

A flow of N nodes is generated (turns, prompts, assignments, branches and
backend actions in a repeating pattern, every turn with an escape), written
to a temporary directory and validated as a designer would. Then calls are
driven through it and through the shipped flows, counting engine steps.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from ivr import engine
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.flow.catalog import check_flows, load_flow_set

PROMPTS = {"bench": {"ask": "Press 1 or 2.", "info": "Information {counter:number}."},
           "common": {"did_you_say": "Did you say {heard}?", "readback_digits": "{digits:digits}?"}}


def generate_flow(nodes: int) -> dict[str, Any]:
    """A flow of `nodes` nodes in blocks of five: play, ask, set, branch, action."""
    body: dict[str, Any] = {}
    blocks = max(1, nodes // 5)
    for b in range(blocks):
        nxt = f"play{b + 1}" if b + 1 < blocks else "done"
        body[f"play{b}"] = {"play": "bench.info", "next": f"ask{b}"}
        body[f"ask{b}"] = {
            "ask": {"prompt": "bench.ask", "choices": {"one": {"say": ["one"], "dtmf": "1"}, "two": {"say": ["two"], "dtmf": "2"}},
                    "noinput": ["bench.ask"], "nomatch": ["bench.ask"]},
            "next": {"one": f"set{b}", "two": f"act{b}"},
        }
        body[f"set{b}"] = {"set": {"counter": "=counter + 1"}, "next": f"branch{b}"}
        body[f"branch{b}"] = {"branch": [{"if": "counter > 1000000", "then": "done"}], "else": nxt}
        body[f"act{b}"] = {"action": {"name": "policy.summary", "args": {"caller": "=counter"}},
                           "next": {"ok": f"set{b}", "declined": nxt}}
    body["done"] = {"hangup": "completed"}
    return {"flow": "big", "version": 1, "start": "play0", "variables": {"counter": 0},
            "defaults": {"escape": {"transfer": "customer_service", "reason": "ivr_trouble"}}, "nodes": body}


def run(nodes: int = 5000, calls: int = 2000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        flows_dir, prompts_dir = Path(tmp, "flows"), Path(tmp, "prompts")
        flows_dir.mkdir()
        prompts_dir.mkdir()
        (prompts_dir / "en.yaml").write_text(yaml.safe_dump(PROMPTS), encoding="utf-8")
        path = flows_dir / "big.yaml"
        path.write_text(yaml.safe_dump(generate_flow(nodes), sort_keys=False), encoding="utf-8")
        validation = _time_validation(path, prompts_dir)
        release, _ = load_flow_set(flows_dir, prompts_dir)
        big = _drive(release, "big", calls=max(1, calls // 20), keys="1")
    shipped_release, _ = load_flow_set(Path("flows"), Path("prompts"))
    shipped = _drive(shipped_release, "main_menu", calls=calls, keys=None)
    return {
        "benchmark": "engine",
        "python": platform.python_version(),
        "generated_flow_nodes": len(generate_flow(nodes)["nodes"]),
        "validation_seconds": validation,
        "generated_flow": big,
        "shipped_flows": shipped,
    }


def _time_validation(path: Path, prompts_dir: Path) -> dict[str, float]:
    times = []
    for _ in range(3):
        began = time.perf_counter()
        _, _, diagnostics = check_flows([path], prompts_dir)
        times.append(time.perf_counter() - began)
    errors = [d for d in diagnostics if d.severity.value == "error"]
    if errors:
        raise RuntimeError(f"generated flow does not validate: {errors[0]}")
    return {"min": round(min(times), 4), "median": round(statistics.median(times), 4)}


_POLICY_CALL = ["1", *"19800531", "9", "2"]  # menu: policy; date of birth; done; anything else: no


def _drive(release, flow: str, calls: int, keys: str | None) -> dict[str, Any]:
    """Run DTMF-only calls to the end, answering backend actions at once."""
    steps = 0
    began = time.perf_counter()
    for number in range(calls):
        result = engine.start(release, flow, f"bench-{number}", call={"ani": "+15550100"})
        script = iter(_POLICY_CALL if keys is None else [])
        while result.state.status == "running":
            event = _next_event(result, script, keys)
            if event is None:
                break
            result = engine.step(release, result.state, event)
            steps += 1
    elapsed = time.perf_counter() - began
    return {"calls": calls, "steps": steps, "seconds": round(elapsed, 3),
            "steps_per_second": round(steps / elapsed), "calls_per_second": round(calls / elapsed, 1)}


def _next_event(result: engine.Step, script, keys: str | None) -> ev.Event | None:
    for action in result.actions:
        if isinstance(action, act.CallBackend):
            return ev.BackendResult(name=action.name, outcome="ok", data=_data(action.name))
    if keys is not None:
        return ev.Dtmf(digits=keys)
    digit = next(script, None)
    return ev.Dtmf(digits=digit) if digit else None


def _data(name: str) -> dict[str, Any]:
    from ivr.backend.sample import sample_result

    return sample_result(name)[1]
