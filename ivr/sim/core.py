"""The simulated Asterisk: channels, Stasis, commands and hang-up sequences.

Event sequences follow the recorded traces (``/work/shared/asterisk``):
set-up of Local channels, entering and leaving Stasis, the three ways a
call ends (the app hangs up, the caller hangs up, the dialplan ends) and
what the app sees of each depending on its subscriptions.

The Simulator owns the channels and their lifecycle and builds the parts
that own the rest, each given only what it uses: the variables
(variables.py), the bridges (bridges.py), the playbacks (playback.py), the
live recordings (recording.py) and the dialplan interpreter (pbx.py).
REST handlers ask the part that owns what a request is about.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

from . import announcer, snoop
from . import events as ev
from .audio_in import AudioIn
from .bridges import Bridges
from .callees import CalleeBook, dialled_number, pjsip_endpoint
from .clock import Clock
from .config import SimulatorConfig
from .control import ChannelControl
from .dialout import dial_timeout, place_call
from .dialplan import Dialplan
from .emitter import Emitter
from .errors import AriError, ChannelGone, channel_not_found, not_in_stasis
from .external_media import SUPPORTED_FORMATS, ExternalMedia
from .http_media import HttpMediaCache
from .ids import IdFactory
from .media import MediaResolver
from .model import CallerId, Channel, ChannelKind, DialplanLocation, OriginateTarget
from .outbound import OutboundWebsockets
from .pbx import Goto, Pbx
from .playback import Playbacks
from .recording import LiveRecordings, RecordingStore
from .simcall import ContinueRecord, SimCall
from .sounds import SoundLibrary
from .stasis import EventBus, app_entry
from .validator import Violation
from .variables import Variables

log = logging.getLogger(__name__)


class Simulator:
    """The channels and what happens to them; the parts it builds hold the rest of the state."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.clock = Clock(self.config.time_scale)
        self.ids = IdFactory(self.clock, self.config.system_name)
        self.bus = EventBus(self.config.asterisk_id)
        self.emitter = Emitter(self.clock, self.bus)
        self.variables = Variables(self.emitter)
        self.dialplan = Dialplan.from_text(self.config.dialplan_text)
        for path in self.config.dialplan_files:
            self.dialplan.load_text(Path(path).read_text())
        self.sounds = SoundLibrary(list(self.config.sounds_dirs))
        self.http_media = HttpMediaCache()
        self.recording_store = RecordingStore(Path(self.config.recordings_dir))
        self.media = MediaResolver(self.sounds, self.http_media, self.recording_store.directory)
        self.queues = dict(self.config.queues)
        self.callees = CalleeBook(self.config.callee_table_max)   # scripted phones by dialled number
        self.callees.put(self.config.callees)
        self.channels: dict[str, Channel] = {}
        self.bridges = Bridges(self.emitter, self.ids, self.channels, self.variables)
        self.live_recordings = LiveRecordings(self.emitter, self.recording_store)
        self.calls: dict[str, SimCall] = {}
        self.playbacks = Playbacks(self.emitter, self.media, self.ids, self.config.language, self.channels,
                                   self.calls, self.bridges)
        self.pbx = Pbx(self)
        self.outbound = OutboundWebsockets(self)     # ari.conf type=outbound_websocket connections
        self.started = self.clock.timestamp()
        self.closing = False
        self.violations: list[Violation] = []    # requests not in the API docs (see server.validation)

    # -- small helpers ---------------------------------------------------------
    def emit(self, built: tuple[ev.Event, ev.Refs]) -> None:
        self.emitter.emit(built)

    def ts(self) -> str:
        return self.emitter.ts()

    def channel(self, channel_id: str) -> Channel:
        ch = self.channels.get(channel_id)
        if ch is None or ch.destroyed:
            raise channel_not_found()
        return ch

    def stasis_channel(self, channel_id: str) -> Channel:
        ch = self.channel(channel_id)
        if ch.stasis_app is None or ch.control is None:
            raise not_in_stasis()
        return ch

    def new_channel(self, *, name: str, state: str, location: DialplanLocation, kind: ChannelKind,
                    caller: CallerId | None = None, connected: CallerId | None = None,
                    channel_id: str | None = None, audio_in: AudioIn | None = None,
                    dialstring: str = "", pending: OriginateTarget | None = None,
                    outgoing_app: tuple[str, str] = ("AppDial2", "(Outgoing Line)"),
                    originated_into_stasis: bool = False, spied: Channel | None = None) -> Channel:
        """A channel built whole from what is known when it is created; ChannelCreated follows."""
        cid = channel_id or self.ids.unique_id()
        if cid in self.channels:
            raise AriError(409, "Channel with given unique ID already exists")
        ch = Channel(id=cid, name=name, state=state, location=location, creationtime=self.ts(),
                     caller=caller if caller is not None else CallerId(),
                     connected=connected if connected is not None else CallerId(),
                     language=self.config.language, kind=kind, audio_in=audio_in, dialstring=dialstring,
                     pending=pending, outgoing_app=outgoing_app,
                     originated_into_stasis=originated_into_stasis, spied=spied)
        self.channels[cid] = ch
        self.emit(ev.channel_event("ChannelCreated", self.ts(), ch))
        return ch

    def set_state(self, ch: Channel, state: str) -> None:
        if ch.state != state:
            ch.state = state
            self.emit(ev.channel_event("ChannelStateChange", self.ts(), ch))

    # -- originate -----------------------------------------------------------
    def originate(self, endpoint: str, *, app: str | None = None, app_args: str = "",
                  context: str | None = None, extension: str | None = None,
                  priority: int | None = None, label: str | None = None,
                  caller_id: str | None = None, variables: dict[str, str] | None = None,
                  channel_id: str | None = None, other_channel_id: str | None = None,
                  timeout: int | None = None) -> Channel:
        """``POST /channels``.  ``timeout`` (seconds; 0/None: 30, -1: none) bounds the ringing of a
        phone (dialout.py); a Local channel's ;2 answers from its own dialplan and is not timed."""
        if not endpoint:
            raise AriError(400, "Endpoint must be specified")
        if app:
            self.outbound.refuse_per_call(app, "originate with app=")
        if not app and not extension and not context:
            raise AriError(400, "Application or extension must be specified")
        if app and (extension or context or priority or label):
            raise AriError(400, "Option 'app' and 'extension/context/priority/label' are mutually exclusive")
        tech, _, resource = endpoint.partition("/")
        if not resource:
            raise AriError(400, "Endpoint parameter is not valid")
        target = OriginateTarget(app, app_args, context, extension, priority, label)
        if tech.lower() == "local":
            return self._originate_local(resource, target, caller_id, variables or {},
                                         channel_id, other_channel_id)
        return self._originate_remote(endpoint, target, caller_id, variables or {}, channel_id,
                                      dial_timeout(timeout))

    def _originate_local(self, resource: str, target: OriginateTarget, caller_id: str | None,
                         variables: dict[str, str], channel_id: str | None,
                         other_channel_id: str | None) -> Channel:
        dest = resource.split("/", 1)[0]
        exten, _, ctx = dest.partition("@")
        ctx = ctx or "default"
        suffix = self.ids.local_suffix()
        cid = CallerId.parse(caller_id)
        one = self.new_channel(name=f"Local/{dest}-{suffix};1", state="Down", kind="local1",
                               location=DialplanLocation(ctx, exten, 1, "AppDial2", "(Outgoing Line)"),
                               caller=CallerId(cid.name, cid.number), connected=CallerId(cid.name, cid.number),
                               channel_id=channel_id, audio_in=AudioIn(sending=False),
                               dialstring=f"{exten}@{ctx}", pending=target,
                               originated_into_stasis=bool(target.app))
        two = self.new_channel(name=f"Local/{dest}-{suffix};2", state="Ring", kind="local2",
                               location=DialplanLocation(ctx, exten, 1, "", ""),
                               caller=CallerId(cid.name, cid.number), connected=CallerId(cid.name, cid.number),
                               channel_id=other_channel_id)
        one.partner, two.partner = two, one
        self.calls[one.id] = SimCall(self, one, kind="local", exten=exten)
        if target.app:
            app = self.bus.app(target.app)
            app.subscribe_channel(one.id)
            app.subscribe_channel(two.id)
        one.spawn(self._start_local(one, two, variables, caller_id is not None), "originate")
        return one

    async def _start_local(self, one: Channel, two: Channel, variables: dict[str, str],
                           with_callerid: bool) -> None:
        await asyncio.sleep(0)
        for name, value in reversed(list(variables.items())):
            one.set_var(name, value)
            self.variables.set(two, name, value)
        if with_callerid:
            self.emit(ev.caller_id(self.ts(), two))
            self.emit(ev.channel_event("ChannelConnectedLine", self.ts(), two))
        self.emit(ev.dial(self.ts(), one, "", one.dialstring))
        two.pbx_task = two.spawn(self.pbx.run(two, two.location.context, two.location.exten, 1), "pbx")

    def _originate_remote(self, endpoint: str, target: OriginateTarget, caller_id: str | None,
                          variables: dict[str, str], channel_id: str | None, timeout: float | None) -> Channel:
        """Originate to a simulated phone (``PJSIP/1000``, ``PJSIP/+15550102@trunk``).

        The phone at the dialled number follows its script (``self.callees``,
        callees.py), or with none answers by itself after ``outbound_answer_after``.
        """
        cid = CallerId.parse(caller_id)
        tech, _, resource = endpoint.partition("/")
        ch = self.new_channel(name=self._remote_channel_name(tech, resource), state="Down", kind="trunk",
                              location=DialplanLocation("default", "s", 1, "AppDial2", "(Outgoing Line)"),
                              caller=cid, connected=CallerId(cid.name, cid.number), channel_id=channel_id,
                              audio_in=AudioIn(sending=True), dialstring=resource,
                              pending=target, originated_into_stasis=bool(target.app))
        ch.media_flowing.set()
        for name, value in variables.items():
            ch.set_var(name, value)
        number = dialled_number(resource)
        call = SimCall(self, ch, kind="outbound", exten=endpoint)
        call.callee_number, call.callee = number, self.callees.get(number)
        self.calls[ch.id] = call
        if target.app:
            self.bus.app(target.app).subscribe_channel(ch.id)
        ch.spawn(place_call(self, ch, call, call.callee, timeout), "ring")
        return ch

    def _remote_channel_name(self, tech: str, resource: str) -> str:
        """chan_pjsip.c ``chan_pjsip_new``: ``PJSIP/<endpoint id>-<8 hex>``; for ``<user>@<endpoint>``
        the endpoint is after the '@' (``request()``), so the dialled number is not in the name."""
        if tech.upper() == "PJSIP":
            return f"{tech}/{pjsip_endpoint(resource)}-{self.ids.trunk_suffix()}"
        return f"{tech}/{resource}-{self.ids.trunk_suffix()}"

    # -- inbound -------------------------------------------------------------
    def inbound_call(self, ani: str, exten: str, *, caller_name: str = "",
                     context: str = "ivr-inbound", variables: dict[str, str] | None = None) -> SimCall:
        """A call arriving from the trunk into ``context``/``exten`` (normally -> Stasis)."""
        ch = self.new_channel(name=f"{self.config.trunk_name}-{self.ids.trunk_suffix()}", state="Ring",
                              kind="trunk", location=DialplanLocation(context, exten, 1, "", ""),
                              caller=CallerId(caller_name, ani), audio_in=AudioIn(sending=True))
        ch.protocol_id = f"{uuid.uuid4()}@sim"       # after ChannelCreated, as the SIP channel learns it
        ch.media_flowing.set()
        for name, value in (variables or {}).items():
            ch.set_var(name, value)
        call = SimCall(self, ch, kind="inbound", exten=exten)
        self.calls[ch.id] = call
        ch.pbx_task = ch.spawn(self.pbx.run(ch, context, exten, 1), "pbx")
        return call

    # -- answering -----------------------------------------------------------
    def answer_channel(self, ch: Channel) -> None:
        """The channel goes Up; a Local ;2 answering also answers its ;1."""
        if ch.state == "Up":
            return
        self.set_state(ch, "Up")
        ch.answered.set()
        if ch.kind == "local2" and ch.partner is not None and ch.partner.state != "Up":
            self._remote_answered(ch.partner)
        elif ch.kind == "trunk" and ch.pending is not None:
            self._remote_answered(ch, state_already_set=True)
        call = self.calls.get(ch.id)
        if call is not None:
            call.on_answer()

    def _remote_answered(self, one: Channel, state_already_set: bool = False) -> None:
        if not state_already_set:
            self.set_state(one, "Up")
        one.answered.set()
        call = self.calls.get(one.id)
        if call is not None:
            call.on_answer()        # a Local ;1 is answered when its ;2 answers
        self.emit(ev.dial(self.ts(), one, "ANSWER", one.dialstring))
        target = one.pending
        one.pending = None
        if target is None:
            return
        if target.app:
            one.location.app_name = "Stasis"
            one.location.app_data, args = app_entry(target.app, target.app_args)
            self.enter_stasis(one, target.app, args)
            one.pbx_task = one.spawn(self._after_stasis(one), "stasis")
        else:
            ctx = target.context or one.location.context
            ext = target.extension or "s"
            prio = target.priority or 1
            if target.label:
                prio = self.dialplan.label(ctx, ext, target.label) or 1
            one.pbx_task = one.spawn(self.pbx.run(one, ctx, ext, prio), "pbx")

    async def _after_stasis(self, ch: Channel) -> None:
        """An originated channel that leaves Stasis by /continue runs the dialplan."""
        if ch.stasis_exit is None:      # the app was not registered: it never entered Stasis
            return
        target = await ch.stasis_exit
        if isinstance(target, Goto):
            await self.pbx.run(ch, target.context, target.exten, target.priority)

    # -- Stasis ----------------------------------------------------------------
    def enter_stasis(self, ch: Channel, app_name: str, args: list[str], reset_status: bool = True) -> bool:
        """``reset_status=False``: STASISSTATUS was already blanked (a per-call outbound Stasis())."""
        app = self.bus.apps.get(app_name)
        if app is None:
            log.warning("Stasis app '%s' not registered", app_name)
            self.variables.set(ch, "STASISSTATUS", "FAILED")
            return False
        if reset_status:
            self.variables.set(ch, "STASISSTATUS", "")
        app.subscribe_channel(ch.id)
        ch.stasis_app = app_name
        ch.stasis_args = list(args)
        ch.control = ChannelControl(ch.spawn)
        ch.stasis_exit = asyncio.get_running_loop().create_future()
        self.emit(ev.stasis_start(self.ts(), ch, args))
        call = self.calls.get(ch.id)
        if call is not None:
            call.on_stasis_start(app_name, args)
        return True

    async def run_stasis(self, ch: Channel, app_name: str, args: list[str]) -> Goto | None:
        """Dialplan ``Stasis()``: returns where /continue sends the channel."""
        if self.outbound.is_per_call(app_name):
            return await self.outbound.per_call_stasis(ch, app_name, args)
        if not self.enter_stasis(ch, app_name, args):
            return None
        assert ch.stasis_exit is not None
        return await ch.stasis_exit

    def _leave_stasis(self, ch: Channel, for_dialplan: bool, status: str = "SUCCESS") -> None:
        app_name = ch.stasis_app or ""
        app = self.bus.apps.get(app_name)
        self.emit(ev.channel_event("StasisEnd", self.ts(), ch))
        if app is not None:
            app.unsubscribe_channel(ch.id)
        self.outbound.stasis_ended(app_name, ch)
        ch.stasis_app = None
        if ch.control is not None:
            ch.control.close()
            ch.control = None
        if not (for_dialplan and ch.originated_into_stasis):
            self.variables.set(ch, "STASISSTATUS", status)

    def stasis_failed(self, ch: Channel) -> None:
        """A per-call outbound websocket gave up: the channel leaves Stasis with STASISSTATUS=FAILED
        and goes on with the next priority (outbound-websocket-per-call, "Hanging up after exhausting
        retries").  Its StasisEnd goes to the already inactive application: missed."""
        exit_future = ch.stasis_exit
        self._leave_stasis(ch, for_dialplan=False, status="FAILED")
        if exit_future is not None and not exit_future.done():
            exit_future.set_result(Goto(ch.location.context, ch.location.exten, ch.location.priority + 1))

    # -- commands (queued on the channel) -------------------------------------
    async def _run_sync(self, ch: Channel, name: str, fn: Any) -> Any:
        assert ch.control is not None
        try:
            return await ch.control.submit(name, fn)
        except ChannelGone:
            raise channel_not_found() from None

    async def cmd_answer(self, channel_id: str) -> None:
        ch = self.stasis_channel(channel_id)

        async def run() -> None:
            self.answer_channel(ch)
        await self._run_sync(ch, "answer", run)

    async def cmd_set_variable(self, channel_id: str, name: str, value: str) -> None:
        if not name:
            raise AriError(400, "Variable name is required")
        ch = self.stasis_channel(channel_id)

        async def run() -> None:
            self.variables.set(ch, name, value)
        await self._run_sync(ch, "setvar", run)

    def cmd_dtmf(self, channel_id: str, dtmf: str, before: int, between: int,
                 duration: int, after: int) -> None:
        if not dtmf:
            raise AriError(400, "DTMF is required")
        ch = self.stasis_channel(channel_id)
        assert ch.control is not None
        ch.control.submit("dtmf", lambda: self._send_dtmf(ch, dtmf, before, between, duration, after))

    async def _send_dtmf(self, ch: Channel, digits: str, before: int, between: int,
                         duration: int, after: int) -> None:
        start = self.clock.now() + before / 1000
        for i, digit in enumerate(digits):
            await self.clock.sleep_until(start + i * (duration + between) / 1000 + (duration + 100) / 1000)
            self._dtmf_to_far_end(ch, digit, duration)
        await self.clock.sleep_until(start + len(digits) * (duration + between) / 1000 + (after + 100) / 1000)

    def _dtmf_to_far_end(self, ch: Channel, digit: str, duration: int) -> None:
        if ch.partner is not None and not ch.partner.destroyed:
            self.emit(ev.dtmf_received(self.ts(), ch.partner, digit, duration))
        call = self.calls.get(ch.id)
        if call is not None:
            call.on_dtmf_heard(digit)

    def dtmf_from_far_end(self, ch: Channel, digit: str, duration_ms: int = 100) -> None:
        """The caller pressed a key: ChannelDtmfReceived on the channel facing the app."""
        if ch.destroyed:
            return
        self.emit(ev.dtmf_received(self.ts(), ch, digit, duration_ms))
        self.live_recordings.on_dtmf(ch, digit)

    def cmd_continue(self, channel_id: str, context: str | None, extension: str | None,
                     priority: int | None, label: str | None) -> None:
        ch = self.stasis_channel(channel_id)
        ctx = context or ch.location.context
        ext = extension or ch.location.exten
        if label:
            prio = self.dialplan.label(ctx, ext, label)
            if prio is None:
                raise AriError(404, "Requested label cannot be found")
        elif priority:
            prio = priority
        elif context or extension:
            prio = 1
        else:
            prio = ch.location.priority + 1
        assert ch.control is not None
        ch.control.submit("continue", lambda: self._do_continue(ch, ctx, ext, prio, label))

    async def _do_continue(self, ch: Channel, ctx: str, ext: str, prio: int, label: str | None) -> None:
        call = self.calls.get(ch.id)
        if call is not None:
            call.on_continued(ContinueRecord(ctx, ext, prio, label, dict(ch.variables), self.clock.now()))
        exit_future = ch.stasis_exit
        self._leave_stasis(ch, for_dialplan=True)
        if exit_future is not None and not exit_future.done():
            exit_future.set_result(Goto(ctx, ext, prio))

    def cmd_moh(self, channel_id: str, moh_class: str | None, start: bool) -> None:
        ch = self.stasis_channel(channel_id)
        call = self.calls.get(ch.id)

        async def run() -> None:
            if call is not None:
                call.on_moh((moh_class or "default") if start else None)
        assert ch.control is not None
        ch.control.submit("moh", run)

    # -- hang-up ---------------------------------------------------------------
    def hangup_by_app(self, channel_id: str, cause: int) -> None:
        """``DELETE /channels/{id}``: a soft hang-up requested by the app."""
        ch = self.channel(channel_id)
        ch.hangup_cause = cause
        ch.hungup_by = "app"
        self.emit(ev.hangup_request(self.ts(), ch, 32, soft=True))
        if ch.stasis_app is not None:
            # Asterisk answers the DELETE once the soft hang-up is queued; the channel's thread then
            # leaves Stasis: over an outbound websocket the RESTResponse comes before the
            # PlaybackFinished/StasisEnd that follow (outbound-websocket-per-call-lifecycle).
            # Over HTTP nothing can tell: a client sees the 204 only after this has run.
            asyncio.get_running_loop().call_soon(self._app_hangup_in_stasis, ch, cause)
        elif ch.pbx_task is not None and not ch.pbx_task.done():
            ch.soft_hungup = True
            ch.pbx_task.cancel()
        else:
            self._destroy_with_partner(ch, cause)

    def _app_hangup_in_stasis(self, ch: Channel, cause: int) -> None:
        if ch.destroyed:
            return
        if ch.stasis_app is not None:
            self.bridges.leave(ch)
            self._abort_media(ch)
            self._leave_stasis(ch, for_dialplan=False)
            self._destroy_with_partner(ch, cause)
        elif ch.pbx_task is not None and not ch.pbx_task.done():
            ch.soft_hungup = True
            ch.pbx_task.cancel()
        else:
            self._destroy_with_partner(ch, cause)

    def hangup_by_far_end(self, ch: Channel, cause: int) -> None:
        """The caller (or the Local ;2 dialplan) hangs up the call facing the app."""
        if ch.destroyed:
            return
        ch.hangup_cause = cause
        ch.hungup_by = "caller"
        two = ch.partner
        if two is not None and not two.destroyed:
            self.emit(ev.hangup_request(self.ts(), two, 16, soft=True))
        self.emit(ev.hangup_request(self.ts(), ch, cause, soft=False))
        if two is not None and not two.destroyed:
            self.destroy_channel(two, cause, blank_app=True)
        if ch.stasis_app is not None:
            self._abort_media(ch)
            self.bridges.leave(ch)
            self._leave_stasis(ch, for_dialplan=False)
            self.destroy_channel(ch, cause)
        elif ch.pbx_task is not None and not ch.pbx_task.done():
            ch.far_hungup = True
            ch.pbx_task.cancel()
        else:
            self.destroy_channel(ch, cause)

    def dialplan_finished(self, ch: Channel, cause: int) -> None:
        """A channel's dialplan ended (Hangup(), fell off the end, or was interrupted)."""
        if ch.destroyed or self.closing:
            return
        if ch.kind == "local2":
            if ch.partner is not None and not ch.partner.destroyed:
                self.hangup_by_far_end(ch.partner, cause)
            else:
                self.destroy_channel(ch, cause, blank_app=True)
            return
        if ch.far_hungup:
            self.destroy_channel(ch, ch.hangup_cause if ch.hangup_cause is not None else cause)
            return
        if ch.soft_hungup:
            cause = ch.hangup_cause if ch.hangup_cause is not None else 16
            if not ch.originated_into_stasis:
                self.emit(ev.hangup_request(self.ts(), ch, 16, soft=True))
        elif ch.hungup_by is None:
            ch.hungup_by = "dialplan"
        if ch.originated_into_stasis:
            self.variables.set(ch, "STASISSTATUS", "SUCCESS")
        self.bridges.leave(ch)
        self._destroy_with_partner(ch, cause)

    def _destroy_with_partner(self, one: Channel, cause: int) -> None:
        two = one.partner
        if two is not None and not two.destroyed and one.kind == "local1":
            self.emit(ev.hangup_request(self.ts(), two, 16, soft=False))
            self.destroy_channel(one, cause)
            if two.location.app_name == "Playback":
                self.variables.set(two, "PLAYBACKSTATUS", "SUCCESS")
            self.emit(ev.hangup_request(self.ts(), two, 16, soft=True))
            self.destroy_channel(two, cause, blank_app=True)
            return
        self.destroy_channel(one, cause)

    def _abort_media(self, ch: Channel) -> None:
        self.playbacks.abort_channel(ch)
        self.live_recordings.channel_gone(ch)
        if ch.talk_detect is not None:
            ch.talk_detect.stop()
            ch.talk_detect = None

    def destroy_channel(self, ch: Channel, cause: int, blank_app: bool = False) -> None:
        """The last step of every hang-up: media and bridge left, ChannelDestroyed, the SimCall told."""
        if ch.destroyed:
            return
        if blank_app:
            ch.location.app_name, ch.location.app_data = "", ""
        elif ch.kind in ("local1", "unicast", "agent"):
            ch.location.app_name, ch.location.app_data = ch.outgoing_app
        self._abort_media(ch)
        self.bridges.leave(ch, quiet=True)
        self._end_snoops(ch, cause)
        if ch.spied is not None:
            ch.spied.snoops.remove(ch)
        ch.destroyed = True
        self.emit(ev.destroyed(self.ts(), ch, cause))
        self.bus.forget_channel(ch.id)
        self.channels.pop(ch.id, None)
        if ch.control is not None:
            ch.control.close()
            ch.control = None
        if ch.external_media is not None:
            ch.external_media.close()
        call = self.calls.get(ch.id)
        if call is not None:
            call.on_hangup(cause, ch.hungup_by or "caller")
        ch.cancel_tasks()

    # -- externalMedia -------------------------------------------------------------
    async def create_external_media(self, app: str, external_host: str, fmt: str, *,
                                    channel_id: str | None = None,
                                    variables: dict[str, str] | None = None,
                                    encapsulation: str = "rtp", transport: str = "udp") -> Channel:
        """Returns while the channel is still Down; its StasisStart follows shortly."""
        if not app:
            raise AriError(400, "app is required")
        self.outbound.refuse_per_call(app, "externalMedia with app=")
        if encapsulation != "rtp" or transport != "udp":
            raise AriError(501, "Only encapsulation=rtp with transport=udp is simulated")
        host, _, port = (external_host or "").rpartition(":")
        if not host or not port.isdigit():
            raise AriError(400, "external_host is required (host:port)")
        if fmt not in SUPPORTED_FORMATS:
            raise AriError(400, f"Unsupported format {fmt}")
        ch = self.new_channel(name=f"UnicastRTP/{external_host}-{self.ids.pointer()}", state="Down",
                              kind="unicast", channel_id=channel_id, originated_into_stasis=True,
                              location=DialplanLocation("default", "s", 1, "AppDial2", "(Outgoing Line)"))
        media = ExternalMedia(self.clock, self.calls, ch, host, int(port), fmt)
        await media.open()
        ch.external_media = media
        ch.channelvars = {"UNICASTRTP_LOCAL_PORT": str(media.local_port), "UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1"}
        for name, value in {**ch.channelvars, **(variables or {})}.items():
            ch.set_var(name, value)
        self.bus.app(app).subscribe_channel(ch.id)
        ch.spawn(self._external_media_enter(ch, app, f"{external_host}/c({fmt})"), "em-enter")
        return ch

    async def _external_media_enter(self, ch: Channel, app: str, dialstring: str) -> None:
        await self.clock.sleep(self.config.external_media_stasis_delay)
        self.emit(ev.dial(self.ts(), ch, "", dialstring))
        self.set_state(ch, "Up")
        ch.answered.set()
        self.emit(ev.dial(self.ts(), ch, "ANSWER", dialstring))
        ch.location.app_name, ch.location.app_data = "Stasis", app
        self.enter_stasis(ch, app, [])

    # -- snoop -------------------------------------------------------------------
    def snoop_channel(self, channel_id: str, *, app: str, app_args: str = "", spy: str | None = None,
                      whisper: str | None = None, snoop_id: str | None = None) -> Channel:
        """``POST /channels/{id}/snoop``: returns the snoop channel (Up); its StasisStart follows at once."""
        snoop.check_request(app, spy, whisper)
        self.outbound.refuse_per_call(app, "snoop with app=")
        if app not in self.bus.apps:
            raise AriError(501, f"Snoop into the unregistered application '{app}' is not simulated: "
                                "no recorded trace shows it")
        spied = self.channel(channel_id)
        ch = self.new_channel(name=snoop.snoop_name(spied.id, self.ids.snoop_suffix()), state="Up",
                              kind="snoop", location=DialplanLocation("default", "s", 1, "", ""),
                              channel_id=snoop_id or None, spied=spied,
                              audio_in=spied.audio_in)   # spy=in: what the spied channel hears from its far end
        ch.answered.set()
        spied.snoops.append(ch)
        ch.spawn(self._snoop_enter(ch, app, app_args), "snoop-enter")
        return ch

    async def _snoop_enter(self, ch: Channel, app: str, app_args: str) -> None:
        await asyncio.sleep(0)   # after the response's snapshot (no application yet), as recorded
        ch.location.app_name = "Stasis"
        ch.location.app_data, args = app_entry(app, app_args)
        self.enter_stasis(ch, app, args)

    def _end_snoops(self, spied: Channel, cause: int) -> None:
        """The spied channel goes: its snoops leave bridge and Stasis without a ChannelHangupRequest."""
        for ch in list(spied.snoops):
            self.bridges.leave(ch)
            self._abort_media(ch)
            if ch.stasis_app is not None:
                self._leave_stasis(ch, for_dialplan=False)
            self.destroy_channel(ch, cause)

    # -- bridges -----------------------------------------------------------------
    def destroy_bridge(self, bridge_id: str) -> None:
        bridge = self.bridges.lookup(bridge_id)
        announcer.check_destroy(self.playbacks.on_bridge(bridge))
        self.bridges.destroy(bridge)

    # -- lifecycle -------------------------------------------------------------------
    async def close(self) -> None:
        self.closing = True
        for ch in list(self.channels.values()):
            ch.destroyed = True
            if ch.external_media is not None:
                ch.external_media.close()
            ch.cancel_tasks()
        for app in self.bus.apps.values():
            for sock in list(app.sockets):
                await sock.close(code=1001)
        await self.outbound.close()
        await self.http_media.close()
        await asyncio.sleep(0)

