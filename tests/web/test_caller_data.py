"""The pop's data on the insurer's systems: the SQLite book and the Redis caller history."""

from __future__ import annotations

import sqlite3
import time
import uuid

import redis.asyncio as redis

from ivr.callrecord import CallRecord
from ivr.engine.state import CallState, Turn
from ivr.history import CallerHistory
from ivr.policyadmin.seed import seed_book
from ivr.policyadmin.sqlite_store import SqlitePolicyAdmin
from ivr.sealing import Sealer
from ivr.web.caller_data import CallerHistoryContacts, Contact, PolicyAdminDirectory, RedisContactHistory
from ivr.web.pop import build_pop


async def test_profile_from_the_policy_book(tmp_path):
    seed_book(tmp_path / "book.db", families=40)
    admin = await SqlitePolicyAdmin.open(tmp_path / "book.db", Sealer.generate())
    try:
        orphan_holder = None
        with sqlite3.connect(tmp_path / "book.db") as db:
            person_ids = [row[0] for row in db.execute("SELECT id FROM persons ORDER BY id")]
        for person_id in person_ids:
            policies = await admin.policies_of(person_id)
            if any(not p.agent_active for p in policies):
                orphan_holder = person_id
                break
        assert orphan_holder is not None, "the seeded book has orphan policies"
        profile = await PolicyAdminDirectory(admin).profile(orphan_holder, CallState(
            call_id="c", release="r", flow="f", node="n", language="en"))
        assert profile is not None and profile.name
        orphans = [p for p in profile.policies if p.orphan]
        assert orphans and all(p.sales_channel.endswith("(left)") for p in orphans)
        assert all(p.product and p.status and p.premium is not None for p in profile.policies)
        assert await PolicyAdminDirectory(admin).profile("P999999", CallState(
            call_id="c", release="r", flow="f", node="n", language="en")) is None
    finally:
        await admin.close()


async def test_past_calls_with_agent_outcomes(redis_url, tmp_path):
    client = redis.from_url(redis_url)
    prefix = f"test:{uuid.uuid4().hex[:12]}:"  # unique per run: a second run against the same Redis starts clean
    history = CallerHistory(client, Sealer.generate(), prefix=prefix)
    contacts = CallerHistoryContacts(history, RedisContactHistory(client, prefix + "outcomes:"))
    now = time.time()
    for n, (intents, queue, reason) in enumerate([(["payment"], None, None),
                                                   (["cancel"], "save_specialists", "cancel_first_year")]):
        await history.record(CallRecord(call_id=f"call-{n}", started=now - 100 + n, ended=now - 90 + n,
                                        status="transferred" if queue else "ended",
                                        outcome=queue or "completed", caller="P1", intents=intents,
                                        queue=queue, reason=reason), ["P1"])
    await contacts.record_outcome("P1", Contact(at=now, kind="agent_outcome", outcome="saved", agent="101",
                                                call_id="call-1"))
    await contacts.note_agent("P1", "101")
    recent = await contacts.recent("P1")
    assert [(c.call_id, c.summary, c.outcome, c.agent) for c in recent] == [
        ("call-1", "cancel → save_specialists: cancel_first_year", "saved", "101"),
        ("call-0", "payment → completed", "completed", None)]
    assert await history.last_agent("P1") == "101"
    await client.aclose()


def test_pop_marks_where_the_ivr_failed():
    state = CallState(call_id="c1", release="r", flow="cancellation", node="reason", language="en",
                      vars={"caller": {"id": "P1", "first_name": "Ann", "last_name": "Lee"},
                            "verification": {"verified": False}, "cancel_reason": None,
                            "routing": {"rule": "repeat_caller", "to": "person", "reason": "called about cancel"},
                            "call": {"ani": "+1555", "routing": {"prefer_agent": {"agent": "102", "rule": "last_agent",
                                                                                  "reason": "helped last"}}}},
                      status="transferred",
                      result={"queue": "save_specialists", "reason": "cancellation", "priority": 6},
                      path=[Turn(flow="cancellation", node="reason", kind="input", heard="i want to stop",
                                 confidence=0.41, detail="below reject threshold"),
                            Turn(flow="cancellation", node="reason", kind="nomatch", heard="stop it", detail="2"),
                            Turn(flow="cancellation", node="reason", kind="escape", matched="nomatch"),
                            Turn(flow="cancellation", node="reason", kind="transfer", matched="save_specialists")])
    pop = build_pop(state, "101", "save_specialists", 1.0, 2.0, None, [])
    assert [t.failed for t in pop.path] == [True, True, True, False]
    assert pop.failed_at is not None and pop.failed_at.kind == "escape"
    assert (pop.routing.rule, pop.routing.reason, pop.routing.preferred_agent) == \
        ("repeat_caller", "called about cancel", "102")
    assert pop.caller.name == "Ann Lee" and pop.caller.verified is False
    assert pop.cancellation is not None and pop.cancellation.reason is None and pop.cancellation.downgrade is None
