"""The systems behind the flows' actions, and the small rules they share.

Handlers (identity, payments, phone, policy) receive one `Systems` and the
action's arguments, and answer `(outcome, data)`. The data is what flows and
prompts read (`caller.first_name`, `policy.premium`...), so its field names
are part of the flow contract; see each handler's docstring.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.campaign.store import CampaignStore
from ivr.history import CallerHistory
from ivr.otp import OneTimeCodes
from ivr.payments import PaymentGateway
from ivr.policyadmin.base import PolicyAdmin
from ivr.policyadmin.model import Policy
from ivr.sms import SmsSender

Result = tuple[str, dict[str, Any]]
Handler = Callable[["Systems", dict[str, Any]], Awaitable[Result]]
MAX_FAILED_VERIFICATIONS = 3


@dataclass
class Systems:
    admin: PolicyAdmin
    gateway: PaymentGateway
    sms: SmsSender
    codes: OneTimeCodes
    history: CallerHistory
    today: Callable[[], dt.date] = field(default=dt.date.today)
    campaign: CampaignStore | None = None  # a rescue campaign's contacts and do-not-call list (Redis)


async def policy_for(systems: Systems, args: dict[str, Any]) -> Policy | None:
    """The policy an action is about: `policy` if it is the caller's, else the caller's main policy."""
    caller = args.get("caller")
    if not caller:
        return None
    number = args.get("policy")
    if number:
        policy = await systems.admin.policy(str(number))
        return policy if policy is not None and policy.holder_id == caller else None
    return main_policy(await systems.admin.policies_of(str(caller)))


def main_policy(policies: list[Policy]) -> Policy | None:
    """The policy a caller most likely calls about: in force ones first, newest first.

    (A policy with an open failed debit is preferred by `identify`, which can
    ask the policy system; this ordering is the fallback.)
    """
    if not policies:
        return None
    return sorted(policies, key=lambda p: (p.status != "in_force", -p.start_date.toordinal()))[0]


_NON_DIGITS = re.compile(r"[^\d]")


def normalise_phone(raw: str) -> str | None:
    """A keyed or spoken number as stored (`+` and digits), or None when it cannot be one.

    Numbers keyed without a country code are taken as North American (10
    digits): the sample book's numbering. 8 to 15 digits otherwise (E.164).
    """
    text = str(raw or "").strip()
    digits = _NON_DIGITS.sub("", text)
    if not 8 <= len(digits) <= 15:
        return None
    if not text.startswith("+") and len(digits) == 10:
        digits = "1" + digits
    return "+" + digits


def parse_date(digits: str) -> dt.date | None:
    """YYYYMMDD as keyed by a caller, or None."""
    text = str(digits or "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
