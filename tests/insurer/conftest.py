"""A seeded SQLite book in a temporary directory and the insurer's systems over it, on the real Redis."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
import redis.asyncio as redis

from ivr.backend.insurer import InsurerBackend
from ivr.backend.systems import Systems
from ivr.history import CallerHistory
from ivr.otp import OneTimeCodes
from ivr.payments import SimulatedGateway
from ivr.policyadmin.seed import PERSONAS, seed_book
from ivr.policyadmin.sqlite_store import SqlitePolicyAdmin
from ivr.sealing import Sealer
from ivr.sms import Outbox

SEALER = Sealer.generate()

TODAY = dt.date(2026, 11, 25)
BY_KEY = {p.key: p for p in PERSONAS}


def persona(key: str):
    return BY_KEY[key]


@pytest.fixture(scope="session")
def seeded_book(tmp_path_factory) -> Path:
    """One generated book per test session; tests copy it so each starts from the same data."""
    path = tmp_path_factory.mktemp("book") / "book.sqlite"
    seed_book(path, families=400, today=TODAY)
    return path


@pytest.fixture
async def admin(seeded_book, tmp_path):
    path = tmp_path / "book.sqlite"
    path.write_bytes(seeded_book.read_bytes())
    store = await SqlitePolicyAdmin.open(path, SEALER)
    yield store
    await store.close()


@pytest.fixture
async def redis_client(redis_url):
    client = redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    """Keys of one test, apart from every other test's (the Redis is shared by the session)."""
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def systems(admin, redis_client, prefix):
    return Systems(admin=admin, gateway=SimulatedGateway(latency=0.01, timeout_after=0.2, today=lambda: TODAY),
                   sms=Outbox(), codes=OneTimeCodes(redis_client, SEALER, prefix=prefix + "otp:"),
                   history=CallerHistory(redis_client, SEALER, prefix=prefix), today=lambda: TODAY)


@pytest.fixture
def backend(systems) -> InsurerBackend:
    return InsurerBackend(systems)
