"""Writes each finished call to caller history: a controller observer.

Sessions tell observers when a call starts and when it leaves the IVR
(`CallLeft`: transfer, hang-up by the flow, or the caller hanging up). At that moment
the call's state is final, so its record is summarised and written, in the
background: a slow or absent Redis never delays the next call's events.
`drain()` waits for writes still in flight (on shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ivr.callrecord import summarise
from ivr.controller import notices as note
from ivr.history import CallerHistory

if TYPE_CHECKING:
    from ivr.controller.session import CallSession

log = logging.getLogger(__name__)


class HistoryRecorder:
    def __init__(self, history: CallerHistory, clock: Callable[[], float] = time.time):
        self.history = history
        self.clock = clock
        self._started: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()

    def __call__(self, session: CallSession, notice: note.Notice) -> None:
        if isinstance(notice, (note.CallStarted, note.CallResumed)):
            self._started.setdefault(session.channel_id, self.clock())
            return
        if not isinstance(notice, note.CallLeft):
            return
        started = self._started.pop(session.channel_id, None)
        state = session.state
        if state is None or state.status == "running":
            return  # never got going: nothing to remember
        ani = str((state.vars.get("call") or {}).get("ani") or "")
        record = summarise(state, started or self.clock(), self.clock(), self.history.ani_key(ani))
        task = asyncio.get_running_loop().create_task(self.history.record(record, [record.caller, record.ani_key]))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("writing call history failed", exc_info=task.exception())

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
