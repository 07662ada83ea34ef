"""A Redis outage through the one RedisGuard: call state, caller history and screen-pop contacts all go on, logged once."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError

from ivr.controller.step_audio import StepAudio
from ivr.engine.state import CallState
from ivr.redis_server import free_port
from ivr.redisguard import RedisGuard
from ivr.sealing import Sealer
from ivr.store import RedisCallStore
from ivr.web.caller_data import Contact, RedisContactHistory

log = logging.getLogger("ivr.test.outage")


def unavailable(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Redis unavailable" in r.getMessage()]


@pytest.fixture
async def dead_redis():
    client = redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.2, socket_connect_timeout=0.2)
    yield client
    await client.aclose()


async def test_the_guard_logs_once_down_skips_while_cooling_and_once_back(caplog):
    caplog.set_level(logging.WARNING, logger=log.name)
    guard = RedisGuard("things", log, retry_after=0.1)
    tried = []

    async def failing() -> str:
        tried.append("fail")
        raise RedisConnectionError("refused")

    async def working() -> str:
        tried.append("ok")
        return "answer"

    assert await guard.run(failing, "default") == "default"
    assert await guard.run(working, "default") == "default"  # cooling down: not even tried
    assert tried == ["fail"] and guard.down
    await asyncio.sleep(0.12)
    assert await guard.run(failing, "default") == "default"
    await asyncio.sleep(0.12)
    assert await guard.run(working) == "answer" and not guard.down
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["Redis unavailable (ConnectionError): calls go on without things until it is back",
                        "Redis is back: things resumes"]


async def test_the_call_store_goes_on_without_saved_state_logged_once(dead_redis, caplog):
    caplog.set_level(logging.ERROR)
    store = RedisCallStore(dead_redis, Sealer.generate())
    state = CallState(call_id="c1", release="r", flow="verify", node="ask_dob", language="en")
    audio = StepAudio(call_id="c1", played=1, sent_at=0.0, prompts=[])
    for _ in range(3):
        await store.save(state, audio)
        await store.save_audio(audio)
        assert await store.load("c1") is None
        assert await store.load_audio("c1") is None
        await store.forget("c1")
    assert unavailable(caplog) == ["Redis unavailable (ConnectionError): calls go on without saved call state "
                                   "until it is back"]


async def test_contacts_read_empty_when_redis_is_down_logged_once_and_writes_still_fail(dead_redis, caplog):
    caplog.set_level(logging.ERROR)
    contacts = RedisContactHistory(dead_redis)
    assert await contacts.recent("P1") == [] and await contacts.recent("P2") == []
    assert len(unavailable(caplog)) == 1 and "contact history" in unavailable(caplog)[0]
    with pytest.raises((OSError, redis.RedisError)):  # the agent who clicked is told; the click can be repeated
        await contacts.record_outcome("P1", Contact(at=1.0, kind="agent_outcome", outcome="saved", call_id="c"))
