"""The agent desk: routed calls in, queue views and screen pops out to agents' pages.

It sits beside the controller in the same process because the controller's
ARI application is the one subscribed to the callers' channels (see
``routing``): it sees every ARI event before the controller routes it, and
never blocks the event stream (anything slow runs in a task).

The pop is prepared when the caller joins a queue (call state from Redis,
the caller's profile and contact history), so that on ``Dial ANSWER`` only
the sending is left: that is how it reaches the agent well within a second.
A pop goes only to the agent whose phone answered; the queue view, which
every agent of a queue sees, carries no personal data.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.ari import event_types as ari
from ivr.config import AgentAccount
from ivr.engine.state import CallState
from ivr.history import ani_key
from ivr.sealing import Sealer
from ivr.web.accounts import Accounts
from ivr.web.caller_data import OUTCOMES, CallerDirectory, CallerProfile, Contact, ContactHistory, caller_of
from ivr.web.pop import ScreenPop, build_pop
from ivr.web.routing import Change, QueueWatch, RoutedCall

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
KEEP_ENDED_SECONDS = 3600.0      # ended calls stay in memory this long (outcome clicks after hang-up)
MAX_POPS_PER_AGENT = 20


@dataclass
class Prepared:
    """What the pop needs, fetched while the caller waits."""

    state: CallState
    profile: CallerProfile | None
    contacts: list[Contact]


@dataclass
class Delivery:
    """One pop sent: for the latency figures (answer seen -> pop written to the agent's socket)."""

    call_id: str
    agent_id: str
    answered_at: float
    sent_at: float
    sockets: int


@dataclass
class _Listeners:
    by_agent: dict[str, set[Send]] = field(default_factory=dict)

    def of(self, agent_id: str) -> list[Send]:
        return list(self.by_agent.get(agent_id, ()))


class NotYourCall(Exception):
    """The call is not one this agent answered: no data, no outcome."""


class AgentDesk:
    def __init__(self, accounts: Accounts, load_state: Callable[[str], Awaitable[CallState | None]],
                 directory: CallerDirectory, history: ContactHistory, sealer: Sealer,
                 clock: Callable[[], float] = time.time):
        self.accounts = accounts
        self.sealer = sealer  # names a caller known only by number, as the caller history does
        self.load_state = load_state
        self.directory = directory
        self.history = history
        self.clock = clock
        self.watch = QueueWatch()
        self.pops: dict[str, ScreenPop] = {}
        self.deliveries: list[Delivery] = []
        self._prepared: dict[str, asyncio.Task[Prepared]] = {}
        self._listeners = _Listeners()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- events ------------------------------------------------------------------

    def wrap(self, handler: Callable[[ari.AriEvent], Awaitable[None]]) -> Callable[[ari.AriEvent], Awaitable[None]]:
        """An ARI event handler that lets the desk look at each event first."""
        async def on_event(event: ari.AriEvent) -> None:
            try:
                self.on_ari_event(event)
            except Exception:  # the calls must go on whatever the agent page does
                log.exception("agent desk failed on %s", event.type)
            await handler(event)
        return on_event

    def on_ari_event(self, event: ari.AriEvent) -> None:
        for change in self.watch.handle(event, self.clock()):
            self._on_change(change)

    def _on_change(self, change: Change) -> None:
        call = change.call
        if change.kind == "joined" and call.call_id not in self._prepared:
            task = self._prepared[call.call_id] = self._spawn(self._prepare(call.call_id))
            task.add_done_callback(lambda _: self._broadcast_queue(self._queue_of(call.call_id)))
        elif change.kind == "answered":
            self._spawn(self._pop(call))
        elif change.kind == "ended" and call.call_id in self.pops:
            pop = self.pops[call.call_id]
            pop.call_status = "ended"
            self._send_to(pop.agent_id, {"type": "call", "call_id": call.call_id, "status": "ended"})
        if change.kind in ("left", "ended"):
            pending = self._prepared.pop(call.call_id, None)
            if pending is not None and call.call_id not in self.pops:
                pending.cancel()
        self._broadcast_queue(call.queue)
        self._forget_old()

    async def _prepare(self, call_id: str) -> Prepared:
        state = await self.load_state(call_id)
        if state is None:     # Redis down or the state expired: a pop with what the desk knows
            state = CallState(call_id=call_id, release="", flow="", node="", language="")
        caller_id = str(caller_of(state).get("id") or "")
        profile: CallerProfile | None = None
        contacts: list[Contact] = []
        if caller_id:
            profile, contacts = await asyncio.gather(self.directory.profile(caller_id, state),
                                                     self.history.recent(caller_id, 6))
            contacts = [c for c in contacts if c.call_id != call_id][:5]   # not this very call
        return Prepared(state, profile, contacts)

    def _queue_of(self, call_id: str) -> str:
        call = self.watch.calls.get(call_id)
        return call.queue if call is not None else ""

    async def _pop(self, call: RoutedCall) -> None:
        agent = self.accounts.by_interface(call.interface or "")
        if agent is None:
            log.warning("call %s answered by %s, which is no configured agent: no screen pop",
                        call.call_id, call.interface)
            return
        task = self._prepared.get(call.call_id)
        if task is None:
            task = self._prepared[call.call_id] = self._spawn(self._prepare(call.call_id))
        prepared = await task
        caller_id = str(caller_of(prepared.state).get("id") or "")
        note_agent = getattr(self.history, "note_agent", None)
        if caller_id and note_agent is not None:     # routing prefers this agent next time
            self._spawn(note_agent(caller_id, agent.id))
        pop = build_pop(prepared.state, agent.id, call.queue, call.since, call.answered_at,
                        prepared.profile, prepared.contacts)
        self.pops[call.call_id] = pop
        message = {"type": "pop", "pop": pop.model_dump(mode="json")}
        sockets = self._listeners.of(agent.id)
        await asyncio.gather(*(send(message) for send in sockets), return_exceptions=True)
        self.deliveries.append(Delivery(call.call_id, agent.id, call.answered_at or 0.0, self.clock(), len(sockets)))
        del self.deliveries[:-200]

    # --- what an agent may see and do ----------------------------------------------

    def queue_view(self, agent: AgentAccount) -> dict[str, Any]:
        """Queues the agent serves with who waits: no names, numbers or policy data."""
        queues = []
        for name in agent.queues:
            waiting: list[dict[str, Any]] = []
            for call in self.watch.waiting(name):
                result = self._state_result(call.call_id)
                priority = result.get("priority")
                waiting.append({
                    "ref": call.call_id.rsplit(".", 1)[-1], "since": call.since,
                    "priority": priority if isinstance(priority, int) else 0,
                    "reason": str(result.get("reason") or ""),
                    "ringing": len(call.ringing),
                    "ringing_you": any(i.lower() in {a.lower() for a in agent.interfaces}
                                       for i in call.ringing.values()),
                })
            waiting.sort(key=lambda w: (-w["priority"], w["since"]))
            queues.append({"name": name, "waiting": waiting})
        return {"type": "queues", "now": self.clock(), "queues": queues}

    def pops_of(self, agent: AgentAccount) -> list[ScreenPop]:
        return sorted((p for p in self.pops.values() if p.agent_id == agent.id), key=lambda p: p.answered_at or 0.0)

    def pop_for(self, agent: AgentAccount, call_id: str) -> ScreenPop:
        pop = self.pops.get(call_id)
        if pop is None or pop.agent_id != agent.id:
            raise NotYourCall(call_id)
        return pop

    async def record_outcome(self, agent: AgentAccount, call_id: str, outcome: str) -> ScreenPop:
        """The agent's one click: into the caller's contact history, and onto their page."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        pop = self.pop_for(agent, call_id)
        caller_key = pop.caller.caller_id or ani_key(pop.caller.ani, self.sealer) or f"call:{call_id}"
        summary = f"{pop.routing.queue}: {pop.routing.reason}" if pop.routing.reason else pop.routing.queue
        await self.history.record_outcome(caller_key, Contact(at=self.clock(), kind="agent_outcome", summary=summary,
                                                              outcome=outcome, agent=agent.id, call_id=call_id))
        pop.outcome = outcome
        self._send_to(agent.id, {"type": "outcome", "call_id": call_id, "outcome": outcome})
        return pop

    # --- page connections ---------------------------------------------------------

    def listen(self, agent: AgentAccount, send: Send) -> None:
        self._listeners.by_agent.setdefault(agent.id, set()).add(send)

    def unlisten(self, agent: AgentAccount, send: Send) -> None:
        self._listeners.by_agent.get(agent.id, set()).discard(send)

    def _broadcast_queue(self, queue: str) -> None:
        for agent in self.accounts.agents.values():
            if queue in agent.queues and self._listeners.of(agent.id):
                self._send_to(agent.id, self.queue_view(agent))

    def _send_to(self, agent_id: str, message: dict[str, Any]) -> None:
        for send in self._listeners.of(agent_id):
            self._spawn(send(message))

    def _state_result(self, call_id: str) -> dict[str, Any]:
        task = self._prepared.get(call_id)
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return {}
        return task.result().state.result or {}

    def _forget_old(self) -> None:
        cutoff = self.clock() - KEEP_ENDED_SECONDS
        self.watch.forget_older_than(cutoff)
        for call_id in list(self.pops):
            if call_id not in self.watch.calls:
                del self.pops[call_id]
                self._prepared.pop(call_id, None)
        for agent_id in {p.agent_id for p in self.pops.values()}:
            mine = sorted((p for p in self.pops.values() if p.agent_id == agent_id), key=lambda p: p.answered_at or 0)
            for pop in mine[:-MAX_POPS_PER_AGENT]:
                del self.pops[pop.call_id]

    def _spawn(self, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("agent desk task failed", exc_info=task.exception())

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
