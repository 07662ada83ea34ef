"""The actions of a rescue campaign's outbound call: whom the call is for, and an opt-out.

The call carries only its campaign attempt id (a Stasis argument); what the
flow needs about the person comes from the campaign's contact record, then
from the policy system, as `caller.identify` gives it for an inbound caller.
Nothing is said to whoever answers before the flow has checked it is the
policyholder (`verify`).
"""

from __future__ import annotations

import logging
from typing import Any

from ivr.backend.identity import caller_data
from ivr.backend.systems import Result, Systems

log = logging.getLogger(__name__)


async def contact(systems: Systems, args: dict[str, Any]) -> Result:
    """`campaign.contact {attempt}` → ok with the caller (as `caller.identify` gives it) | declined."""
    found = await systems.campaign.contact(str(args.get("attempt") or "")) if systems.campaign else None
    if found is None:
        return "declined", {"reason": "unknown_attempt"}
    policy = await systems.admin.policy(found["policy"])
    person = await systems.admin.person(found["person"])
    if policy is None or person is None or policy.holder_id != person.id:
        return "declined", {"reason": "unknown_policy"}
    return "ok", await caller_data(systems, person, policy, "campaign")


async def opt_out(systems: Systems, args: dict[str, Any]) -> Result:
    """`campaign.opt_out {caller}`: no more campaign calls to the policyholder's number on file."""
    person = await systems.admin.person(str(args.get("caller") or ""))
    if systems.campaign is None or person is None or not person.phone:
        return "declined", {}
    await systems.campaign.block(person.phone)
    log.info("campaign: a policyholder opted out of calls")
    return "ok", {}
