"""Who is calling: identify by caller number or policy number, then a knowledge check.

Identification alone opens nothing: every journey verifies (date of birth or
the last four digits of the ID) before any policy detail is spoken. Three
failed checks within 24 hours lock self-service for the policy: identify
then says `locked`, so the caller goes straight to a person with the reason,
without being asked again. A caller number shared by several policyholders
(a family landline, or an agent's number on their clients' files) identifies
nobody: the caller is asked for a policy number instead.
"""

from __future__ import annotations

import logging
from typing import Any

from ivr.backend.systems import MAX_FAILED_VERIFICATIONS, Result, Systems, parse_date
from ivr.masking import mask_phone, mask_policy
from ivr.policyadmin.model import Person, Policy

log = logging.getLogger(__name__)
LOCK_REASON = f"{MAX_FAILED_VERIFICATIONS} failed verifications in 24 hours"


async def identify(systems: Systems, args: dict[str, Any]) -> Result:
    """`caller.identify {ani, policy_number?}` → ok with the caller, or declined with `reason`.

    Data: id, first_name, last_name, policy_number, policies, first_year,
    first_quarter, orphan, failed_debit, lapsed, locked, language, found_by.
    """
    number = str(args.get("policy_number") or "")
    if number:
        policy = await systems.admin.policy(number)
        person = await systems.admin.person(policy.holder_id) if policy else None
        if person is None:
            log.info("identify: no policy %s", mask_policy(number))
            return "declined", {"reason": "unknown_policy"}
        return "ok", await caller_data(systems, person, policy, "policy_number")
    ani = str(args.get("ani") or "")
    if not ani:
        return "declined", {"reason": "no_caller_number"}
    owners = await systems.admin.phone_owners(ani)
    if owners.agents:
        log.info("identify: %s is an agent's number; asking for a policy number", mask_phone(ani))
        return "declined", {"reason": "agent_number"}
    if len(owners.persons) != 1:
        reason = "shared_number" if owners.persons else "not_on_file"
        return "declined", {"reason": reason}
    return "ok", await caller_data(systems, owners.persons[0], None, "ani")


async def caller_data(systems: Systems, person: Person, chosen: Policy | None, found_by: str) -> dict[str, Any]:
    """What flows know of an identified caller (`caller.first_name`, `caller.policy_number`...)."""
    today = systems.today()
    policies = await systems.admin.policies_of(person.id)
    policy = chosen or await _likely_policy(systems, policies)
    failures = await systems.history.failed_verifications(policy.number) if policy else 0
    failed_debit = policy is not None and await systems.admin.debit_failure(policy.number) is not None
    return {
        "id": person.id, "first_name": person.first_name, "last_name": person.last_name,
        "policy_number": policy.number if policy else None, "policies": len(policies),
        "first_year": bool(policy and policy.first_year(today)),
        "first_quarter": bool(policy and policy.first_quarter(today)),
        "orphan": bool(policy and policy.orphan), "lapsed": bool(policy and policy.status == "lapsed"),
        "failed_debit": failed_debit, "locked": failures >= MAX_FAILED_VERIFICATIONS,
        "language": person.language, "found_by": found_by,
    }


async def _likely_policy(systems: Systems, policies: list[Policy]) -> Policy | None:
    """A caller with a failed debit is most likely calling about it; else their newest policy in force."""
    for policy in policies:
        if policy.status == "in_force" and await systems.admin.debit_failure(policy.number) is not None:
            return policy
    ordered = sorted(policies, key=lambda p: (p.status != "in_force", -p.start_date.toordinal()))
    return ordered[0] if ordered else None


async def verify(systems: Systems, args: dict[str, Any]) -> Result:
    """`caller.verify {caller, policy, dob}` (8 digits: date of birth; 4: last ID digits).

    ok {verified, method, attempts_left} | declined {attempts_left} | locked {reason}.
    """
    return await _knowledge_check(systems, args, step_up=False)


async def step_up(systems: Systems, args: dict[str, Any]) -> Result:
    """`caller.step_up {caller, policy, answer}`: a second check before a risky change.

    The answer must be the factor the caller did not use to verify (`method`
    from caller.verify): ID digits after a date of birth, and the other way round.
    """
    return await _knowledge_check(systems, args, step_up=True)


async def _knowledge_check(systems: Systems, args: dict[str, Any], step_up: bool) -> Result:
    person_id = str(args.get("caller") or "")
    policy = str(args.get("policy") or "")
    answer = str(args.get("answer") or args.get("dob") or "")
    if not person_id or not policy:
        return "declined", {"attempts_left": 0, "reason": "not_identified"}
    if await systems.history.failed_verifications(policy) >= MAX_FAILED_VERIFICATIONS:
        return "locked", {"attempts_left": 0, "reason": LOCK_REASON}
    method, matched = await _check(systems, person_id, answer)
    if step_up and method == args.get("used"):
        matched = False  # the same factor twice proves nothing more
    if matched:
        left = MAX_FAILED_VERIFICATIONS - await systems.history.failed_verifications(policy)
        return "ok", {"verified": True, "method": method, "attempts_left": left}
    failures = await systems.history.add_failed_verification(policy)
    if failures >= MAX_FAILED_VERIFICATIONS:
        log.warning("self-service locked for policy %s: %s", mask_policy(policy), LOCK_REASON)
        return "locked", {"attempts_left": 0, "reason": LOCK_REASON}
    return "declined", {"verified": False, "attempts_left": MAX_FAILED_VERIFICATIONS - failures}


async def _check(systems: Systems, person_id: str, answer: str) -> tuple[str, bool]:
    if len(answer) == 4 and answer.isdigit():
        return "id", await systems.admin.check_identity(person_id, id_last4=answer)
    dob = parse_date(answer)
    if dob is None:
        return "dob", False
    return "dob", await systems.admin.check_identity(person_id, dob=dob)
