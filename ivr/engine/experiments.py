"""Which arm of an experiment a call is in: the same caller always the same, by the arms' shares.

Pure, like the rest of the engine: what it needs comes in the call data the
controller gives `engine.start` (`ivr.controller.session.assignment_facts`):

- `caller_key`: a keyed hash (HMAC under the deployment's hash key) of the
  caller number, so a caller keeps their arm across calls and controllers
  while nothing here can be traced back to the number without that key;
- `time`: when the call began, ISO 8601 with its offset, for the dates.

Without a `caller_key` (the designer's tools, tests) the caller number
itself is hashed, and a caller with no number (anonymous) is assigned by
call id. Neither the key nor the hash is kept: the state holds the arm only.
A call whose time is unknown (scripted callers, tests) is outside every
experiment's dates: it hears the control, the same whatever the day, unless
its call data pins arms (`arms`, from `engine.start(arms=...)`): a scripted
caller tries each arm that way, inside the dates or not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from ivr.flow import model

CALLER_KEY = "caller_key"
CALL_TIME = "time"
PINNED = "arms"
_SCALE = 1 << 64


def caller_key(call: dict[str, Any], call_id: str) -> str:
    """What a caller is known by for assignment: the controller's keyed hash, else the number, else the call."""
    keyed = call.get(CALLER_KEY)
    if isinstance(keyed, str) and keyed:
        return f"key:{keyed}"
    number = str(call.get("ani") or "")
    if any(ch.isdigit() for ch in number):
        return f"ani:{number}"
    return f"call:{call_id}"


def bucket(experiment: str, key: str) -> int:
    """A number in [0, 2**64) spread evenly over callers; another experiment shuffles them anew."""
    digest = hashlib.sha256(f"{experiment}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def pick(name: str, experiment: model.Experiment, key: str) -> model.Arm:
    """The arm of the caller known by `key`: where their bucket falls among the arms' cumulative shares."""
    shares = model.arm_shares(experiment)
    total = sum(shares)
    point = bucket(name, key) * total  # compared in integers: no float rounding at the shares' edges
    reached = 0
    for arm, share in zip(experiment.arms, shares, strict=True):
        reached += share
        if point < reached * _SCALE:
            return arm
    return experiment.arms[0]


def pinned(call: dict[str, Any], name: str, experiment: model.Experiment) -> model.Arm | None:
    """The arm the call data pins for this experiment (scripted callers), if it has one by that name."""
    arms = call.get(PINNED)
    wanted = arms.get(name) if isinstance(arms, dict) else None
    return next((arm for arm in experiment.arms if arm.arm == wanted), None)


def running(experiment: model.Experiment, call_time: Any) -> bool:
    """Is the call inside the experiment's dates? Not when its time is unknown or cannot be
    read: the control, the flow as written, is the safe side."""
    try:
        now = dt.datetime.fromisoformat(str(call_time))
    except ValueError:
        return False
    if _aligned(experiment.start, now) > now:
        return False
    return experiment.stop is None or now < _aligned(experiment.stop, now)


def _aligned(moment: dt.datetime, now: dt.datetime) -> dt.datetime:
    """A date written without an offset is in the call's local time; comparable with `now` either way."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=now.tzinfo)
    if now.tzinfo is None:
        return moment.replace(tzinfo=None)
    return moment
