"""Fixtures for the simulator tests: the shared ground truth, test audio, a running simulator."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from sim_audio import KHZ_PROMPT_SECONDS, make_trace_sounds, tone, write_wav
from sim_traces import shared_asterisk

from ivr.sim import RunningSimulator, SimulatorConfig, parse_queues_conf, start_simulator


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_asterisk()
    if not (path / "traces").is_dir():
        pytest.skip("../shared/asterisk (recorded Asterisk traces) not available")
    return path


@pytest.fixture(scope="session")
def api_docs() -> Path:
    path = shared_asterisk() / "api-docs"
    if not path.is_dir():
        pytest.skip("../shared/asterisk/api-docs not available")
    return path


@pytest.fixture(scope="session")
def trace_sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_trace_sounds(tmp_path_factory.mktemp("sounds"))


@pytest.fixture
def trace_config(shared: Path, trace_sounds: Path, tmp_path: Path) -> Callable[..., SimulatorConfig]:
    """A simulator set up like the recording Asterisk: its dialplan, queues and API docs."""
    def make(scale: float = 0.1, **overrides: object) -> SimulatorConfig:
        conf = shared / "traces" / "conf"
        config = SimulatorConfig(
            sounds_dirs=[trace_sounds], recordings_dir=tmp_path / "recordings",
            dialplan_files=[conf / "extensions.conf"],
            queues=parse_queues_conf((conf / "queues.conf").read_text()),
            api_docs_dir=shared / "api-docs", strict=True, time_scale=scale)
        for key, value in overrides.items():
            setattr(config, key, value)
        return config
    return make


@pytest.fixture
def prompt_config(tmp_path: Path, api_docs: Path) -> SimulatorConfig:
    """A strict simulator at 5x with one prompt, ``sound:prompt`` (1 kHz, KHZ_PROMPT_SECONDS)."""
    sounds = tmp_path / "sounds"
    write_wav(sounds / "prompt.wav", tone(KHZ_PROMPT_SECONDS, [(0.0, KHZ_PROMPT_SECONDS)], freq=1000))
    return SimulatorConfig(sounds_dirs=[sounds], recordings_dir=tmp_path / "rec", api_docs_dir=api_docs,
                           strict=True, time_scale=0.2)


@pytest.fixture
async def simulator() -> AsyncIterator[Callable[[SimulatorConfig], AsyncIterator[RunningSimulator]]]:
    started: list[RunningSimulator] = []

    async def start(config: SimulatorConfig) -> RunningSimulator:
        running = await start_simulator(config)
        started.append(running)
        return running
    yield start  # type: ignore[misc]
    for running in started:
        await running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
