"""Recognition off the event loop: worker processes, each running the speech turns of many calls.

Decoding costs ~1–2 ms of CPU per 20 ms frame per call, and pocketsphinx
holds the GIL while it decodes, so threads serialise: one Python process
tops out at one core (measured, shared/speech/README.md: threads did not
scale, processes did). `SpeechWorkers` therefore starts one process per core
and pins each call to one of them (its `SpeechTurn`, hence its recogniser,
lives there for the whole call). The event loop only ships 320-byte frames
over a pipe and awaits the outputs.

    workers = SpeechWorkers()                       # at start-up
    await workers.start_turn(call_id, listen)       # on each Listen
    for out in await workers.feed(call_id, pcm8k):  # per RTP packet (see audio.RtpToFrames)
        ...                                         # BargeIn → stop prompt; TurnEnded → engine event
    await workers.end_call(call_id)                 # at hang-up
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ivr.engine.actions import Listen
from ivr.speech.endpoint import Detector
from ivr.speech.recognizer import Recognizer
from ivr.speech.turn import SpeechTurn, TurnOutput


def pocketsphinx_factory() -> Recognizer:
    from ivr.speech.pocketsphinx_asr import PocketsphinxRecognizer

    return PocketsphinxRecognizer()


def _serve(conn: Any, factory: Callable[[], Recognizer], detector: Detector = "webrtc") -> None:
    """A worker process: one SpeechTurn per call id, requests answered in order.

    One recogniser is built at start-up, before any call needs it (the first
    build imports the engine and loads its model: ~1 s). A finished call's
    recogniser is not handed to the next caller: it has adapted to the last
    voice and line (pocketsphinx's live CMN), and spoken-call tests got worse.
    """
    turns: dict[str, SpeechTurn] = {}
    spare: list[Recognizer] = [factory()]
    while True:
        try:
            seq, op, call_id, payload = conn.recv()
        except EOFError:
            return
        try:
            if op == "stop":
                conn.send((seq, True, None))
                return
            conn.send((seq, True, _handle(turns, spare, factory, op, call_id, payload, detector)))
        except Exception as exc:  # reported to the caller, the worker keeps serving other calls
            conn.send((seq, False, f"{type(exc).__name__}: {exc}"))


def _handle(turns: dict[str, SpeechTurn], spare: list[Recognizer], factory: Callable[[], Recognizer], op: str,
            call_id: str, payload: Any, detector: Detector = "webrtc") -> Any:
    if op == "start":
        turn = turns.get(call_id)
        if turn is None:
            turn = turns[call_id] = SpeechTurn(spare.pop() if spare else factory(), detector=detector)
        turn.start(payload)
        return None
    if op == "feed":
        turn = turns.get(call_id)
        return turn.feed(payload) if turn else []
    if op == "cancel":
        if call_id in turns:
            turns[call_id].cancel()
        return None
    if op == "end":
        turn = turns.pop(call_id, None)
        if turn:
            turn.cancel()
        if not spare:
            spare.append(factory())  # ready for the next call, built while this worker is idle
        return None
    raise ValueError(f"unknown op {op}")


class _Worker:
    def __init__(self, ctx: Any, factory: Callable[[], Recognizer], detector: Detector) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, factory, detector), daemon=True)
        self.process.start()
        child.close()
        self.calls = 0
        self._seq = itertools.count()
        self._futures: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def request(self, op: str, call_id: str, payload: Any = None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._send_lock:
            seq = next(self._seq)
            self._futures[seq] = (loop, future)
            self.conn.send((seq, op, call_id, payload))
        return future

    def _read(self) -> None:
        while True:
            try:
                seq, ok, value = self.conn.recv()
            except (EOFError, OSError):
                break
            waiting = self._futures.pop(seq, None)  # None: the reply to close()'s stop
            if waiting:
                _deliver(*waiting, ok, value)
        for loop, future in list(self._futures.values()):
            _deliver(loop, future, False, "speech worker exited")


def _deliver(loop: asyncio.AbstractEventLoop, future: asyncio.Future, ok: bool, value: Any) -> None:
    try:
        loop.call_soon_threadsafe(_settle, future, ok, value)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _settle(future: asyncio.Future, ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(RuntimeError(value))


class SpeechWorkers:
    """Speech turns of all calls, spread over worker processes (one per core by default)."""

    def __init__(self, processes: int | None = None, factory: Callable[[], Recognizer] = pocketsphinx_factory,
                 start_method: str = "spawn", detector: Detector = "webrtc") -> None:
        ctx = mp.get_context(start_method)  # spawn: no event loop or sockets copied into workers
        self._workers = [_Worker(ctx, factory, detector) for _ in range(processes or os.cpu_count() or 1)]
        self._owner: dict[str, _Worker] = {}

    def _worker_for(self, call_id: str) -> _Worker:
        worker = self._owner.get(call_id)
        if worker is None:
            worker = min(self._workers, key=lambda w: w.calls)
            worker.calls += 1
            self._owner[call_id] = worker
        return worker

    async def start_turn(self, call_id: str, listen: Listen) -> None:
        await self._worker_for(call_id).request("start", call_id, listen)

    async def feed(self, call_id: str, pcm16_8k: bytes) -> list[TurnOutput]:
        if call_id not in self._owner:
            return []
        return await self._owner[call_id].request("feed", call_id, pcm16_8k)

    async def cancel(self, call_id: str) -> None:
        if call_id in self._owner:
            await self._owner[call_id].request("cancel", call_id)

    async def end_call(self, call_id: str) -> None:
        worker = self._owner.pop(call_id, None)
        if worker:
            worker.calls -= 1
            await worker.request("end", call_id)

    def close(self) -> None:
        """Ask every worker to stop, then give them two seconds together (not each)."""
        for worker in self._workers:
            try:
                worker.conn.send((-1, "stop", "", None))
            except OSError:
                pass
        deadline = time.monotonic() + 2.0
        for worker in self._workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
            worker.conn.close()
