"""What operators read about each call: one INFO line per caller turn, one per call end.

An operator chasing "it never understood me" or "I waited ages" needs, per
turn, the prompts the caller heard, what the IVR heard or was keyed, how sure
the recogniser was, how long the caller waited from the end of their answer
to the next prompt, and what the turn came to; and per call, how it ended,
where it was sent and why, and how long it took. A controller observer
(`Services.observers`) builds these lines from the session's notices
(`ivr.controller.notices`), so the session itself stays free of logging policy.

A turn is one `Listen` and the caller's answer to it. Its line is written
when the next prompt starts (that is when the wait ends), or when the call
leaves the IVR first. Nothing personal is written in clear: the digits of a
digits turn (policy and phone numbers, dates of birth, ID digits, one-time
codes) are masked one star per digit, a keypad-only turn (card numbers and
expiry dates) shows nothing of what was keyed, and digits in recognised
speech are masked; the caller number is masked (`ivr.masking`). Prompt values
("your premium of {amount}") are never written, only prompt keys.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr.controller import notices as note
from ivr.digits import parse_digits
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.state import WITHHELD, CallState, Turn
from ivr.logsetup import fields
from ivr.masking import mask_phone
from ivr.speech.turn import TurnEnded

if TYPE_CHECKING:
    from ivr.controller.session import CallSession

log = logging.getLogger(__name__)
ANSWERS = frozenset({"input", "captured", "confirm", "noinput", "nomatch"})  # path kinds that answer a turn


@dataclass
class _Turn:
    """One Listen of a call and what the caller did in it."""

    flow: str
    node: str
    mode: str
    secret: bool  # keypad-only: nothing of the input is shown
    prompts: list[str]
    keys: str = ""
    said: list[str] = field(default_factory=list)
    confidence: float | None = None
    answered_at: float | None = None  # end of the caller's speech or their last key (clock time)
    entries: list[Turn] = field(default_factory=list)
    outcome: str = ""

    @property
    def answered(self) -> bool:
        return any(entry.kind in ANSWERS for entry in self.entries)


@dataclass
class _Call:
    started: float
    resumed: bool = False
    prompts: list[str] = field(default_factory=list)  # keys played since the last Listen
    open: _Turn | None = None  # the turn the caller is answering
    waiting: _Turn | None = None  # answered, its line waits for the next prompt to start
    turns: int = 0


class CallLog:
    """The controller observer writing the call lines (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, logger: logging.Logger = log):
        self.clock = clock
        self.log = logger
        self._calls: dict[str, _Call] = {}

    def __call__(self, session: CallSession, notice: note.Notice) -> None:
        try:
            self._on(session, notice)
        except Exception:  # the session calls us inline: a logging bug must never take the call down
            self.log.exception("call %s: call log failed on %s", session.channel_id, type(notice).__name__)

    def _on(self, session: CallSession, notice: note.Notice) -> None:
        match notice:
            case note.CallStarted(call):
                self._on_start(session, call)
            case note.CallResumed(state):
                self._on_resume(session, state.node)
            case note.KeyPressed(digit):
                self._on_key(session, digit)
            case note.SpeechStarted():
                self.log.debug("call %s: caller speaking", session.channel_id,
                               extra=fields(event="speech_started", call=session.channel_id))
            case note.SpeechHeard(ended):
                self._on_speech(session, ended)
            case note.StepTaken(step, turns):
                self._on_step(session, step.state, step.actions, turns)
            case note.PromptStarted(playback_id):
                self._on_prompt_started(session, playback_id)
            case note.Transferred(transfer):
                self._end(session, "transferred", queue=transfer.queue, reason=transfer.reason,
                          priority=transfer.priority)
            case note.HungUp(outcome):
                self._end(session, outcome or "ended")
            case note.CallerLeft():
                self._end(session, "caller hung up")

    def _call(self, session: CallSession) -> _Call:
        return self._calls.setdefault(session.channel_id, _Call(started=self.clock()))

    # --- notices -------------------------------------------------------------------

    def _on_start(self, session: CallSession, call_data: dict[str, Any]) -> None:
        self._calls[session.channel_id] = _Call(started=self.clock())
        data = call_data
        route = (data.get("routing") or {}).get("start") or {}
        self.log.debug("call %s started: caller %s, dialled %s%s", session.channel_id,
                       mask_phone(data.get("ani")) or "unknown", data.get("dnis") or "-",
                       f", routed to {route.get('to')} by {route.get('rule')}" if route.get("to") else "",
                       extra=fields(event="call_start", call=session.channel_id))

    def _on_resume(self, session: CallSession, node: str) -> None:
        self._calls[session.channel_id] = _Call(started=self.clock(), resumed=True)
        self.log.debug("call %s resumed at %s", session.channel_id, node,
                       extra=fields(event="call_resume", call=session.channel_id, node=node))

    def _on_key(self, session: CallSession, digit: str) -> None:
        call = self._call(session)
        if call.open is not None:
            call.open.keys += digit
            call.open.answered_at = self.clock()

    def _on_speech(self, session: CallSession, ended: TurnEnded) -> None:
        call = self._call(session)
        turn = call.open
        if turn is None:
            return
        event = ended.event
        if isinstance(event, ev.Speech):
            turn.said.append(event.text)
            turn.confidence = event.confidence
        if ended.speech_end is not None:  # the caller spoke: the wait starts where their voice ended
            turn.answered_at = self.clock() - max(0.0, ended.at - ended.speech_end)

    def _on_step(self, session: CallSession, state: CallState, actions: list[act.Action],
                 entries: tuple[Turn, ...]) -> None:
        call = self._call(session)
        turn = call.open
        if turn is not None:
            turn.entries.extend(entries)
            if turn.answered and (actions or state.status != "running"):
                turn.outcome = _outcome(turn, state)
                call.open = None
                self._flush(session, call)  # an earlier turn still waiting: no prompt came between
                call.waiting = turn
        plays = [prompt.key for a in actions if isinstance(a, act.Play) for prompt in a.prompts]
        call.prompts.extend(plays)
        for action in actions:
            if isinstance(action, act.Listen):
                if not plays:
                    self._flush(session, call)  # nothing will be played before this turn
                call.open = _Turn(state.flow, state.node, action.mode, action.sensitive, call.prompts)
                call.prompts = []

    def _on_prompt_started(self, session: CallSession, playback_id: str) -> None:
        call = self._calls.get(session.channel_id)
        playing = {pid for pid, _ in session.playing}
        if call is not None and call.waiting is not None and playback_id in playing:
            self._flush(session, call, self.clock())

    # --- lines -----------------------------------------------------------------------

    def _flush(self, session: CallSession, call: _Call, now: float | None = None) -> None:
        turn, call.waiting = call.waiting, None
        if turn is None:
            return
        call.turns += 1
        latency = round((now - turn.answered_at) * 1000) if now is not None and turn.answered_at is not None else None
        self._turn_line(session.channel_id, call.turns, turn, latency)

    def _turn_line(self, call_id: str, number: int, turn: _Turn, latency_ms: int | None) -> None:
        keyed, said = shown_keys(turn), shown_speech(turn)
        values = dict(event="turn", call=call_id, turn=number, flow=turn.flow, node=turn.node,
                      prompts=turn.prompts, keyed=keyed, said=said,
                      confidence=round(turn.confidence, 2) if turn.confidence is not None else None,
                      latency_ms=latency_ms, outcome=turn.outcome)
        self.log.info("call %s turn %d %s.%s: %s", call_id, number, turn.flow, turn.node,
                      _pairs(values, ("prompts", "keyed", "said", "confidence", "latency_ms", "outcome")),
                      extra=fields(**values))

    def _end(self, session: CallSession, outcome: str, **where: Any) -> None:
        call = self._calls.pop(session.channel_id, None)
        if call is None:
            return
        self._flush(session, call)
        if call.open is not None:  # the caller left in the middle of a turn
            call.open.outcome = "caller hung up" if outcome == "caller hung up" else "left unanswered"
            call.waiting, call.open = call.open, None
            self._flush(session, call)
        state: CallState | None = session.state
        values = dict(event="call_end", call=session.channel_id, outcome=outcome, **where,
                      flow=state.flow if state else None, node=state.node if state else None,
                      duration_s=round(self.clock() - call.started, 1), turns=call.turns,
                      resumed=True if call.resumed else None, prompts=call.prompts or None)
        self.log.info("call %s ended: %s", session.channel_id,
                      _pairs(values, ("outcome", "queue", "reason", "priority", "flow", "node", "duration_s",
                                      "turns", "resumed", "prompts")),
                      extra=fields(**values))


# --- what may be shown ----------------------------------------------------------------


def mask_digits(text: str) -> str:
    """`****#`: how many keys, never which."""
    return re.sub(r"\d", "*", text)


def shown_keys(turn: _Turn) -> str | None:
    if not turn.keys:
        return None
    if turn.secret:
        return WITHHELD
    return mask_digits(turn.keys) if turn.mode == "digits" else turn.keys


def shown_speech(turn: _Turn) -> str | None:
    """What was said; in a digits turn one star per digit heard (digit words included)."""
    if not turn.said:
        return None
    if turn.secret:
        return WITHHELD
    if turn.mode != "digits":
        return mask_digits(" / ".join(turn.said))
    heard = [parse_digits(text) for text in turn.said]
    return " / ".join("*" * len(digits) if digits else "(not digits)" for digits in heard)


def _outcome(turn: _Turn, state: CallState) -> str:
    """What the turn came to, in the engine's words (choice names, never values)."""
    labels: list[str] = []
    for entry in turn.entries:
        if entry.kind == "input" and entry.matched and (turn.mode != "digits" or entry.matched.startswith("global:")):
            labels.append(f"chose {entry.matched}")
        elif entry.kind == "captured":
            labels.append("captured")
        elif entry.kind == "confirm":
            labels.append(f"confirmed {entry.matched}" if entry.matched else "unclear confirmation")
        elif entry.kind in ("noinput", "nomatch"):
            labels.append(entry.kind)
        elif entry.kind == "escape":
            labels.append(f"escape ({entry.matched})")
    pending = state.pending
    if pending is not None and pending.kind in ("confirm", "readback"):
        labels.append("read back" if pending.kind == "readback" else "asked to confirm")
    return ", ".join(dict.fromkeys(labels)) or "answered"


def _pairs(values: dict[str, Any], keys: tuple[str, ...]) -> str:
    """`key=value` for the text form; lists comma-joined, values with spaces quoted."""
    parts = []
    for key in keys:
        value = values.get(key)
        if value is None or value == []:
            continue
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f'{key}="{text}"' if (" " in text or not text) else f"{key}={text}")
    return " ".join(parts)
