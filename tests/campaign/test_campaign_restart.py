"""The campaign's state in Redis: a restarted campaign repeats no contact, and keeps no number in clear."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import redis.asyncio as redis

from ivr.campaign.model import Rules
from ivr.campaign.runner import Campaign
from ivr.campaign.store import CampaignStore
from ivr.policyadmin.model import DebitFailure, Person, Policy
from ivr.report import Recovery
from ivr.sealing import Sealer
from ivr.sms import Outbox

LONDON = ZoneInfo("Europe/London")
PHONE, NUMBER = "+15550102", "40012346"


class Book:
    """One failed debit, as the policy system lists it."""

    def __init__(self) -> None:
        self.failure = DebitFailure(NUMBER, 86.4, dt.date(2026, 12, 1), "insufficient_funds", dt.date(2026, 12, 31))
        self.paid = False

    async def open_debit_failures(self, limit: int) -> list[DebitFailure]:
        return [] if self.paid else [self.failure]

    async def debit_failure(self, number: str) -> DebitFailure | None:
        return None if self.paid else self.failure

    async def promised_by(self, number: str) -> dt.date | None:
        return None

    async def policy(self, number: str) -> Policy:
        return Policy(NUMBER, "P1", "term_life", "Term Life", "in_force", dt.date(2024, 1, 1), 86.4, 100000.0,
                      dt.date(2026, 12, 1), None, True, "sim-approved-0")

    async def person(self, person_id: str) -> Person:
        return Person("P1", "F1", "Ben", "Carter", dt.date(1980, 5, 31), "4567", PHONE, timezone="Europe/London")


class Dialer:
    def __init__(self) -> None:
        self.placed: list[str] = []

    async def place(self, attempt: str, phone: str, language: str) -> None:
        self.placed.append(phone)


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=LONDON).timestamp()


async def test_a_restarted_campaign_goes_on_where_it_stopped(redis_url):
    client = redis.from_url(redis_url)
    store = CampaignStore(client, Sealer.generate(), prefix=f"t{uuid.uuid4().hex[:8]}:campaign:")
    book, dialer, outbox = Book(), Dialer(), Outbox()
    now = [at("2026-12-07T09:00")]

    async def started() -> Campaign:
        campaign = Campaign(store, book, outbox, dialer, Rules(first_call_after=3600), clock=lambda: now[0])
        await campaign.load()
        return campaign

    try:
        await (await started()).round()
        assert len(outbox.to(PHONE)) == 1 and "ending 2346" in outbox.to(PHONE)[0].text
        now[0] = at("2026-12-07T09:30")
        await (await started()).round()  # restarted: the text is not sent again, the call not yet due
        assert len(outbox.to(PHONE)) == 1 and dialer.placed == []
        now[0] = at("2026-12-07T10:00")
        await (await started()).round()
        assert dialer.placed == [PHONE]
        now[0] = at("2026-12-07T10:05")
        again = await started()
        await again.round()  # restarted with the call in flight: not placed twice
        assert dialer.placed == [PHONE]
        book.paid = True
        now[0] = at("2026-12-07T16:00")  # the call's outcome never came: timed out, the next call in 3 hours
        await again.round()
        now[0] = at("2026-12-07T19:00")  # before it, the book is read: paid meanwhile, no call
        await again.round()
        [target] = again.state.targets.values()
        assert target.status == "done" and target.result == "paid" and dialer.placed == [PHONE]
        # the report counts it for the text: the one call never reached them
        assert await store.recoveries(at("2026-12-07T00:00"), at("2026-12-08T00:00")) == [
            Recovery(channel="text", outcome="paid", at=at("2026-12-07T19:00"))]
        keys = [k async for k in client.scan_iter(match=f"{store.prefix}*")]
        dumped = b"".join([str(await client.hgetall(k)).encode() if await client.type(k) == b"hash"
                           else b"" for k in keys])
        assert b"5550102" not in dumped and NUMBER.encode() not in dumped and b"sealed:" in dumped
    finally:
        keys = [k async for k in client.scan_iter(match=f"{store.prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def test_a_call_whose_end_was_never_heard_is_not_watched_for_ever():
    import asyncio

    from ivr.campaign.dialer import FORGET_AFTER, AriDialer, DialPlan

    class Ari:
        def __init__(self) -> None:
            self.count = 0

        async def originate(self, *args, **kwargs):
            self.count += 1
            return type("Channel", (), {"id": f"ch{self.count}"})()

        async def subscribe(self, app, source):
            return None

    now = [0.0]
    dialer = AriDialer(Ari(), "ivr-campaign", DialPlan(), lambda failed: None, lambda: now[0])
    asyncio.run(dialer.place("a-1", PHONE, "en"))
    now[0] = FORGET_AFTER + 1
    asyncio.run(dialer.place("b-1", PHONE, "en"))
    assert [p.attempt for p in dialer.placed.values()] == ["b-1"]


async def test_a_forgotten_target_leaves_redis_too(redis_url):
    from ivr.campaign.model import CampaignState, Target

    client = redis.from_url(redis_url)
    store = CampaignStore(client, Sealer.generate(), prefix=f"t{uuid.uuid4().hex[:8]}:campaign:")
    kept = Target(key="k1", policy="sealed:p", phone=None, person="P1", amount=1.0, cancel_on=dt.date(2026, 12, 31),
                  found_at=0.0)
    try:
        await store.save(CampaignState(targets={"k1": kept}), {"k1"})
        assert set((await store.load()).targets) == {"k1"}
        await store.save(CampaignState(), {"k1"})
        assert (await store.load()).targets == {}
    finally:
        await client.delete(f"{store.prefix}targets", f"{store.prefix}meta")
        await client.aclose()
