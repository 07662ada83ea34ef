"""Changing the phone number on file: how account takeovers start, so every step is checked.

The flow steps up verification first (`caller.step_up`), then the new number
is checked here: not valid, the same as now, or suspicious. A number that
belongs to a sales agent, or is already on file for customers outside the
caller's family, is flagged: the change goes ahead (the caller proved they
hold the phone) but lands in the review queue. A one-time code proves the
caller holds the new phone; the update refuses to run without that proof.
The change and its audit entry commit together; then the old number is told.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from ivr.backend.systems import Result, Systems, normalise_phone, policy_for
from ivr.masking import mask_phone, mask_policy
from ivr.policyadmin.model import Person

log = logging.getLogger(__name__)


async def check(systems: Systems, args: dict[str, Any]) -> Result:
    """`phone.check {caller, phone}` → ok {flagged: false} | flagged {flagged, reasons} | declined {reason}."""
    person = await systems.admin.person(str(args.get("caller") or ""))
    phone = normalise_phone(str(args.get("phone") or ""))
    if person is None:
        return "declined", {"reason": "not_identified"}
    if phone is None:
        return "declined", {"reason": "invalid"}
    if phone == person.phone:
        return "declined", {"reason": "same_number"}
    reasons = await flag_reasons(systems, person, phone)
    if reasons:
        return "flagged", {"flagged": True, "reasons": reasons, "phone": phone}
    return "ok", {"flagged": False, "reasons": [], "phone": phone}


async def flag_reasons(systems: Systems, person: Person, phone: str) -> list[str]:
    owners = await systems.admin.phone_owners(phone)
    reasons = []
    if owners.agents:
        reasons.append("agent_number")
    if any(p.id != person.id and p.family_id != person.family_id for p in owners.persons):
        reasons.append("on_file_for_unrelated_customers")
    return reasons


async def send_code(systems: Systems, args: dict[str, Any]) -> Result:
    """`otp.send {phone}` → ok | declined (not a phone number)."""
    phone = normalise_phone(str(args.get("phone") or ""))
    if phone is None:
        return "declined", {"reason": "invalid"}
    code = await systems.codes.issue(phone)
    await systems.sms.send(phone, f"Your verification code is {code}. It expires in 5 minutes. "
                                  "We will never ask you for it.", "otp")
    return "ok", {}


async def check_code(systems: Systems, args: dict[str, Any]) -> Result:
    """`otp.check {phone, code}` → ok | declined (wrong, try again) | expired (too many tries, or too late)."""
    phone = normalise_phone(str(args.get("phone") or ""))
    if phone is None:
        return "expired", {}
    answer = await systems.codes.check(phone, str(args.get("code") or ""))
    return {"ok": ("ok", {}), "wrong": ("declined", {}), "expired": ("expired", {})}[answer]


async def update(systems: Systems, args: dict[str, Any]) -> Result:
    """`phone.update {caller, phone}` → ok {audit_id, flagged, review} | declined {reason}.

    The flags are worked out again here rather than trusted from the flow.
    """
    person = await systems.admin.person(str(args.get("caller") or ""))
    phone = normalise_phone(str(args.get("phone") or ""))
    if person is None or phone is None:
        return "declined", {"reason": "invalid"}
    if not await systems.codes.consume_confirmation(phone):
        log.warning("phone update for %s refused: no confirmed one-time code for %s", person.id, mask_phone(phone))
        return "declined", {"reason": "code_not_confirmed"}
    reasons = await flag_reasons(systems, person, phone)
    change = await systems.admin.change_phone(person.id, phone, reasons, f"phone-{uuid.uuid4().hex}")
    log.info("phone of %s changed to %s (audit %s%s)", person.id, mask_phone(phone), change.audit_id,
             f", review: {', '.join(reasons)}" if reasons else "")
    if change.old_phone and change.old_phone != phone:
        policy = await policy_for(systems, {"caller": person.id})
        about = f" on policy {mask_policy(policy.number)}" if policy else ""
        await systems.sms.send(change.old_phone, f"The phone number{about} was changed to {mask_phone(phone)}. "
                                                 "If you did not ask for this, call us now.", "notice")
    return "ok", {"audit_id": change.audit_id, "flagged": bool(reasons), "review": change.review_id is not None}
