"""Callers hang up at any moment; the events websocket drops; nothing is half done, no one is left in silence."""

from __future__ import annotations

import asyncio

import pytest

from tests.controller.conftest import LedgerBackend, heard, make_rig, saved_state
from tests.reload_gate import until


async def _journey(call, stop_after: int) -> None:
    """Failed payment: menu, date of birth, retry now. Returns after `stop_after` steps."""
    steps = [
        lambda: call.wait_prompt(1),                                        # greeting playing
        lambda: call.wait_until(lambda c: heard(c, "main.menu")),          # menu playing
        lambda: call.press("2"),                                            # payments
        lambda: call.wait_until(lambda c: heard(c, "verify.dob")),
        lambda: call.press("1980", interval=0.1),                           # half a date of birth
        lambda: call.press("0531", interval=0.1),
        lambda: call.wait_until(lambda c: heard(c, "payment.reason")),     # why the debit failed
        lambda: call.wait_until(lambda c: heard(c, "payment.offer")),
        lambda: call.press("1"),                                            # retry now: a write starts
        lambda: asyncio.sleep(0.2),                                         # mid-write
    ]
    for step in steps[:stop_after]:
        await step()


@pytest.mark.parametrize("stop_after", range(1, 11))
async def test_caller_hangs_up_at_every_step(tmp_path, redis_url, stop_after):
    ledger = LedgerBackend()
    async with make_rig(tmp_path, redis_url, backend=ledger) as rig:
        call = rig.call()
        await _journey(call, stop_after)
        await call.hangup()
        await call.wait_ended()

        async def ended():
            state = await saved_state(redis_url, call.channel_id)
            return state is not None and state.status == "ended"
        await until(ended, 10, "the controller never ended the call")  # any write under way was cancelled first
        await until(lambda: ledger.settled, 10, "a write neither committed nor rolled back")
        state = await saved_state(redis_url, call.channel_id)
        assert state is not None and state.status == "ended"
        assert state.result["outcome"] == "caller_hangup"
        assert call.continued is None
        assert ledger.committed == [], "a write finished after the caller hung up"
        if stop_after == 10:
            assert ledger.started == ["payment.retry"]
            assert state.result["abandoned_action"] == "payment.retry"


async def test_websocket_drop_mid_call_and_the_call_goes_on(rig):
    call = rig.call()
    await call.wait_until(lambda c: heard(c, "main.menu"))
    assert await rig.sim.drop_websocket() >= 1
    await until(lambda: rig.sim.sim.bus.apps["ivr"].active, 10, "the controller never reconnected")
    await call.press("0")
    continued = await call.wait_continued(timeout=10)
    assert continued.variables["IVR_QUEUE"] == "customer_service"


async def test_prompt_ending_while_disconnected_still_leads_to_a_reprompt(rig):
    """PlaybackFinished is lost with the websocket; reconciliation notices, so the caller is not left in silence."""
    call = rig.call()
    await call.wait_until(lambda c: heard(c, "main.menu") and c.prompts[-1].finished_at is None)
    await rig.sim.drop_websocket()
    await call.wait_until(lambda c: heard(c, "main.menu_again"), timeout=15)  # noinput reprompt


async def test_a_restarted_controller_leaves_calls_already_in_a_queue_alone(tmp_path, redis_url, caplog):
    """A transferred caller is still subscribed (for the agent's screen pop), so Asterisk lists
    it among the application's channels; it is no longer in Stasis and must not be resumed."""
    import logging

    from ivr.application import build, serve

    async with make_rig(tmp_path, redis_url) as rig:
        call = rig.call()
        await call.wait_until(lambda c: heard(c, "main.menu"))
        await call.press("0")
        assert (await call.wait_continued()).variables["IVR_QUEUE"] == "customer_service"
        rig.stop.set()
        await asyncio.wait_for(rig.task, 10)
        caplog.clear()
        stop, ready = asyncio.Event(), asyncio.Event()
        with caplog.at_level(logging.INFO, logger="ivr"):
            application = await build(rig.settings)
            again = asyncio.create_task(serve(application, stop=stop, ready=ready))
            await asyncio.wait_for(ready.wait(), 10)
            controller = application.controller  # what it makes of the held calls, decided on connecting:
            reconciling = [t for t in controller._tasks if t is not controller._renewing]
            await asyncio.wait_for(asyncio.gather(*reconciling, return_exceptions=True), 10)
            stop.set()
            await asyncio.wait_for(again, 10)
        complaints = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
                      or call.channel_id in r.getMessage()]
        assert complaints == [], complaints
