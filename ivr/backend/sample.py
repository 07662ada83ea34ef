"""Canned backend answers for designing and testing flows without real systems.

`ivr simulate` and the engine benchmark answer every backend action with the
plausible data here, unless a script says otherwise. The data describes one
fictional policyholder; nothing in it is real.
"""

from __future__ import annotations

from typing import Any

SAMPLE_CALLER = {
    "id": "C-100001", "first_name": "Ann", "last_name": "Lee", "policy_number": "40012345",
    "first_year": True, "orphan": False,
}
SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "caller.identify": SAMPLE_CALLER,
    "caller.verify": {"verified": True, "method": "dob", "attempts_left": 2},
    "caller.step_up": {"verified": True, "method": "id", "attempts_left": 2},
    "policy.summary": {
        "number": "40012345", "product": "Term Life", "status": "in force", "premium": 86.4,
        "due_date": "2026-12-01", "grace_end": "2026-12-31", "sum_assured": 250000,
        "coverage_text": "This includes accidental death and terminal illness.",
    },
    "claim.status": {"reference": "CL-7781", "stage": "being assessed", "next_step": "We expect a decision within 5 working days."},
    "payment.failure": {
        "amount": 86.4, "due_date": "2026-11-01", "reason": "insufficient_funds",
        "reason_text": "there were not enough funds in the account", "cancel_date": "2026-12-31",
    },
    "payment.retry": {"reference": "PAY-1"},
    "payment.switch_method": {"reference": "PAY-2"},
    "payment.promise": {"date": "2026-12-15"},
    "phone.check": {"flagged": False},
    "otp.send": {},
    "otp.check": {},
    "phone.update": {"audit_id": "AUD-1"},
    "cancel.options": {"lower_premium": 52.0, "lower_sum_assured": 150000},
    "cancel.record": {},
    "sms.confirm": {},
    "campaign.contact": {**SAMPLE_CALLER, "found_by": "campaign", "failed_debit": True, "locked": False, "language": "en"},
    "campaign.opt_out": {},
}


def sample_result(name: str) -> tuple[str, dict[str, Any]]:
    """The outcome and data the sample backend gives for an action."""
    return "ok", dict(SAMPLE_DATA.get(name, {}))
