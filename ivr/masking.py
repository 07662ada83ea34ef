"""Personal data as it may appear in logs: masked, never in clear.

Logs are read by operators, shipped to log stores and pasted into tickets, so
nothing in them may identify a policyholder or open their account. Every
module that logs a policy number, phone number or ID uses these helpers;
card numbers, expiry dates, one-time codes and dates of birth are never
logged at all, not even masked.
"""

from __future__ import annotations

from typing import Any

# argument names whose values are secrets: never shown, not even in part
SECRET_KEYS = frozenset({"card", "card_number", "expiry", "code", "otp", "dob", "answer", "id_digits", "token"})
# argument names that identify someone: shown with the last digits only
IDENTIFYING_KEYS = frozenset({"phone", "new_phone", "ani", "policy", "policy_number", "number", "id_number"})


def mask_tail(value: object, keep: int = 4) -> str:
    """`****5678`: enough for an operator to tell records apart, too little to use."""
    text = "" if value is None else str(value)
    if not text:
        return ""
    if len(text) <= keep:
        return "*" * len(text)
    return "*" * (len(text) - keep) + text[-keep:]


def mask_phone(phone: object) -> str:
    """Phone numbers keep their last three digits (`+*******123`)."""
    text = "" if phone is None else str(phone)
    plus = "+" if text.startswith("+") else ""
    return plus + mask_tail(text.lstrip("+"), keep=3)


def mask_policy(number: object) -> str:
    return mask_tail(number, keep=4)


def mask_id(id_number: object) -> str:
    return mask_tail(id_number, keep=2)


def masked_args(args: dict[str, Any]) -> dict[str, Any]:
    """A backend action's arguments, safe to log."""
    safe: dict[str, Any] = {}
    for key, value in args.items():
        if key in SECRET_KEYS:
            safe[key] = "[withheld]"
        elif key in IDENTIFYING_KEYS:
            safe[key] = mask_phone(value) if "phone" in key or key == "ani" else mask_policy(value)
        else:
            safe[key] = value
    return safe
