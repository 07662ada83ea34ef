"""The backend actions a flow may call, by name, with the outcomes each can give.

Flows name actions (`payment.retry`); the validator refuses names not listed
here, and the controller dispatches them to implementations. Every action can
also end in `error` or `timeout`, which the engine routes to the turn's escape
when the flow does not handle them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ActionInfo:
    name: str
    outcomes: tuple[str, ...]
    description: str
    writes: bool = False  # changes a record: must be atomic and skipped on hang-up


def _action(name: str, outcomes: str, description: str, writes: bool = False) -> ActionInfo:
    return ActionInfo(name, tuple(outcomes.split()) + ("error", "timeout"), description, writes)


ACTIONS: dict[str, ActionInfo] = {
    a.name: a
    for a in (
        _action("caller.identify", "ok declined", "Find the caller by caller number (ANI) or a policy number"),
        _action("caller.verify", "ok declined locked", "Knowledge check: date of birth or last ID digits"),
        _action("caller.step_up", "ok declined locked", "Second knowledge check before a risky change (the other factor)"),
        _action("policy.summary", "ok declined", "Status, premium due, grace period and coverage"),
        _action("claim.status", "ok declined", "Progress of the caller's open claim"),
        _action("payment.failure", "ok declined", "Why the last debit failed and what is due"),
        _action("payment.retry", "ok declined", "Retry the failed debit now", writes=True),
        _action("payment.switch_method", "ok declined", "Replace the payment card (keypad only)", writes=True),
        _action("payment.promise", "ok declined", "Record a promise to pay by a date", writes=True),
        _action("phone.check", "ok flagged declined", "Check a new phone number: format, agent numbers, duplicates"),
        _action("otp.send", "ok declined", "Send a one-time code by SMS"),
        _action("otp.check", "ok declined expired", "Check a one-time code the caller keyed (expired: too many tries)"),
        _action("phone.update", "ok declined", "Update the phone number atomically with an audit entry", writes=True),
        _action("cancel.options", "ok declined", "Downgrade options: lower sum assured or premium"),
        _action("cancel.record", "ok", "Record a cancellation request and its reason", writes=True),
        _action("sms.confirm", "ok", "Send a confirmation SMS"),
        _action("campaign.contact", "ok declined", "Whom a rescue campaign's outbound call is for (by its attempt)"),
        _action("campaign.opt_out", "ok declined", "No more campaign calls to the policyholder's number", writes=True),
    )
}


def known_actions() -> dict[str, ActionInfo]:
    return dict(ACTIONS)
