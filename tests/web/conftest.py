"""A controller with the agent page, the simulator running the shipped asterisk-conf, a real Redis.

Queue members never answer by themselves here: a test makes one agent pick
up (``SimCall.agent_answer``), as a person clicking answer would, so the
test knows the moment of answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from ivr import sealing
from ivr.application import build, serve
from ivr.bench.cluster import simulator_config
from ivr.config import AgentAccount, Settings
from ivr.demo import placeholder_audio
from ivr.prompts import load_prompts
from ivr.sim import SimulatorConfig, load_asterisk_conf, start_simulator
from ivr.store import RedisCallStore
from ivr.web.accounts import Accounts
from ivr.web.caller_data import CallerProfile, PolicyInfo, RedisContactHistory, StaticDirectory
from ivr.web.desk import AgentDesk
from ivr.web.server import AgentPage
from tests.conftest import ROOT, shared_dir

OUTBOUND_PASSWORD = "desk-test-password"
TOKENS = {"101": "token-of-agent-101", "102": "token-of-agent-102"}
CALLER_ID = "C-100001"           # the sample backend's caller (ivr/backend/sample.py)
CANCEL_BY_KEYS = [("menu", "4"), ("dob", "19800531"), ("reason", "2"), ("downgrade", "1")]


def agents() -> list[AgentAccount]:
    return [
        AgentAccount(id="101", name="Mei Chen", token=TOKENS["101"], interfaces=["PJSIP/agent101"],
                     queues=["save_specialists", "complaints", "customer_service"]),
        AgentAccount(id="102", name="Tom Okafor", token=TOKENS["102"], interfaces=["PJSIP/agent102"],
                     queues=["save_specialists", "payments", "customer_service"]),
    ]


def profiles() -> StaticDirectory:
    return StaticDirectory({CALLER_ID: CallerProfile(caller_id=CALLER_ID, name="Ann Lee", policies=[
        PolicyInfo(number="40012345", product="Term Life 20", status="in force", premium=86.4, first_year=True,
                   sales_channel="bancassurance"),
        PolicyInfo(number="40077001", product="Home Contents", status="in force", premium=21.5, orphan=True,
                   sales_channel="agency"),
    ])})


@dataclass
class DeskRig:
    sim: Any
    settings: Settings
    page: AgentPage
    history: RedisContactHistory
    base_url: str

    @property
    def desk(self) -> AgentDesk:
        return self.page.desk

    def call(self, ani: str = "+15550100"):
        return self.sim.sim.inbound_call(ani=ani, exten="8001", context="from-trunk")


async def walk_cancellation(call: Any) -> None:
    """Key through main menu -> cancellation (too expensive, accepts the downgrade)."""
    await call.wait_in_stasis()
    for _, keys in CANCEL_BY_KEYS:
        await asyncio.sleep(0.6)   # prompts are 0.3 s placeholders; keys barge in anyway
        await call.press(keys, interval=0.12)
    await call.wait_continued(timeout=20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for(predicate, timeout: float = 10.0, step: float = 0.02) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(step)


@contextlib.asynccontextmanager
async def make_desk_rig(tmp_path: Path, redis_url: str, outbound: bool = False) -> AsyncIterator[DeskRig]:
    """`outbound`: Asterisk's outbound websockets (asterisk-conf/scale-out), the desk's own persistent one included."""
    catalog, _ = load_prompts(ROOT / "prompts")
    sounds = placeholder_audio(catalog, tmp_path / "sounds")
    api_docs = shared_dir() / "asterisk" / "api-docs"
    port = free_port()
    base = simulator_config(sounds, f"ws://127.0.0.1:{port}/ari/outbound", OUTBOUND_PASSWORD) if outbound \
        else SimulatorConfig(sounds_dirs=[sounds])
    base.strict, base.api_docs_dir = api_docs.is_dir(), api_docs if api_docs.is_dir() else None
    config = load_asterisk_conf(base, ROOT / "asterisk-conf")
    for queue in config.queues.values():
        queue.answer_with(None)            # agents answer when the test says so
    sim = await start_simulator(config)
    mode = {"ari_mode": "outbound", "ari_outbound_password": OUTBOUND_PASSWORD, "ari_desk_app": "ivrdesk"} \
        if outbound else {}
    settings = Settings(ari_url=sim.base_url, ari_user=config.username, ari_password=config.password,
                        redis_url=redis_url, http_port=port, flows_dir=ROOT / "flows", prompts_dir=ROOT / "prompts",
                        sounds_dir=sounds / "ivr", speech="off", agents=agents(), backend="sample", **mode)
    client = redis.from_url(redis_url)
    history = RedisContactHistory(client, prefix=f"test:{uuid.uuid4().hex[:12]}:contacts:")  # unique per run
    store = RedisCallStore(client, sealing.for_settings(settings))
    accounts = Accounts(settings.agents)
    page = AgentPage(accounts, AgentDesk(accounts, store.load, profiles(), history, store.sealer))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(await build(settings, agent_page=page), stop=stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    base_url = f"http://127.0.0.1:{settings.http_port}"
    try:
        yield DeskRig(sim, settings, page, history, base_url)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await client.aclose()
        await sim.stop()


@pytest.fixture
async def desk_rig(tmp_path, redis_url) -> AsyncIterator[DeskRig]:
    async with make_desk_rig(tmp_path, redis_url) as rig:
        yield rig
