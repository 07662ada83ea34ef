"""A Stasis channel's command queue.

Asterisk runs ARI commands for a channel one after another on the channel's
own thread.  A playback (or recording) occupies the queue until it ends, so
commands queued behind it wait: ``POST /variable`` and ``/answer`` only
return once they have run, ``/dtmf``, ``/moh`` and ``/continue`` return at
once and run later, a second ``/play`` starts when the first one stops.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ChannelGone

CommandFn = Callable[[], Awaitable[Any]]


@dataclass
class Command:
    name: str
    fn: CommandFn
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class ChannelControl:
    def __init__(self, spawn: Callable[[Any, str], asyncio.Task[Any]]) -> None:
        self._queue: asyncio.Queue[Command] = asyncio.Queue()
        self._closed = False
        self.current: Command | None = None
        self._worker = spawn(self._run(), "control")

    def submit(self, name: str, fn: CommandFn) -> asyncio.Future[Any]:
        cmd = Command(name, fn)
        if self._closed:
            cmd.future.set_exception(ChannelGone())
            cmd.future.exception()  # mark retrieved
        else:
            self._queue.put_nowait(cmd)
        return cmd.future

    async def _run(self) -> None:
        while not self._closed:
            cmd = await self._queue.get()
            if cmd.future.done():
                continue
            self.current = cmd
            try:
                result = await cmd.fn()
            except ChannelGone as exc:
                _fail(cmd.future, exc)
            except asyncio.CancelledError:
                _fail(cmd.future, ChannelGone())
                raise
            except Exception as exc:  # surfaced to the waiting HTTP request
                _fail(cmd.future, exc)
            else:
                if not cmd.future.done():
                    cmd.future.set_result(result)
            finally:
                self.current = None

    def close(self) -> None:
        """Channel left Stasis or hung up: pending commands fail, the worker stops."""
        self._closed = True
        while not self._queue.empty():
            _fail(self._queue.get_nowait().future, ChannelGone())
        if asyncio.current_task() is not self._worker:
            self._worker.cancel()

    @property
    def busy(self) -> bool:
        return self.current is not None or not self._queue.empty()


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()
