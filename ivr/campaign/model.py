"""What a rescue campaign knows: its rules, each failed debit it works on, each contact.

A `Target` is one open failed premium debit: whom to reach (the phone number
and policy number sealed, never in clear), where they live (time zones), how
much is due and when the policy cancels, and every contact made so far. The
campaign state is plain data that round-trips through JSON, so it is saved in
Redis after every change and a restarted campaign goes on where it stopped.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, field_validator

MAX_ATTEMPTS_KEPT = 20

Status = Literal["open", "done"]
# how a target ended: recovered (paid, promised) or not (and why no more contacts are made)
Result = Literal["paid", "promised", "lapsed", "opted_out", "do_not_call", "exhausted", "no_phone"]
Channel = Literal["text", "outbound_call", "inbound", "other"]
# what an outbound call came to, as the campaign counts it
CallResult = Literal["busy", "no_answer", "unreachable", "failed", "machine", "not_reached", "answered", "unknown"]


class Rules(BaseModel):
    """The insurer's rules for contacting policyholders about a failed premium."""

    model_config = {"frozen": True}

    calling_hours: tuple[dt.time, dt.time] = (dt.time(9, 0), dt.time(20, 0))  # local to the policyholder
    calling_days: frozenset[int] = frozenset({0, 1, 2, 3, 4, 5})  # Monday = 0; no calls on Sundays
    text_first: bool = True
    first_call_after: float = 4 * 3600  # seconds after the text
    max_calls: int = Field(default=4, ge=1, le=10)
    backoff: tuple[float, ...] = (3 * 3600, 24 * 3600, 48 * 3600)  # after the 1st, 2nd, 3rd+ unsuccessful call
    daily_cap: int = Field(default=500, ge=0)  # calls placed per day, the insurer's day
    lines: int = Field(default=30, ge=1)  # calls in progress at once at most (trunk channels set aside)
    insurer_timezone: str = "Europe/London"
    attempt_timeout: float = 2 * 3600  # a call with no outcome by then counts as unknown
    recheck_after_transfer: float = 24 * 3600  # a caller handed to a person: look at the book again the next day

    @field_validator("backoff")
    @classmethod
    def _some_backoff(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or min(value) <= 0:
            raise ValueError("backoff needs at least one positive delay")
        return value


class Attempt(BaseModel):
    id: str
    kind: Literal["text", "call"]
    at: float
    result: str | None = None  # a CallResult, or how the call ended (paid, promised, opted_out, transferred...)


class Target(BaseModel):
    key: str  # keyed digest of the policy number: the target's name in Redis and in call outcomes
    policy: str  # sealed policy number
    phone: str | None  # sealed phone number; None: the book has none, nobody can be called
    person: str  # the policyholder's id in the policy system
    language: str = "en"
    zones: tuple[str, ...] = ()  # the policyholder's possible time zones; calls only when it is daytime in all
    amount: float
    cancel_on: dt.date
    found_at: float
    status: Status = "open"
    result: Result | None = None
    finished_at: float | None = None
    recovered_by: Channel | None = None
    texted_at: float | None = None
    calls: int = 0
    next_at: float = 0.0
    in_flight: str | None = None  # the attempt id of a call not yet ended
    attempts: list[Attempt] = Field(default_factory=list)


class CampaignState(BaseModel):
    day: str = ""  # the insurer's current day (ISO date): calls_today counts calls placed on it
    calls_today: int = 0
    targets: dict[str, Target] = Field(default_factory=dict)
