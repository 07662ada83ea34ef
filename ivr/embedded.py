"""The insurer's systems as `ivr serve` and `ivr demo` run them, built from settings.

One place assembles the policy system (SQLite book, or a core system when
`core_url` is set), the simulated payment gateway, the SMS outbox, one-time
codes, caller history, the backend over them, the router and the history
recorder; and closes them in order. `ivr.application.build` opens them when
`backend` is `insurer`. `ivr simulate` does not use this: it keeps the
canned sample answers designers rely on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as redis

from ivr import redisconn, sealing
from ivr.backend.insurer import InsurerBackend
from ivr.backend.systems import Systems
from ivr.campaign.store import CampaignStore
from ivr.controller.recorder import HistoryRecorder
from ivr.history import CallerHistory
from ivr.otp import OneTimeCodes
from ivr.payments import PaymentGateway, SimulatedGateway
from ivr.policyadmin.base import PolicyAdmin
from ivr.routing.facts import gather
from ivr.routing.router import Router
from ivr.sms import Outbox, SmsSender

log = logging.getLogger(__name__)


@dataclass
class Embedded:
    systems: Systems
    backend: InsurerBackend
    router: Router | None
    recorder: HistoryRecorder
    redis_client: redis.Redis | None

    @property
    def outbox(self) -> Outbox | None:
        return self.systems.sms if isinstance(self.systems.sms, Outbox) else None

    async def aclose(self) -> None:
        await self.recorder.drain()
        await self.systems.admin.close()
        if self.redis_client is not None:
            await self.redis_client.aclose()


async def open_admin(settings: Any) -> PolicyAdmin:
    """The core system when configured, else the SQLite book (seeded on first use)."""
    if settings.core_url:
        from ivr.policyadmin.http_client import HttpPolicyAdmin

        return HttpPolicyAdmin(settings.core_url, timeout=settings.core_timeout)
    from ivr.policyadmin.seed import seed_book
    from ivr.policyadmin.sqlite_store import SqlitePolicyAdmin

    path = Path(settings.book_path)
    if not path.exists():
        report = seed_book(path)
        log.warning("no policy book at %s: seeded a sample one (%d people, %d policies)", path,
                    report.counts["persons"], report.counts["policies"])
    return await SqlitePolicyAdmin.open(path, sealing.for_settings(settings))


async def open_embedded(settings: Any, admin: PolicyAdmin | None = None, gateway: PaymentGateway | None = None,
                        sms: SmsSender | None = None) -> Embedded:
    """The insurer's systems; the router's rule file joins every release of the catalog `ivr.application.build`
    makes (checked against the flows of the same release there), so nothing here reads the flows."""
    client = redisconn.connect(settings.redis_url) if settings.redis_url else None
    sealer = sealing.for_settings(settings)
    history = CallerHistory(client, sealer)
    systems = Systems(admin=admin or await open_admin(settings), gateway=gateway or SimulatedGateway(),
                      sms=sms or Outbox(), codes=OneTimeCodes(client, sealer), history=history,
                      campaign=CampaignStore(client, sealer) if client is not None else None)
    rules = settings.routing_file or Path(settings.flows_dir) / "routing.yaml"
    router = Router(Path(rules), lambda call: gather(call, systems, history))
    return Embedded(systems, InsurerBackend(systems), router, HistoryRecorder(history), client)
