"""Policy facts a verified caller hears, and cancellation requests.

Status words and dates are shaped for the prompts (`policy.status`,
`policy.premium_due`, `cancel.downgrade`). A downgrade is offered only where
the product allows a lower sum assured; the cancellation request itself is
recorded whatever the caller decides next, so the save specialist sees it.
"""

from __future__ import annotations

import uuid
from typing import Any

from ivr.backend.systems import Result, Systems, policy_for

STATUS_WORDS = {"in_force": "in force", "lapsed": "lapsed", "cancel_requested": "pending cancellation"}
SMS_TEXTS = {
    "payment": "Thank you: we have your payment arrangement for your policy. No need to reply.",
    "phone": "Your phone number has been updated. No need to reply.",
    "cancel": "We have your cancellation request; a specialist will contact you. No need to reply.",
}


async def summary(systems: Systems, args: dict[str, Any]) -> Result:
    """`policy.summary {caller, policy}` → ok {number, product, status, premium, due_date, grace_end,
    sum_assured, coverage_text} | declined."""
    policy = await policy_for(systems, args)
    if policy is None:
        return "declined", {}
    return "ok", {"number": policy.number, "product": policy.product_name,
                  "status": STATUS_WORDS.get(policy.status, policy.status), "premium": policy.premium,
                  "due_date": policy.next_due.isoformat(), "grace_end": policy.grace_end.isoformat(),
                  "sum_assured": policy.sum_assured, "coverage_text": policy.coverage_text}


async def claim(systems: Systems, args: dict[str, Any]) -> Result:
    """`claim.status {caller, policy}` → ok {reference, stage, next_step} | declined.

    The named policy's open claim, else one on any of the caller's policies.
    """
    policy = await policy_for(systems, args)
    found = await systems.admin.open_claim(policy.number) if policy else None
    if found is None and args.get("caller"):
        for other in await systems.admin.policies_of(str(args["caller"])):
            if (found := await systems.admin.open_claim(other.number)) is not None:
                break
    if found is None:
        return "declined", {}
    return "ok", {"reference": found.reference, "stage": found.stage, "next_step": found.next_step}


async def cancel_options(systems: Systems, args: dict[str, Any]) -> Result:
    """`cancel.options {caller, policy, reason}` → ok {lower_premium, lower_sum_assured} | declined."""
    policy = await policy_for(systems, args)
    options = await systems.admin.downgrade_options(policy.number) if policy else None
    if options is None:
        return "declined", {}
    return "ok", {"lower_premium": options.lower_premium, "lower_sum_assured": options.lower_sum_assured}


async def cancel_record(systems: Systems, args: dict[str, Any]) -> Result:
    """`cancel.record {caller, policy, reason}` → ok {reference}."""
    policy = await policy_for(systems, args)
    if policy is None:
        return "error", {}
    reason = str(args.get("reason") or "other")
    reference = await systems.admin.request_cancellation(policy.number, reason, f"cancel-{uuid.uuid4().hex}")
    return "ok", {"reference": reference}


async def sms_confirm(systems: Systems, args: dict[str, Any]) -> Result:
    """`sms.confirm {caller, about}` → ok {sent}: a text to the number on file, if there is one."""
    person = await systems.admin.person(str(args.get("caller") or ""))
    if person is None or not person.phone:
        return "ok", {"sent": False}
    text = SMS_TEXTS.get(str(args.get("about") or ""), "Thank you for calling. No need to reply.")
    await systems.sms.send(person.phone, text, "confirmation")
    return "ok", {"sent": True}
