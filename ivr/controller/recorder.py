"""Writes each finished call to caller history: a controller observer.

The call's record is built as the call goes (`ivr.callrecord.CallFacts`):
each engine step the session tells of (`StepTaken`) adds its path entries to
the call's facts, so a call longer than the path the engine keeps still
records its first journey. When the call leaves the IVR (`CallLeft`:
transfer, hang-up by the flow, or the caller hanging up) its state is final;
the record is completed from it and written, in the background: a slow or
absent Redis never delays the next call's events. `drain()` waits for
writes still in flight (on shutdown).

A call resumed from another controller starts from what its saved path
still holds (the facts of the controller before are not saved with it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.callrecord import CallFacts, CallRecord
from ivr.campaign.store import outcome_fields, target_key
from ivr.controller import notices as note
from ivr.engine.state import CallState
from ivr.history import CallerHistory

if TYPE_CHECKING:
    from ivr.controller.session import CallSession

log = logging.getLogger(__name__)


@dataclass
class _Recording:
    """One call this controller is recording."""

    started: float
    facts: CallFacts


class HistoryRecorder:
    def __init__(self, history: CallerHistory, clock: Callable[[], float] = time.time):
        self.history = history
        self.clock = clock
        self._calls: dict[str, _Recording] = {}
        self._tasks: set[asyncio.Task] = set()

    def __call__(self, session: CallSession, notice: note.Notice) -> None:
        match notice:
            case note.CallStarted():
                self._calls.setdefault(session.channel_id, _Recording(self.clock(), CallFacts()))
            case note.CallResumed(state):
                self._calls.setdefault(session.channel_id, _Recording(self.clock(), CallFacts.from_path(state)))
            case note.StepTaken(step, turns):
                recording = self._calls.get(session.channel_id)
                if recording is not None:
                    recording.facts.take(turns, step.state)
            case note.Transferred() | note.HungUp() | note.CallerLeft():
                self._finish(session)

    def _finish(self, session: CallSession) -> None:
        recording = self._calls.pop(session.channel_id, None)
        state = session.state
        if state is None or state.status == "running":
            return  # never got going: nothing to remember
        if recording is None:  # told of the call only now: what its path holds
            recording = _Recording(self.clock(), CallFacts.from_path(state))
        ani = str((state.variables().get("call") or {}).get("ani") or "")
        record = recording.facts.record(state, recording.started, self.clock(), self.history.ani_key(ani))
        outcome = self._campaign_outcome(record, state)
        task = asyncio.get_running_loop().create_task(
            self.history.record(record, [record.caller, record.ani_key], outcome))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _campaign_outcome(self, record: CallRecord, state: CallState) -> dict[str, str] | None:
        """What a rescue campaign learns from this call: how its own call ended, or that a caller
        paid (or promised) a failed premium, named by the policy's keyed digest."""
        recovered = record.payment in ("paid", "promised")
        if record.attempt is None and not recovered:
            return None
        caller = state.variables().get("caller")
        number = caller.get("policy_number") if isinstance(caller, dict) else None
        target = target_key(self.history.sealer, str(number)) if recovered and number else None
        outcome = record.outcome if record.status != "transferred" else "transferred"
        return outcome_fields(record.attempt, target, record.payment, outcome, record.ended)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("writing call history failed", exc_info=task.exception())

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
