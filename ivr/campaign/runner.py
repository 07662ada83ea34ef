"""The campaign's shell: the policy book, texts and Asterisk around the pure scheduler.

One round (`Campaign.round`), every `interval` seconds of `ivr campaign run`:
1. new open failed debits in the book become targets (whom to reach, sealed);
2. outcomes the controller wrote since the last round are fed in (a campaign
   call that ended; a caller who paid on their own call);
3. for each target that is due, the book and the do-not-call list are looked
   at first: a debit paid or promised meanwhile ends it, a blocked number too;
4. a `Tick`: texts are sent and calls placed (`Dialer`), within the rules.
The state is saved after each round, so a restart loses nothing and repeats
no contact that was made.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Protocol

import phonenumbers
from phonenumbers import timezone as phone_zones

from ivr.campaign import schedule as sch
from ivr.campaign.model import CampaignState, Rules, Target
from ivr.campaign.store import CampaignStore, target_key
from ivr.masking import mask_policy
from ivr.policyadmin.base import PolicyAdmin
from ivr.sms import SmsSender

log = logging.getLogger(__name__)

BOOK_LIMIT = 10_000  # failed debits read per round
# how the campaign counts a call's end, from the call record's outcome (the outbound flow's hang-ups)
CALL_OUTCOMES = {"voicemail_left": "machine", "not_reached": "not_reached", "opted_out": "opted_out",
                 "transferred": "transferred", "caller_hangup": "caller_hangup", "unknown_contact": "failed"}


class Dialer(Protocol):
    """Places a campaign call; tells the campaign (`on_failed`) when it reached nobody."""

    async def place(self, attempt: str, phone: str, language: str) -> None: ...


class Campaign:
    def __init__(self, store: CampaignStore, book: PolicyAdmin, sms: SmsSender, dialer: Dialer, rules: Rules,
                 *, clock: Callable[[], float] = time.time, text: Callable[[Target, str], str] | None = None,
                 inbox: list[sch.Event] | None = None):
        """`inbox`: events that arrive between rounds (the dialer's calls that reached nobody)."""
        self.store = store
        self.book = book
        self.sms = sms
        self.dialer = dialer
        self.rules = rules
        self.clock = clock
        self.text = text or default_text
        self.state = CampaignState()
        self.inbox = inbox if inbox is not None else []
        self._changed: set[str] = set()
        self._finished: list[tuple[str, str]] = []  # (result, channel) of targets ended since the last save

    async def load(self) -> None:
        self.state = await self.store.load()

    def feed(self, event: sch.Event) -> list[sch.Action]:
        """One event through the scheduler; the targets it touched are saved at the end of the round."""
        result = sch.step(self.rules, self.state, event)
        before, after = self.state.targets, result.state.targets  # a changed target is a new object
        self._changed |= {k for k, t in after.items() if before.get(k) is not t} | (before.keys() - after.keys())
        self.state = result.state
        self._finished += [(a.result, a.channel or _last_contact(after[a.key]))  # not recovered: the last way tried
                           for a in result.actions if isinstance(a, sch.Finished)]
        return result.actions

    async def round(self) -> list[sch.Action]:
        now = self.clock()
        self._take_inbox()
        await self._find_new(now)
        await self._read_outcomes()
        await self._check_due(now)
        actions = self.feed(sch.Tick(now))
        for action in actions:
            await self._perform(action, now)
        await self.save()
        return actions

    async def settle(self) -> None:
        """Between rounds: take in what arrived (calls that reached nobody, outcomes written), save."""
        self._take_inbox()
        await self._read_outcomes()
        await self.save()

    def _take_inbox(self) -> None:
        while self.inbox:
            self.feed(self.inbox.pop(0))

    async def save(self) -> None:
        await self.store.save(self.state, self._changed)
        self._changed = set()
        now = self.clock()
        for result, channel in self._finished:
            await self.store.note_finished(result, channel, now)
        self._finished = []

    # --- the book ---------------------------------------------------------------

    async def _find_new(self, now: float) -> None:
        listed = set()
        for failure in await self.book.open_debit_failures(BOOK_LIMIT):
            key = target_key(self.store.sealer, failure.policy_number)
            listed.add(key)
            if key in self.state.targets:
                continue
            target = await self._target(key, failure.policy_number, failure.amount, failure.cancel_on, now)
            if target is not None:
                self.feed(sch.Found(target))
        self.feed(sch.Listed(frozenset(listed), now))

    async def _target(self, key: str, number: str, amount: float, cancel_on: dt.date, now: float) -> Target | None:
        policy = await self.book.policy(number)
        person = await self.book.person(policy.holder_id) if policy else None
        if person is None:
            log.warning("campaign: policy %s has no holder on file", mask_policy(number))
            return None
        zones = (person.timezone,) if person.timezone else zones_of(person.phone or "", self.rules.insurer_timezone)
        sealer = self.store.sealer
        return Target(key=key, policy=sealer.seal(number), phone=sealer.seal(person.phone) if person.phone else None,
                      person=person.id, language=person.language, zones=zones, amount=amount, cancel_on=cancel_on,
                      found_at=now)

    async def _check_due(self, now: float) -> None:
        for key in sch.due(self.state, now):
            target = self.state.targets[key]
            number = self.store.sealer.open(target.policy)
            if await self.book.debit_failure(number) is None:
                self.feed(sch.Resolved(key, "paid", now))
            elif await self.book.promised_by(number) is not None:
                self.feed(sch.Resolved(key, "promised", now))
            elif target.phone and await self.store.blocked(self.store.sealer.open(target.phone)):
                self.feed(sch.Blocked(key, "do_not_call", now))

    # --- outcomes the controller wrote ----------------------------------------------

    async def _read_outcomes(self) -> None:
        while entries := await self.store.outcomes():
            for entry_id, fields in entries:
                self._outcome(fields)
                await self.store.advance(entry_id)

    def _outcome(self, fields: dict[str, str]) -> None:
        at = self.clock()  # when the campaign learns it: its next contact counts from here
        payment, attempt = fields.get("payment", ""), fields.get("attempt", "")
        if attempt:
            outcome = payment if payment in ("paid", "promised") else CALL_OUTCOMES.get(fields.get("outcome", ""), "open")
            self.feed(sch.CallEnded(attempt, outcome, at))
        elif payment in ("paid", "promised") and fields.get("target"):
            self.feed(sch.Resolved(fields["target"], payment, at, channel="inbound"))

    # --- contacts ------------------------------------------------------------------

    async def _perform(self, action: sch.Action, now: float) -> None:
        if isinstance(action, sch.Finished):
            return  # noted when the state is saved
        target = self.state.targets[action.key]
        phone = self.store.sealer.open(target.phone) if target.phone else ""
        if isinstance(action, sch.SendText):
            await self.sms.send(phone, self.text(target, self.store.sealer.open(target.policy)), "notice")
        elif isinstance(action, sch.PlaceCall):
            await self.store.put_contact(action.attempt, target)
            await self.store.save(self.state, {action.key})  # the call is in flight before it can end
            try:
                await self.dialer.place(action.attempt, phone, target.language)
            except Exception as exc:  # noqa: BLE001 - Asterisk refused or is away: the next attempt will come
                log.warning("campaign: call %s not placed: %s", action.attempt, exc)
                self.inbox.append(sch.CallFailed(action.attempt, "failed", self.clock()))


def _last_contact(target: Target) -> str:
    return "outbound_call" if target.calls else "text"


def zones_of(phone: str, fallback: str) -> tuple[str, ...]:
    """The time zones a phone number may be in (a country's or an area code's), else `fallback`."""
    try:
        parsed = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return (fallback,)
    zones = tuple(z for z in phone_zones.time_zones_for_number(parsed) if z != "Etc/Unknown")
    return zones[:8] or (fallback,)


def default_text(target: Target, policy_number: str) -> str:
    """The first contact: a text naming the policy by its last digits only, and how to stop."""
    return (f"Your insurer: the premium of {target.amount:.2f} on your policy ending {policy_number[-4:]} "
            f"could not be collected. To keep your cover, pay before {target.cancel_on:%d %b %Y}: call us, "
            "or we will call you. Reply STOP to opt out of these messages.")
