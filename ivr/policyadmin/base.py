"""What the IVR asks of policy administration: a small async interface.

Two implementations: `SqlitePolicyAdmin` (the sample book, embedded default)
and `HttpPolicyAdmin` (a core system's REST API). Writes take an idempotency
key so a retried request (HTTP) or a repeated action (a call resumed after a
controller restart) never writes twice, and each write is one transaction:
a cancelled call leaves nothing, a finished one leaves all.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from ivr.policyadmin.model import (
    Claim,
    DebitFailure,
    DowngradeOptions,
    PaymentMethod,
    Person,
    PhoneChange,
    PhoneOwners,
    Policy,
)


class PolicyAdminError(Exception):
    """The policy system could not answer (down, timed out, refused)."""


class Conflict(PolicyAdminError):
    """The write no longer applies (the failure was already paid, the number changed meanwhile)."""


class PolicyAdmin(Protocol):
    # --- who is calling ------------------------------------------------------
    async def persons_by_phone(self, phone: str) -> list[Person]: ...
    async def person(self, person_id: str) -> Person | None: ...
    async def check_identity(self, person_id: str, *, dob: dt.date | None = None,
                             id_last4: str | None = None) -> bool: ...
    async def phone_owners(self, phone: str) -> PhoneOwners: ...

    # --- policies ------------------------------------------------------------
    async def policy(self, number: str) -> Policy | None: ...
    async def policies_of(self, person_id: str) -> list[Policy]: ...
    async def open_claim(self, policy_number: str) -> Claim | None: ...
    async def debit_failure(self, policy_number: str) -> DebitFailure | None: ...
    async def downgrade_options(self, policy_number: str) -> DowngradeOptions | None: ...

    # --- the book, for rescue campaigns ----------------------------------------
    async def open_debit_failures(self, limit: int) -> list[DebitFailure]: ...
    async def promised_by(self, policy_number: str) -> dt.date | None: ...

    # --- writes (atomic, idempotent by key) --------------------------------------
    async def record_payment(self, policy_number: str, amount: float, gateway_ref: str,
                             method: PaymentMethod | None, key: str) -> str: ...
    async def record_promise(self, policy_number: str, pay_by: dt.date, key: str) -> str: ...
    async def change_phone(self, person_id: str, new_phone: str, flag_reasons: list[str], key: str) -> PhoneChange: ...
    async def request_cancellation(self, policy_number: str, reason: str, key: str) -> str: ...

    async def close(self) -> None: ...
