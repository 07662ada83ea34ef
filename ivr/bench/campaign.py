"""`ivr bench campaign`: a simulated week of the sample book's failed debits through the rescue campaign.

Everything but the policyholders and the calendar is the product: the sample
book, the campaign (scheduler, Redis store, ARI dialer), the simulator's
Asterisk (originate, the shipped `[ivr-outbound]` dialplan with AMD(), the
callees' phones), the controller running the outbound flow, the payment
journey and its gateway. The calendar is virtual: the campaign's clock moves
in `step` minutes a round, and each round waits for the calls it placed to
end, so a week runs in minutes. The policyholders are scripted at assumed
rates (`Population`): who pays after the text alone, who answers, busy, no
answer, a machine, someone else answering, and what a policyholder does on
the call (pay, promise, ask for a person, hang up).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ivr.application import build, serve
from ivr.ari.client import AriClient
from ivr.ari.events import EventStream
from ivr.campaign.command import summary
from ivr.campaign.dialer import AriDialer, DialPlan
from ivr.campaign.model import Rules
from ivr.campaign.runner import Campaign
from ivr.campaign.schedule import Event, PlaceCall, SendText
from ivr.campaign.store import CampaignStore
from ivr.config import Settings
from ivr.demo import ROOT, placeholder_audio
from ivr.policyadmin.seed import seed_book
from ivr.prompts import load_prompts
from ivr.redis_server import private_redis
from ivr.sim import SimulatorConfig, start_simulator
from ivr.sim.callees import CalleeScript
from ivr.sim.config import load_asterisk_conf
from ivr.sms import Outbox

MAX_PROMPTS = 40  # prompts a scripted policyholder listens to before hanging up


@dataclass(frozen=True)
class Population:
    """Assumed behaviour of policyholders with a failed debit (per contact, independent)."""

    pay_after_text: float = 0.20  # pay within two days of the text, without a call
    human: float = 0.38  # per call: a person answers
    machine: float = 0.22  # voicemail
    busy: float = 0.07
    unreachable: float = 0.03  # the rest: no answer
    right_person: float = 0.85  # the person who answers is the policyholder
    pay_now: float = 0.50  # on the call, once verified: retry the debit now
    promise: float = 0.30  # arrange a date
    agent: float = 0.08  # ask for a person; the rest hang up without deciding
    opt_out: float = 0.02  # of those who answer: "stop calling"


@dataclass
class _Person:
    phone: str
    dob: str  # YYYYMMDD, what the policyholder keys
    choice: str = ""  # what they do on this call


def run(days: float = 7.0, step_minutes: float = 30.0, seed: int = 7, targets: int | None = None,
        population: Population | None = None) -> dict[str, Any]:
    with private_redis() as url:
        return asyncio.run(_run(url, days, step_minutes, seed, targets, population or Population()))


async def _run(redis_url: str, days: float, step_minutes: float, seed: int, limit: int | None,
               population: Population) -> dict[str, Any]:
    rng = random.Random(seed)
    prompts, _ = load_prompts(ROOT / "prompts")
    with tempfile.TemporaryDirectory(prefix="ivr-bench-campaign-") as tmp:
        sounds = placeholder_audio(prompts, Path(tmp) / "sounds", seconds_per_char=0.01)
        config = load_asterisk_conf(SimulatorConfig(sounds_dirs=[sounds], time_scale=0.05), ROOT / "asterisk-conf")
        sim = await start_simulator(config)
        settings = Settings(ari_url=sim.base_url, ari_user=config.username, ari_password=config.password,
                            redis_url=redis_url, http_port=0, flows_dir=ROOT / "flows", prompts_dir=ROOT / "prompts",
                            sounds_dir=sounds / "ivr", book_path=Path(tmp) / "book.sqlite", log_level="ERROR", speech="off")
        seed_book(settings.book_path)
        if limit is not None:
            _keep_failures(settings.book_path, limit)
        people = _people(settings.book_path)
        application = await build(settings)
        stop, ready = asyncio.Event(), asyncio.Event()
        controller = asyncio.create_task(serve(application, stop=stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 20)
        try:
            week = _Week(application, settings, sim, people, population, rng)
            result = await week.run(days, step_minutes)
        finally:
            stop.set()
            await controller
            await sim.stop()
    return {"benchmark": "campaign", "days": days, "round_minutes": step_minutes, "seed": seed,
            "population": asdict(population), **result}


class _Week:
    def __init__(self, application: Any, settings: Settings, sim: Any, people: dict[str, _Person],
                 population: Population, rng: random.Random):
        self.sim = sim
        self.settings = settings
        self.people = people
        self.population = population
        self.rng = rng
        insurer = application.insurer
        self.admin = insurer.systems.admin
        self.store = CampaignStore(insurer.redis_client, insurer.systems.history.sealer)
        self.now = _monday_morning()
        self.inbox: list[Event] = []
        self.ari = AriClient(settings.ari_url, settings.ari_user, settings.ari_password_value)
        self.dialer = AriDialer(self.ari, "ivr-campaign", DialPlan(caller_id='"Insurer" <+15550000>'),
                                self.inbox.append, lambda: self.now)
        self.campaign = Campaign(self.store, self.admin, Outbox(), self.dialer, Rules(),
                                 clock=lambda: self.now, inbox=self.inbox)
        self.text_payments: list[tuple[float, str]] = []
        self.drivers: list[asyncio.Task] = []
        self.calls_placed = 0
        self.choices: Counter[str] = Counter()

    async def run(self, days: float, step_minutes: float) -> dict[str, Any]:
        stream = EventStream(self.settings.ari_url, self.settings.ari_user, self.settings.ari_password_value,
                             "ivr-campaign", on_event=self.dialer.on_event)
        watching = asyncio.create_task(stream.run())
        started = time.monotonic()
        try:
            await stream.wait_connected(10)
            end = self.now + days * 86400
            while self.now < end:
                placed = self.calls_placed
                await self._round()
                if self.calls_placed > placed:
                    local = dt.datetime.fromtimestamp(self.now, ZoneInfo("Europe/London"))
                    print(f"{local:%a %H:%M}: {self.calls_placed - placed} calls placed; "
                          f"{summary(self.campaign.state)['results']}", file=sys.stderr, flush=True)
                self.now += step_minutes * 60
        finally:
            await stream.aclose()
            watching.cancel()
            await self.ari.close()
        finished = await self.store.finished()
        return {"wall_seconds": round(time.monotonic() - started, 1), "calls_placed": self.calls_placed,
                "callee_choices": dict(self.choices), "campaign": summary(self.campaign.state),
                "recovered_by_channel": dict(Counter(f["channel"] or "none" for f in finished
                                                     if f["outcome"] in ("paid", "promised"))),
                "text_messages": len([a for t in self.campaign.state.targets.values() for a in t.attempts
                                      if a.kind == "text"])}

    async def _round(self) -> None:
        await self._pay_after_texts()
        self._script_callees()
        actions = await self.campaign.round()
        for action in actions:
            if isinstance(action, SendText) and self.rng.random() < self.population.pay_after_text:
                self.text_payments.append((self.now + self.rng.uniform(3600, 48 * 3600), action.key))
            elif isinstance(action, PlaceCall):
                self.calls_placed += 1
                self.drivers.append(asyncio.create_task(self._drive(action.attempt)))
        await self._settle()

    async def _settle(self, timeout: float = 40.0) -> None:
        """Wait (real time) until every call placed has ended and the campaign knows how."""
        deadline = time.monotonic() + timeout
        while any(t.in_flight for t in self.campaign.state.targets.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            await self.campaign.settle()
        stuck = [t.in_flight for t in self.campaign.state.targets.values() if t.in_flight]
        if stuck:  # the campaign times them out (attempt_timeout) as it would a lost call
            print(f"{len(stuck)} calls still in flight after {timeout:.0f} s", file=sys.stderr, flush=True)
        await asyncio.gather(*self.drivers, return_exceptions=True)
        self.drivers.clear()

    async def _pay_after_texts(self) -> None:
        due = [(at, key) for at, key in self.text_payments if at <= self.now]
        self.text_payments = [(at, key) for at, key in self.text_payments if at > self.now]
        for _, key in due:
            target = self.campaign.state.targets[key]
            if target.status != "open":
                continue
            number = self.store.sealer.open(target.policy)
            failure = await self.admin.debit_failure(number)
            if failure is not None:
                await self.admin.record_payment(number, failure.amount, f"bank-{key[:8]}", None, f"text-{key}")

    def _script_callees(self) -> None:
        """What each policyholder's phone does if it is called this round."""
        p, scripts = self.population, {}
        for person in self.people.values():
            roll = self.rng.random()
            person.choice = ""
            if roll < p.human:
                scripts[person.phone] = CalleeScript(outcome="answer", answerer="human", after=self.rng.uniform(2, 12))
                person.choice = self._choice()
            elif roll < p.human + p.machine:
                scripts[person.phone] = CalleeScript(outcome="answer", answerer="machine", after=self.rng.uniform(10, 20))
            elif roll < p.human + p.machine + p.busy:
                scripts[person.phone] = CalleeScript(outcome="busy", after=1.0)
            elif roll < p.human + p.machine + p.busy + p.unreachable:
                scripts[person.phone] = CalleeScript(outcome="unreachable", after=0.5)
            else:
                scripts[person.phone] = CalleeScript(outcome="noanswer")
        self.sim.sim.callees.put(scripts)

    def _choice(self) -> str:
        p, roll = self.population, self.rng.random()
        if self.rng.random() < p.opt_out:
            return "opt_out"
        if self.rng.random() >= p.right_person:
            return "not_them"
        for name, share in (("pay_now", p.pay_now), ("promise", p.promise), ("agent", p.agent)):
            if roll < share:
                return name
            roll -= share
        return "hang_up"

    async def _drive(self, attempt: str) -> None:
        """The policyholder's side of an answered call: keys for what they hear."""
        call = await self._sim_call(attempt)
        if call is None:
            return
        key = attempt.rsplit("-", 1)[0]
        person = self.people.get(self.campaign.state.targets[key].person)
        if person is None:
            return
        if person.choice:
            self.choices[person.choice] += 1
        seen = 0
        try:
            while not call.ended.is_set() and seen < MAX_PROMPTS:
                await call.wait_until(lambda c, n=seen: c.ended.is_set() or (len(c.prompts) > n and c.prompts[-1].finished_at is not None), timeout=60)
                if call.ended.is_set():
                    break
                seen = len(call.prompts)
                heard = call.prompts[-1].media_uri.rsplit("/", 1)[-1]
                declined = any(p.media_uri.endswith("payment.declined") for p in call.prompts)
                keys = _answer(heard, person, declined)
                if keys == "hangup":
                    await call.hangup()
                elif keys:
                    await call.press(keys, interval=0.05)
        except TimeoutError:
            pass
        if not call.ended.is_set():  # lost in the flow: a real caller would give up too
            await call.hangup()

    async def _sim_call(self, attempt: str) -> Any:
        for _ in range(600):
            channel = next((cid for cid, placed in self.dialer.placed.items() if placed.attempt == attempt), None)
            if channel is None:
                if not any(t.in_flight == attempt for t in self.campaign.state.targets.values()):
                    return None
            elif (call := self.sim.sim.calls.get(channel)) is not None:
                await call.wait_until(lambda c: c.ended.is_set() or c.channel.state == "Up", timeout=60)
                return None if call.ended.is_set() else call
            await asyncio.sleep(0.05)
        return None


def _answer(heard: str, person: _Person, declined: bool) -> str:
    choice = person.choice
    if heard in ("outbound.greet", "outbound.greet_again"):
        return {"not_them": "2", "opt_out": "9"}.get(choice, "1")
    if heard in ("verify.dob", "verify.dob_again"):
        return "hangup" if choice == "hang_up" else person.dob + "#"
    if heard in ("payment.offer", "payment.offer_again", "payment.offer_help", "payment.offer_other"):
        if choice == "agent":
            return "0"
        return "3" if choice == "promise" or declined else "1"
    if heard == "payment.promise_date":
        return (dt.date.today() + dt.timedelta(days=7)).strftime("%Y%m%d")
    if heard == "common.readback_digits":
        return "1"
    return ""


def _people(book: Path) -> dict[str, _Person]:
    with sqlite3.connect(book) as db:
        rows = db.execute("SELECT DISTINCT pe.id, pe.phone, pe.dob FROM debit_failures f "
                          "JOIN policies p ON p.number = f.policy_number JOIN persons pe ON pe.id = p.holder_id "
                          "WHERE f.resolved_at IS NULL AND pe.phone IS NOT NULL").fetchall()
    return {pid: _Person(phone, dob.replace("-", "")) for pid, phone, dob in rows}


def _keep_failures(book: Path, limit: int) -> None:
    with sqlite3.connect(book) as db:
        db.execute("DELETE FROM debit_failures WHERE id NOT IN (SELECT id FROM debit_failures ORDER BY id LIMIT ?)",
                   (limit,))


def _monday_morning() -> float:
    today = dt.date.today()
    monday = today - dt.timedelta(days=today.weekday())
    return dt.datetime.combine(monday, dt.time(8, 0), tzinfo=ZoneInfo("Europe/London")).timestamp()
