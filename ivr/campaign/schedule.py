"""The campaign scheduler: one event in, the new campaign state and the contacts to make out.

Pure like the flow engine: no clock (every event carries the time), no I/O.
The shell (`ivr.campaign.runner`) checks the policy book, sends texts,
places calls through Asterisk and feeds back what happened.

Per failed debit: a text first, then calls within the calling hours in the
policyholder's time zone (every zone the number may be in), at most
`max_calls`, spaced by `backoff` after each call that reached nobody (busy,
no answer, a machine: which gets a short message without personal data).
A payment or promise (on the campaign's call, on the policyholder's own
call, or by any other way the book shows), an opt-out, a number on the
do-not-call list or the policy's cancellation date ends the target. At most
`daily_cap` calls are placed per day of the insurer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.campaign.model import MAX_ATTEMPTS_KEPT, Attempt, CampaignState, Channel, Result, Rules, Target

KEEP_FINISHED = 35 * 24 * 3600  # finished targets the book no longer lists are kept this long (status, reports)
SEARCH_STEP = 15 * 60  # calling windows are searched in quarter hours
SEARCH_LIMIT = 8 * 24 * 3600  # a window at least once a week, or the rules are wrong
RECOVERED: dict[str, Result] = {"paid": "paid", "promised": "promised"}


# --- events -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Found:
    """A failed debit the book lists that the campaign does not know yet."""

    target: Target


@dataclass(frozen=True, slots=True)
class Tick:
    """Time has passed: make the contacts that are due."""

    now: float


@dataclass(frozen=True, slots=True)
class Resolved:
    """The book shows the debit paid (or a promise made) before the next contact."""

    key: str
    how: str  # paid | promised
    at: float
    channel: Channel | None = None  # None: the campaign infers it (a text sent and no call answered: the text)


@dataclass(frozen=True, slots=True)
class Blocked:
    """The number is on the do-not-call list, or the policyholder opted out by text."""

    key: str
    why: Result  # do_not_call | opted_out
    at: float


@dataclass(frozen=True, slots=True)
class CallFailed:
    """The call reached nobody: busy, no answer, unreachable, or the call could not be placed."""

    attempt: str
    why: str
    at: float


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call was answered and has ended; `outcome` is what the call record says it came to."""

    attempt: str
    outcome: str  # paid | promised | opted_out | machine | not_reached | transferred | open | caller_hangup...
    at: float


@dataclass(frozen=True, slots=True)
class Listed:
    """The debits the book lists as open now. A target finished more than `KEEP_FINISHED` ago and no
    longer among them is forgotten: the state stays as large as the book's open debits and a month of
    finished ones. One still listed is kept, so an unpaid debit whose calls ran out is not taken up again."""

    keys: frozenset[str]
    now: float


Event = Found | Tick | Resolved | Blocked | CallFailed | CallEnded | Listed


# --- actions ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SendText:
    key: str
    attempt: str


@dataclass(frozen=True, slots=True)
class PlaceCall:
    key: str
    attempt: str


@dataclass(frozen=True, slots=True)
class Finished:
    """A target has ended (recovered or given up): the shell records it for the report."""

    key: str
    result: Result
    channel: Channel | None


Action = SendText | PlaceCall | Finished


@dataclass(frozen=True, slots=True)
class Step:
    state: CampaignState
    actions: list[Action]


def step(rules: Rules, state: CampaignState, event: Event) -> Step:
    """Advance the campaign by one event. The given state is left untouched: the step copies the
    targets it changes only (`_own`), so an event costs what it touches, not the whole campaign."""
    work = state.model_copy(update={"targets": dict(state.targets)})
    actions: list[Action] = []
    if isinstance(event, Found):
        if event.target.key not in work.targets:
            work.targets[event.target.key] = event.target.model_copy(update={"next_at": event.target.found_at})
    elif isinstance(event, Tick):
        _tick(rules, work, event.now, actions)
    elif isinstance(event, Resolved):
        if _is_open(work, event.key):
            target = _own(work, event.key)
            _finish(target, RECOVERED.get(event.how, "paid"), event.channel or _inferred_channel(target), actions,
                    event.at)
    elif isinstance(event, Blocked):
        if _is_open(work, event.key):
            _finish(_own(work, event.key), event.why, None, actions, event.at)
    elif isinstance(event, CallFailed):
        _call_failed(rules, work, event)
    elif isinstance(event, CallEnded):
        _call_ended(rules, work, event, actions)
    elif isinstance(event, Listed):
        gone = event.now - KEEP_FINISHED
        work.targets = {k: t for k, t in work.targets.items()
                        if t.status == "open" or k in event.keys or (t.finished_at or 0) > gone}
    return Step(work, actions)


def due(state: CampaignState, now: float) -> list[str]:
    """Targets whose next contact is due: the shell checks the book for them before the Tick."""
    return [t.key for t in state.targets.values() if t.status == "open" and t.in_flight is None and t.next_at <= now]


# --- the tick -----------------------------------------------------------------

def _tick(rules: Rules, state: CampaignState, now: float, actions: list[Action]) -> None:
    today = _local(now, rules.insurer_timezone).date().isoformat()
    if state.day != today:
        state.day, state.calls_today = today, 0
    for target in list(state.targets.values()):
        if target.status == "open" and target.in_flight is not None:
            _time_out(rules, state, target, now)
    busy = sum(1 for t in state.targets.values() if t.in_flight is not None)
    soonest_to_cancel = sorted(due(state, now), key=lambda k: (state.targets[k].cancel_on, state.targets[k].next_at, k))
    for key in soonest_to_cancel:
        busy += _contact(rules, state, key, now, actions, lines_free=busy < rules.lines)


def _contact(rules: Rules, state: CampaignState, key: str, now: float, actions: list[Action],
             lines_free: bool) -> int:
    """The target's due contact, if the rules allow it now; 1 when a call was placed."""
    seen = state.targets[key]
    if _local(now, rules.insurer_timezone).date() > seen.cancel_on:
        _finish(_own(state, key), "lapsed", None, actions, now)
    elif seen.phone is None:
        _finish(_own(state, key), "no_phone", None, actions, now)
    elif rules.text_first and seen.texted_at is None:
        target = _own(state, key)
        attempt = _attempt(target, "text", now)
        target.texted_at = now
        target.next_at = now + rules.first_call_after
        actions.append(SendText(key, attempt.id))
    elif seen.calls >= rules.max_calls:
        _finish(_own(state, key), "exhausted", None, actions, now)
    elif (opens := next_window(rules, seen.zones, now)) > now:
        _own(state, key).next_at = opens
    elif state.calls_today >= rules.daily_cap:
        _own(state, key).next_at = next_window(rules, seen.zones, _next_day(rules, now))
    elif lines_free:
        target = _own(state, key)
        attempt = _attempt(target, "call", now)
        target.calls += 1
        target.in_flight = attempt.id
        state.calls_today += 1
        actions.append(PlaceCall(key, attempt.id))
        return 1
    return 0  # no line free: still due, the next tick tries again


def _time_out(rules: Rules, state: CampaignState, seen: Target, now: float) -> None:
    attempt = _find(seen, seen.in_flight)
    if attempt is not None and now - attempt.at < rules.attempt_timeout:
        return
    target = _own(state, seen.key)
    for lost in target.attempts:
        if lost.id == target.in_flight:
            lost.result = "unknown"
    target.in_flight = None
    target.next_at = _after_backoff(rules, target, now)


# --- call results -------------------------------------------------------------

def _call_failed(rules: Rules, state: CampaignState, event: CallFailed) -> None:
    target, attempt = _in_flight(state, event.attempt)
    if target is None or attempt is None:
        return
    attempt.result = event.why
    target.in_flight = None
    target.next_at = _after_backoff(rules, target, event.at)


def _call_ended(rules: Rules, state: CampaignState, event: CallEnded, actions: list[Action]) -> None:
    target, attempt = _in_flight(state, event.attempt)
    if target is None or attempt is None:
        return
    attempt.result = event.outcome
    target.in_flight = None
    if event.outcome in RECOVERED:
        _finish(target, RECOVERED[event.outcome], "outbound_call", actions, event.at)
    elif event.outcome == "opted_out":
        _finish(target, "opted_out", None, actions, event.at)
    elif event.outcome == "transferred":
        target.next_at = event.at + rules.recheck_after_transfer
    else:
        target.next_at = _after_backoff(rules, target, event.at)


def _in_flight(state: CampaignState, attempt_id: str) -> tuple[Target | None, Attempt | None]:
    """The target (copied, to be changed) whose call `attempt_id` is, and that attempt; None, None when
    the call is not in flight (a repeated or unknown outcome)."""
    key = attempt_id.rsplit("-", 1)[0]
    seen = state.targets.get(key)
    if seen is None or seen.status != "open" or seen.in_flight != attempt_id:
        return None, None
    target = _own(state, key)
    return target, _find(target, attempt_id)


# --- helpers ------------------------------------------------------------------

def _is_open(state: CampaignState, key: str) -> bool:
    target = state.targets.get(key)
    return target is not None and target.status == "open"


def _own(state: CampaignState, key: str) -> Target:
    """The target, copied into the step's state before it is changed (the input state keeps its own)."""
    target = state.targets[key].model_copy(deep=True)
    state.targets[key] = target
    return target


def _finish(target: Target, result: Result, channel: Channel | None, actions: list[Action], at: float) -> None:
    target.status, target.result, target.in_flight, target.finished_at = "done", result, None, at
    target.recovered_by = channel if result in RECOVERED.values() else None
    actions.append(Finished(target.key, result, target.recovered_by))


def _inferred_channel(target: Target) -> Channel:
    """Paid without the campaign's call: after its text, if no call of ours was answered by them."""
    answered = any(a.kind == "call" and a.result not in (None, "busy", "no_answer", "unreachable", "failed",
                                                           "machine", "unknown") for a in target.attempts)
    return "text" if target.texted_at is not None and not answered else "other"


def _attempt(target: Target, kind: Literal["text", "call"], now: float) -> Attempt:
    """A new contact; attempt ids count on from the last one kept (older ones are dropped)."""
    number = int(target.attempts[-1].id.rsplit("-", 1)[1]) + 1 if target.attempts else 1
    attempt = Attempt(id=f"{target.key}-{number}", kind=kind, at=now)
    target.attempts.append(attempt)
    del target.attempts[:-MAX_ATTEMPTS_KEPT]
    return attempt


def _find(target: Target, attempt_id: str | None) -> Attempt | None:
    return next((a for a in target.attempts if a.id == attempt_id), None)


def _after_backoff(rules: Rules, target: Target, now: float) -> float:
    delay = rules.backoff[min(max(target.calls, 1), len(rules.backoff)) - 1]
    return now + delay


def _next_day(rules: Rules, now: float) -> float:
    local = _local(now, rules.insurer_timezone)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=local.tzinfo)
    return midnight.timestamp()


def next_window(rules: Rules, zones: tuple[str, ...], now: float) -> float:
    """The first moment from `now` that is within calling hours on a calling day in every zone."""
    names = zones or (rules.insurer_timezone,)
    moment = now
    while moment - now <= SEARCH_LIMIT:
        if all(_callable(rules, _local(moment, zone)) for zone in names):
            return moment
        moment = (moment // SEARCH_STEP + 1) * SEARCH_STEP
    raise ValueError(f"no calling window within a week in {', '.join(names)}: check calling_hours and calling_days")


def _callable(rules: Rules, local: dt.datetime) -> bool:
    start, end = rules.calling_hours
    return local.weekday() in rules.calling_days and start <= local.time() < end


def _local(moment: float, zone: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(moment, _zone(zone))


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{name}'") from None
