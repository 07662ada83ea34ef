"""Routed callers: which queue they wait in, whose phone rings, who answered.

How the controller knows which agent answered, from the real Asterisk 22
``continue-to-queue*`` traces: the controller subscribes its application to
the caller's channel (``POST /applications/ivr/subscription``) before
continuing it into ``[ivr-transfer]``. While ``Queue()`` runs, the app then
receives, for the caller's channel only:

- ``ChannelDialplan`` ``Queue(<name>,...)``: the caller joined that queue;
- ``Dial`` with ``caller`` = our channel, ``peer`` = each member's channel,
  ``dialstring`` = the member interface (``PJSIP/agent101``), dialstatus ""
  then ``RINGING`` per ringing member;
- ``Dial`` ``ANSWER`` for the member who picked up (same ``dialstring``), at
  the moment of answer (the trace: same millisecond as the agent's Answer()),
  then ``CANCEL`` for the others;
- ``ChannelVarset`` ``MEMBERINTERFACE`` (``setinterfacevar=yes``) ~1 ms
  later, the gosub's ``IVR_AGENT_CHANNEL`` ~3 ms later, ``BRIDGEPEER`` ~14 ms
  later.

Without the subscription the app hears nothing after ``StasisEnd``; bridge
events and the agent-side ``UserEvent`` reach only ``subscribeAll``
applications. So ``Dial`` ``ANSWER`` (with ``MEMBERINTERFACE`` as a
fallback) is the earliest signal an ordinary app gets, and it names the
member interface, which ``agents`` in the settings map to an agent.

This module is pure bookkeeping: events in, :class:`Change` out, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ivr.ari import event_types as ari

Status = Literal["waiting", "connected", "ended", "abandoned"]


@dataclass
class RoutedCall:
    """A caller the IVR handed to a queue, as far as the queue view and the pop care."""

    call_id: str
    queue: str
    since: float                                  # joined the current queue (wall clock)
    status: Status = "waiting"
    ringing: dict[str, str] = field(default_factory=dict)  # peer channel id -> member interface
    interface: str | None = None                  # member who answered
    agent_channel: str | None = None
    answered_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class Change:
    """What changed for a routed call: the queue view and pops react to these."""

    kind: Literal["joined", "ringing", "answered", "left", "ended"]
    call: RoutedCall


@dataclass(frozen=True)
class Answer:
    """Who answered a queued caller, read from one ARI event."""

    call_id: str
    interface: str
    agent_channel: str | None


def answer_in(event: ari.AriEvent) -> Answer | None:
    """The answering member if this event says so: Dial ANSWER, else MEMBERINTERFACE."""
    if isinstance(event, ari.Dial) and event.dialstatus == "ANSWER" and event.caller is not None \
            and event.dialstring:
        return Answer(event.caller.id, event.dialstring, event.peer.name)
    if isinstance(event, ari.ChannelVarset) and event.variable == "MEMBERINTERFACE" and event.channel is not None \
            and event.value:
        return Answer(event.channel.id, event.value, None)
    return None


def queue_joined(event: ari.AriEvent) -> str | None:
    """The queue name when this event is the caller's channel starting Queue()."""
    if isinstance(event, ari.ChannelDialplan) and event.dialplan_app.lower() == "queue":
        name = event.dialplan_app_data.split(",", 1)[0].strip()
        return name or None
    return None


class QueueWatch:
    """Routed calls by channel id, updated from the caller channels' ARI events."""

    def __init__(self) -> None:
        self.calls: dict[str, RoutedCall] = {}

    def waiting(self, queue: str) -> list[RoutedCall]:
        """Callers waiting in `queue`, oldest first (the pop sorts by priority itself)."""
        return sorted((c for c in self.calls.values() if c.status == "waiting" and c.queue == queue),
                      key=lambda c: c.since)

    def handle(self, event: ari.AriEvent, now: float) -> list[Change]:
        queue = queue_joined(event)
        if queue is not None and event.channel_id:
            return self._joined(event.channel_id, queue, now)
        call = self.calls.get(event.channel_id or "")
        if call is None:
            return []
        answer = answer_in(event)
        if answer is not None:
            return self._answered(call, answer, now)
        if isinstance(event, ari.Dial) and event.caller is not None:
            return self._dial(call, event)
        if isinstance(event, ari.ChannelVarset) and event.variable == "QUEUESTATUS" and call.status == "waiting":
            call.ringing.clear()
            call.status = "abandoned"     # timed out or left the queue; may join another one
            return [Change("left", call)]
        if isinstance(event, (ari.ChannelHangupRequest, ari.ChannelDestroyed)):
            return self._hung_up(call, now)
        return []

    def _joined(self, call_id: str, queue: str, now: float) -> list[Change]:
        call = self.calls.get(call_id)
        if call is None or call.status in ("connected", "ended"):
            call = RoutedCall(call_id, queue, now)
            self.calls[call_id] = call
        else:                                   # the dialplan moved the caller on (fallback queue)
            call.queue, call.since, call.status = queue, now, "waiting"
            call.ringing.clear()
        return [Change("joined", call)]

    def _dial(self, call: RoutedCall, event: ari.Dial) -> list[Change]:
        if call.status != "waiting":
            return []
        if event.dialstatus in ("", "RINGING", "PROGRESS"):
            if event.dialstring and call.ringing.get(event.peer.id) != event.dialstring:
                call.ringing[event.peer.id] = event.dialstring
                return [Change("ringing", call)]
            return []
        if call.ringing.pop(event.peer.id, None) is not None:   # CANCEL, BUSY, NOANSWER...
            return [Change("ringing", call)]
        return []

    def _answered(self, call: RoutedCall, answer: Answer, now: float) -> list[Change]:
        if call.status == "connected":
            if call.agent_channel is None and answer.agent_channel:
                call.agent_channel = answer.agent_channel
            return []
        call.status, call.interface, call.answered_at = "connected", answer.interface, now
        call.agent_channel = answer.agent_channel
        call.ringing.clear()
        return [Change("answered", call)]

    def _hung_up(self, call: RoutedCall, now: float) -> list[Change]:
        if call.status == "ended":
            return []
        was_waiting = call.status == "waiting"
        call.status = "ended"
        call.ended_at = now
        call.ringing.clear()
        return [Change("left" if was_waiting else "ended", call)]

    def forget_older_than(self, cutoff: float) -> None:
        """Drop calls that ended before `cutoff` (the desk keeps what it still shows)."""
        for call_id, call in list(self.calls.items()):
            if call.ended_at is not None and call.ended_at < cutoff:
                del self.calls[call_id]
