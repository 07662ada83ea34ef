"""What a session tells its observers: typed notices, in order, each step with the path entries it added."""

from __future__ import annotations

import asyncio

import pytest

from ivr import engine
from ivr.controller import notices as note
from ivr.engine import events as ev
from ivr.engine.state import MAX_PATH
from ivr.flow.catalog import load_flow_set
from tests.conftest import ROOT
from tests.controller.conftest import heard, make_rig, saved_state


class Notices:
    """Observer: every notice, per call."""

    def __init__(self) -> None:
        self.seen: list[note.Notice] = []

    def __call__(self, session, notice: note.Notice) -> None:
        self.seen.append(notice)


def broken(session, notice: note.Notice) -> None:
    raise RuntimeError("an observer with a bug")


async def test_a_call_tells_its_observers_what_happens_in_typed_notices(tmp_path, redis_url):
    notices = Notices()
    async with make_rig(tmp_path, redis_url, observers=[broken, notices]) as rig:  # a broken observer harms no call
        call = rig.call()
        await call.wait_prompt(2)
        await call.press("1")
        await call.wait_until(lambda c: heard(c, "verify.dob"))
        await call.press("0")
        await call.wait_continued()
        for _ in range(50):
            if isinstance(notices.seen[-1], note.CallLeft):
                break
            await asyncio.sleep(0.05)
        state = await saved_state(redis_url, call.channel_id)
    seen = notices.seen
    assert isinstance(seen[0], note.CallStarted) and seen[0].call["ani"] == "+15550100"
    assert [n.digit for n in seen if isinstance(n, note.KeyPressed)] == ["1", "0"]
    assert any(isinstance(n, note.PromptStarted) for n in seen)
    assert isinstance(seen[-1], note.Transferred) and seen[-1].transfer.queue == "customer_service"
    steps = [n for n in seen if isinstance(n, note.StepTaken)]
    assert [t for n in steps for t in n.turns] == state.path, "each entry of the path told once, in order"


@pytest.fixture(scope="module")
def release():
    built, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
    return built


def test_the_entries_a_step_added_are_found_past_the_paths_cap(release):
    """A menu loop records equal entries over and over; the path keeps its last MAX_PATH."""
    result = engine.start(release, "main_menu", "loop-1", call={"ani": "+15550100"})
    told = list(note.turns_added(None, result.state))
    for _ in range(120):
        before = result.state
        result = engine.step(release, before, ev.Dtmf(digits="8"))  # english: back to the menu
        told.extend(note.turns_added(before, result.state))
    assert len(result.state.path) == MAX_PATH < len(told)
    assert told[-MAX_PATH:] == result.state.path and told[0].kind == "start"
