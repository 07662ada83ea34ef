"""`ivr campaign`: run the rescue campaign, see where it stands, keep the do-not-call list."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections import Counter
from typing import Any


def add_parser(commands: Any) -> None:
    p = commands.add_parser(
        "campaign", help="outbound rescue campaign for failed premiums: run, status, block/unblock a number",
        description="Reaches policyholders whose premium debit failed before their policy cancels: a text first, "
                    "then calls within calling hours in their time zone, retries with backoff, a daily cap, the "
                    "do-not-call list and opt-outs honoured (settings IVR_CAMPAIGN_*: `ivr serve --help`). Calls "
                    "are placed through Asterisk into [ivr-outbound] (answering-machine detection), then the "
                    "controller's outbound flow. State in Redis: a restart goes on where it stopped.")
    sub = p.add_subparsers(title="campaign commands", metavar="ACTION")
    run = sub.add_parser("run", help="work the campaign: every --interval seconds, contact whoever is due")
    run.add_argument("--interval", type=float, default=60.0, help="seconds between rounds (default 60)")
    run.add_argument("--once", action="store_true", help="one round, then exit (calls placed go on in Asterisk)")
    run.set_defaults(handler=cmd_run)
    status = sub.add_parser("status", help="targets by state and result, recoveries by channel (JSON)")
    status.set_defaults(handler=cmd_status)
    for name, helptext in (("block", "add a number to the do-not-call list"),
                           ("unblock", "take a number off the do-not-call list")):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("number", help="the phone number, as the policy book holds it (+ and digits)")
        q.set_defaults(handler=cmd_block, unblock=name == "unblock")
    p.set_defaults(handler=lambda _args: (p.print_help(), 2)[1])


def cmd_run(args: argparse.Namespace) -> int:
    from ivr.config import Settings

    settings = Settings()
    if not settings.redis_url:
        print("the campaign keeps its state in Redis: set IVR_REDIS_URL", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(settings, args.interval, args.once))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2


async def _run(settings: Any, interval: float, once: bool) -> int:
    import time

    from ivr import redisconn, sealing
    from ivr.ari.client import AriClient
    from ivr.ari.events import EventStream
    from ivr.campaign.dialer import AriDialer, DialPlan
    from ivr.campaign.rules import rules_from
    from ivr.campaign.runner import Campaign
    from ivr.campaign.schedule import Event
    from ivr.campaign.store import CampaignStore
    from ivr.embedded import open_admin
    from ivr.logsetup import configure
    from ivr.sms import Outbox

    configure(settings.log_level, settings.log_format)
    rules = rules_from(settings)
    store = CampaignStore(redisconn.connect(settings.redis_url), sealing.for_settings(settings))
    admin = await open_admin(settings)
    inbox: list[Event] = []
    ari = AriClient.from_settings(settings)
    plan = DialPlan(endpoint=settings.campaign_endpoint, caller_id=settings.campaign_caller_id)
    dialer = AriDialer(ari, settings.campaign_ari_app, plan, inbox.append, time.time)
    stream = EventStream(settings.ari_url, settings.ari_user, settings.ari_password_value, settings.campaign_ari_app,
                         on_event=dialer.on_event)
    campaign = Campaign(store, admin, Outbox(), dialer, rules, inbox=inbox)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    watching = asyncio.create_task(stream.run())
    try:
        await stream.wait_connected(10)
        await campaign.load()
        while not stop.is_set():
            await campaign.round()
            if once:
                break
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass
    finally:
        await stream.aclose()
        watching.cancel()
        await ari.close()
        await admin.close()
        await store.client.aclose()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ivr.config import Settings

    settings = Settings()
    if not settings.redis_url:
        print("set IVR_REDIS_URL", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(_status(settings)), indent=2))
    return 0


async def _status(settings: Any) -> dict[str, Any]:
    from ivr.campaign.store import open_store

    async with open_store(settings.redis_url, settings) as store:
        return summary(await store.load())


def summary(state: Any) -> dict[str, Any]:
    """Counts only: no target is named."""
    targets = list(state.targets.values())
    results = Counter(t.result for t in targets if t.status == "done")
    recovered = Counter(t.recovered_by for t in targets if t.recovered_by)
    attempts = Counter(a.result or "in_flight" for t in targets for a in t.attempts if a.kind == "call")
    done = sum(results.values())
    return {"targets": len(targets), "open": len(targets) - done, "done": done, "results": dict(results),
            "recovered_by": dict(recovered), "texts": sum(1 for t in targets if t.texted_at is not None),
            "calls": sum(t.calls for t in targets), "call_results": dict(attempts),
            "recovered": round((results["paid"] + results["promised"]) / done, 3) if done else None,
            "calls_today": state.calls_today, "day": state.day}


def cmd_block(args: argparse.Namespace) -> int:
    from ivr.backend.systems import normalise_phone
    from ivr.config import Settings

    settings = Settings()
    number = normalise_phone(args.number)
    if number is None or not settings.redis_url:
        print("need a phone number (+ and 8 to 15 digits) and IVR_REDIS_URL", file=sys.stderr)
        return 2
    asyncio.run(_block(settings, number, args.unblock))
    print("taken off the do-not-call list" if args.unblock else "on the do-not-call list")
    return 0


async def _block(settings: Any, number: str, unblock: bool) -> None:
    from ivr.campaign.store import open_store

    async with open_store(settings.redis_url, settings) as store:
        await (store.unblock(number) if unblock else store.block(number))
