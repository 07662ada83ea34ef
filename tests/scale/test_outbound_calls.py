"""Calls over Asterisk's outbound websockets (the simulator plays Asterisk, configured with the
shipped asterisk-conf/scale-out files): one controller in outbound mode takes keyed calls from
one or two Asterisk servers, each call's REST on its own socket."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from ivr.application import build, serve
from ivr.bench.cluster import simulator_config
from ivr.config import Settings
from ivr.redis_server import free_port
from ivr.sim import SimulatorConfig, start_simulator
from tests.conftest import ROOT, shared_dir
from tests.controller.conftest import heard, longest_dead_air, write_prompt_audio

PASSWORD = "outbound-test-password"
DEAD_AIR_LIMIT = 3.0


def outbound_config(sounds: Path, uri: str, system_name: str = "", asterisk_id: str = "02:fc:00:00:00:01"
                    ) -> SimulatorConfig:
    """An Asterisk whose ari.conf and websocket_client.conf are the shipped ones, pointed at `uri`
    (several servers: each its own asterisk.conf `systemname`, as asterisk-conf/scale-out/README says)."""
    api_docs = shared_dir() / "asterisk" / "api-docs"
    return simulator_config(sounds, uri, PASSWORD, system_name=system_name, asterisk_id=asterisk_id,
                            api_docs=api_docs if api_docs.is_dir() else None)


@contextlib.asynccontextmanager
async def outbound_controller(tmp_path: Path, redis_url: str, port: int, sounds: Path, **overrides):
    options = {"speech": "off", **overrides}
    settings = Settings(ari_mode="outbound", ari_outbound_password=PASSWORD, http_port=port,
                        backend="sample", flows_dir=ROOT / "flows", prompts_dir=ROOT / "prompts",
                        sounds_dir=sounds / "ivr", redis_url=redis_url, controller_id="ctl-test", **options)
    stop, ready = asyncio.Event(), asyncio.Event()
    application = await build(settings)
    task = asyncio.create_task(serve(application, stop=stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield application
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _policy_journey(call) -> None:
    """Menu 1 (policy), date of birth, then 0 for a person: ends in a queue."""
    await call.wait_until(lambda c: heard(c, "main.menu"), timeout=20)
    await call.press("1")
    await call.wait_until(lambda c: heard(c, "verify.dob"), timeout=20)
    await call.press("19800531", interval=0.05)
    await call.wait_until(lambda c: heard(c, "policy.what_next"), timeout=20)
    await call.press("0")


async def test_keyed_calls_over_per_call_websockets(tmp_path, redis_url):
    sounds = write_prompt_audio(tmp_path / "sounds")
    port = free_port()
    config = outbound_config(sounds, f"ws://127.0.0.1:{port}/ari/outbound")
    sim = await start_simulator(config)
    try:
        async with outbound_controller(tmp_path, redis_url, port, sounds) as application:
            calls = [sim.sim.inbound_call(ani=f"+1555010{i}", exten="100") for i in range(3)]
            await asyncio.gather(*(_policy_journey(call) for call in calls))
            for call in calls:
                continued = await call.wait_continued(timeout=20)
                assert continued.variables["IVR_QUEUE"] == "policy_service"
            assert application.outbound is not None
            assert sim.violations == [], f"requests not in the ARI docs: {sim.violations}"
        assert longest_dead_air(sim) <= DEAD_AIR_LIMIT
    finally:
        await sim.stop()


async def test_two_asterisk_servers_share_one_controller_and_each_call_stays_on_its_own(tmp_path, redis_url):
    sounds = write_prompt_audio(tmp_path / "sounds")
    port = free_port()
    uri = f"ws://127.0.0.1:{port}/ari/outbound"
    first = await start_simulator(outbound_config(sounds, uri, "pbx-a", "02:fc:00:00:00:01"))
    second = await start_simulator(outbound_config(sounds, uri, "pbx-b", "02:fc:00:00:00:02"))
    try:
        async with outbound_controller(tmp_path, redis_url, port, sounds):
            one = first.sim.inbound_call(ani="+15550201", exten="100")
            two = second.sim.inbound_call(ani="+15550202", exten="100")
            await asyncio.gather(_policy_journey(one), _policy_journey(two))
            assert (await one.wait_continued(timeout=20)).variables["IVR_QUEUE"] == "policy_service"
            assert (await two.wait_continued(timeout=20)).variables["IVR_QUEUE"] == "policy_service"
            for sim in (first, second):
                assert sim.violations == []
    finally:
        await first.stop()
        await second.stop()


async def test_a_persistent_connection_carries_every_call_and_survives_a_drop(tmp_path, redis_url):
    """connection_type = persistent: one socket for all calls; when it drops, Asterisk reconnects and
    the controller carries on with the calls it runs (events of the gap first)."""
    from ivr.sim.config import OutboundWebsocket

    sounds = write_prompt_audio(tmp_path / "sounds")
    port = free_port()
    config = outbound_config(sounds, f"ws://127.0.0.1:{port}/ari/outbound")
    config.outbound_websockets = [OutboundWebsocket(
        name="ivr-persistent", apps=["ivr"], uri=f"ws://127.0.0.1:{port}/ari/outbound", connection_type="persistent",
        username="asterisk", password=PASSWORD)]
    sim = await start_simulator(config)
    try:
        async with outbound_controller(tmp_path, redis_url, port, sounds) as application:
            calls = [sim.sim.inbound_call(ani=f"+1555040{i}", exten="100") for i in range(2)]
            for call in calls:
                await call.wait_until(lambda c: heard(c, "main.menu"), timeout=20)
                await call.press("1")
                await call.wait_until(lambda c: heard(c, "verify.dob"), timeout=20)
            assert application.outbound is not None
            for connection in list(application.outbound.connections):
                await connection.ws.close(code=1001)  # the socket drops mid-call
            for call in calls:
                await call.press("19800531", interval=0.05)
                await call.wait_until(lambda c: heard(c, "policy.what_next"), timeout=20)
                await call.press("0")
                assert (await call.wait_continued(timeout=20)).variables["IVR_QUEUE"] == "policy_service"
    finally:
        await sim.stop()


async def test_streamed_speech_over_a_per_call_websocket(tmp_path, redis_url):
    """The caller's voice while prompts play (snoop + externalMedia): the helper channels enter the
    call's own `ivr:<channel name>` application, so their events come on the call's socket."""
    from tests.controller.spoken import say_after_prompts
    from tests.speech.sounds import synth

    sounds = write_prompt_audio(tmp_path / "sounds")
    port = free_port()
    sim = await start_simulator(outbound_config(sounds, f"ws://127.0.0.1:{port}/ari/outbound"))
    try:
        async with outbound_controller(tmp_path, redis_url, port, sounds, speech="stream",
                                       recognisers={"en": "pocketsphinx"}, speech_processes=1):
            call = sim.sim.inbound_call(ani="+15550601", exten="100")
            await say_after_prompts(call, synth("payment", "rms"), prompts=2)
            await call.silence(1.5)
            await call.wait_until(lambda c: heard(c, "verify.dob"), timeout=20)
            helpers = [ch for ch in sim.sim.channels.values() if ch.kind in ("snoop", "unicast") and not ch.destroyed]
            assert helpers and all(ch.stasis_app == f"ivr:{call.channel.name}" for ch in helpers), \
                "the helper legs are in the call's own application"
            await call.press("0")
            assert (await call.wait_continued(timeout=20)).variables["IVR_QUEUE"]
            for _ in range(60):  # the call went to a queue: its helper legs are hung up
                if all(ch.destroyed for ch in helpers):
                    break
                await asyncio.sleep(0.05)
            assert all(ch.destroyed for ch in helpers), "snoop or media legs left behind"
            assert sim.violations == []
        assert longest_dead_air(sim) <= DEAD_AIR_LIMIT
    finally:
        await sim.stop()
