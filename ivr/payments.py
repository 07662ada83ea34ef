"""Taking a premium: the payment gateway interface and a simulated gateway.

Payments are authorised first and captured only once the policy system has
recorded them, so a caller who hangs up midway is never charged for a
payment the insurer has no record of: an authorisation that is not captured
is voided. Card numbers go to the gateway to be tokenised and are never kept
or logged here; the policy keeps the token and the last four digits.

The simulated gateway decides by the account, as a bank would: the sample
book gives each policy an account reference `sim-<behaviour>-<n>` whose
behaviour is `approved`, `insufficient_funds`, `card_expired`,
`bank_rejected` or `timeout`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ivr.policyadmin.model import PaymentMethod

BEHAVIOURS = ("approved", "insufficient_funds", "card_expired", "bank_rejected", "timeout")
DECLINE_TEXT = {
    "insufficient_funds": "there were not enough funds in the account",
    "card_expired": "the card on file has expired",
    "bank_rejected": "the bank rejected the debit",
    "account_closed": "the account has been closed",
    "invalid_card": "the card number is not valid",
}
# test cards a caller (or a test) can key to see each answer of the simulated gateway
TEST_CARDS = {"4000000000009995": "insufficient_funds", "4000000000000069": "card_expired",
              "4000000000000002": "bank_rejected"}


class GatewayTimeout(Exception):
    """The gateway did not answer in time: the outcome is unknown, the authorisation (if any) lapses."""


@dataclass(frozen=True, slots=True)
class Authorization:
    id: str
    account: str
    amount: float


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    approved: bool
    reason: str | None = None  # why not, one of DECLINE_TEXT's keys
    authorization: Authorization | None = None


class PaymentGateway(Protocol):
    async def authorize(self, account: str, amount: float, key: str) -> GatewayAnswer: ...
    async def capture(self, authorization: Authorization) -> str: ...
    async def void(self, authorization: Authorization) -> None: ...
    async def tokenize(self, card_number: str, expiry_mmyy: str) -> tuple[PaymentMethod | None, str | None]: ...


@dataclass
class SimulatedGateway:
    """Answers by account behaviour after `latency` seconds; `timeout` accounts never answer in time."""

    latency: float = 0.05
    timeout_after: float = 3.0
    today: Callable[[], dt.date] = dt.date.today
    authorized: dict[str, Authorization] = field(default_factory=dict)
    captured: dict[str, Authorization] = field(default_factory=dict)
    voided: list[str] = field(default_factory=list)

    async def authorize(self, account: str, amount: float, key: str) -> GatewayAnswer:
        behaviour = behaviour_of(account)
        if behaviour == "timeout":
            await asyncio.sleep(self.timeout_after)
            raise GatewayTimeout(f"no answer from the bank after {self.timeout_after:.1f}s")
        await asyncio.sleep(self.latency)  # a hang-up meanwhile: no authorisation is created
        if behaviour != "approved":
            return GatewayAnswer(False, behaviour)
        authorization = Authorization(f"auth_{hashlib.sha256(key.encode()).hexdigest()[:16]}", account, amount)
        self.authorized[authorization.id] = authorization
        return GatewayAnswer(True, authorization=authorization)

    async def capture(self, authorization: Authorization) -> str:
        self.authorized.pop(authorization.id, None)
        self.captured[authorization.id] = authorization
        return f"cap_{authorization.id[5:]}"

    async def void(self, authorization: Authorization) -> None:
        if self.authorized.pop(authorization.id, None) is not None:
            self.voided.append(authorization.id)

    async def tokenize(self, card_number: str, expiry_mmyy: str) -> tuple[PaymentMethod | None, str | None]:
        await asyncio.sleep(self.latency)
        if not card_number.isdigit() or not 12 <= len(card_number) <= 19 or not luhn_ok(card_number):
            return None, "invalid_card"
        if expiry_mmyy and _expired(expiry_mmyy, self.today()):
            return None, "card_expired"
        behaviour = TEST_CARDS.get(card_number, "approved")
        token = f"sim-{behaviour}-{uuid.uuid4().hex[:12]}"
        return PaymentMethod(token=token, last4=card_number[-4:]), None


def behaviour_of(account: str) -> str:
    parts = account.split("-")
    return parts[1] if len(parts) >= 2 and parts[0] == "sim" and parts[1] in BEHAVIOURS else "approved"


def luhn_ok(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _expired(mmyy: str, today: dt.date) -> bool:
    if len(mmyy) != 4 or not mmyy.isdigit() or not 1 <= int(mmyy[:2]) <= 12:
        return True
    year, month = 2000 + int(mmyy[2:]), int(mmyy[:2])
    return (year, month) < (today.year, today.month)
