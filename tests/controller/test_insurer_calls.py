"""Whole calls through the simulator and controller with the insurer backend, routing and history.

The embedded stack as `ivr serve` runs it: SQLite book (a copy per test),
simulated gateway, SMS outbox, routing rules from flows/routing.yaml, caller
history in Redis (a Redis database of its own per test, so one test's calls
are not another's history).
"""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as redis

from ivr.redis_server import free_port
from tests.controller.conftest import heard, saved_state
from tests.controller.insurer import DOB, PHONE, insurer_rig
from tests.reload_gate import until


@pytest.fixture
async def rig(tmp_path, book, own_redis):
    async with insurer_rig(tmp_path, book, own_redis) as started:
        yield started


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


async def test_a_new_card_pays_and_its_number_is_never_written_to_redis(rig):
    card = "4111111111111111"
    client = redis.from_url(rig.redis_url)

    async def kept() -> str:
        """The saved state opened: the card is not even inside the seal."""
        raw = (await client.get(f"ivr:call:{call.channel_id}") or b"").decode()
        assert raw.startswith("sealed:") and "[withheld]" not in raw
        return rig.embedded.systems.history.sealer.open(raw)

    call = rig.call("payment")
    await until_heard(call, "verify.dob")
    await call.press(DOB, interval=0.08)
    await until_heard(call, "payment.offer")
    await call.press("2")                                   # change card
    await until_heard(call, "payment.card_number")
    await call.press(card[:8], interval=0.05)
    await until(lambda: any(s.buffer == card[:8] for s in rig.watch.steps.get(call.channel_id, [])), 10,
                "the controller never took the eighth key")              # each step is saved before it is told
    assert '"buffer":""' in (await kept()).replace(" ", "") and card[:8] not in await kept()   # half keyed
    await call.press(card[8:] + "#", interval=0.05)
    await until_heard(call, "payment.card_expiry")
    assert card not in await kept() and "[withheld]" in await kept()     # captured, held in memory only
    await call.press("1230", interval=0.05)
    await until_heard(call, "payment.paid")
    await call.hangup()
    await call.wait_ended(timeout=15)
    await rig.left(call)                                    # its last state saved
    assert card not in await kept() and "1230" not in await kept()
    [person] = await rig.admin.persons_by_phone(PHONE["payment"])
    assert any(p.card_last4 == "1111" for p in await rig.admin.policies_of(person.id))   # the card was taken
    await client.aclose()


async def test_orphan_policy_holder_goes_to_the_orphan_desk_with_the_rule(rig):
    call = rig.call("orphan")
    continued = await call.wait_continued(timeout=15)
    assert continued.variables["IVR_QUEUE"] == "orphan_desk" and continued.variables["IVR_REASON"] == "orphan_policy"
    state = await saved_state(rig.redis_url, call.channel_id)
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
    state = await saved_state(rig.redis_url, second.channel_id)
    assert state.vars["routing"]["rule"] == "repeat_caller"


async def test_three_wrong_dates_lock_self_service_and_the_next_call_skips_the_menu(rig):
    call = rig.call("cancel")
    await until_heard(call, "main.menu")
    await call.press("1")
    for attempt in range(3):
        await call.wait_until(lambda c, attempt=attempt: sum(p.media_uri.endswith("/verify.dob") for p in c.prompts) > attempt, timeout=15)
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
    await rig.left(call)  # the controller is done with the call: nothing can be written for it any more
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


async def test_a_keyed_phone_update_leaves_no_personal_data_in_clear(rig, tmp_path):
    """Date of birth, ID digits, new number and one-time code all pass through the call; none is at rest in clear."""
    from ivr import privacy

    call = rig.call("policy")
    await until_heard(call, "main.menu")
    await call.press("3")
    await until_heard(call, "verify.dob")
    await call.press(DOB, interval=0.08)
    await until_heard(call, "verify.id_digits")
    await call.press("4567", interval=0.08)
    await until_heard(call, "phone.ask_number")
    await call.press("5550012341#", interval=0.05)
    await until_heard(call, "common.readback_digits")
    await call.press("1")
    await until_heard(call, "phone.code_sent")
    await call.press(rig.embedded.outbox.last_code("+15550012341"), interval=0.08)
    await until_heard(call, "phone.updated")
    await call.hangup()
    await call.wait_ended(timeout=15)
    await rig.embedded.recorder.drain()
    client = redis.from_url(rig.redis_url)
    try:
        assert await client.exists(f"ivr:call:{call.channel_id}")  # the state is there, sealed
        found = [f.line() async for f in privacy.scan_redis(client)]
    finally:
        await client.aclose()
    found += [f.line() for f in privacy.scan_book(tmp_path / "book.sqlite")]
    assert found == []
    assert await rig.admin.count("audit") == 1  # the change was made, and audited
