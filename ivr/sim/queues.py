"""``Queue()`` as the app sees it through a channel subscription.

Per the ``continue-to-queue*`` traces: six empty time variables, a Dial per
ringing member (``peer`` = agent channel), Dial ANSWER for the member who
answers and two CANCEL Dials for each other one, the MEMBER*/QUEUE*
variables (``setinterfacevar=yes``), then bridging and BRIDGEPEER.  When the
caller hangs up the queue variables are set again.  Which member answers,
and when, comes from ``QueueMember.answer_after``.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import events as ev
from .config import QueueConfig, QueueMember
from .model import CallerId, Channel, DialplanLocation

if TYPE_CHECKING:  # pragma: no cover
    from .core import Simulator

TIME_VARS = ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")


@dataclass
class QueueOutcome:
    """What happened to a call in a queue (for tests: who answered)."""
    queue: str
    entered_at: float
    member_interface: str | None = None
    member_name: str | None = None
    agent_channel: str | None = None
    answered_at: float | None = None
    status: str | None = None


@dataclass
class QueueLeg:
    """A member's phone ringing for a queued caller."""
    member: QueueMember
    channel: Channel


@dataclass
class QueueWait:
    """A caller in ``Queue()``: the legs ringing for them, then the agent who answered.

    Kept on the caller's channel (``Channel.queue_wait``) while Queue() runs,
    so that the simulated caller can make a member pick up or the agent hang up.
    """
    legs: list[QueueLeg]
    pickup: asyncio.Future[str]        # resolved by pick_up(): the interface that answers now
    agent: Channel | None = None       # once connected
    agent_gone: asyncio.Event = field(default_factory=asyncio.Event)


async def run_queue(sim: Simulator, caller: Channel, data: str) -> bool:
    """Returns True when the caller must be hung up (the bridged call ended)."""
    args = data.split(",")
    queue = sim.queues.get(args[0])
    if queue is None:
        sim.variables.set(caller, "QUEUESTATUS", "UNKNOWN")
        return False
    options = args[1] if len(args) > 1 else ""
    timeout = float(args[4]) if len(args) > 4 and args[4].strip() else None
    gosub = args[6].strip() if len(args) > 6 else ""
    for name in TIME_VARS:
        sim.variables.set(caller, name, "")
    entered = sim.clock.now()
    if caller.partner is not None:
        caller.partner.media_flowing.set()     # the caller now hears music on hold / ringing
    outcome = QueueOutcome(queue.name, entered)
    call = sim.calls.get(caller.id)
    if call is not None:
        call.queue = outcome
    legs = [_create_leg(sim, caller, m) for m in queue.members]
    for leg in legs:
        sim.emit(ev.dial(sim.ts(), leg.channel, "", leg.member.interface, caller=caller))
    for leg in legs:
        leg.channel.state = "Ringing"
        leg.channel.location.exten = caller.location.exten
        sim.emit(ev.dial(sim.ts(), leg.channel, "RINGING", leg.member.interface, caller=caller))
    answered: QueueLeg | None = None
    queued = QueueWait(legs, asyncio.get_running_loop().create_future())
    caller.queue_wait = queued
    try:
        answered = await _first_answer(sim, legs, timeout, queued.pickup)
        if answered is None:
            _cancel_legs(sim, caller, legs)
            outcome.status = "TIMEOUT"
            sim.variables.set(caller, "QUEUESTATUS", "TIMEOUT")
            return False
        await _connect(sim, queue, queued, caller, answered, outcome, gosub)
        await queued.agent_gone.wait()
        _after_call(sim, queue, queued, caller, outcome)
        return "c" not in options
    except asyncio.CancelledError:
        if answered is None:
            _cancel_legs(sim, caller, legs)
            queue.abandoned += 1
        else:
            _after_call(sim, queue, queued, caller, outcome)
        raise
    finally:
        caller.queue_wait = None
        for leg in legs:
            sim.destroy_channel(leg.channel, 16)


def _create_leg(sim: Simulator, caller: Channel, member: QueueMember) -> QueueLeg:
    tech, _, resource = member.interface.partition("/")
    if tech.lower() == "local":
        dest = resource.split("/")[0]
        exten, _, ctx = dest.partition("@")
        name = f"Local/{dest}-{sim.ids.local_suffix()};1"
    else:
        ctx, exten = "default", resource
        name = f"{member.interface}-{sim.ids.trunk_suffix()}"
    ch = sim.new_channel(name=name, state="Down", kind="agent",
                         location=DialplanLocation(ctx, exten, 1, "AppQueue", "(Outgoing Line)"),
                         caller=CallerId("", caller.location.exten), outgoing_app=("AppQueue", "(Outgoing Line)"))
    for var, value in caller.inherited.items():
        ch.set_var(var, value)
    return QueueLeg(member, ch)


async def _first_answer(sim: Simulator, legs: list[QueueLeg], timeout: float | None,
                        pickup: asyncio.Future[str]) -> QueueLeg | None:
    """The member who answers first: by ``answer_after``, or whoever :func:`pick_up` names."""
    candidates = [leg for leg in legs if leg.member.answer_after is not None]
    first = min(candidates, key=lambda leg: leg.member.answer_after or 0.0, default=None)
    limit = timeout if timeout is not None else 3600.0
    delay = (first.member.answer_after or 0.0) if first is not None else limit
    if first is not None and delay > limit:
        first, delay = None, limit
    timer = asyncio.ensure_future(sim.clock.sleep(delay))
    waiters: set[asyncio.Future[Any]] = {timer, pickup}
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
    if pickup.done():
        interface = pickup.result()
        return next(leg for leg in legs if leg.member.interface == interface)
    pickup.cancel()
    return first


def pick_up(caller: Channel, interface: str) -> bool:
    """A ringing member answers this queued caller now; False if it is not ringing for them."""
    wait = caller.queue_wait
    if wait is None or wait.pickup.done() or not any(leg.member.interface == interface for leg in wait.legs):
        return False
    wait.pickup.set_result(interface)
    return True


def ringing_members(caller: Channel) -> list[str]:
    """Interfaces ringing for this caller right now (empty once answered or gone)."""
    wait = caller.queue_wait
    if wait is None or wait.pickup.done():
        return []
    return [leg.member.interface for leg in wait.legs]


def _cancel_legs(sim: Simulator, caller: Channel, legs: list[QueueLeg]) -> None:
    for leg in legs:
        sim.emit(ev.dial(sim.ts(), leg.channel, "CANCEL", "", caller=caller))
        sim.emit(ev.dial(sim.ts(), leg.channel, "CANCEL", leg.member.interface, caller=caller))


async def _connect(sim: Simulator, queue: QueueConfig, queued: QueueWait, caller: Channel, answered: QueueLeg,
                   outcome: QueueOutcome, gosub: str) -> None:
    agent = answered.channel
    agent.state = "Up"
    sim.emit(ev.dial(sim.ts(), agent, "ANSWER", answered.member.interface, caller=caller))
    _cancel_legs(sim, caller, [leg for leg in queued.legs if leg is not answered])
    now = sim.clock.now()
    wait = now - outcome.entered_at
    member = answered.member
    if queue.setinterfacevar:
        for name, value in (("MEMBERINTERFACE", member.interface), ("MEMBERNAME", member.name),
                            ("MEMBERCALLS", str(member.calls)), ("MEMBERLASTCALL", str(member.last_call)),
                            ("MEMBERPENALTY", str(member.penalty)), ("MEMBERDYNAMIC", "0"),
                            ("MEMBERREALTIME", "0")):
            sim.variables.set(caller, name, value)
    if queue.setqueueentryvar:
        sim.variables.set(caller, "QEHOLDTIME", str(int(wait)))
        sim.variables.set(caller, "QEORIGINALPOS", "1")
    _queue_vars(sim, queue, caller, calls=1)
    sim.variables.set(caller, "QUEUEPOSITION", "1")
    if gosub:
        agent.master = caller
        await sim.pbx.run_subroutine(agent, gosub, "s", 1)
    sim.variables.set(caller, "QUEUEWAIT", str(int(wait)))
    sim.variables.set(caller, "QUEUEWAIT_MS", str(int(wait * 1000)))
    member.calls += 1
    member.last_call = int(sim.clock.wall())
    outcome.member_interface = member.interface
    outcome.member_name = member.name
    outcome.agent_channel = agent.name
    outcome.answered_at = now
    outcome.status = "ANSWERED"
    queued.agent = agent
    sim.bridges.join_queue_call(agent, caller)


def _queue_vars(sim: Simulator, queue: QueueConfig, caller: Channel, calls: int) -> None:
    if not queue.setqueuevar:
        return
    for name, value in (("QUEUENAME", queue.name), ("QUEUEMAX", "0"), ("QUEUESTRATEGY", queue.strategy),
                        ("QUEUECALLS", str(calls)), ("QUEUEHOLDTIME", str(queue.hold_time)),
                        ("QUEUETALKTIME", str(queue.talk_time)), ("QUEUECOMPLETED", str(queue.completed)),
                        ("QUEUEABANDONED", str(queue.abandoned)), ("QUEUESRVLEVEL", "0"),
                        ("QUEUESRVLEVELPERF", "0.0")):
        sim.variables.set(caller, name, value)


def _after_call(sim: Simulator, queue: QueueConfig, queued: QueueWait, caller: Channel,
                outcome: QueueOutcome) -> None:
    """Caller or agent left the bridge: Queue() publishes its variables again."""
    sim.bridges.leave(caller)
    agent = queued.agent
    if agent is not None:
        sim.bridges.leave(agent, quiet=True)
    sim.bridges.drop_empty_queue_bridges()
    queue.completed += 1
    _queue_vars(sim, queue, caller, calls=0)
    now = sim.clock.now()
    answered = now - (outcome.answered_at or now)
    dialed = now - outcome.entered_at
    sim.variables.set(caller, "ANSWEREDTIME", str(int(answered)))
    sim.variables.set(caller, "ANSWEREDTIME_MS", str(int(answered * 1000)))
    sim.variables.set(caller, "DIALEDTIME", str(int(dialed)))
    sim.variables.set(caller, "DIALEDTIME_MS", str(int(dialed * 1000)))
    _queue_vars(sim, queue, caller, calls=0)


def agent_hangup(caller: Channel) -> None:
    """End the bridged call from the agent's side; the caller's dialplan continues."""
    wait = caller.queue_wait
    if wait is not None and wait.agent is not None:
        wait.agent_gone.set()
