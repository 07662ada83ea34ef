"""Speech turns in worker processes, driven from an event loop like the controller will."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("pocketsphinx")

from ivr.engine.events import NoInput, Speech  # noqa: E402
from ivr.speech.turn import BargeIn, TurnEnded  # noqa: E402
from ivr.speech.worker import SpeechWorkers  # noqa: E402

from .sounds import MENU, listen, silence, synth  # noqa: E402


async def drive(workers: SpeechWorkers, call_id: str, audio: bytes) -> list:
    outputs = []
    await workers.start_turn(call_id, listen(MENU, noinput=3.0))
    for start in range(0, len(audio), 320):
        outputs.extend(await workers.feed(call_id, audio[start : start + 320]))
    await workers.end_call(call_id)
    return outputs


async def test_two_calls_in_worker_processes() -> None:
    workers = SpeechWorkers(processes=2)
    try:
        speaking = silence(0.5) + synth("cancel my policy", "rms") + silence(1.5)
        first, second = await asyncio.gather(drive(workers, "call-1", speaking), drive(workers, "call-2", silence(3.5)))
    finally:
        workers.close()
    assert isinstance(first[0], BargeIn)
    assert isinstance(first[-1], TurnEnded) and isinstance(first[-1].event, Speech)
    assert first[-1].event.text == "cancel my policy"
    assert [type(o.event) for o in second if isinstance(o, TurnEnded)] == [NoInput]
