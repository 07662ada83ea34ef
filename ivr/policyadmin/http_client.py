"""A core policy system over its REST API (aiohttp client), behind the PolicyAdmin interface.

Each attempt has its own timeout, so a slow core system costs a caller at
most `attempts × timeout` plus short backoffs, which stays inside the flow's
action timeout (8 s by default): the caller hears an apology and reaches a
person rather than silence. Connection errors, timeouts and 502/503/504 are
retried after the project's one jittered backoff (`ivr.backoff`), counted
afresh for each request. Writes carry an `Idempotency-Key` header, the
same on every attempt, so a retry after a lost answer never writes twice;
the core system must honour it (`http_api.py` shows the contract).

A write cancelled by a hang-up may already have reached the core system:
over HTTP the commit point is theirs. The idempotency key makes that safe to
repeat, and the controller tells the agent the action was abandoned.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any
from urllib.parse import quote

import aiohttp

from ivr.backoff import Backoff
from ivr.policyadmin.base import Conflict, PolicyAdminError
from ivr.policyadmin.model import (
    Claim,
    DebitFailure,
    DowngradeOptions,
    PaymentMethod,
    Person,
    PhoneChange,
    PhoneOwners,
    Policy,
    from_json,
    to_json,
)

log = logging.getLogger(__name__)
RETRY_STATUSES = {502, 503, 504}
RETRY_BACKOFF = Backoff(initial=0.1, cap=1.0)  # 0.05-0.1 s, then 0.1-0.2 s: short beside an attempt's timeout


class HttpPolicyAdmin:
    def __init__(self, base_url: str, timeout: float = 2.0, retries: int = 2, backoff: Backoff = RETRY_BACKOFF,
                 token: str | None = None, session: aiohttp.ClientSession | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.backoff = backoff
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = session
        self._own_session = session is None

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self.headers)
        return self._session

    async def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                       body: Any = None, key: str | None = None) -> Any:
        """The decoded JSON answer; None for 404; Conflict for 409; PolicyAdminError when it cannot be had."""
        headers = {"Idempotency-Key": key} if key else {}
        last = "no attempt"
        delays = self.backoff.fresh()
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(delays.next_delay())
            try:
                async with self._client().request(method, self.base_url + path, params=params, json=body,
                                                  headers=headers, timeout=self.timeout) as response:
                    if response.status == 404:
                        return None
                    if response.status == 409:
                        raise Conflict((await response.text())[:200])
                    if response.status in RETRY_STATUSES:
                        last = f"HTTP {response.status}"
                        continue
                    if response.status >= 400:
                        raise PolicyAdminError(f"{method} {_route(path)}: HTTP {response.status}")
                    return await response.json()
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                last = exc.__class__.__name__
        log.warning("core system: %s %s failed after %d attempts (%s)", method, _route(path), self.retries + 1, last)
        raise PolicyAdminError(f"core system unavailable: {method} {_route(path)} ({last})")

    # --- who is calling ------------------------------------------------------

    async def persons_by_phone(self, phone: str) -> list[Person]:
        data = await self._request("GET", "/persons", params={"phone": phone})
        return [from_json(Person, p) for p in (data or {}).get("persons", [])]

    async def person(self, person_id: str) -> Person | None:
        data = await self._request("GET", f"/persons/{_q(person_id)}")
        return from_json(Person, data) if data else None

    async def check_identity(self, person_id: str, *, dob: dt.date | None = None,
                             id_last4: str | None = None) -> bool:
        body = {"dob": dob.isoformat() if dob else None, "id_last4": id_last4}
        data = await self._request("POST", f"/persons/{_q(person_id)}/identity-check", body=body)
        return bool(data and data.get("match"))

    async def phone_owners(self, phone: str) -> PhoneOwners:
        data = await self._request("GET", "/phone-owners", params={"phone": phone}) or {}
        return from_json(PhoneOwners, data)

    # --- policies ------------------------------------------------------------

    async def policy(self, number: str) -> Policy | None:
        data = await self._request("GET", f"/policies/{_q(number)}")
        return from_json(Policy, data) if data else None

    async def policies_of(self, person_id: str) -> list[Policy]:
        data = await self._request("GET", f"/persons/{_q(person_id)}/policies")
        return [from_json(Policy, p) for p in (data or {}).get("policies", [])]

    async def open_claim(self, policy_number: str) -> Claim | None:
        data = await self._request("GET", f"/policies/{_q(policy_number)}/open-claim")
        return from_json(Claim, data) if data else None

    async def debit_failure(self, policy_number: str) -> DebitFailure | None:
        data = await self._request("GET", f"/policies/{_q(policy_number)}/debit-failure")
        return from_json(DebitFailure, data) if data else None

    async def open_debit_failures(self, limit: int) -> list[DebitFailure]:
        data = await self._request("GET", "/debit-failures", params={"limit": str(limit)})
        return [from_json(DebitFailure, f) for f in (data or {}).get("failures", [])]

    async def promised_by(self, policy_number: str) -> dt.date | None:
        data = await self._request("GET", f"/policies/{_q(policy_number)}/promise")
        return dt.date.fromisoformat(data["pay_by"]) if data and data.get("pay_by") else None

    async def downgrade_options(self, policy_number: str) -> DowngradeOptions | None:
        data = await self._request("GET", f"/policies/{_q(policy_number)}/downgrade-options")
        return from_json(DowngradeOptions, data) if data else None

    # --- writes --------------------------------------------------------------

    async def record_payment(self, policy_number: str, amount: float, gateway_ref: str,
                             method: PaymentMethod | None, key: str) -> str:
        body = {"amount": amount, "gateway_ref": gateway_ref, "method": to_json(method)}
        return await self._reference("POST", f"/policies/{_q(policy_number)}/payments", body, key)

    async def record_promise(self, policy_number: str, pay_by: dt.date, key: str) -> str:
        return await self._reference("POST", f"/policies/{_q(policy_number)}/promises", {"pay_by": pay_by.isoformat()}, key)

    async def change_phone(self, person_id: str, new_phone: str, flag_reasons: list[str], key: str) -> PhoneChange:
        data = await self._request("POST", f"/persons/{_q(person_id)}/phone",
                                   body={"phone": new_phone, "flag_reasons": flag_reasons}, key=key)
        if data is None:
            raise Conflict("no such person")
        return from_json(PhoneChange, data)

    async def request_cancellation(self, policy_number: str, reason: str, key: str) -> str:
        return await self._reference("POST", f"/policies/{_q(policy_number)}/cancellation-requests", {"reason": reason}, key)

    async def _reference(self, method: str, path: str, body: dict[str, Any], key: str) -> str:
        data = await self._request(method, path, body=body, key=key)
        if not data or "reference" not in data:
            raise Conflict(f"{_route(path)}: no such record")
        return str(data["reference"])


def _q(value: str) -> str:
    return quote(str(value), safe="")


def _route(path: str) -> str:
    """The path with identifiers replaced, for logs (policy numbers and ids are personal data)."""
    parts = path.strip("/").split("/")
    return "/" + "/".join(p if i % 2 == 0 else "…" for i, p in enumerate(parts))
