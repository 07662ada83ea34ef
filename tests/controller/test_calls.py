"""Calls placed through the simulator into the controller, checked as a caller and an agent would."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import ROOT
from tests.controller.conftest import heard, make_rig, saved_state


async def test_caller_keys_through_menu_to_a_person(rig):
    call = rig.call()
    await call.wait_in_stasis()
    await call.wait_prompt(2)
    assert [p.media_uri for p in call.prompts[:2]] == ["sound:ivr/en/main.welcome", "sound:ivr/en/main.menu"]
    await call.press("0")
    continued = await call.wait_continued()
    assert (continued.context, continued.extension) == ("ivr-transfer", "queue")
    assert call.variable("IVR_QUEUE") == "customer_service"
    assert call.variable("IVR_REASON") == "asked_for_agent"
    assert call.variable("IVR_PRIORITY") == "5"


async def test_policy_journey_by_keys_ends_with_goodbye(rig, redis_url):
    call = rig.call()
    await call.wait_prompt(2)
    await call.press("1")
    await call.wait_until(lambda c: any(p.media_uri.endswith("verify.dob") for p in c.prompts))
    await call.press("19800531", interval=0.12)
    await call.wait_until(lambda c: any(p.media_uri.endswith("policy.what_next") for p in c.prompts))
    await call.press("9")
    await call.wait_until(lambda c: any(p.media_uri.endswith("main.anything_else") for p in c.prompts))
    await call.press("2")
    await call.wait_ended()
    heard = [p.media_uri.split("/")[-1] for p in call.prompts]
    assert heard[-1] == "main.goodbye" and call.prompts[-1].state == "done" and not call.prompts[-1].stopped
    assert "policy.premium_due" in heard and call.hungup_by == "app"
    state = await saved_state(redis_url, call.channel_id)
    assert state.status == "ended" and state.result == {"outcome": "completed"}


async def test_key_during_prompt_barges_in_and_stops_it(rig):
    call = rig.call()
    await call.wait_until(lambda c: len(c.prompts) >= 2 and c.prompts[1].finished_at is None)
    await call.press("2")  # payments, while the menu is still playing
    await call.wait_until(lambda c: any(p.media_uri.endswith("verify.dob") for p in c.prompts))
    menu = call.prompts[1]
    assert menu.media_uri.endswith("main.menu") and menu.stopped


async def test_transfer_prompt_is_heard_in_full_before_the_queue(rig):
    call = rig.call()
    await call.wait_prompt(2)
    await call.press("2")
    await call.wait_until(lambda c: any(p.media_uri.endswith("verify.dob") for p in c.prompts))
    await call.press("19800531", interval=0.1)
    await call.wait_until(lambda c: any(p.media_uri.endswith("payment.offer") for p in c.prompts))
    await call.press("0")
    continued = await call.wait_continued()
    assert continued.variables["IVR_QUEUE"] == "payments"
    assert continued.variables["IVR_REASON"] == "asked_for_agent"
    assert continued.variables["IVR_PRIORITY"] == "6"
    assert continued.variables["IVR_CALL_ID"] == call.channel_id


async def test_prompts_over_http_media_served_by_the_controller(tmp_path, redis_url):
    """Asterisk on another host fetches prompts from the controller: `sound:http://…` URLs."""
    from ivr.redis_server import free_port

    port = free_port()
    async with make_rig(tmp_path, redis_url, http_port=port,
                        media_base_url=f"http://127.0.0.1:{port}/media") as rig:
        call = rig.call()
        await call.wait_until(lambda c: len(c.prompts) >= 2 and c.prompts[1].finished_at is not None)
        welcome, menu = call.prompts[:2]
        assert welcome.media_uri == f"sound:http://127.0.0.1:{port}/media/prompts/en/main.welcome.wav"
        assert len(welcome.media_uri) > 45, "Asterisk 22 fails on short media URLs"
        assert welcome.state == "done" and 0.25 < welcome.duration < 1.0, "fetched and played for its real length"
        await call.press("0")
        assert (await call.wait_continued()).variables["IVR_QUEUE"] == "customer_service"


async def test_prompts_with_call_data_are_synthesised_into_the_sounds_directory(tmp_path, redis_url):
    """Sounds-directory mode, prompts built as `ivr prompts build` leaves them: no audio for templated prompts."""
    pytest.importorskip("pyttsx3")
    from ivr.prompts import PLACEHOLDER, load_prompts

    async with make_rig(tmp_path, redis_url) as rig:
        catalog, _ = load_prompts(ROOT / "prompts")
        for key, prompt in catalog.texts["en"].items():
            if PLACEHOLDER.search(prompt.text):
                (rig.settings.sounds_dir / "en" / f"{key}.wav").unlink()
        call = rig.call()
        await call.wait_prompt(2)
        await call.press("1")
        await call.wait_until(lambda c: heard(c, "verify.dob"))
        await call.press("19800531", interval=0.12)
        await call.wait_until(lambda c: any(p.media_uri.endswith("/policy.premium_due") and p.finished_at
                                            for p in c.prompts), timeout=30)
        [due] = [p for p in call.prompts if p.media_uri.endswith("/policy.premium_due")]
        written = rig.settings.sounds_dir / (due.media_uri.removeprefix("sound:ivr/") + ".wav")
        assert written.is_file()
        await call.hangup()
        assert due.media_uri.startswith("sound:ivr/call/") and due.state == "done"
        assert due.duration > 2.0, "the whole sentence with the amount and date, not a silent template"
        for _ in range(50):  # the call's own audio goes with it
            if not written.exists():
                break
            await asyncio.sleep(0.1)
        assert not written.exists()
        assert [p.media_uri for p in call.prompts[:-1] if p.state == "failed"] == []   # the last: hung up on


async def test_a_slow_backend_fills_the_silence_and_the_answer_follows(tmp_path, redis_url):
    """3.5 s to identify the caller: a filler after 1.5 s of silence, another 1.5 s after it, never dead air."""
    from ivr.backend.base import SampleBackend

    async with make_rig(tmp_path, redis_url, backend=SampleBackend(delay=3.5)) as rig:
        call = rig.call()
        await call.wait_prompt(2)
        await call.press("1")
        await call.wait_until(lambda c: heard(c, "verify.dob"), timeout=15)
        keys = [p.media_uri.rpartition("/")[2] for p in call.prompts]
        fillers = keys[keys.index("main.menu") + 1 : keys.index("verify.dob")]
        assert fillers[:2] == ["common.wait_filler", "common.still_waiting"], keys
        menu_end = call.prompts[keys.index("main.menu")].finished_at
        first = call.prompts[keys.index("common.wait_filler")]
        assert 1.4 <= first.started_at - menu_end <= 1.8
        assert first.state == "done" and not first.stopped


async def test_a_line_mapped_to_chinese_starts_its_callers_in_chinese(tmp_path, redis_url):
    """The dialled number is the Stasis argument; IVR_DNIS_LANGUAGES maps it to the line's language."""
    async with make_rig(tmp_path, redis_url, dnis_languages={"+1 800 555 0188": "zh"}) as rig:
        chinese, english = rig.call(exten="18005550188"), rig.call(ani="+15550111", exten="18005550100")
        await chinese.wait_prompt(1)
        await english.wait_prompt(1)
        assert chinese.prompts[0].media_uri == "sound:ivr/zh/main.welcome"
        assert english.prompts[0].media_uri == "sound:ivr/en/main.welcome"
