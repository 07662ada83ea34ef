"""The call controller: ARI events in, one session per call, calls that survive us.

Routing is by channel id: StasisStart of a caller opens a session; helper
channels we create ourselves (externalMedia, snoop) and the `;2` halves of
Local channels are ignored. After every (re)connect the controller asks
Asterisk which channels its application still holds: callers gone meanwhile
end their sessions, calls it does not know (a restart, or a StasisStart lost
while disconnected) are adopted: resumed at their saved step, started if they
never got going, or handed to a person when resuming is not safe. What to
do with each held channel is decided from its facts by `ivr.controller.adoption`
(pure); this module gathers the facts and carries the decisions out.

Each call runs on one release of the catalog (flows, prompts, routing rules):
a new call takes the current one, with the routing decision of that same
release's rules (`Router.route`), and a resumed call the one its state names.

The controller is one part of the application `ivr.application.build` assembles
from settings; `ivr.application.serve` runs it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ivr import engine
from ivr.ari import AriClient, ChannelNotFound, ConnectInfo
from ivr.ari import event_types as ari
from ivr.ari.models import Channel
from ivr.controller import adoption
from ivr.controller.session import Begin, CallSession, Resume, Services, continue_to_queue
from ivr.controller.speech import owner_of_helper
from ivr.engine.actions import FALLBACK_QUEUE, PromptRef
from ivr.engine.language import start_language
from ivr.engine.state import CallState
from ivr.flow.catalog import Catalog, FlowSet
from ivr.lease import Leases
from ivr.prompts import LANGUAGES, TRANSFER_NOTICE
from ivr.routing.router import Router
from ivr.store import STATE_TTL_SECONDS

log = logging.getLogger(__name__)


class Controller:
    def __init__(self, services: Services, catalog: Catalog, entry_flow: str,
                 dnis_languages: Mapping[str, str] | None = None, router: Router | None = None,
                 leases: Leases | None = None, outbound_flow: str = "outbound_payment"):
        """`router`: decides where each new call starts; None: every call starts in `entry_flow` as is.
        `leases`: with several controllers, the one that runs each call (None: this one runs all).
        `outbound_flow`: where a rescue campaign's call starts (`Stasis(ivr,outbound,<AMD>,<attempt>)`)."""
        self.services = services
        self.leases = leases
        self.catalog = catalog
        self.router = router
        self.entry_flow = entry_flow
        self.outbound_flow = outbound_flow
        self.dnis_languages = dict(dnis_languages or {})  # dialled number -> language of its callers
        self.sessions: dict[str, CallSession] = {}
        self.unclaimed = Unclaimed()
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._renewing: asyncio.Task | None = None

    # --- events ----------------------------------------------------------------

    async def on_event(self, event: ari.AriEvent, ari_client: AriClient | None = None) -> None:
        """Route one event; never blocks on a call's own work. `ari_client`: the client of the
        connection the event came on (an outbound websocket), which a new call's session keeps."""
        if isinstance(event, ari.StasisStart):
            if adoption.is_caller(event.channel):
                if event.channel.id not in self.sessions:
                    self._new_call(event.channel, event.args, self.services_for(ari_client))
            elif (owner := self.sessions.get(owner_of_helper(event.channel.id) or "")) is not None:
                owner.helper_event(event)
            return
        channel_id = event.channel_id
        if not channel_id:
            return
        session = self.sessions.get(channel_id)
        if session is not None:
            session.submit(event)
        else:
            self.unclaimed.add(channel_id, event)

    async def on_connect(self, info: ConnectInfo) -> None:
        """Reconcile with what Asterisk still holds after a (re)connect."""
        await self.reconcile(self.services, info.reconnect)

    async def reconcile(self, services: Services, reconnect: bool = True) -> None:
        """What the application still holds on one Asterisk (through `services.ari`): callers gone
        end their sessions, calls no session has are adopted."""
        try:
            held = (await services.ari.get_application(services.app)).channel_ids
        except Exception as exc:  # the next reconnect tries again
            log.error("cannot list channels held by %s: %s", services.app, exc)
            return
        mine = {channel_id: session for channel_id, session in self.sessions.items()
                if session.services.ari is services.ari}  # another Asterisk's calls are not in `held`
        plan = adoption.reconnect(held, mine)
        for channel_id in plan.gone:
            self.sessions[channel_id].submit(ari.StasisEnd(channel=Channel(id=channel_id)))
        for channel_id in plan.held:
            self._spawn(self.sessions[channel_id].reconcile())
        for channel_id in plan.unknown:
            self._spawn(self.adopt(channel_id, services))
        if held or reconnect:
            log.info("connected (%s): %d call(s) held, %d session(s)", "reconnect" if reconnect else "start",
                     len(plan.held) + len(plan.unknown), len(self.sessions))

    # --- sessions ----------------------------------------------------------------

    def services_for(self, ari_client: AriClient | None) -> Services:
        """The services of a call whose REST goes over `ari_client` (its Asterisk's connection). Over a
        per-call outbound websocket the call's application is `<app>:<channel name>`: its helper
        channels (snoop, externalMedia) enter that one, so that their events come on the call's
        own socket (into plain `<app>` Asterisk would open a websocket for each of them)."""
        if ari_client is None or ari_client is self.services.ari:
            return self.services
        return dataclasses.replace(self.services, ari=ari_client, app=ari_client.per_call_app or self.services.app)

    def session_of_channel(self, name: str, asterisk_id: str | None) -> CallSession | None:
        """The session of the channel called `name` on that Asterisk (an outbound websocket names
        only the channel; two servers may both have a `PJSIP/trunk-00000001`)."""
        return next((s for s in self.sessions.values()
                     if s.channel_name == name and s.services.ari.asterisk_id == asterisk_id), None)

    def let_go(self, channel_id: str) -> None:
        """Stop running a call without touching it: another controller runs it now."""
        session = self.sessions.get(channel_id)
        if session is not None and session.task is not None:
            log.info("call %s: let go (another controller has it)", channel_id)
            session.task.cancel()

    def _new_call(self, channel: Channel, args: list[str], services: Services | None = None) -> None:
        session = self._open(channel.id, services)
        session.channel_name = channel.name
        if self.leases is not None:
            self._spawn(self._claim(channel, session.services))
        router = self.router
        if router is None or _outbound(args):  # a campaign's call has its own flow: no inbound routing
            session.submit(self._begin(_call_data(channel, args), self.catalog.current))
            return

        async def routed() -> None:
            """The call's release, and its rules' decision joined to the call data (bounded in time, never raises)."""
            call = _call_data(channel, args)
            release = self.catalog.current
            try:
                release, decision = await router.route(call, self.catalog)
                call.update(decision)
            except Exception:  # a routing bug must not leave the caller in silence
                log.exception("call %s: routing failed, starting unrouted", channel.id)
            session.submit(self._begin(call, release))
        self._spawn(routed())

    def _begin(self, call: dict[str, Any], release: FlowSet) -> Begin:
        """The call starts in its caller's language, else its dialled number's, else the channel's."""
        call["language"] = start_language(call, self.dnis_languages)
        return Begin(self.outbound_flow if call.get("direction") == "outbound" else self.entry_flow, call, release)

    async def _claim(self, channel: Channel, services: Services) -> None:
        """A new call's lease, and a note of its channel name for a controller that takes it over."""
        assert self.leases is not None
        if not await self.leases.acquire(channel.id):
            log.warning("call %s: another controller holds its lease", channel.id)
        self._keep_renewing()
        await self.leases.remember(channel_key(services.ari.asterisk_id, channel.name), channel.id, STATE_TTL_SECONDS)

    def _keep_renewing(self) -> None:
        if self._renewing is None or self._renewing.done():
            self._renewing = self._spawn(self._renew_leases())

    async def _renew_leases(self) -> None:
        """Every third of a lease's life while calls are held: a call whose lease another
        controller took (this one was cut off longer than a lease lives) is let go."""
        leases = self.leases
        assert leases is not None
        while leases.held:
            await asyncio.sleep(leases.ttl / 3)
            for channel_id in await leases.renew_all():
                self.let_go(channel_id)

    async def adopt(self, channel_id: str, services: Services | None = None, wait: float = 0.0) -> None:
        """Take over a held channel no session has: once its lease is ours (waiting up to `wait`
        seconds for another controller's to lapse), carry out what `adoption.decide` makes of it."""
        services = services or self.services
        if self.leases is not None and owner_of_helper(channel_id) is None:
            if not await self.leases.acquire(channel_id, wait):
                log.info("call %s: another controller runs it", channel_id)
                return
            self._keep_renewing()
        await self._adopt(channel_id, services)

    async def _adopt(self, channel_id: str, services: Services) -> None:
        """Gather the facts of a held channel no session has and carry out what `adoption.decide` makes of them."""
        if (owner := owner_of_helper(channel_id)) is not None:
            decision = adoption.decide(adoption.HelperLeg(self._live_leg(channel_id, owner)))
            await self._carry_out(channel_id, decision, services)
            return
        try:
            channel = await services.ari.get_channel(channel_id)
        except ChannelNotFound:
            return
        if not adoption.is_caller(channel):
            return
        state = await services.store.load(channel_id)
        release = self.catalog.get(state.release) if state is not None else None
        facts = adoption.Caller(state, in_session=channel_id in self.sessions, release_known=release is not None)
        await self._carry_out(channel_id, adoption.decide(facts), services, channel, release)

    async def _carry_out(self, channel_id: str, decision: adoption.Decision, services: Services,
                         channel: Channel | None = None, release: FlowSet | None = None) -> None:
        """The I/O of a decision: `channel` for a fresh start, `release` (the saved one's) for a resume."""
        if isinstance(decision, adoption.HangUpLeg):
            try:
                await services.ari.hangup(channel_id, "normal")
            except ChannelNotFound:
                pass
        elif isinstance(decision, adoption.StartFresh) and channel is not None:
            log.info("call %s: no saved step, starting it afresh", channel_id)
            self._new_call(channel, stasis_args(channel), services)
        elif isinstance(decision, adoption.HandOff):
            await self._hand_off(decision.state, decision.detail, services)
        elif isinstance(decision, adoption.ResumeCall) and release is not None:
            state = decision.state
            log.info("call %s: resuming at %s.%s", channel_id, state.flow, state.node)
            session = self._open(channel_id, services)
            session.channel_name = channel.name if channel is not None else None
            session.submit(Resume(state, release))

    def _live_leg(self, channel_id: str, owner: str) -> bool:
        """One of the legs its call's listener uses now (else a controller that died left it)."""
        session = self.sessions.get(owner)
        listener = session.listener if session is not None else None
        return listener is not None and channel_id in (listener.media_id, listener.snoop_id)

    async def _hand_off(self, state: CallState, detail: str, services: Services) -> None:
        """A call we cannot safely resume goes to a person, never into silence: it hears the
        transfer notice first (Asterisk ends a prompt before continuing into the dialplan).
        Saved as transferred first: it stays subscribed, and the next controller to start
        must not take a caller waiting in the queue for one to resume."""
        channel_id, language = state.call_id, state.language
        log.warning("call %s handed to %s: %s", channel_id, FALLBACK_QUEUE, detail)
        await services.store.save(engine.hand_off(state, FALLBACK_QUEUE, "controller_restart", 7, detail))
        notice = await services.media.uri(self.catalog.current, language,  # the call's release is gone
                                          PromptRef(key=TRANSFER_NOTICE))
        await services.ari.play(channel_id, notice, playback_id=f"ivr-handoff-{channel_id}", lang=language)
        await continue_to_queue(services, channel_id, FALLBACK_QUEUE, 7, "controller_restart")

    def _open(self, channel_id: str, services: Services | None = None) -> CallSession:
        session = CallSession(services or self.services, channel_id)
        self.sessions[channel_id] = session
        session.held = self.unclaimed.take(channel_id)  # events that came before we knew the call
        session.task = self._spawn(self._run_session(session))
        return session

    async def _run_session(self, session: CallSession) -> None:
        try:
            await session.run()
        finally:
            if self.sessions.get(session.channel_id) is session:
                self.sessions.pop(session.channel_id, None)
            if self.leases is not None and not self._stopping:
                await self.leases.release(session.channel_id)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("controller task failed", exc_info=task.exception())

    async def aclose(self) -> None:
        """Stop every session, leaving the calls in Stasis, and hand their leases over at once."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.leases is not None:
            await self.leases.release_all()


def channel_key(asterisk_id: str | None, name: str) -> str:
    """A channel name made unique across Asterisk servers, for the call leases' name notes."""
    return f"{asterisk_id or ''}/{name}"


def _call_data(channel: Channel, args: list[str]) -> dict[str, Any]:
    """What the flows know of a new call. The dialled number is the Stasis argument
    (`Stasis(ivr,${IVR_DNIS})`): after the dialplan's Goto the channel's exten is `s`.
    A campaign's call enters as `Stasis(ivr,outbound,${AMDSTATUS},${IVR_ATTEMPT})`: its
    caller id is the insurer's own, the callee is known by the attempt."""
    line = {"channel": channel.name, "language": channel.language if channel.language in LANGUAGES else None}
    if _outbound(args):
        return {**line, "direction": "outbound", "amd": args[1][:16] if len(args) > 1 else "",
                "attempt": args[2][:64] if len(args) > 2 else "", "ani": "", "caller_name": "", "dnis": ""}
    return {**line, "ani": channel.caller.number, "caller_name": channel.caller.name, "dnis": args[0] if args else ""}


def _outbound(args: list[str]) -> bool:
    return bool(args) and args[0] == "outbound"


def stasis_args(channel: Channel) -> list[str]:
    """The Stasis arguments of a channel read back with GET (adoption has no StasisStart):
    its app_data is `<app>,<arg>,...` while it is in Stasis."""
    dialplan = channel.dialplan
    if dialplan is None or dialplan.app_name != "Stasis":
        return []
    return dialplan.app_data.split(",")[1:]


class Unclaimed:
    """Events of channels we hold no session for yet, kept for a call being adopted.

    After a reconnect Asterisk delivers a call's events (a key the caller
    pressed) before the controller has loaded the call. Bounded: a few events
    per channel, for the most recent channels; Local `;2` halves fill it too
    and simply age out.
    """

    PER_CHANNEL = 16
    CHANNELS = 256

    def __init__(self) -> None:
        self._events: OrderedDict[str, list[Any]] = OrderedDict()

    def add(self, channel_id: str, event: Any) -> None:
        keeping = adoption.keep_unclaimed(event, len(self._events.get(channel_id, ())), self.PER_CHANNEL)
        if keeping == "forget":
            self._events.pop(channel_id, None)
            return
        events = self._events.setdefault(channel_id, [])
        self._events.move_to_end(channel_id)
        if keeping == "keep":
            events.append(event)
        while len(self._events) > self.CHANNELS:
            self._events.popitem(last=False)

    def take(self, channel_id: str) -> list[Any]:
        return self._events.pop(channel_id, [])
