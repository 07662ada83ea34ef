"""Placing a campaign's calls through Asterisk, and learning which reached nobody.

Each call is originated into the dialplan (`[ivr-outbound]`: AMD(), then
`Stasis(ivr,outbound,${AMDSTATUS},${IVR_ATTEMPT})`, where the controller
runs the outbound flow), not into the app directly: answering-machine
detection must run before Stasis. Every parameter goes in the request body,
so the dialled number is in no URL. The campaign's own application is then
subscribed to the channel: a channel destroyed without ever being answered
tells why (busy, no answer, unreachable) through its hang-up cause; an
answered call's outcome comes from the controller's call record instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ivr.ari.client import AriClient
from ivr.ari.errors import AriError
from ivr.ari.event_types import AriEvent, ChannelDestroyed, ChannelStateChange
from ivr.campaign.schedule import CallFailed

log = logging.getLogger(__name__)

MAX_PLACED = 10_000  # calls being watched at once
FORGET_AFTER = 6 * 3600  # a call still watched after this lost its end (the campaign times calls out after 2 h)
# Q.850 causes a never-answered channel ends with (Asterisk's causes.h), as the campaign counts them
BUSY_CAUSES = {17, 21}  # user busy, call rejected
NO_ANSWER_CAUSES = {18, 19}  # no user responding, no answer
UNREACHABLE_CAUSES = {1, 3, 27, 28, 34, 38, 41, 42}  # unallocated number, no route, out of order, congestion...


@dataclass
class _Placed:
    attempt: str
    at: float
    answered: bool = False


@dataclass(frozen=True, slots=True)
class DialPlan:
    """Where and how calls are placed: `endpoint` with `{number}`, the caller id shown to the callee."""

    endpoint: str = "PJSIP/{number}@trunk"
    context: str = "ivr-outbound"
    caller_id: str = ""
    ring_timeout: int = 30


class AriDialer:
    def __init__(self, ari: AriClient, app: str, plan: DialPlan, on_failed: Callable[[CallFailed], None],
                 clock: Callable[[], float]):
        self.ari = ari
        self.app = app
        self.plan = plan
        self.on_failed = on_failed
        self.clock = clock
        self.placed: dict[str, _Placed] = {}

    async def place(self, attempt: str, phone: str, language: str) -> None:
        self._forget_lost()
        if len(self.placed) >= MAX_PLACED:
            raise RuntimeError(f"{MAX_PLACED} calls already placed and not ended")
        channel = await self.ari.originate(
            self.plan.endpoint.format(number=phone), context=self.plan.context, extension="s", priority=1,
            caller_id=self.plan.caller_id or None, timeout=self.plan.ring_timeout, in_body=True,
            variables={"IVR_ATTEMPT": attempt})
        self.placed[channel.id] = _Placed(attempt, self.clock())
        try:
            await self.ari.subscribe(self.app, f"channel:{channel.id}")
        except AriError as exc:  # gone already: it reached nobody, and why is lost
            if self.placed.pop(channel.id, None) is not None:
                log.info("campaign call %s ended before it could be watched (%s)", attempt, exc)
                self.on_failed(CallFailed(attempt, "failed", self.clock()))

    def _forget_lost(self) -> None:
        """Calls whose end never reached us (the events websocket was down then): the campaign has timed
        them out by now; watching them longer would fill the table and stop the calling."""
        stale = self.clock() - FORGET_AFTER
        for channel_id in [c for c, placed in self.placed.items() if placed.at < stale]:
            del self.placed[channel_id]

    async def on_event(self, event: AriEvent) -> None:
        """An event of the campaign's application: a watched channel answered, or gone."""
        if isinstance(event, ChannelStateChange) and event.channel.state == "Up":
            if (placed := self.placed.get(event.channel.id)) is not None:
                placed.answered = True
        elif isinstance(event, ChannelDestroyed):
            gone = self.placed.pop(event.channel.id, None)
            if gone is not None and not gone.answered:
                self.on_failed(CallFailed(gone.attempt, why(event.cause), self.clock()))


def why(cause: int) -> str:
    """What a never-answered call's hang-up cause means to the campaign."""
    if cause in BUSY_CAUSES:
        return "busy"
    if cause in NO_ANSWER_CAUSES:
        return "no_answer"
    if cause in UNREACHABLE_CAUSES:
        return "unreachable"
    return "failed"
