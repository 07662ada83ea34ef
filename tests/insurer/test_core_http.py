"""The core-system HTTP adapter against a small aiohttp server: same answers, retries, timeouts, idempotent writes."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.backoff import Backoff
from ivr.policyadmin.base import PolicyAdminError
from ivr.policyadmin.http_api import core_app
from ivr.policyadmin.http_client import HttpPolicyAdmin
from ivr.redis_server import free_port
from tests.insurer.conftest import persona


class Faults:
    """What the server does to the next requests: fail with a status, or stall."""

    def __init__(self):
        self.fail_next = 0
        self.fail_after_handling = 0
        self.stall = 0.0
        self.requests = 0


def faulty_core(admin, faults: Faults) -> web.Application:
    @web.middleware
    async def inject(request, handler):
        faults.requests += 1
        if faults.stall:
            await asyncio.sleep(faults.stall)
        if faults.fail_next:
            faults.fail_next -= 1
            raise web.HTTPServiceUnavailable()
        response = await handler(request)
        if faults.fail_after_handling:  # the write happened, the answer is lost on the way back
            faults.fail_after_handling -= 1
            raise web.HTTPBadGateway()
        return response

    app = core_app(admin)
    app.middlewares.append(inject)
    return app


@pytest.fixture
async def core(admin):
    faults = Faults()
    server = TestServer(faulty_core(admin, faults))
    await server.start_server()
    client = HttpPolicyAdmin(str(server.make_url("")), timeout=0.5, retries=2,
                             backoff=Backoff(initial=0.01, cap=0.1))
    yield client, faults, admin
    await client.close()
    await server.close()


async def test_adapter_answers_as_the_store_does(core):
    client, _, admin = core
    number = persona("payment").policy
    assert await client.policy(number) == await admin.policy(number)
    holder = (await admin.policy(number)).holder_id
    assert await client.person(holder) == await admin.person(holder)
    assert await client.persons_by_phone(persona("payment").phone) == await admin.persons_by_phone(persona("payment").phone)
    assert await client.policies_of(holder) == await admin.policies_of(holder)
    assert await client.debit_failure(number) == await admin.debit_failure(number)
    assert await client.open_claim(persona("policy").policy) == await admin.open_claim(persona("policy").policy)
    assert await client.downgrade_options(persona("cancel").policy) == await admin.downgrade_options(persona("cancel").policy)
    assert await client.phone_owners("+15559000") == await admin.phone_owners("+15559000")
    assert await client.check_identity(holder, dob=dt.date(1980, 5, 31))
    assert not await client.check_identity(holder, id_last4="0000")


async def test_missing_records_are_none(core):
    client, _, _ = core
    assert await client.policy("49999999x") is None
    assert await client.person("C-nobody") is None
    assert await client.open_claim(persona("cancel").policy) is None


async def test_unavailable_answers_are_retried(core):
    client, faults, _ = core
    faults.fail_next = 2
    assert (await client.policy(persona("policy").policy)).number == persona("policy").policy
    assert faults.requests == 3


async def test_retries_wait_the_shared_backoff_counted_afresh_per_request(admin):
    faults = Faults()
    server = TestServer(faulty_core(admin, faults))
    await server.start_server()
    policy = Backoff(initial=0.15, cap=0.3, rng=random.Random(4))
    twin = Backoff(initial=0.15, cap=0.3, rng=random.Random(4))
    client = HttpPolicyAdmin(str(server.make_url("")), timeout=0.5, retries=2, backoff=policy)
    try:
        for _ in range(2):  # the second request starts again from `initial`, not where the first left off
            faults.fail_next = 2
            expected = twin.fresh()
            waits = expected.next_delay() + expected.next_delay()
            started = time.monotonic()
            await client.policy(persona("policy").policy)
            assert waits <= time.monotonic() - started < waits + 0.25
        assert policy.failures == 0  # the shared policy is never counted on
    finally:
        await client.close()
        await server.close()


async def test_a_lost_answer_to_a_write_is_retried_without_writing_twice(core):
    client, faults, admin = core
    number = persona("payment").policy
    faults.fail_after_handling = 1
    reference = await client.record_payment(number, 87.5, "auth_x", None, "key-1")
    assert faults.requests == 2
    assert await admin.count("payments", "policy_number = ?", (number,)) == 1
    assert reference.startswith("PAY-")


async def test_a_write_that_no_longer_applies_is_a_conflict_not_a_retry(core):
    client, faults, _ = core
    with pytest.raises(PolicyAdminError):
        await client.record_payment(persona("policy").policy, 10.0, "auth_y", None, "key-2")  # nothing due
    assert faults.requests == 1


async def test_a_stalled_core_system_fails_within_the_attempt_budget(core):
    client, faults, _ = core
    faults.stall = 5.0
    started = time.monotonic()
    with pytest.raises(PolicyAdminError, match="unavailable"):
        await client.policy(persona("policy").policy)
    elapsed = time.monotonic() - started
    assert faults.requests == 3 and elapsed < 3 * 0.5 + 0.5


async def test_an_unreachable_core_system_is_an_error():
    client = HttpPolicyAdmin(f"http://127.0.0.1:{free_port()}", timeout=0.3, retries=1,
                             backoff=Backoff(initial=0.01, cap=0.1))
    with pytest.raises(PolicyAdminError):
        await client.persons_by_phone("+15550101")
    await client.close()
