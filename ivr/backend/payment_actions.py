"""Failed premium payments: why, retry now, a new card, or a promise to pay.

A payment is authorised at the gateway, recorded by the policy system (the
commit point), and only then captured. A caller who hangs up before the
commit leaves no payment record and no charge: the authorisation is voided.
A gateway that does not answer in time gives `timeout` (the flow apologises
and hands the caller to a person). Card numbers arrive from keypad-only
turns and go straight to the gateway's tokeniser; they are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from ivr.backend.systems import Result, Systems, parse_date, policy_for
from ivr.masking import mask_policy
from ivr.payments import DECLINE_TEXT, Authorization, GatewayTimeout
from ivr.policyadmin.base import Conflict
from ivr.policyadmin.model import PaymentMethod, Policy

log = logging.getLogger(__name__)


async def failure(systems: Systems, args: dict[str, Any]) -> Result:
    """`payment.failure {caller, policy}` → ok {amount, due_date, reason, reason_text, cancel_date} | declined."""
    policy = await policy_for(systems, args)
    found = await systems.admin.debit_failure(policy.number) if policy else None
    if found is None:
        return "declined", {}
    return "ok", {"amount": found.amount, "due_date": found.due_date.isoformat(), "reason": found.reason,
                  "reason_text": DECLINE_TEXT.get(found.reason, "the debit was not collected"),
                  "cancel_date": found.cancel_on.isoformat(), "policy": found.policy_number}


async def retry(systems: Systems, args: dict[str, Any]) -> Result:
    """`payment.retry {caller, policy}` → ok {reference, amount} | declined {reason, reason_text} | timeout."""
    policy = await policy_for(systems, args)
    if policy is None:
        return "declined", {"reason": "no_policy"}
    return await _charge(systems, policy, policy.payment_account, method=None)


async def switch_method(systems: Systems, args: dict[str, Any]) -> Result:
    """`payment.switch_method {caller, policy, card, expiry}`: tokenise the new card and pay with it."""
    policy = await policy_for(systems, args)
    if policy is None:
        return "declined", {"reason": "no_policy"}
    method, problem = await systems.gateway.tokenize(str(args.get("card") or ""), str(args.get("expiry") or ""))
    if method is None:
        return "declined", {"reason": problem, "reason_text": DECLINE_TEXT.get(problem or "", "")}
    return await _charge(systems, policy, method.token, method=method)


async def _charge(systems: Systems, policy: Policy, account: str, method: PaymentMethod | None) -> Result:
    due = await systems.admin.debit_failure(policy.number)
    if due is None:
        return "declined", {"reason": "nothing_due"}
    key = f"pay-{uuid.uuid4().hex}"
    try:
        answer = await systems.gateway.authorize(account, due.amount, key)
    except GatewayTimeout as exc:
        log.warning("payment for policy %s: gateway timeout (%s)", mask_policy(policy.number), exc)
        return "timeout", {}
    if not answer.approved or answer.authorization is None:
        log.info("payment for policy %s declined: %s", mask_policy(policy.number), answer.reason)
        return "declined", {"reason": answer.reason, "reason_text": DECLINE_TEXT.get(answer.reason or "", "")}
    authorization = answer.authorization
    try:
        reference = await systems.admin.record_payment(policy.number, due.amount, authorization.id, method, key)
    except BaseException as exc:  # hang-up (cancelled), conflict or policy system down: nothing recorded
        await _void(systems, authorization)
        if isinstance(exc, Conflict):
            return "declined", {"reason": "nothing_due"}
        raise
    await asyncio.shield(systems.gateway.capture(authorization))
    log.info("payment %s recorded for policy %s", reference, mask_policy(policy.number))
    return "ok", {"reference": reference, "amount": due.amount, "card_last4": method.last4 if method else None}


async def _void(systems: Systems, authorization: Authorization) -> None:
    try:
        await asyncio.shield(systems.gateway.void(authorization))
    except asyncio.CancelledError:
        pass  # the void goes on in the background; the cancellation is already on its way up
    except Exception:
        log.exception("could not void authorisation %s: it lapses at the bank", authorization.id)


async def promise(systems: Systems, args: dict[str, Any]) -> Result:
    """`payment.promise {caller, policy, date}` (YYYYMMDD) → ok {date, reference} | declined {reason, cancel_date}."""
    policy = await policy_for(systems, args)
    due = await systems.admin.debit_failure(policy.number) if policy else None
    if policy is None or due is None:
        return "declined", {"reason": "nothing_due"}
    pay_by = parse_date(str(args.get("date") or ""))
    data = {"cancel_date": due.cancel_on.isoformat()}
    if pay_by is None:
        return "declined", {**data, "reason": "not_a_date"}
    if pay_by < systems.today():
        return "declined", {**data, "reason": "in_the_past"}
    if pay_by > due.cancel_on:
        return "declined", {**data, "reason": "after_cancel_date"}
    reference = await systems.admin.record_promise(policy.number, pay_by, f"promise-{uuid.uuid4().hex}")
    return "ok", {"date": pay_by.isoformat(), "reference": reference}
