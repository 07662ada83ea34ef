"""The insurer's embedded stack as `ivr serve` runs it, wired to the ARI simulator, for whole-call tests.

SQLite book (a copy per test), simulated gateway, SMS outbox, routing rules
from flows/routing.yaml, caller history in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as redis

from ivr import sealing
from ivr.application import build, serve
from ivr.config import Settings
from ivr.controller import notices as note
from ivr.embedded import Embedded
from ivr.payments import SimulatedGateway
from ivr.policyadmin.seed import PERSONAS
from ivr.policyadmin.sqlite_store import SqlitePolicyAdmin
from tests.conftest import ROOT
from tests.controller.conftest import (
    DEAD_AIR_LIMIT,
    leaked_helpers,
    longest_dead_air,
    stop_simulator,
    strict_simulator,
    write_prompt_audio,
)
from tests.reload_gate import until

DOB = "19800531"
PHONE = {p.key: p.phone for p in PERSONAS}


class Watch:
    """An observer told after the history recorder: the channels whose call left the IVR (by then
    the recorder has started writing the call's record and the session its last state), and the
    state of each step the controller took (saved before it is told)."""

    def __init__(self) -> None:
        self.left: set[str] = set()
        self.steps: dict[str, list] = {}

    def __call__(self, session, notice) -> None:
        if isinstance(notice, note.StepTaken):
            self.steps.setdefault(session.channel_id, []).append(notice.step.state)
        elif isinstance(notice, note.CallLeft):
            self.left.add(session.channel_id)


@dataclass
class InsurerRig:
    sim: object
    embedded: Embedded
    admin: SqlitePolicyAdmin
    redis_url: str
    watch: Watch

    def call(self, persona: str):
        return self.sim.sim.inbound_call(ani=PHONE[persona], exten="100")

    async def left(self, *calls) -> None:
        """Until the controller has finished with these calls (their last state saved), or with
        every call that ended or went to a queue."""
        def gone() -> set[str]:
            if calls:
                return {c.channel_id for c in calls}
            return {c.channel_id for c in self.sim.sim.calls.values() if c.ended.is_set() or c.continued is not None}
        await until(lambda: gone() <= self.watch.left, 10, f"the controller never finished {gone() - self.watch.left}")

    async def records(self) -> list[dict]:
        """The history records, once every call that ended has had its record written."""
        await self.left()
        await self.embedded.recorder.drain()  # the recorder writes in the background
        client = redis.from_url(self.redis_url)
        try:
            ids = await client.zrange("ivr:rec:index", 0, -1)
            return [json.loads(await client.get(f"ivr:rec:{i.decode()}")) for i in ids]
        finally:
            await client.aclose()


@contextlib.asynccontextmanager
async def insurer_rig(tmp_path: Path, book: Path, redis_url: str, speech: str = "off", observers: tuple = ()):
    (tmp_path / "book.sqlite").write_bytes(book.read_bytes())
    sounds = write_prompt_audio(tmp_path / "sounds")
    sim, config = await strict_simulator(sounds)
    settings = Settings(ari_url=sim.base_url, ari_user=config.username, ari_password=config.password,
                        redis_url=redis_url, http_port=0, flows_dir=ROOT / "flows", prompts_dir=ROOT / "prompts",
                        sounds_dir=sounds / "ivr", book_path=tmp_path / "book.sqlite", speech=speech)
    admin = await SqlitePolicyAdmin.open(settings.book_path, sealing.for_settings(settings))
    watch = Watch()
    application = await build(settings, admin=admin, gateway=SimulatedGateway(latency=0.05, timeout_after=0.3),
                              observers=(*observers, watch))
    assert application.insurer is not None
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(application, stop=stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield InsurerRig(sim, application.insurer, admin, redis_url, watch)
        assert await leaked_helpers(sim, config) == [], "snoop or media legs left behind by calls that ended"
        assert longest_dead_air(sim) <= DEAD_AIR_LIMIT, "a caller sat in silence (test-artifacts/dead-air.jsonl)"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)  # closes the insurer's systems too
        await stop_simulator(sim)
