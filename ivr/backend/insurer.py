"""The backend `ivr serve` and `ivr demo` use: catalog actions onto the insurer's systems.

Each catalog action has one handler (identity, payment, phone, policy
modules). The policy system being down or refusing becomes `error`, which
flows turn into an apology and a person; a handler bug is logged by the
controller and becomes `error` too. Arguments are logged masked, at debug
level only.
"""

from __future__ import annotations

import logging
from typing import Any

from ivr.backend import campaign_actions, identity, payment_actions, phone_actions, policy_actions
from ivr.backend.catalog import ACTIONS
from ivr.backend.systems import Handler, Result, Systems
from ivr.masking import masked_args
from ivr.policyadmin.base import PolicyAdminError

log = logging.getLogger(__name__)

HANDLERS: dict[str, Handler] = {
    "caller.identify": identity.identify,
    "caller.verify": identity.verify,
    "caller.step_up": identity.step_up,
    "policy.summary": policy_actions.summary,
    "claim.status": policy_actions.claim,
    "payment.failure": payment_actions.failure,
    "payment.retry": payment_actions.retry,
    "payment.switch_method": payment_actions.switch_method,
    "payment.promise": payment_actions.promise,
    "phone.check": phone_actions.check,
    "otp.send": phone_actions.send_code,
    "otp.check": phone_actions.check_code,
    "phone.update": phone_actions.update,
    "cancel.options": policy_actions.cancel_options,
    "cancel.record": policy_actions.cancel_record,
    "sms.confirm": policy_actions.sms_confirm,
    "campaign.contact": campaign_actions.contact,
    "campaign.opt_out": campaign_actions.opt_out,
}


class InsurerBackend:
    """`Backend` over the policy system, payment gateway, SMS and caller history."""

    def __init__(self, systems: Systems):
        self.systems = systems

    async def call(self, name: str, args: dict[str, Any]) -> Result:
        handler = HANDLERS.get(name)
        if handler is None:
            raise KeyError(f"no handler for backend action {name}")
        log.debug("action %s %s", name, masked_args(args))
        try:
            outcome, data = await handler(self.systems, args)
        except PolicyAdminError as exc:
            log.error("action %s: policy system: %s", name, exc)
            return "error", {}
        if outcome not in ACTIONS[name].outcomes:
            log.error("action %s answered %s, which the catalog does not list", name, outcome)
            return "error", {}
        return outcome, data
