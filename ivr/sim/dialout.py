"""An ARI originate to a phone (``PJSIP/<number>@trunk``): ringing, answer, rejection, timeout.

What Asterisk does, from its source (no recorded trace shows a PJSIP
originate; the Local-channel traces show the Dial events' shape):

* res/ari/resource_channels.c ``ari_channels_handle_originate_with_id``:
  ``ast_dial_set_global_timeout(dial, timeout * 1000)`` (30000 when the
  parameter is 0 or missing, none when it is -1); the 200 response goes out
  before the dial thread (``ari_originate_dial``) runs, so an application
  subscribing after the response may miss the first events.
* main/dial.c ``begin_dial_channel``: ``Dial`` with an empty dialstatus once
  ``ast_call()`` has sent the INVITE; ``handle_frame``: 180 -> ``Dial``
  RINGING (chan_pjsip has already set the state Ringing: ChannelStateChange
  first), 200 -> ``Dial`` ANSWER.
* A final SIP error (486, 404, 503): chan_pjsip.c ``chan_pjsip_session_end``
  sets the hangup cause from ``ast_sip_hangup_sip2cause()`` and the tech
  cause to the SIP code, then ``ast_queue_hangup()`` publishes
  ChannelHangupRequest with ``cause`` and ``tech_cause`` (no ``soft``);
  dial.c's ``monitor_dial`` reads the hang-up, publishes ``Dial`` with
  ``ast_hangup_cause_to_dial_status(cause)`` and ``ast_hangup()``s the
  channel: ChannelDestroyed with cause, ``ast_cause2str`` text and tech_cause.
* The timeout: dial.c ``handle_timeout_trip`` sets the cause to
  AST_CAUSE_NO_ANSWER (19) and calls ``ast_hangup()`` directly: no
  ChannelHangupRequest and no Dial event; chan_pjsip_hangup sets the tech
  cause to ``hangup_cause2sip(19)`` = 480 (it sends CANCEL), so
  ChannelDestroyed says 19 "User alerting, no answer", tech_cause 480.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from . import events as ev
from .callees import REJECTIONS, CalleeScript, beep, greeting_audio

if TYPE_CHECKING:  # pragma: no cover
    from .core import Simulator
    from .model import Channel
    from .simcall import SimCall

NO_ANSWER_CAUSE = 19
NO_ANSWER_TECH_CAUSE = 480        # chan_pjsip.c hangup_cause2sip(AST_CAUSE_NO_ANSWER)
DEFAULT_TIMEOUT = 30.0


def dial_timeout(timeout: int | None) -> float | None:
    """The originate ``timeout`` parameter as resource_channels.c reads it: > 0 seconds,
    -1 none, anything else (0, missing) 30 s."""
    if timeout is not None and timeout > 0:
        return float(timeout)
    if timeout == -1:
        return None
    return DEFAULT_TIMEOUT


async def place_call(sim: Simulator, ch: Channel, call: SimCall, script: CalleeScript | None,
                     timeout: float | None) -> None:
    """The dial thread: INVITE sent, then whatever the callee's script makes of it, or the timeout."""
    await asyncio.sleep(0)
    started = sim.clock.now()
    sim.emit(ev.dial(sim.ts(), ch, "", ch.dialstring))
    if script is not None and script.outcome in REJECTIONS:
        if await _wait_or_timeout(sim, started, script.after, timeout):
            _reject(sim, ch, script.outcome)
        else:
            _no_answer(sim, ch)
        return
    sim.set_state(ch, "Ringing")
    sim.emit(ev.dial(sim.ts(), ch, "RINGING", ch.dialstring))
    after = _answer_after(sim, call, script)
    if after is not None and await _wait_or_timeout(sim, started, after, timeout):
        sim.answer_channel(ch)
        if script is not None:
            callee_answered(sim, ch, call, script)
        return
    if after is None and timeout is None:
        return                      # rings for ever, as a dial with no timeout does
    await _wait_or_timeout(sim, started, float("inf"), timeout)
    _no_answer(sim, ch)


def _answer_after(sim: Simulator, call: SimCall, script: CalleeScript | None) -> float | None:
    if script is None:      # no script: the simulator's long-standing phone that answers by itself
        return call.answer_after if call.answer_after is not None else sim.config.outbound_answer_after
    return script.after if script.outcome == "answer" else None


async def _wait_or_timeout(sim: Simulator, started: float, after: float, timeout: float | None) -> bool:
    """Sleep until ``started + after``; False if the dial timeout comes first (it wins a tie:
    dial.c checks its timer before it reads the frame that would answer)."""
    if timeout is not None and after >= timeout:
        await sim.clock.sleep_until(started + timeout)
        return False
    await sim.clock.sleep_until(started + after)
    return True


def _reject(sim: Simulator, ch: Channel, outcome: str) -> None:
    sip_code, cause, dialstatus = REJECTIONS[outcome]
    ch.hangup_cause, ch.tech_cause, ch.hungup_by = cause, sip_code, "callee"
    sim.emit(ev.hangup_request(sim.ts(), ch, cause, soft=False, tech_cause=sip_code))
    sim.emit(ev.dial(sim.ts(), ch, dialstatus, ch.dialstring))
    sim.destroy_channel(ch, cause)


def _no_answer(sim: Simulator, ch: Channel) -> None:
    ch.hangup_cause, ch.tech_cause, ch.hungup_by = NO_ANSWER_CAUSE, NO_ANSWER_TECH_CAUSE, "timeout"
    sim.destroy_channel(ch, NO_ANSWER_CAUSE)


# -- after the answer -------------------------------------------------------------------
def callee_answered(sim: Simulator, ch: Channel, call: SimCall, script: CalleeScript) -> None:
    """The callee speaks its greeting into the call; a machine then beeps and records."""
    if ch.audio_in is None:
        return
    now = sim.clock.now()
    greeting = ch.audio_in.schedule(greeting_audio(script), now)
    if script.answerer == "machine":
        tone = ch.audio_in.schedule(beep(), greeting.end)
        call.recording_from = tone.end
        ch.spawn(_hang_up_at(call, tone.end + script.max_message), "machine")
    elif script.hangup_after is not None:
        ch.spawn(_hang_up_at(call, now + script.hangup_after), "human")


async def _hang_up_at(call: SimCall, t: float) -> None:
    await call.sim.clock.sleep_until(t)
    if not call.ended.is_set():
        await call.hangup(16)
