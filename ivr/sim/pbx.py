"""Runs dialplan on simulated channels, one ``ChannelDialplan`` per priority.

Only the applications the IVR's dialplans use are implemented; an unknown
application hangs the channel up, as Asterisk does ("No application").
"""
from __future__ import annotations

import asyncio
import logging
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import amd, audio
from . import events as ev
from .dialplan import split_app
from .expressions import function_if, function_regex, split_condition, substitute, truthy
from .model import Channel, DialplanLocation
from .queues import run_queue
from .sounds import SoundNotFound

if TYPE_CHECKING:  # pragma: no cover
    from .core import Simulator

log = logging.getLogger(__name__)


@dataclass
class Goto:
    context: str
    exten: str
    priority: int


@dataclass
class HangupResult:
    cause: int


class Return:
    """End of a Gosub subroutine."""


AppResult = Goto | HangupResult | Return | None


class Pbx:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.apps: dict[str, Callable[[Channel, str], Awaitable[AppResult]]] = {
            "noop": self._noop, "verbose": self._noop, "log": self._noop,
            "answer": self._answer, "set": self._set, "execif": self._execif,
            "gotoif": self._gotoif, "goto": self._goto, "playback": self._playback,
            "background": self._playback, "senddtmf": self._senddtmf, "wait": self._wait,
            "hangup": self._hangup, "stasis": self._stasis, "queue": self._queue,
            "ringing": self._noop, "progress": self._noop, "userevent": self._userevent,
            "return": self._return, "gosub": self._gosub, "musiconhold": self._wait,
            "amd": self._amd,
        }

    # -- running ---------------------------------------------------------------
    async def run(self, ch: Channel, context: str, exten: str, priority: int = 1) -> None:
        """Run until the dialplan ends, then hang the channel up."""
        cause = 16
        try:
            result = await self._loop(ch, context, exten, priority, subroutine=False)
            if isinstance(result, HangupResult):
                cause = result.cause
        except asyncio.CancelledError:
            if ch.destroyed or self.sim.closing:
                raise
            cause = ch.hangup_cause if ch.hangup_cause is not None else 16
        self.sim.dialplan_finished(ch, cause)

    async def run_subroutine(self, ch: Channel, context: str, exten: str = "s", priority: int = 1) -> None:
        saved = ch.location
        await self._loop(ch, context, exten, priority, subroutine=True)
        ch.location = saved

    async def _loop(self, ch: Channel, context: str, exten: str, priority: int,
                    subroutine: bool) -> AppResult:
        while True:
            step = self.sim.dialplan.step(context, exten, priority)
            if step is None:
                return HangupResult(16)
            # ${EXTEN}/${CONTEXT} are where the step runs, also right after a Goto or an originate's
            # extension (stasis-args-dnis: Set(__IVR_DNIS=${EXTEN}) at priority 1 of the new extension)
            ch.location = DialplanLocation(context, exten, priority, step.app, step.data)
            ch.location.app_data = substitute(step.data, self.lookup(ch))
            data = ch.location.app_data
            self.sim.emit(ev.dialplan(self.sim.ts(), ch))
            result = await self.execute(ch, step.app, data)
            if isinstance(result, Goto):
                context, exten, priority = result.context, result.exten, result.priority
            elif isinstance(result, HangupResult):
                return result
            elif isinstance(result, Return):
                if subroutine:
                    return result
                priority += 1
            else:
                priority += 1

    async def execute(self, ch: Channel, app: str, data: str) -> AppResult:
        handler = self.apps.get(app.lower())
        if handler is None:
            log.warning("No application '%s' for channel %s", app, ch.name)
            return HangupResult(16)
        return await handler(ch, data)

    def lookup(self, ch: Channel) -> Callable[[str], str]:
        def resolve(expr: str) -> str:
            name, sep, arg = expr.partition("(")
            if sep and expr.endswith(")"):
                func, arg = name.upper(), arg[:-1]
                if func == "IF":
                    return function_if(arg)
                if func == "LEN":
                    return str(len(arg))
                if func == "MASTER_CHANNEL":
                    master = ch.master
                    return (self.sim.variables.get(master, arg) or "") if master else ""
                if func == "REGEX":
                    return function_regex(arg)
            if ":" in expr and not sep:
                var, _, rng = expr.partition(":")
                text = self.sim.variables.get(ch, var) or ""
                off, _, length = rng.partition(":")
                start = int(off or 0)
                return text[start:start + int(length)] if length else text[start:]
            value = self.sim.variables.get(ch, expr)
            return value if value is not None else self.sim.dialplan.globals.get(expr, "")
        return resolve

    # -- applications ----------------------------------------------------------
    async def _noop(self, ch: Channel, data: str) -> AppResult:
        return None

    async def _answer(self, ch: Channel, data: str) -> AppResult:
        if ch.state == "Up":
            return None
        self.sim.answer_channel(ch)
        await self.sim.clock.wait_for(ch.media_flowing, self.sim.config.answer_media_wait)
        return None

    async def _set(self, ch: Channel, data: str) -> AppResult:
        name, _, value = data.partition("=")
        self.sim.variables.set(ch, name.strip(), value)
        return None

    async def _execif(self, ch: Channel, data: str) -> AppResult:
        cond, yes, no = split_condition(data)
        chosen = yes if truthy(cond) else no
        if not chosen:
            return None
        app, args = split_app(chosen)
        ch.location.app_name, ch.location.app_data = app, args
        return await self.execute(ch, app, args)

    async def _gotoif(self, ch: Channel, data: str) -> AppResult:
        cond, yes, no = split_condition(data)
        dest = yes if truthy(cond) else no
        return self._destination(ch, dest) if dest else None

    async def _goto(self, ch: Channel, data: str) -> AppResult:
        return self._destination(ch, data)

    def _destination(self, ch: Channel, dest: str) -> Goto:
        parts = [p.strip() for p in dest.split(",")]
        ctx, exten = ch.location.context, ch.location.exten
        if len(parts) == 3:
            ctx, exten, prio = parts
        elif len(parts) == 2:
            exten, prio = parts
        else:
            prio = parts[0]
        if prio.isdigit():
            return Goto(ctx, exten, int(prio))
        return Goto(ctx, exten, self.sim.dialplan.label(ctx, exten, prio) or 1)

    async def _playback(self, ch: Channel, data: str) -> AppResult:
        files, _, options = data.partition(",")
        if ch.state != "Up" and "noanswer" not in options:
            self.sim.answer_channel(ch)
        status = "SUCCESS"
        for name in [f for f in files.split("&") if f]:
            try:
                samples = self.sim.sounds.load(name, ch.language)
            except SoundNotFound:
                log.warning("Playback: file %s does not exist", name)
                status = "FAILED"
                break
            try:
                await self._stream(ch, name, samples)
            except asyncio.CancelledError:
                # DELETE of a channel in Playback(): it still says SUCCESS before its hang-up
                # requests (snoop-externalmedia-during-play, the caller's ;2 half)
                if ch.soft_hungup and not ch.destroyed:
                    self.sim.variables.set(ch, "PLAYBACKSTATUS", status)
                raise
        self.sim.variables.set(ch, "PLAYBACKSTATUS", status)
        return None

    async def _stream(self, ch: Channel, name: str, samples: array) -> None:
        """Audio a channel's dialplan plays goes to whoever is at the other end."""
        clock = self.sim.clock
        if ch.kind == "local2" and ch.partner is not None and ch.partner.audio_in is not None:
            audio_in = ch.partner.audio_in
            audio_in.sending = True
            seg = audio_in.schedule(samples, clock.now())
            await clock.sleep_until(seg.end)
            return
        if ch.partner is not None:
            ch.partner.media_flowing.set()
        call = self.sim.calls.get(ch.id)
        start = clock.now()
        await clock.sleep(len(samples) / 8000)
        if call is not None:
            call.on_dialplan_prompt(f"sound:{name}", start, clock.now(), audio.audible(samples))

    async def _senddtmf(self, ch: Channel, data: str) -> AppResult:
        digits, _, dur = data.partition(",")
        duration = int(dur) if dur.strip() else 250
        clock = self.sim.clock
        start = clock.now()
        for i, digit in enumerate(digits):
            await clock.sleep_until(start + 0.2 + i * (duration + 100) / 1000)
            if ch.kind == "local2" and ch.partner is not None:
                self.sim.dtmf_from_far_end(ch.partner, digit, 100)
            else:
                call = self.sim.calls.get(ch.id)
                if call is not None:
                    call.on_dtmf_heard(digit)
        await clock.sleep_until(start + len(digits) * (duration + 100) / 1000 + 0.1)
        return None

    async def _wait(self, ch: Channel, data: str) -> AppResult:
        seconds = float(data.split(",")[0] or 0) if data.strip() else 0.0
        if ch.kind == "local2" and ch.partner is not None and ch.partner.audio_in:
            ch.partner.audio_in.sending = False      # Wait() sends no frames over a Local channel
        await self.sim.clock.sleep(seconds)
        return None

    async def _hangup(self, ch: Channel, data: str) -> AppResult:
        return HangupResult(int(data) if data.strip().isdigit() else 16)

    async def _stasis(self, ch: Channel, data: str) -> AppResult:
        parts = data.split(",")
        target = await self.sim.run_stasis(ch, parts[0], parts[1:])
        return target

    async def _queue(self, ch: Channel, data: str) -> AppResult:
        hung_up = await run_queue(self.sim, ch, data)
        return HangupResult(16) if hung_up else None

    async def _amd(self, ch: Channel, data: str) -> AppResult:
        """app_amd: analyse the far end's audio, then AMDSTATUS and AMDCAUSE as Set() would
        (``pbx_builtin_setvar_helper``: one ChannelVarset each).  Without amd.conf the module
        declines to load (app_amd.c load_module): AMD is then an unknown application."""
        settings = self.sim.config.amd
        if settings is None:
            log.warning("No application 'AMD' for channel %s: app_amd not loaded (amd.conf missing)", ch.name)
            return HangupResult(16)
        try:
            effective = settings.with_args(data)
        except ValueError as exc:
            log.error("AMD on %s: %s", ch.name, exc)
            return HangupResult(16)
        try:
            result = await amd.analyse(self.sim.clock, ch, effective)
        except asyncio.CancelledError:
            # the far end hung up: ast_read() fails, app_amd sets HANGUP and an empty cause
            if ch.far_hungup and not ch.destroyed:
                self.sim.variables.set(ch, "AMDSTATUS", "HANGUP")
                self.sim.variables.set(ch, "AMDCAUSE", "")
            raise
        self.sim.variables.set(ch, "AMDSTATUS", result.status)
        self.sim.variables.set(ch, "AMDCAUSE", result.cause)
        return None

    async def _userevent(self, ch: Channel, data: str) -> AppResult:
        name, *pairs = data.split(",")
        fields = {}
        for pair in pairs:
            key, _, value = pair.partition(":")
            fields[key.strip()] = value.strip()
        self.sim.emit(ev.user_event(self.sim.ts(), ch, name, fields))
        return None

    async def _return(self, ch: Channel, data: str) -> AppResult:
        return Return()

    async def _gosub(self, ch: Channel, data: str) -> AppResult:
        dest = self._destination(ch, data.split("(")[0])
        await self.run_subroutine(ch, dest.context, dest.exten, dest.priority)
        return None

