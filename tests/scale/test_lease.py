"""Call leases in a real Redis: one controller runs a call at a time, and a dead one's calls
are taken over once its lease lapses."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as redis

from ivr.lease import PREFIX, Leases


@pytest.fixture
async def client(redis_url):
    connection = redis.from_url(redis_url)
    yield connection
    await connection.aclose()


def _call() -> str:
    return f"lease-test-{uuid.uuid4().hex[:8]}"


async def test_one_controller_holds_a_call_and_another_waits_for_its_lease_to_lapse(client):
    call = _call()
    first, second = Leases(client, "ctl-a", ttl=0.4), Leases(client, "ctl-b", ttl=0.4)
    assert await first.acquire(call)
    assert not await second.acquire(call), "held: not taken"
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await second.acquire(call, wait=2.0), "ctl-a stopped renewing (it died): the lease lapses"
    assert 0.2 < loop.time() - began < 0.8
    assert await second.holder(call) == "ctl-b"
    assert await first.renew_all() == [call], "ctl-a, back, learns the call is no longer its own"
    assert call not in first.held
    await second.release_all()


async def test_a_renewed_lease_does_not_lapse_and_a_released_one_is_free_at_once(client):
    call = _call()
    holder, other = Leases(client, "ctl-a", ttl=0.3), Leases(client, "ctl-b", ttl=0.3)
    assert await holder.acquire(call)
    for _ in range(5):
        await asyncio.sleep(0.1)
        assert await holder.renew_all() == []
    assert not await other.acquire(call, wait=0.2)
    await holder.release(call)
    assert await other.acquire(call)
    await other.release_all()
    assert await client.exists(PREFIX + call) == 0


async def test_a_channel_name_leads_to_its_call_without_the_name_in_redis(client):
    leases = Leases(client, "ctl-a", name_digest=lambda name: "digest-" + str(len(name)))
    name = f"PJSIP/trunk-{uuid.uuid4().hex[:8]}"
    await leases.remember(name, "1796169100.44", ttl=60)
    assert await leases.call_named(name) == "1796169100.44"
    assert await leases.call_named("PJSIP/other") is None
    keys = [key.decode() async for key in client.scan_iter("ivr:channel:*")]
    assert all("PJSIP" not in key for key in keys)
