"""Scripted callees: what the phone at a dialled number does when an originate reaches it.

A campaign originates ``PJSIP/<number>@trunk``; the carrier then answers for
the callee.  Per number a :class:`CalleeScript` says what happens:

``answer``
    rings ``after`` seconds (180 Ringing), then answers (200 OK) as a
    ``human`` (says a short greeting, then is driven like any simulated
    caller through ``/sim/calls/{id}``) or a ``machine`` (plays its greeting,
    then records whatever it hears until the IVR hangs up or ``max_message``
    seconds pass, then hangs up itself).
``busy``
    after ``after`` seconds the carrier answers the INVITE with 486 Busy Here.
``unreachable``
    after ``after`` seconds: 404 Not Found (the number does not exist).
``congestion``
    after ``after`` seconds: 503 Service Unavailable.
``noanswer``
    rings until the originate's ``timeout`` hangs it up.

What Asterisk does with each SIP answer (see core.py ``_reject_remote`` and
``_ring_timeout`` for the events) comes from its source: the SIP code becomes
the hangup cause through ``ast_sip_hangup_sip2cause()`` (res/res_pjsip.c),
the cause becomes the Dial event's dialstatus through
``ast_hangup_cause_to_dial_status()`` (main/dial.c), and its text in
ChannelDestroyed through ``ast_cause2str()`` (main/channel.c causes table).

The AMD verdict is not scripted: ``AMD()`` analyses the greeting's audio as
app_amd does (amd.py), so a script says what the callee *sends*
(``greeting``: seconds of speech and pause, alternating, after
``greeting_delay`` seconds of silence).
"""
from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from math import pi, sin
from typing import Any

from .audio import RATE, silence

OUTCOMES = ("answer", "busy", "unreachable", "congestion", "noanswer")
ANSWERERS = ("human", "machine")

# outcome -> (SIP final response, hangup cause from ast_sip_hangup_sip2cause (res/res_pjsip.c),
#             Dial dialstatus from ast_hangup_cause_to_dial_status (main/dial.c): only 17 BUSY and
#             34 CONGESTION have their own; 1 (unallocated) falls to the default NOANSWER)
REJECTIONS: dict[str, tuple[int, int, str]] = {
    "busy": (486, 17, "BUSY"),
    "unreachable": (404, 1, "NOANSWER"),
    "congestion": (503, 34, "CONGESTION"),
}

DEFAULT_HUMAN_GREETING = (0.6,)           # "hello": one word, then the human waits
DEFAULT_MACHINE_GREETING = (4.0,)         # "You have reached ... leave a message after the tone"
BEEP_SECONDS = 0.5
VOICE_AMPLITUDE = 4000                    # mean |sample| ~2550: well above app_amd's 256 threshold


@dataclass(frozen=True)
class CalleeScript:
    """One number's behaviour.  Times in simulated seconds."""
    outcome: str = "answer"
    after: float = 0.5                    # ringing before the answer, or delay before the rejection
    answerer: str = "human"               # for outcome "answer"
    greeting: tuple[float, ...] = ()      # speech, pause, speech...; () = the answerer's default
    greeting_delay: float = 0.2           # silence between the answer and the first word
    max_message: float = 60.0             # machine: longest message it records
    hangup_after: float | None = None     # human: hangs up this long after answering (None: never by itself)

    def __post_init__(self) -> None:
        problems = []
        if self.outcome not in OUTCOMES:
            problems.append(f"outcome must be one of {', '.join(OUTCOMES)}")
        if self.answerer not in ANSWERERS:
            problems.append(f"answerer must be one of {', '.join(ANSWERERS)}")
        if self.after < 0 or self.greeting_delay < 0 or self.max_message <= 0:
            problems.append("after, greeting_delay must be >= 0 and max_message > 0")
        if any(s <= 0 for s in self.greeting):
            problems.append("greeting: durations must be > 0")
        if self.hangup_after is not None and self.hangup_after < 0:
            problems.append("hangup_after must be >= 0")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def greeting_pattern(self) -> tuple[float, ...]:
        if self.greeting:
            return self.greeting
        return DEFAULT_MACHINE_GREETING if self.answerer == "machine" else DEFAULT_HUMAN_GREETING

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CalleeScript:
        """``{"outcome": "answer", "after": 3, "answerer": "machine", "greeting": [0.5, 0.2, 2.0], ...}``."""
        known = {"outcome", "after", "answerer", "greeting", "greeting_delay", "max_message", "hangup_after"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown callee script keys: {', '.join(sorted(unknown))}")
        greeting = data.get("greeting", ())
        if isinstance(greeting, (int, float)):
            greeting = (greeting,)
        hangup_after = data.get("hangup_after")
        return cls(outcome=str(data.get("outcome", "answer")), after=float(data.get("after", 0.5)),
                   answerer=str(data.get("answerer", "human")),
                   greeting=tuple(float(s) for s in greeting),
                   greeting_delay=float(data.get("greeting_delay", 0.2)),
                   max_message=float(data.get("max_message", 60.0)),
                   hangup_after=None if hangup_after is None else float(hangup_after))

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "after": self.after, "answerer": self.answerer,
                "greeting": list(self.greeting_pattern), "greeting_delay": self.greeting_delay,
                "max_message": self.max_message, "hangup_after": self.hangup_after}


@dataclass
class CalleeBook:
    """The table of scripts by dialled number, bounded (a runaway benchmark must not eat memory)."""
    max_entries: int = 100_000
    scripts: dict[str, CalleeScript] = field(default_factory=dict)

    def put(self, entries: Mapping[str, CalleeScript]) -> None:
        """Add or replace scripts; all or nothing when the table would overflow."""
        new = [n for n in entries if n not in self.scripts]
        if len(self.scripts) + len(new) > self.max_entries:
            raise OverflowError(f"callee table full: {len(self.scripts)} + {len(new)} > {self.max_entries}")
        for number in entries:
            if not number:
                raise ValueError("empty number")
        self.scripts.update(entries)

    def get(self, number: str) -> CalleeScript | None:
        return self.scripts.get(number)

    def remove(self, number: str) -> bool:
        return self.scripts.pop(number, None) is not None

    def clear(self) -> None:
        self.scripts.clear()


def dialled_number(resource: str) -> str:
    """``+15550102@trunk`` -> ``+15550102``; ``1000`` (an endpoint alone) -> ``1000``;
    ``trunk/sip:+1555@host`` -> ``sip:+1555@host``."""
    endpoint, slash, uri = resource.partition("/")
    if slash:
        return uri
    user, at, _ = endpoint.partition("@")
    return user if at else endpoint


def pjsip_endpoint(resource: str) -> str:
    """The endpoint a PJSIP dial string names: chan_pjsip.c ``request()`` splits
    ``<endpoint>/<uri>`` on '/', then ``<user>@<endpoint>`` on '@'."""
    first = resource.partition("/")[0]
    user, at, endpoint = first.partition("@")
    return endpoint if at else user


def speech(seconds: float) -> array:
    """A stand-in for speech: a 440 Hz tone loud enough for any voice detector."""
    n = int(round(seconds * RATE))
    return array("h", (int(VOICE_AMPLITUDE * sin(2 * pi * 440 * i / RATE)) for i in range(n)))


def greeting_audio(script: CalleeScript) -> array:
    """The greeting as samples: leading silence, then speech and pause alternating."""
    out = silence(script.greeting_delay)
    for i, seconds in enumerate(script.greeting_pattern):
        out.extend(speech(seconds) if i % 2 == 0 else silence(seconds))
    return out


def beep() -> array:
    """The machine's tone before it records (1 kHz, half a second)."""
    n = int(BEEP_SECONDS * RATE)
    return array("h", (int(VOICE_AMPLITUDE * sin(2 * pi * 1000 * i / RATE)) for i in range(n)))
