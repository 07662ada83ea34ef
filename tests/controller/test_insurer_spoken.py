"""The four journeys said aloud: callers speak to the insurer's IVR through the simulator's RTP stream.

The embedded stack as `ivr serve` runs it (SQLite book, gateway, SMS outbox,
routing, caller history) with speech streamed into pocketsphinx. Callers say
menu choices, answers and yes/no, and a phone number; dates of birth, ID
digits and codes are keyed, as the flows offer. A caller who is not
understood says it again, as people do.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pocketsphinx")

from tests.controller.conftest import heard, saved_state  # noqa: E402
from tests.controller.insurer import DOB, PHONE, insurer_rig  # noqa: E402
from tests.controller.spoken import Turns, say_after_prompts, speak_until, story, wait_heard  # noqa: E402
from tests.speech.sounds import synth  # noqa: E402

pytestmark = pytest.mark.slow


def voice(text: str) -> bytes:
    return synth(text, "kal16")


@pytest.fixture
async def spoken(tmp_path, book, own_redis):
    turns = Turns()
    async with insurer_rig(tmp_path, book, own_redis, speech="stream", observers=(turns,)) as rig:
        rig.turns = turns
        yield rig


async def verified(rig, call, choice: str, then: str) -> None:
    """Say what the call is about at the menu, key the date of birth."""
    await wait_heard(call, rig.turns, "main.menu")
    await speak_until(call, rig.turns, voice, choice, "verify.dob")
    await call.press(DOB, interval=0.08)
    await wait_heard(call, rig.turns, then)


async def test_spoken_policy_query_about_a_claim_reaches_a_person(spoken):
    call = spoken.call("policy")
    await verified(spoken, call, "policy status", "policy.what_next")
    await speak_until(call, spoken.turns, voice, ("my claim", "claim status"), "policy.claim_person")
    await speak_until(call, spoken.turns, voice, "yes", "common.connecting")
    continued = await call.wait_continued(timeout=15)
    assert (continued.variables["IVR_QUEUE"], continued.variables["IVR_REASON"]) == ("policy_service", "claim_progress")
    [record] = await spoken.records()
    assert record["intents"] == ["policy"]


async def test_spoken_payment_retry_is_paid_and_confirmed(spoken):
    call = spoken.call("payment")  # routed to the payment journey first: no menu
    await wait_heard(call, spoken.turns, "verify.dob")
    await call.press(DOB, interval=0.08)
    await wait_heard(call, spoken.turns, "payment.offer")
    await speak_until(call, spoken.turns, voice, "pay now", "payment.paid")
    await speak_until(call, spoken.turns, voice, "no", "main.goodbye")
    await call.wait_ended(timeout=15)
    assert await spoken.admin.count("payments") == 1
    assert spoken.embedded.outbox.to(PHONE["payment"], "confirmation")


async def test_spoken_phone_number_is_read_back_confirmed_and_updated(spoken):
    call = spoken.call("policy")
    await verified(spoken, call, "change my phone number", "verify.id_digits")
    await call.press("4567", interval=0.08)  # step-up: the other factor
    await wait_heard(call, spoken.turns, "phone.ask_number")
    # Said once; the IVR reads it back. Read back wrong, the caller says no and keys it, as the
    # reprompt invites (the embedded recogniser mishears some numbers: the flow still gets them).
    await say_after_prompts(call, synth("five five five zero zero one two three four one", "slt"),
                            prompts=len(call.prompts))
    await wait_heard(call, spoken.turns, "common.readback_digits")
    state = await saved_state(spoken.redis_url, call.channel_id)
    if state.pending is not None and state.pending.heard == "5550012341":
        await say_after_prompts(call, voice("yes"), prompts=len(call.prompts))
    else:
        await say_after_prompts(call, voice("no"), prompts=len(call.prompts))
        await wait_heard(call, spoken.turns, "phone.ask_number_again")
        await call.press("5550012341", interval=0.08)
        await call.wait_until(lambda c: heard(c, "common.readback_digits", 2), timeout=15)
        await say_after_prompts(call, voice("yes"), prompts=len(call.prompts))
    await wait_heard(call, spoken.turns, "phone.code_sent")
    code = spoken.embedded.outbox.last_code("+15550012341")
    await call.press(code, interval=0.08)
    await wait_heard(call, spoken.turns, "phone.updated")
    person = await spoken.admin.person((await saved_state(spoken.redis_url, call.channel_id)).vars["caller"]["id"])
    assert person.phone == "+15550012341", story(call, spoken.turns)
    print(story(call, spoken.turns))


async def test_spoken_cancellation_reason_and_downgrade_reach_the_save_team(spoken):
    call = spoken.call("cancel")
    await verified(spoken, call, "cancel my policy", "cancel.reason")
    await speak_until(call, spoken.turns, voice, "too expensive", "cancel.downgrade")
    await speak_until(call, spoken.turns, voice, "yes", "cancel.to_specialist")
    continued = await call.wait_continued(timeout=15)
    assert (continued.variables["IVR_QUEUE"], continued.variables["IVR_REASON"]) == \
        ("save_specialists", "downgrade_accepted")
    state = await saved_state(spoken.redis_url, call.channel_id)
    assert state.vars["cancel_reason"] == "expensive"

