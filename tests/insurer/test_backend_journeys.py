"""Each journey's actions through the insurer backend, with the unhappy paths a caller notices.

Real SQLite book (tmp dir), real Redis (keys per test), simulated gateway and SMS outbox.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.backend.base import call_with_timeout
from ivr.backend.insurer import InsurerBackend
from ivr.backend.systems import Systems
from ivr.history import CallerHistory
from ivr.otp import OneTimeCodes
from ivr.payments import SimulatedGateway
from ivr.redis_server import free_port
from ivr.sealing import Sealer
from ivr.sms import Outbox
from tests.insurer.conftest import TODAY, persona

DOB = "19800531"


async def caller_of(backend, key: str) -> dict:
    outcome, caller = await backend.call("caller.identify", {"ani": persona(key).phone})
    assert outcome == "ok"
    return caller


def who(caller: dict) -> dict:
    return {"caller": caller["id"], "policy": caller["policy_number"]}


# --- identity --------------------------------------------------------------------------


async def test_identified_by_caller_number_with_what_routing_needs(backend):
    caller = await caller_of(backend, "payment")
    assert caller["failed_debit"] and caller["policy_number"] == persona("payment").policy
    assert (await caller_of(backend, "orphan"))["orphan"]
    assert (await caller_of(backend, "first_year"))["first_quarter"]


async def test_agent_number_or_shared_number_identifies_nobody(backend, admin):
    assert await backend.call("caller.identify", {"ani": "+15559000"}) == ("declined", {"reason": "agent_number"})
    row = await admin.db.fetch_one("SELECT phone FROM persons WHERE phone IS NOT NULL AND phone NOT IN "
                                   "(SELECT phone FROM agents) GROUP BY phone HAVING COUNT(*) > 1")
    assert await backend.call("caller.identify", {"ani": row["phone"]}) == ("declined", {"reason": "shared_number"})
    assert await backend.call("caller.identify", {"ani": "+19990000000"}) == ("declined", {"reason": "not_on_file"})
    outcome, caller = await backend.call("caller.identify", {"ani": "+15559000", "policy_number": persona("person").policy})
    assert outcome == "ok" and caller["found_by"] == "policy_number"


async def test_verify_by_date_of_birth_or_last_id_digits(backend):
    caller = await caller_of(backend, "policy")
    assert (await backend.call("caller.verify", {**who(caller), "dob": DOB}))[1]["method"] == "dob"
    assert (await backend.call("caller.verify", {**who(caller), "dob": "4567"}))[1]["method"] == "id"


async def test_three_wrong_answers_in_a_day_lock_self_service_for_the_policy(backend, systems):
    caller = await caller_of(backend, "policy")
    outcomes = [await backend.call("caller.verify", {**who(caller), "dob": "19990101"}) for _ in range(3)]
    assert [o for o, _ in outcomes] == ["declined", "declined", "locked"]
    assert [d["attempts_left"] for _, d in outcomes] == [2, 1, 0]
    assert "3 failed verifications" in outcomes[2][1]["reason"]
    # the right answer no longer opens self-service, and identification says so at once
    assert (await backend.call("caller.verify", {**who(caller), "dob": DOB}))[0] == "locked"
    assert (await caller_of(backend, "policy"))["locked"] is True
    # the counter is in Redis: another controller (a fresh history object) sees the lock too
    other = InsurerBackend(Systems(systems.admin, systems.gateway, systems.sms, systems.codes,
                                   CallerHistory(systems.history.client, systems.history.sealer, prefix=systems.history.prefix)))
    assert (await other.call("caller.verify", {**who(caller), "dob": DOB}))[0] == "locked"
    # another policyholder is not affected
    assert (await backend.call("caller.verify", {**who(await caller_of(backend, "cancel")), "dob": DOB}))[0] == "ok"


async def test_failures_older_than_a_day_no_longer_count(backend, systems):
    caller = await caller_of(backend, "policy")
    clock = [1_000_000.0]
    systems.history.now = lambda: clock[0]
    for _ in range(2):
        await backend.call("caller.verify", {**who(caller), "dob": "19990101"})
    clock[0] += 86400 + 1
    outcome, data = await backend.call("caller.verify", {**who(caller), "dob": "19990101"})
    assert (outcome, data["attempts_left"]) == ("declined", 2)


# --- failed payment ----------------------------------------------------------------------


async def test_retry_approved_pays_and_records_once(backend, systems, admin):
    caller = await caller_of(backend, "payment")
    outcome, failure = await backend.call("payment.failure", who(caller))
    assert outcome == "ok" and failure["reason"] == "insufficient_funds" and failure["cancel_date"] > TODAY.isoformat()
    outcome, paid = await backend.call("payment.retry", who(caller))
    assert outcome == "ok" and paid["amount"] == failure["amount"]
    assert await admin.debit_failure(caller["policy_number"]) is None
    assert await admin.count("payments") == 1 and len(systems.gateway.captured) == 1
    assert await backend.call("payment.retry", who(caller)) == ("declined", {"reason": "nothing_due"})


async def test_declined_retry_writes_nothing(backend, systems, admin):
    caller = await caller_of(backend, "declined")
    outcome, data = await backend.call("payment.retry", who(caller))
    assert outcome == "declined" and data["reason"] == "insufficient_funds" and data["reason_text"]
    assert await admin.debit_failure(caller["policy_number"]) is not None
    assert await admin.count("payments") == 0 and not systems.gateway.captured


async def test_gateway_timeout_is_a_timeout_outcome(backend, admin):
    caller = await caller_of(backend, "gateway_timeout")
    assert await backend.call("payment.retry", who(caller)) == ("timeout", {})
    assert await admin.count("payments") == 0


async def test_hang_up_while_the_bank_answers_charges_and_records_nothing(backend, systems, admin):
    systems.gateway.latency = 1.0
    caller = await caller_of(backend, "payment")
    task = asyncio.create_task(backend.call("payment.retry", who(caller)))
    await asyncio.sleep(0.2)
    task.cancel()  # what the controller does when the caller hangs up
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await admin.count("payments") == 0 and await admin.debit_failure(caller["policy_number"]) is not None
    assert not systems.gateway.captured and not systems.gateway.authorized


async def test_hang_up_during_the_payment_write_voids_the_authorisation(backend, systems, admin, monkeypatch):
    from ivr.policyadmin import sqlite_store

    reached = asyncio.Event()
    original = sqlite_store._remember

    async def slow(tx, key, result, now):
        reached.set()
        await asyncio.sleep(5)
        await original(tx, key, result, now)

    monkeypatch.setattr(sqlite_store, "_remember", slow)
    caller = await caller_of(backend, "payment")
    task = asyncio.create_task(backend.call("payment.retry", who(caller)))
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await admin.count("payments") == 0 and await admin.debit_failure(caller["policy_number"]) is not None
    assert not systems.gateway.captured and len(systems.gateway.voided) == 1


@pytest.mark.parametrize("card,expiry,reason", [
    ("4111111111111112", "1230", "invalid_card"),   # fails the Luhn check: a mistyped number
    ("4111111111111111", "0120", "card_expired"),
    ("4000000000009995", "1230", "insufficient_funds"),
])
async def test_a_new_card_that_cannot_pay_is_declined_with_the_reason(backend, admin, card, expiry, reason):
    caller = await caller_of(backend, "declined")
    outcome, data = await backend.call("payment.switch_method", {**who(caller), "card": card, "expiry": expiry})
    assert (outcome, data["reason"]) == ("declined", reason)
    assert await admin.count("payments") == 0


async def test_a_good_new_card_pays_and_replaces_the_method_without_keeping_the_number(backend, admin, caplog):
    caplog.set_level(logging.DEBUG, logger="ivr")
    caller = await caller_of(backend, "declined")
    outcome, data = await backend.call("payment.switch_method", {**who(caller), "card": "4111111111111111", "expiry": "1230"})
    assert outcome == "ok" and data["card_last4"] == "1111"
    policy = await admin.policy(caller["policy_number"])
    assert policy.card_last4 == "1111" and "4111111111111111" not in policy.payment_account
    dump = "\n".join(await admin.db.call(lambda conn: list(conn.iterdump())))
    assert "4111111111111111" not in dump and "4111111111111111" not in caplog.text


async def test_promise_to_pay_must_fall_before_the_cancel_date(backend, admin):
    caller = await caller_of(backend, "declined")
    _, failure = await backend.call("payment.failure", who(caller))
    late = failure["cancel_date"].replace("-", "")[:4] + "1231"
    assert (await backend.call("payment.promise", {**who(caller), "date": "20991231"}))[1]["reason"] == "after_cancel_date"
    assert (await backend.call("payment.promise", {**who(caller), "date": "20200101"}))[1]["reason"] == "in_the_past"
    assert (await backend.call("payment.promise", {**who(caller), "date": "20261399"}))[1]["reason"] == "not_a_date"
    assert late  # a date before the cancel date is accepted and recorded
    outcome, data = await backend.call("payment.promise", {**who(caller), "date": failure["cancel_date"].replace("-", "")})
    assert outcome == "ok" and await admin.count("promises") == 1


# --- phone update ----------------------------------------------------------------------------


async def test_step_up_needs_the_other_factor(backend):
    caller = await caller_of(backend, "policy")
    assert (await backend.call("caller.step_up", {**who(caller), "answer": "4567", "used": "dob"}))[0] == "ok"
    assert (await backend.call("caller.step_up", {**who(caller), "answer": DOB, "used": "dob"}))[0] == "declined"


async def test_new_number_checks(backend, admin):
    caller = await caller_of(backend, "policy")
    assert (await backend.call("phone.check", {"caller": caller["id"], "phone": "12"}))[1]["reason"] == "invalid"
    assert (await backend.call("phone.check", {"caller": caller["id"], "phone": persona("policy").phone}))[1]["reason"] == "same_number"
    agent = (await admin.db.fetch_one("SELECT phone FROM agents WHERE id = 'A-0005'"))["phone"]
    outcome, data = await backend.call("phone.check", {"caller": caller["id"], "phone": agent})
    assert outcome == "flagged" and "agent_number" in data["reasons"]
    outcome, data = await backend.call("phone.check", {"caller": caller["id"], "phone": persona("cancel").phone})
    assert (outcome, data["reasons"]) == ("flagged", ["on_file_for_unrelated_customers"])
    assert (await backend.call("phone.check", {"caller": caller["id"], "phone": "5550012341"}))[0] == "ok"


async def test_code_mistyped_then_right_then_update_with_audit_and_notice(backend, systems, admin):
    caller = await caller_of(backend, "policy")
    new = "5550012341"
    assert await backend.call("otp.send", {"phone": new}) == ("ok", {})
    code = systems.sms.last_code("+15550012341")
    assert await backend.call("phone.update", {"caller": caller["id"], "phone": new}) == \
        ("declined", {"reason": "code_not_confirmed"})  # no code checked yet: refused whatever the flow does
    assert (await backend.call("otp.check", {"phone": new, "code": "000000" if code != "000000" else "111111"}))[0] == "declined"
    assert (await backend.call("otp.check", {"phone": new, "code": code}))[0] == "ok"
    outcome, data = await backend.call("phone.update", {"caller": caller["id"], "phone": new})
    assert outcome == "ok" and not data["flagged"]
    assert (await admin.person(caller["id"])).phone == "+15550012341"
    audit = await admin.db.fetch_one("SELECT * FROM audit WHERE id = ?", (data["audit_id"],))
    assert persona("policy").phone not in audit["old_value"] and "5550012341" not in audit["new_value"]  # sealed
    opened = (admin.sealer.open(audit["old_value"]), admin.sealer.open(audit["new_value"]))
    assert opened == (persona("policy").phone, "+15550012341")
    notice = systems.sms.to(persona("policy").phone, "notice")
    assert len(notice) == 1 and "0012341" not in notice[0].text  # the old number is told, the new one masked


async def test_three_wrong_codes_burn_the_code(backend, systems):
    await backend.call("otp.send", {"phone": "5550012341"})
    code = systems.sms.last_code("+15550012341")
    wrong = "999999" if code != "999999" else "888888"
    answers = [(await backend.call("otp.check", {"phone": "5550012341", "code": wrong}))[0] for _ in range(3)]
    assert answers == ["declined", "declined", "expired"]
    assert (await backend.call("otp.check", {"phone": "5550012341", "code": code}))[0] == "expired"


async def test_a_flagged_number_is_updated_and_sent_for_review(backend, systems, admin):
    caller = await caller_of(backend, "policy")
    agent = (await admin.db.fetch_one("SELECT phone FROM agents WHERE id = 'A-0005'"))["phone"]
    await backend.call("otp.send", {"phone": agent})
    await backend.call("otp.check", {"phone": agent, "code": systems.sms.last_code(agent)})
    outcome, data = await backend.call("phone.update", {"caller": caller["id"], "phone": agent})
    assert outcome == "ok" and data["flagged"] and data["review"]
    review = await admin.db.fetch_one("SELECT reason FROM reviews")
    assert "agent_number" in review["reason"]


async def test_hang_up_during_the_phone_update_changes_nothing_and_tells_no_one(backend, systems, admin, monkeypatch):
    from ivr.policyadmin import sqlite_store

    caller = await caller_of(backend, "policy")
    await backend.call("otp.send", {"phone": "5550012341"})
    await backend.call("otp.check", {"phone": "5550012341", "code": systems.sms.last_code("+15550012341")})
    reached = asyncio.Event()
    original = sqlite_store._remember

    async def slow(tx, key, result, now):
        reached.set()
        await asyncio.sleep(5)
        await original(tx, key, result, now)

    monkeypatch.setattr(sqlite_store, "_remember", slow)
    task = asyncio.create_task(backend.call("phone.update", {"caller": caller["id"], "phone": "5550012341"}))
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await admin.person(caller["id"])).phone == persona("policy").phone
    assert await admin.count("audit") == 0 and not systems.sms.to(persona("policy").phone, "notice")


# --- policy query and cancellation -----------------------------------------------------------


async def test_policy_summary_and_claim(backend):
    caller = await caller_of(backend, "policy")
    outcome, policy = await backend.call("policy.summary", who(caller))
    assert outcome == "ok" and policy["status"] == "in force" and policy["grace_end"] > policy["due_date"]
    assert (await backend.call("claim.status", who(caller)))[1]["reference"] == "CL-7781"
    assert (await backend.call("claim.status", who(await caller_of(backend, "cancel"))))[0] == "declined"


async def test_downgrade_only_where_the_product_allows(backend, admin):
    outcome, options = await backend.call("cancel.options", who(await caller_of(backend, "cancel")))
    assert outcome == "ok" and options["lower_sum_assured"] < 250000 and options["lower_premium"] > 0
    assert (await backend.call("cancel.options", who(await caller_of(backend, "person"))))[0] == "declined"  # whole of life


async def test_cancellation_request_is_recorded(backend, admin):
    caller = await caller_of(backend, "cancel")
    outcome, data = await backend.call("cancel.record", {**who(caller), "reason": "expensive"})
    assert outcome == "ok" and (await admin.policy(caller["policy_number"])).status == "cancel_requested"
    assert await admin.count("cancellations", "reason = 'expensive'") == 1


# --- systems down ------------------------------------------------------------------------------


class SlowAdmin:
    """The policy system answering after `delay` seconds."""

    def __init__(self, inner, delay: float):
        self.inner, self.delay = inner, delay

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        async def slow(*args, **kwargs):
            await asyncio.sleep(self.delay)
            return await method(*args, **kwargs)
        return slow


async def test_slow_policy_system_becomes_timeout_not_silence(systems):
    slow = InsurerBackend(Systems(SlowAdmin(systems.admin, 2.0), systems.gateway, systems.sms, systems.codes,
                                  systems.history, today=systems.today))
    assert await call_with_timeout(slow, "policy.summary", {"caller": "C-900000", "policy": "40012345"}, 0.2) == ("timeout", {})


async def test_unreachable_core_system_becomes_error(systems):
    from ivr.backoff import Backoff
    from ivr.policyadmin.http_client import HttpPolicyAdmin

    core = HttpPolicyAdmin(f"http://127.0.0.1:{free_port()}", timeout=0.2, retries=1, backoff=Backoff(initial=0.01, cap=0.1))
    down = InsurerBackend(Systems(core, systems.gateway, systems.sms, systems.codes, systems.history))
    assert await call_with_timeout(down, "caller.identify", {"ani": "+15550101"}, 5) == ("error", {})
    await core.close()


async def test_redis_unavailable_calls_go_on_and_it_is_logged_once(admin, caplog):
    import redis.asyncio as redis

    dead = redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.2, socket_connect_timeout=0.2)
    history = CallerHistory(dead, Sealer.generate())
    backend = InsurerBackend(Systems(admin, SimulatedGateway(latency=0), Outbox(), OneTimeCodes(dead, history.sealer), history,
                                     today=lambda: TODAY))
    caplog.set_level(logging.ERROR, logger="ivr")
    caller = await caller_of(backend, "policy")
    # the lock-out still works within the outage (counted in this process)
    outcomes = [(await backend.call("caller.verify", {**who(caller), "dob": "19990101"}))[0] for _ in range(3)]
    assert outcomes == ["declined", "declined", "locked"]
    for _ in range(5):  # more calls: no more log lines
        assert (await backend.call("caller.identify", {"ani": persona("cancel").phone}))[0] == "ok"
    assert await history.past_calls("C-900000") == []
    down = [r for r in caplog.records if "Redis unavailable" in r.getMessage() and "history" in r.getMessage()]
    assert len(down) == 1
    await dead.aclose()


async def test_logs_never_show_numbers_ids_dates_or_cards_in_clear(backend, systems, admin, caplog):
    caplog.set_level(logging.DEBUG)
    caller = await caller_of(backend, "policy")
    await backend.call("caller.identify", {"ani": "+15559000"})
    await backend.call("caller.identify", {"ani": "+15550000", "policy_number": "49999990"})
    for _ in range(3):
        await backend.call("caller.verify", {**who(caller), "dob": "19990101"})
    await backend.call("otp.send", {"phone": "5550012341"})
    await backend.call("otp.check", {"phone": "5550012341", "code": systems.sms.last_code("+15550012341")})
    await backend.call("phone.update", {"caller": caller["id"], "phone": "5550012341"})
    declined = await caller_of(backend, "declined")
    await backend.call("payment.retry", who(declined))
    await backend.call("payment.switch_method", {**who(declined), "card": "4111111111111111", "expiry": "1230"})
    text = caplog.text
    assert "payment" in text and "locked" in text  # there is something logged to look at
    for secret in ("+15550101", "40012345", "40012351", "+15550012341", "5550012341", "49999990", "+15559000",
                   "19990101", "4111111111111111", "S1234567", systems.sms.messages[0].text):
        assert secret not in text, secret
