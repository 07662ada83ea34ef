"""`ivr seed`: a generated book of policyholders for the sample store.

Made to contain what callers of a real insurer bring: families sharing a
landline, several policies per person, policies in their first year (and
first three months), lapsed ones, failed debits with their reasons, orphan
policies whose agent has left, sales agents with their own numbers, and
clients whose number on file is their agent's (the agent filled the form
in). Generation is deterministic for a given seed and date.

A few fixed personas (`PERSONAS`) have known numbers and dates of birth so
the demo and the tests can call in as someone in particular.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.policyadmin.schema import SCHEMA

PRODUCTS = (
    # code, name, coverage text, downgrade allowed, minimum sum assured, sum range, monthly premium per 1,000
    ("term_life", "Term Life", "This includes accidental death and terminal illness.", 1, 50000, (100_000, 750_000), 0.35),
    ("whole_life", "Whole of Life", "It pays out whenever death occurs and builds a cash value.", 0, 0, (50_000, 300_000), 1.10),
    ("critical_illness", "Critical Illness", "It pays out on diagnosis of any of 42 listed conditions.", 1, 25000, (50_000, 250_000), 0.80),
    ("home_contents", "Home Contents", "It covers theft, fire and water damage to your belongings.", 1, 10000, (20_000, 100_000), 0.45),
    ("home_building", "Home Building", "It covers rebuilding your home; your lender requires this cover.", 0, 0, (150_000, 900_000), 0.12),
)
FAILURE_REASONS = (("insufficient_funds", 50), ("card_expired", 20), ("bank_rejected", 20), ("account_closed", 10))
CLAIM_STAGES = (
    ("received", "We will assign an assessor within 2 working days."),
    ("being assessed", "We expect a decision within 5 working days."),
    ("waiting for documents", "We have written to you about the documents we still need."),
    ("approved", "Payment will reach your account within 3 working days."),
)
FIRST = {"en": ["Ann", "Ben", "Chloe", "David", "Emma", "Frank", "Grace", "Henry", "Isla", "Jack", "Kate", "Liam",
                "Mia", "Noah", "Olivia", "Paul", "Ruby", "Sam", "Tara", "Will"],
         "zh": ["Wei", "Fang", "Min", "Jing", "Lei", "Yan", "Hao", "Li", "Jun", "Xiu"]}
LAST = {"en": ["Lee", "Smith", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Walker", "Wright", "Hall",
               "Green", "Baker", "Carter", "Moss"],
        "zh": ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"]}


@dataclass(frozen=True)
class Persona:
    """A policyholder with a known number and date of birth, for the demo and tests."""

    key: str
    phone: str
    first_name: str
    last_name: str
    policy: str
    product: str
    years: float  # how long the policy has been in force
    failure: str | None = None  # reason of an open failed debit
    account: str = "sim-approved-0"
    agent_left: bool = False
    claim: bool = False
    dob: str = "1980-05-31"
    id_number: str = "S1234567"
    language: str = "en"  # what the policyholder speaks: the call follows it once they are identified


PERSONAS = (
    Persona("policy", "+15550101", "Ann", "Lee", "40012345", "term_life", 3.0, claim=True),
    Persona("payment", "+15550102", "Ben", "Carter", "40012346", "term_life", 5.0, failure="insufficient_funds"),
    Persona("cancel", "+15550103", "Wei", "Chen", "40012347", "term_life", 4.0),
    Persona("person", "+15550104", "Dana", "Moss", "40012348", "whole_life", 6.0),
    Persona("first_year", "+15550105", "Emma", "Hall", "40012349", "critical_illness", 0.15),
    Persona("orphan", "+15550106", "Frank", "Green", "40012350", "term_life", 8.0, agent_left=True),
    Persona("declined", "+15550107", "Grace", "Wright", "40012351", "home_contents", 2.0,
            failure="insufficient_funds", account="sim-insufficient_funds-0"),
    Persona("gateway_timeout", "+15550108", "Henry", "Walker", "40012352", "term_life", 2.0,
            failure="bank_rejected", account="sim-timeout-0"),
    Persona("chinese", "+15550109", "Mei", "Wang", "40012353", "term_life", 3.0, language="zh"),
)
PERSONA_AGENT = ("A-0000", "Olive Grant", "+15559000")
PERSONA_AGENT_LEFT = ("A-0001", "Victor Hale", "+15559001")


@dataclass
class SeedReport:
    path: str
    seconds: float = 0.0
    bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "seconds": round(self.seconds, 2), "bytes": self.bytes, "counts": self.counts}


def seed_book(path: Path, families: int = 1500, seed: int = 7, today: dt.date | None = None,
              force: bool = False) -> SeedReport:
    """Write a generated book to a new SQLite file at `path` (refuses to overwrite unless `force`)."""
    started = time.perf_counter()
    if path.exists():
        if not force:
            raise FileExistsError(f"{path} exists; use --force to replace it")
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = _Generator(random.Random(seed), today or dt.date.today()).book(families)
    conn = sqlite3.connect(str(path))
    try:
        conn.executescript(SCHEMA)
        with conn:
            for table, records in rows.items():
                if records:
                    marks = ", ".join("?" * len(records[0]))
                    conn.executemany(f"INSERT INTO {table} VALUES ({marks})", records)
            conn.executemany("INSERT INTO meta VALUES (?, ?)",
                             [("seed", str(seed)), ("seeded_on", (today or dt.date.today()).isoformat()),
                              ("families", str(families))])
        counts = {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in rows}
        counts.update(_facts(conn, today or dt.date.today()))
    finally:
        conn.close()
    return SeedReport(str(path), time.perf_counter() - started, path.stat().st_size, counts)


def _facts(conn: sqlite3.Connection, today: dt.date) -> dict[str, int]:
    """The book's interesting populations, so `ivr seed` shows what callers there are."""
    year_ago, quarter_ago = (today - dt.timedelta(days=365)).isoformat(), (today - dt.timedelta(days=92)).isoformat()
    one = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
    return {
        "first_year_policies": one("SELECT COUNT(*) FROM policies WHERE start_date > ?", year_ago),
        "first_quarter_policies": one("SELECT COUNT(*) FROM policies WHERE start_date > ?", quarter_ago),
        "lapsed_policies": one("SELECT COUNT(*) FROM policies WHERE status = 'lapsed'"),
        "open_debit_failures": one("SELECT COUNT(*) FROM debit_failures WHERE resolved_at IS NULL"),
        "orphan_policies": one("SELECT COUNT(*) FROM policies p JOIN agents a ON a.id = p.agent_id WHERE a.active = 0"),
        "agents_left": one("SELECT COUNT(*) FROM agents WHERE active = 0"),
        "persons_with_agent_phone": one("SELECT COUNT(*) FROM persons WHERE phone IN (SELECT phone FROM agents)"),
        "shared_phones": one("SELECT COUNT(*) FROM (SELECT phone FROM persons WHERE phone IS NOT NULL "
                             "GROUP BY phone HAVING COUNT(*) > 1)"),
    }


class _Generator:
    def __init__(self, rng: random.Random, today: dt.date):
        self.rng = rng
        self.today = today
        self.rows: dict[str, list[tuple]] = {t: [] for t in (
            "products", "agents", "persons", "policies", "debit_failures", "claims")}
        self.used_phones: set[str] = set()
        self.used_numbers: set[str] = set()
        self.persons = 0
        self.claims = 0

    def book(self, families: int) -> dict[str, list[tuple]]:
        self.rows["products"] = [p[:5] for p in PRODUCTS]
        self.agents = self._agents(max(20, families // 12))
        self._personas()
        for index in range(1, families + 1):
            self._family(f"F-{index:05d}")
        return self.rows

    # --- agents and personas -----------------------------------------------------

    def _agents(self, count: int) -> list[tuple]:
        agents = [(*PERSONA_AGENT, 1, None), (*PERSONA_AGENT_LEFT, 0, (self.today - dt.timedelta(days=400)).isoformat())]
        for index in range(2, count + 2):
            left = self.rng.random() < 0.18
            left_on = (self.today - dt.timedelta(days=self.rng.randint(30, 1500))).isoformat() if left else None
            name = f"{self.rng.choice(FIRST['en'])} {self.rng.choice(LAST['en'])}"
            agents.append((f"A-{index:04d}", name, self._phone("+1555"), 0 if left else 1, left_on))
        self.rows["agents"] = agents
        for agent in agents:
            self.used_phones.add(agent[2])
        return agents

    def _personas(self) -> None:
        for index, persona in enumerate(PERSONAS):
            person_id = f"C-9{index:05d}"
            self.used_phones.add(persona.phone)
            self.used_numbers.add(persona.policy)
            self.rows["persons"].append((person_id, f"F-9{index:04d}", persona.first_name, persona.last_name,
                                         persona.dob, persona.id_number, persona.phone, persona.language))
            start = self.today - dt.timedelta(days=int(persona.years * 365))
            agent = PERSONA_AGENT_LEFT[0] if persona.agent_left else PERSONA_AGENT[0]
            self._policy(persona.policy, person_id, person_id, persona.product, start, "in_force", agent,
                         persona.account, sum_assured=250_000)
            if persona.failure:
                self._failure(persona.policy, persona.failure, days_ago=10)
            if persona.claim:
                self.rows["claims"].append(("CL-7781", persona.policy, "being assessed",
                                            "We expect a decision within 5 working days.",
                                            (self.today - dt.timedelta(days=12)).isoformat(), 0))

    # --- families ----------------------------------------------------------------

    def _family(self, family_id: str) -> None:
        rng = self.rng
        language = "zh" if rng.random() < 0.15 else "en"
        surname = rng.choice(LAST[language])
        adults = 1 if rng.random() < 0.35 else 2
        children = rng.choices([0, 1, 2, 3], weights=[40, 25, 25, 10])[0]
        landline = self._phone("+1555") if rng.random() < 0.12 else None
        members: list[tuple[str, bool]] = []
        for position in range(adults + children):
            adult = position < adults
            person_id = f"C-{self._next_person():06d}"
            dob = self._dob(adult)
            phone = self._person_phone(adult, landline, dob)
            self.rows["persons"].append((person_id, family_id, rng.choice(FIRST[language]), surname, dob.isoformat(),
                                         self._id_number(), phone, language))
            members.append((person_id, adult))
        for person_id, adult in members:
            if adult:
                for _ in range(rng.choices([1, 2, 3, 4], weights=[35, 35, 20, 10])[0]):
                    insured = rng.choice([m for m, _ in members]) if rng.random() < 0.3 else person_id
                    self._random_policy(person_id, insured)

    def _next_person(self) -> int:
        self.persons += 1
        return self.persons

    def _person_phone(self, adult: bool, landline: str | None, dob: dt.date) -> str | None:
        rng = self.rng
        if not adult:
            return self._phone("+1555") if self.today.year - dob.year >= 14 and rng.random() < 0.4 else None
        if landline and rng.random() < 0.6:
            return landline  # the family shares it
        roll = rng.random()
        if roll < 0.04:
            return rng.choice(self.agents)[2]  # the agent put their own number on the form
        if roll < 0.06:
            return None
        return self._phone("+1555")

    def _random_policy(self, holder: str, insured: str) -> None:
        rng = self.rng
        product = rng.choice(PRODUCTS)
        roll = rng.random()
        if roll < 0.05:
            days = rng.randint(1, 91)  # first three months
        elif roll < 0.15:
            days = rng.randint(92, 364)  # rest of the first year
        else:
            days = rng.randint(365, 3650)
        start = self.today - dt.timedelta(days=days)
        status = "lapsed" if days >= 365 and rng.random() < 0.08 else "in_force"
        agent = rng.choice(self.agents)[0]
        failure = None
        if status == "in_force" and rng.random() < 0.06:
            failure = rng.choices([r for r, _ in FAILURE_REASONS], weights=[w for _, w in FAILURE_REASONS])[0]
        account = self._account(failure)
        number = self._policy_number()
        low, high = product[5]
        self._policy(number, holder, insured, product[0], start, status, agent, account,
                     sum_assured=round(rng.randint(low, high), -3))
        if failure:
            self._failure(number, failure, days_ago=rng.randint(1, 25))
        if rng.random() < 0.04:
            self.claims += 1
            stage, next_step = rng.choice(CLAIM_STAGES)
            self.rows["claims"].append((f"CL-{10000 + self.claims}", number, stage, next_step,
                                        (self.today - dt.timedelta(days=rng.randint(1, 60))).isoformat(), 0))

    def _account(self, failure: str | None) -> str:
        """The simulated gateway decides a debit by the account: the seed says how each one behaves."""
        rng = self.rng
        if failure == "insufficient_funds":
            behaviour = "approved" if rng.random() < 0.5 else "insufficient_funds"  # payday may have come
        elif failure in ("card_expired", "bank_rejected"):
            behaviour = failure
        elif failure == "account_closed":
            behaviour = "bank_rejected"
        else:
            behaviour = "timeout" if rng.random() < 0.03 else "approved"
        return f"sim-{behaviour}-{rng.randint(0, 10**6)}"

    def _policy(self, number: str, holder: str, insured: str, product: str, start: dt.date, status: str,
                agent: str, account: str, sum_assured: float) -> None:
        rate = next(p[6] for p in PRODUCTS if p[0] == product)
        premium = round(sum_assured / 1000 * rate, 2)
        next_due = _next_monthly(start, self.today)
        last4 = f"{self.rng.randint(0, 9999):04d}"
        self.rows["policies"].append((number, holder, insured, product, status, start.isoformat(), premium, sum_assured,
                                      next_due.isoformat(), agent, account, f"tok_{number}", last4))

    def _failure(self, number: str, reason: str, days_ago: int) -> None:
        policy = self.rows["policies"][-1]
        due = self.today - dt.timedelta(days=days_ago)
        self.rows["debit_failures"].append((None, number, policy[6], due.isoformat(), reason,
                                            (due + dt.timedelta(days=30)).isoformat(), None, None))

    # --- values ------------------------------------------------------------------

    def _phone(self, prefix: str) -> str:
        while True:
            phone = f"{prefix}{self.rng.randint(2_000_000, 8_999_999)}"
            if phone not in self.used_phones:
                self.used_phones.add(phone)
                return phone

    def _policy_number(self) -> str:
        while True:
            number = str(self.rng.randint(41_000_000, 49_999_999))
            if number not in self.used_numbers:
                self.used_numbers.add(number)
                return number

    def _dob(self, adult: bool) -> dt.date:
        years = self.rng.randint(25, 75) if adult else self.rng.randint(1, 17)
        return self.today - dt.timedelta(days=years * 365 + self.rng.randint(0, 364))

    def _id_number(self) -> str:
        return f"{self.rng.choice('STFG')}{self.rng.randint(1_000_000, 9_999_999)}"


def _next_monthly(start: dt.date, today: dt.date) -> dt.date:
    """The first monthly anniversary of `start` on or after today."""
    day = min(start.day, 28)
    candidate = dt.date(today.year, today.month, day)
    if candidate < today:
        month = today.month % 12 + 1
        candidate = dt.date(today.year + (today.month == 12), month, day)
    return max(candidate, start)
