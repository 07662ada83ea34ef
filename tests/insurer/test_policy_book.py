"""The sample book (`ivr seed`) and the SQLite store: who is in it, and writes that are all or nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import sqlite3

import pytest

from ivr.policyadmin import sqlite_store
from ivr.policyadmin.model import PaymentMethod
from ivr.policyadmin.seed import PERSONAS, seed_book
from ivr.policyadmin.sqlitedb import Database
from tests.insurer.conftest import TODAY, persona


def test_seeded_book_has_the_callers_an_insurer_gets(tmp_path):
    report = seed_book(tmp_path / "book.sqlite", families=1500, today=TODAY)
    c = report.counts
    assert c["persons"] > 3000 and c["policies"] > c["persons"]  # thousands, several policies per holder
    assert c["first_year_policies"] > c["first_quarter_policies"] > 100
    assert c["lapsed_policies"] > 100 and c["open_debit_failures"] > 100
    assert c["orphan_policies"] > 100 and c["agents_left"] > 5
    assert c["persons_with_agent_phone"] > 20 and c["shared_phones"] > 20
    conn = sqlite3.connect(tmp_path / "book.sqlite")
    reasons = {r for (r,) in conn.execute("SELECT DISTINCT reason FROM debit_failures")}
    assert {"insufficient_funds", "card_expired", "bank_rejected", "account_closed"} <= reasons
    families = conn.execute("SELECT COUNT(*) FROM (SELECT family_id FROM persons GROUP BY family_id HAVING COUNT(*) > 1)")
    assert families.fetchone()[0] > 500
    several = conn.execute("SELECT COUNT(*) FROM (SELECT holder_id FROM policies GROUP BY holder_id HAVING COUNT(*) > 1)")
    assert several.fetchone()[0] > 500
    phones = {p for (p,) in conn.execute("SELECT phone FROM persons")}
    assert all(p.phone in phones for p in PERSONAS)
    assert report.seconds < 10


def test_same_seed_same_day_same_book(tmp_path):
    def digest(path):
        conn = sqlite3.connect(path)
        rows = conn.execute("SELECT * FROM persons ORDER BY id").fetchall() + conn.execute(
            "SELECT * FROM policies ORDER BY number").fetchall()
        return hashlib.sha256(repr(rows).encode()).hexdigest()
    seed_book(tmp_path / "a.sqlite", families=200, seed=3, today=TODAY)
    seed_book(tmp_path / "b.sqlite", families=200, seed=3, today=TODAY)
    seed_book(tmp_path / "c.sqlite", families=200, seed=4, today=TODAY)
    assert digest(tmp_path / "a.sqlite") == digest(tmp_path / "b.sqlite") != digest(tmp_path / "c.sqlite")


def test_seed_refuses_to_overwrite_without_force(tmp_path):
    seed_book(tmp_path / "book.sqlite", families=10, today=TODAY)
    with pytest.raises(FileExistsError):
        seed_book(tmp_path / "book.sqlite", families=10, today=TODAY)
    assert seed_book(tmp_path / "book.sqlite", families=10, today=TODAY, force=True).counts["persons"] > 0


async def test_personas_read_back_as_seeded(admin):
    ann = (await admin.persons_by_phone(persona("policy").phone))[0]
    assert (ann.first_name, ann.dob) == ("Ann", dt.date(1980, 5, 31))
    policy = await admin.policy(persona("orphan").policy)
    assert policy.orphan and not policy.first_year(TODAY)
    assert (await admin.policy(persona("first_year").policy)).first_quarter(TODAY)
    assert await admin.check_identity(ann.id, dob=dt.date(1980, 5, 31))
    assert await admin.check_identity(ann.id, id_last4="4567")
    assert not await admin.check_identity(ann.id, dob=dt.date(1980, 5, 30))
    assert not await admin.check_identity(ann.id)


async def test_a_cancelled_transaction_writes_nothing(tmp_path):
    db = await Database(tmp_path / "t.sqlite").open()
    await db.call(lambda conn: conn.execute("CREATE TABLE t (x INTEGER)"))
    entered = asyncio.Event()

    async def write():
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
            entered.set()
            await asyncio.sleep(5)  # the caller hangs up here

    task = asyncio.create_task(write())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await db.fetch_one("SELECT COUNT(*) AS n FROM t"))["n"] == 0
    async with db.transaction() as tx:  # and the database is usable afterwards
        await tx.execute("INSERT INTO t VALUES (2)")
    assert (await db.fetch_one("SELECT COUNT(*) AS n FROM t"))["n"] == 1
    await db.close()


async def test_phone_change_cancelled_mid_write_leaves_record_and_audit_untouched(admin, monkeypatch):
    person = (await admin.persons_by_phone(persona("policy").phone))[0]
    reached = asyncio.Event()
    original = sqlite_store._remember

    async def slow_remember(tx, key, result, now):
        reached.set()  # the phone and audit rows are written, the commit has not happened
        await asyncio.sleep(5)
        await original(tx, key, result, now)

    monkeypatch.setattr(sqlite_store, "_remember", slow_remember)
    task = asyncio.create_task(admin.change_phone(person.id, "+15551234567", [], "k1"))
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await admin.person(person.id)).phone == persona("policy").phone
    assert await admin.count("audit") == 0 and await admin.count("idempotency") == 0


async def test_a_write_repeated_with_its_key_happens_once(admin):
    number = persona("payment").policy
    first = await admin.record_payment(number, 87.5, "auth_1", PaymentMethod("tok", "4242"), "same-key")
    again = await admin.record_payment(number, 87.5, "auth_1", PaymentMethod("tok", "4242"), "same-key")
    assert first == again
    assert await admin.count("payments", "policy_number = ?", (number,)) == 1
    assert await admin.debit_failure(number) is None
    assert (await admin.policy(number)).card_last4 == "4242"
