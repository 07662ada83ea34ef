"""Kill the controller (SIGKILL) in the middle of calls; a new one picks every call up."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from ivr import engine
from ivr.controller.speech import owner_of_helper
from ivr.engine import events as ev
from ivr.flow.catalog import load_flow_set
from ivr.sim import SimulatorConfig, start_simulator
from tests.conftest import ROOT
from tests.controller.conftest import heard, write_prompt_audio


def _start_controller(sim, config, redis_url: str, sounds: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "IVR_ARI_URL": sim.base_url, "IVR_ARI_USER": config.username,
           "IVR_ARI_PASSWORD": config.password, "IVR_REDIS_URL": redis_url, "IVR_HTTP_PORT": "0",
           "IVR_FLOWS_DIR": str(ROOT / "flows"), "IVR_PROMPTS_DIR": str(ROOT / "prompts"),
           "IVR_SOUNDS_DIR": str(sounds / "ivr"), "IVR_BACKEND": "sample"}  # callers not in any policy book
    return subprocess.Popen([sys.executable, "-m", "ivr.cli", "serve"], env=env, cwd=ROOT,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def _wait_registered(sim, app: str = "ivr", timeout: float = 20.0) -> None:
    """Until the controller's websocket has registered the Stasis application."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (sim.sim.bus.apps.get(app) and sim.sim.bus.apps[app].active):
        assert loop.time() < deadline, "controller never connected"
        await asyncio.sleep(0.05)


def _keys_heard(call) -> list[str]:
    return [p.media_uri.rpartition("/")[2] for p in call.prompts]


def _heard_whole(call, key: str) -> bool:
    return any(p.media_uri.endswith("/" + key) and p.finished_at is not None and not p.stopped for p in call.prompts)


async def test_sigkill_mid_call_and_a_new_controller_resumes_every_call(tmp_path, redis_url):
    """Killed mid-prompt and mid-number: every prompt of the step heard once, in order; keys pressed
    while the new controller takes the calls over count; a turn already heard is not asked again."""
    sounds = write_prompt_audio(tmp_path / "sounds", seconds_per_char=0.02)  # prompts of a second or more
    config = SimulatorConfig(sounds_dirs=[sounds])
    sim = await start_simulator(config)
    log = tmp_path / "controller.log"
    first = _start_controller(sim, config, redis_url, sounds, log)
    try:
        await _wait_registered(sim)
        at_menu, mid_number, mid_prompt = (sim.sim.inbound_call(ani=f"+1555000{i}", exten="100") for i in range(3))
        for call in (at_menu, mid_number, mid_prompt):
            await call.wait_until(lambda c: heard(c, "main.menu"), timeout=20)
        await mid_number.press("2")
        await mid_prompt.press("2")
        await mid_number.wait_until(lambda c: _heard_whole(c, "verify.dob"), timeout=20)
        await mid_prompt.wait_until(lambda c: heard(c, "verify.dob"), timeout=20)
        await mid_number.press("1980", interval=0.1)
        await mid_prompt.press("19800531", interval=0.1)
        await at_menu.wait_until(lambda c: _heard_whole(c, "main.menu"), timeout=20)
        await mid_prompt.wait_until(lambda c: heard(c, "payment.reason"), timeout=20)
        await asyncio.sleep(0.5)  # into the premium prompt; the due date and the offer queued behind it

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=5)
        await asyncio.sleep(0.5)
        assert not any(c.ended.is_set() for c in (at_menu, mid_number, mid_prompt)), "Asterisk keeps calls in Stasis"

        second = _start_controller(sim, config, redis_url, sounds, log)
        try:
            await _wait_registered(sim)
            await asyncio.gather(at_menu.press("0"), mid_number.press("0531", interval=0.1))  # during the takeover
            assert (await at_menu.wait_continued(timeout=20)).variables["IVR_QUEUE"] == "customer_service"
            assert _keys_heard(at_menu).count("main.menu") == 1, "a menu heard in full is not asked again"
            await mid_number.wait_until(lambda c: heard(c, "payment.reason"), timeout=20)
            assert _keys_heard(mid_number).count("verify.dob") == 1, "the number went on where it was"

            await mid_prompt.wait_until(lambda c: _heard_whole(c, "payment.offer"), timeout=30)
            step = _keys_heard(mid_prompt)[_keys_heard(mid_prompt).index("payment.reason"):]
            assert step == ["payment.reason", "payment.cancel_date", "payment.offer"], step
            assert all(_heard_whole(mid_prompt, key) for key in step), mid_prompt.prompts
            await mid_prompt.press("1")
            await mid_prompt.wait_until(lambda c: heard(c, "payment.paid"), timeout=10)
            live = sorted([mid_number.channel_id, mid_prompt.channel_id] * 2)
            helpers = {ch.id: ch.name for ch in sim.sim.channels.values() if not ch.destroyed
                       and ch.name.startswith(("Snoop/", "UnicastRTP/"))}
            assert sorted(map(owner_of_helper, helpers)) == live, f"a snoop and a media leg per live call: {helpers}"
        finally:
            second.terminate()
            try:  # waited off the loop: the simulator must answer the controller's last hang-ups
                await asyncio.to_thread(second.wait, 10)
            except subprocess.TimeoutExpired:
                second.send_signal(signal.SIGUSR1)  # every thread's stack into the log
                await asyncio.sleep(1)
                second.kill()
                raise AssertionError("the controller did not stop on SIGTERM:\n" + log.read_text()[-6000:]) from None
    finally:
        if first.poll() is None:
            first.kill()
        await sim.stop()


def test_resume_of_a_pending_write_hands_the_caller_to_a_person():
    """After a restart nobody knows whether a retried debit went through: a person must check."""
    release, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
    result = engine.start(release, "payment", "c1", call={"ani": "+1555"})
    for event in [ev.BackendResult(name="caller.identify", outcome="ok", data={"id": "C1"}), ev.Dtmf(digits="19800531"),
                  ev.BackendResult(name="caller.verify", outcome="ok"),
                  ev.BackendResult(name="payment.failure", outcome="ok", data={"amount": 10}), ev.Dtmf(digits="1")]:
        result = engine.step(release, result.state, event)
    assert result.state.pending.action == "payment.retry"
    resumed = engine.resume(release, result.state)
    assert resumed.state.status == "transferred"
    assert resumed.state.result["queue"] == "payments" and "controller_restart" in resumed.state.result["detail"]


def test_resume_of_a_read_repeats_it_and_a_turn_asks_again():
    release, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
    started = engine.start(release, "main_menu", "c1", call={"ani": "+1555"})
    again = engine.resume(release, started.state)
    assert [p.key for a in again.actions if a.type == "play" for p in a.prompts] == ["main.menu"]
    assert again.state.node == "menu" and again.state.pending.kind == "input"
    reading = engine.step(release, started.state, ev.Dtmf(digits="1")).state
    assert reading.pending.kind == "backend"
    assert [a.name for a in engine.resume(release, reading).actions if a.type == "backend"] == ["caller.identify"]
