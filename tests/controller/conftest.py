"""A controller wired to the ARI simulator and a real Redis, in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as redis

from ivr.application import build, serve
from ivr.config import Settings
from ivr.demo import placeholder_audio
from ivr.policyadmin.seed import seed_book
from ivr.prompts import load_prompts
from ivr.sim import SimulatorConfig, start_simulator
from tests.conftest import ROOT, shared_dir

PROMPT_SECONDS = 0.3


def heard(call, key: str, count: int = 1) -> bool:
    """The caller has heard the prompt `key` (e.g. "main.menu") at least `count` times."""
    return sum(p.media_uri.endswith("/" + key) for p in call.prompts) >= count


async def saved_state(redis_url: str, channel_id: str):
    """The call's state as the controller last saved it in Redis."""
    from ivr import sealing
    from ivr.config import Settings
    from ivr.store import RedisCallStore

    store = RedisCallStore.from_url(redis_url, sealing.for_settings(Settings()))
    try:
        return await store.load(channel_id)
    finally:
        await store.close()


def write_prompt_audio(directory: Path, seconds_per_char: float = 0.0) -> Path:
    """Short silent prompts: these tests are about keys and timing, not what is said."""
    catalog, _ = load_prompts(ROOT / "prompts")
    return placeholder_audio(catalog, directory, seconds_per_char)


@dataclass
class Rig:
    sim: object
    settings: Settings
    stop: asyncio.Event
    task: asyncio.Task

    def call(self, ani: str = "+15550100", exten: str = "100"):
        return self.sim.sim.inbound_call(ani=ani, exten=exten)


async def strict_simulator(sounds: Path):
    """The ARI simulator over these sounds, refusing requests the Asterisk 22 docs do not list (when present)."""
    api_docs = shared_dir() / "asterisk" / "api-docs"
    config = SimulatorConfig(sounds_dirs=[sounds], strict=api_docs.is_dir(),
                             api_docs_dir=api_docs if api_docs.is_dir() else None)
    return await start_simulator(config), config


async def leaked_helpers(sim, config, grace: float = 3.0) -> list[str]:
    """Helper legs (snoop, externalMedia) of calls that ended or went to a queue, as `GET /channels` lists them."""
    from ivr.ari import AriClient
    from ivr.controller.speech import owner_of_helper

    gone = {c.channel_id for c in sim.sim.calls.values() if c.ended.is_set() or c.continued is not None}
    deadline = asyncio.get_running_loop().time() + grace
    async with AriClient(sim.base_url, config.username, config.password) as ari:
        while True:
            leaked = [ch.id for ch in await ari.list_channels() if owner_of_helper(ch.id) in gone]
            if not leaked or asyncio.get_running_loop().time() > deadline:
                return leaked
            await asyncio.sleep(0.1)


DEAD_AIR_LIMIT = 3.0  # seconds a caller may hear nothing, anywhere in a call


def longest_dead_air(sim) -> float:
    """The longest silence any inbound caller of this test heard, appended per call to
    test-artifacts/dead-air.jsonl (the figure the closing notes report)."""
    import json
    import os

    worst = 0.0
    out = ROOT / "test-artifacts" / "dead-air.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as log:
        for call in sim.sim.calls.values():
            if call.kind != "inbound" or call.answered_at is None:
                continue
            gap = call.longest_dead_air()
            worst = max(worst, gap.seconds)
            log.write(json.dumps({"test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0],
                                  "seconds": round(gap.seconds, 2), "from": round(gap.start, 2)}) + "\n")
    return worst


async def stop_simulator(sim) -> None:
    assert sim.violations == [], f"requests not in the ARI docs: {sim.violations}"
    await sim.stop()


@contextlib.asynccontextmanager
async def make_rig(tmp_path: Path, redis_url: str, backend=None, flows_dir: Path = ROOT / "flows",
                   observers: list | None = None, prompt_seconds_per_char: float = 0.0, **settings_overrides):
    """Simulator + controller; keys only unless `speech=` says otherwise, the sample backend's
    canned answers unless `backend=` (or `backend="insurer"` among the settings) says otherwise.

    English is heard by pocketsphinx unless `recognisers=` says otherwise: most
    spoken tests are about the call path, and pocketsphinx costs a tenth of
    Whisper's CPU; tests/controller/test_speech_calls.py runs its calls on both.
    """
    sounds = write_prompt_audio(tmp_path / "sounds", prompt_seconds_per_char)
    sim, config = await strict_simulator(sounds)
    options = {"http_port": 0, "speech": "off", "backend": "sample", "flows_dir": flows_dir, "prompts_dir": ROOT / "prompts", "sounds_dir": sounds / "ivr",
               "recognisers": {"en": "pocketsphinx"}, **settings_overrides}
    settings = Settings(ari_url=sim.base_url, ari_user=config.username, ari_password=config.password,
                        redis_url=redis_url, **options)
    stop, ready = asyncio.Event(), asyncio.Event()
    application = await build(settings, backend=backend, observers=observers or ())
    task = asyncio.create_task(serve(application, stop=stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    yield Rig(sim, settings, stop, task)
    assert await leaked_helpers(sim, config) == [], "snoop or media legs left behind by calls that ended"
    assert longest_dead_air(sim) <= DEAD_AIR_LIMIT, "a caller sat in silence (test-artifacts/dead-air.jsonl)"
    stop.set()
    await asyncio.wait_for(task, 10)
    await stop_simulator(sim)


@pytest.fixture
async def rig(tmp_path, redis_url):
    async with make_rig(tmp_path, redis_url) as started:
        yield started


class LedgerBackend:
    """Sample answers, but writes take time and are only committed if not cancelled."""

    def __init__(self, write_seconds: float = 0.6):
        from ivr.backend.base import SampleBackend

        self.sample = SampleBackend()
        self.write_seconds = write_seconds
        self.started: list[str] = []
        self.committed: list[str] = []
        self.cancelled: list[str] = []  # rolled back

    @property
    def settled(self) -> bool:
        """Every write that started has been committed or rolled back."""
        return len(self.committed) + len(self.cancelled) == len(self.started)

    async def call(self, name, args):
        from ivr.backend.catalog import ACTIONS

        if ACTIONS[name].writes:
            self.started.append(name)
            try:
                await asyncio.sleep(self.write_seconds)  # the transaction: all or nothing
            except asyncio.CancelledError:
                self.cancelled.append(name)
                raise
            self.committed.append(name)
        return await self.sample.call(name, args)


_databases = itertools.cycle(range(1, 15))  # 15 is the demo test's


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """A seeded insurer book per test module; the insurer rig copies it per test."""
    path = tmp_path_factory.mktemp("book") / "book.sqlite"
    seed_book(path, families=200, today=dt.date.today())
    return path


@pytest.fixture
async def own_redis(redis_url):
    """A Redis database of this test's own, emptied first; what the test's calls left in it is then
    read as `ivr privacy scan` reads it: no personal data in clear, whatever the test was about."""
    from ivr import privacy

    url = redis_url.rsplit("/", 1)[0] + f"/{next(_databases)}"
    client = redis.from_url(url)
    await client.flushdb()
    try:
        yield url
        found = [finding.line() async for finding in privacy.scan_redis(client)]
        assert found == [], "personal data in clear left in Redis by this test's calls"
    finally:
        await client.aclose()
