"""Whole calls through the simulator and controller with the insurer backend, routing and history.

The embedded stack as `ivr serve` runs it: SQLite book (a copy per test),
simulated gateway, SMS outbox, routing rules from flows/routing.yaml, caller
history in Redis (a Redis database of its own per test, so one test's calls
are not another's history).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as redis

from ivr.config import Settings
from ivr.controller.app import serve
from ivr.embedded import Embedded, open_embedded
from ivr.flow.catalog import load_flow_set
from ivr.history import ani_key
from ivr.payments import SimulatedGateway
from ivr.policyadmin.seed import PERSONAS, seed_book
from ivr.policyadmin.sqlite_store import SqlitePolicyAdmin
from ivr.redis_server import free_port
from ivr.sim import SimulatorConfig, start_simulator
from tests.conftest import ROOT, shared_dir
from tests.controller.conftest import write_prompt_audio

DOB = "19800531"
PHONE = {p.key: p.phone for p in PERSONAS}
_databases = itertools.cycle(range(1, 15))  # 15 is the demo test's


@dataclass
class InsurerRig:
    sim: object
    embedded: Embedded
    admin: SqlitePolicyAdmin
    redis_url: str

    def call(self, persona: str):
        return self.sim.sim.inbound_call(ani=PHONE[persona], exten="100")

    async def state(self, channel_id: str):
        from ivr.store import RedisCallStore

        store = RedisCallStore.from_url(self.redis_url)
        try:
            return await store.load(channel_id)
        finally:
            await store.close()

    async def records(self) -> list[dict]:
        client = redis.from_url(self.redis_url)
        try:
            await asyncio.sleep(0.3)  # the recorder writes in the background
            ids = await client.zrange("ivr:rec:index", 0, -1)
            return [json.loads(await client.get(f"ivr:rec:{i.decode()}")) for i in ids]
        finally:
            await client.aclose()


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("book") / "book.sqlite"
    seed_book(path, families=200, today=dt.date.today())
    return path


@contextlib.asynccontextmanager
async def insurer_rig(tmp_path: Path, book: Path, redis_url: str, speech: str = "off", observers: tuple = ()):
    (tmp_path / "book.sqlite").write_bytes(book.read_bytes())
    sounds = write_prompt_audio(tmp_path / "sounds")
    api_docs = shared_dir() / "asterisk" / "api-docs"
    config = SimulatorConfig(sounds_dirs=[sounds], strict=api_docs.is_dir(),
                             api_docs_dir=api_docs if api_docs.is_dir() else None)
    sim = await start_simulator(config)
    settings = Settings(ari_url=sim.base_url, ari_user=config.username, ari_password=config.password,
                        redis_url=redis_url, http_port=0, flows_dir=ROOT / "flows", prompts_dir=ROOT / "prompts",
                        sounds_dir=sounds / "ivr", book_path=tmp_path / "book.sqlite", speech=speech)
    release, _ = load_flow_set(settings.flows_dir, settings.prompts_dir)
    admin = await SqlitePolicyAdmin.open(settings.book_path)
    embedded = await open_embedded(settings, admin=admin, gateway=SimulatedGateway(latency=0.05, timeout_after=0.3),
                                   flows=release.flows)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, backend=embedded.backend, router=embedded.router, stop=stop,
                                     ready=ready, observers=[embedded.recorder, *observers]))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield InsurerRig(sim, embedded, admin, redis_url)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await embedded.aclose()
        assert sim.violations == [], f"requests not in the ARI docs: {sim.violations}"
        await sim.stop()


@pytest.fixture
async def own_redis(redis_url):
    """A Redis database of this test's own, emptied first."""
    url = redis_url.rsplit("/", 1)[0] + f"/{next(_databases)}"
    client = redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    return url


@pytest.fixture
async def rig(tmp_path, book, own_redis):
    async with insurer_rig(tmp_path, book, own_redis) as started:
        yield started


def heard(call, key: str) -> bool:
    return any(p.media_uri.endswith("/" + key) for p in call.prompts)


async def until_heard(call, key: str, timeout: float = 15) -> None:
    await call.wait_until(lambda c: heard(c, key), timeout=timeout)


async def test_failed_debit_caller_hears_the_payment_journey_first_and_pays(rig):
    call = rig.call("payment")
    await until_heard(call, "main.payment_first")
    await until_heard(call, "verify.dob")
    await call.press(DOB, interval=0.08)
    await until_heard(call, "payment.offer")
    assert not heard(call, "main.menu")
    await call.press("1")
    await until_heard(call, "payment.paid")
    await until_heard(call, "main.anything_else")
    await call.press("2")
    await call.wait_ended(timeout=15)
    assert await rig.admin.count("payments") == 1
    assert rig.embedded.outbox.to(PHONE["payment"], "confirmation")
    [record] = await rig.records()
    assert record["route"]["rule"] == "failed_debit_first" and record["intents"] == ["payment"]
    assert record["journeys"][0]["outcome"] == "contained"


async def test_orphan_policy_holder_goes_to_the_orphan_desk_with_the_rule(rig):
    call = rig.call("orphan")
    continued = await call.wait_continued(timeout=15)
    assert continued.variables["IVR_QUEUE"] == "orphan_desk" and continued.variables["IVR_REASON"] == "orphan_policy"
    state = await rig.state(call.channel_id)
    assert state.vars["routing"]["rule"] == "orphan_policy_desk" and "agent has left" in state.vars["routing"]["reason"]


async def test_repeat_caller_about_the_same_thing_goes_straight_to_a_person(rig):
    first = rig.call("policy")
    await until_heard(first, "main.menu")
    await first.press("1")
    await until_heard(first, "verify.dob")
    await first.press(DOB, interval=0.08)
    await until_heard(first, "policy.what_next")
    await first.press("9")
    await until_heard(first, "main.anything_else")
    await first.press("2")
    await first.wait_ended(timeout=15)
    assert len(await rig.records()) == 1  # history written
    second = rig.call("policy")
    await until_heard(second, "main.menu")
    await second.press("1")
    continued = await second.wait_continued(timeout=15)
    assert (continued.variables["IVR_QUEUE"], continued.variables["IVR_REASON"]) == ("customer_service", "repeat_caller")
    state = await rig.state(second.channel_id)
    assert state.vars["routing"]["rule"] == "repeat_caller"


async def test_three_wrong_dates_lock_self_service_and_the_next_call_skips_the_menu(rig):
    call = rig.call("cancel")
    await until_heard(call, "main.menu")
    await call.press("1")
    for attempt in range(3):
        await call.wait_until(lambda c: sum(p.media_uri.endswith("/verify.dob") for p in c.prompts) > attempt, timeout=15)
        await call.press("19990101", interval=0.05)
    continued = await call.wait_continued(timeout=15)
    assert continued.variables["IVR_REASON"] == "verification_locked"
    again = rig.call("cancel")
    continued = await again.wait_continued(timeout=15)
    assert (continued.variables["IVR_QUEUE"], continued.variables["IVR_REASON"]) == ("customer_service", "verification_locked")
    assert not heard(again, "main.menu") and not heard(again, "verify.dob")


async def test_hang_up_before_confirming_the_downgrade_writes_nothing(rig):
    call = rig.call("cancel")
    await until_heard(call, "main.menu")
    await call.press("4")
    await until_heard(call, "verify.dob")
    await call.press(DOB, interval=0.08)
    await until_heard(call, "cancel.reason")
    await call.press("2")  # too expensive
    await until_heard(call, "cancel.downgrade")
    await call.hangup()
    await call.wait_ended()
    await asyncio.sleep(0.3)
    assert await rig.admin.count("cancellations") == 0
    [record] = await rig.records()
    assert record["outcome"] == "caller_hangup" and record["last_node"] == "cancellation.downgrade"


async def test_gateway_timeout_apologises_and_hands_over(rig):
    call = rig.call("gateway_timeout")
    await until_heard(call, "verify.dob")
    await call.press(DOB, interval=0.08)
    await until_heard(call, "payment.offer")
    await call.press("1")
    continued = await call.wait_continued(timeout=15)
    assert (continued.variables["IVR_QUEUE"], continued.variables["IVR_REASON"]) == ("payments", "backend_unavailable")
    assert heard(call, "common.backend_down")
    assert await rig.admin.count("payments") == 0


async def test_redis_down_calls_go_on_without_history_logged_once(tmp_path, book, caplog):
    caplog.set_level(logging.ERROR)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with insurer_rig(tmp_path, book, dead) as rig:
        for _ in range(2):
            call = rig.call("policy")
            await until_heard(call, "main.menu")
            await call.press("0")
            continued = await call.wait_continued(timeout=15)
            assert continued.variables["IVR_REASON"] == "asked_for_agent"
        lines = [r.getMessage() for r in caplog.records if "Redis unavailable" in r.getMessage()]
        assert lines and len(lines) == len(set(lines)) <= 3, lines  # once per store, not per call
        assert any("history" in line for line in lines)
        print("\n".join(lines))
