"""The records an IVR needs from policy administration, as plain values.

Both implementations (the SQLite sample store and the core-system HTTP
adapter) answer with these, so the backend that serves flows never knows
which one it talks to. Dates are `datetime.date`; money is a float in the
policy's currency, rounded to cents by whoever writes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

GRACE_DAYS = 30
FIRST_YEAR_DAYS = 365


@dataclass(frozen=True, slots=True)
class Agent:
    """A sales agent. `active` is False once they have left: their policies are orphans."""

    id: str
    name: str
    phone: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    family_id: str
    first_name: str
    last_name: str
    dob: dt.date
    id_last4: str
    phone: str | None
    language: str = "en"
    timezone: str | None = None  # IANA name where the core system knows it; else the phone number's country decides


@dataclass(frozen=True, slots=True)
class Policy:
    number: str
    holder_id: str
    product: str
    product_name: str
    status: str  # in_force | lapsed | cancel_requested
    start_date: dt.date
    premium: float
    sum_assured: float
    next_due: dt.date
    agent_id: str | None
    agent_active: bool
    payment_account: str
    card_last4: str | None = None
    coverage_text: str = ""
    downgrade_allowed: bool = False

    def days_in_force(self, today: dt.date) -> int:
        return (today - self.start_date).days

    def first_year(self, today: dt.date) -> bool:
        return 0 <= self.days_in_force(today) < FIRST_YEAR_DAYS

    def first_quarter(self, today: dt.date) -> bool:
        """The first three months: when a policy is most often regretted (the cooling-off window)."""
        return 0 <= self.days_in_force(today) < 92

    @property
    def orphan(self) -> bool:
        """No serving agent: the one who sold it has left (or there never was one)."""
        return not self.agent_active

    @property
    def grace_end(self) -> dt.date:
        return self.next_due + dt.timedelta(days=GRACE_DAYS)


@dataclass(frozen=True, slots=True)
class DebitFailure:
    """An open failed premium debit: why, how much, and when the policy cancels if unpaid."""

    policy_number: str
    amount: float
    due_date: dt.date
    reason: str  # insufficient_funds | card_expired | bank_rejected | account_closed
    cancel_on: dt.date


@dataclass(frozen=True, slots=True)
class Claim:
    reference: str
    policy_number: str
    stage: str
    next_step: str


@dataclass(frozen=True, slots=True)
class PhoneOwners:
    """Who has a phone number on file: agents (any status) and policyholders."""

    agents: list[Agent] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PhoneChange:
    audit_id: str
    old_phone: str | None
    review_id: str | None = None


@dataclass(frozen=True, slots=True)
class DowngradeOptions:
    lower_premium: float
    lower_sum_assured: float


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    """A card as the gateway tokenised it: never the number itself."""

    token: str
    last4: str


# --- JSON, for the HTTP adapter ---------------------------------------------------


def to_json(value: Any) -> Any:
    """Dataclasses, dates and lists of them as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """The inverse of `to_json` for one of the record classes above (unknown keys ignored)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        values[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**values)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        return _convert(args[0], value)
    if origin is list and args:
        return [_convert(args[0], v) for v in value]
    if hint is dt.date:
        return dt.date.fromisoformat(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_json(hint, value)
    return value
