"""The sample policy book on SQLite: the embedded default behind `ivr serve` and `ivr demo`.

Every write is one transaction (see `sqlitedb`): the business change, its
audit or review rows and the idempotency key commit together or not at all.
A repeated key returns the first result without writing again, which makes a
retried action (or a call resumed on another controller) safe.

The audit trail keeps the old and new phone numbers sealed (`ivr.sealing`):
an auditor's tool opens them with the data keys, a copy of the file alone
gives nothing away.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivr.policyadmin.base import Conflict
from ivr.policyadmin.model import (
    Agent,
    Claim,
    DebitFailure,
    DowngradeOptions,
    PaymentMethod,
    Person,
    PhoneChange,
    PhoneOwners,
    Policy,
)
from ivr.policyadmin.schema import SCHEMA
from ivr.policyadmin.sqlitedb import Database, Transaction
from ivr.sealing import Sealer

DOWNGRADE_FACTOR = 0.6  # the lower cover offered: 60% of the sum assured, premium in proportion

_POLICY_SELECT = """
SELECT p.*, pr.name AS product_name, pr.coverage_text, pr.downgrade_allowed, pr.min_sum_assured,
       COALESCE(a.active, 0) AS agent_active
FROM policies p JOIN products pr ON pr.code = p.product LEFT JOIN agents a ON a.id = p.agent_id
"""


class SqlitePolicyAdmin:
    def __init__(self, db: Database, sealer: Sealer, now: Callable[[], dt.datetime] = dt.datetime.now):
        self.db = db
        self.sealer = sealer
        self.now = now

    @classmethod
    async def open(cls, path: Path | str, sealer: Sealer,
                   now: Callable[[], dt.datetime] = dt.datetime.now) -> SqlitePolicyAdmin:
        db = await Database(path).open()
        await db.call(lambda conn: conn.executescript(SCHEMA))
        return cls(db, sealer, now)

    async def close(self) -> None:
        await self.db.close()

    # --- who is calling ------------------------------------------------------

    async def persons_by_phone(self, phone: str) -> list[Person]:
        rows = await self.db.fetch_all("SELECT * FROM persons WHERE phone = ? ORDER BY id", (phone,))
        return [_person(r) for r in rows]

    async def person(self, person_id: str) -> Person | None:
        row = await self.db.fetch_one("SELECT * FROM persons WHERE id = ?", (person_id,))
        return _person(row) if row else None

    async def check_identity(self, person_id: str, *, dob: dt.date | None = None,
                             id_last4: str | None = None) -> bool:
        row = await self.db.fetch_one("SELECT dob, id_number FROM persons WHERE id = ?", (person_id,))
        if row is None or (dob is None and id_last4 is None):
            return False
        if dob is not None and row["dob"] != dob.isoformat():
            return False
        return id_last4 is None or row["id_number"][-4:] == id_last4

    async def phone_owners(self, phone: str) -> PhoneOwners:
        agents = await self.db.fetch_all("SELECT * FROM agents WHERE phone = ? ORDER BY id", (phone,))
        return PhoneOwners(agents=[_agent(r) for r in agents], persons=await self.persons_by_phone(phone))

    # --- policies ------------------------------------------------------------

    async def policy(self, number: str) -> Policy | None:
        row = await self.db.fetch_one(_POLICY_SELECT + " WHERE p.number = ?", (number,))
        return _policy(row) if row else None

    async def policies_of(self, person_id: str) -> list[Policy]:
        rows = await self.db.fetch_all(_POLICY_SELECT + " WHERE p.holder_id = ? ORDER BY p.start_date DESC", (person_id,))
        return [_policy(r) for r in rows]

    async def open_claim(self, policy_number: str) -> Claim | None:
        row = await self.db.fetch_one(
            "SELECT * FROM claims WHERE policy_number = ? AND closed = 0 ORDER BY opened_on DESC", (policy_number,))
        return Claim(row["reference"], row["policy_number"], row["stage"], row["next_step"]) if row else None

    async def debit_failure(self, policy_number: str) -> DebitFailure | None:
        row = await self.db.fetch_one(
            "SELECT * FROM debit_failures WHERE policy_number = ? AND resolved_at IS NULL ORDER BY due_date DESC",
            (policy_number,))
        return _failure(row) if row else None

    async def open_debit_failures(self, limit: int) -> list[DebitFailure]:
        """Unpaid failed debits of policies not yet cancelled, the soonest to cancel first."""
        rows = await self.db.fetch_all(
            "SELECT f.* FROM debit_failures f JOIN policies p ON p.number = f.policy_number "
            "WHERE f.resolved_at IS NULL AND p.status != 'cancelled' ORDER BY f.cancel_on, f.id LIMIT ?", (limit,))
        return [_failure(r) for r in rows]

    async def promised_by(self, policy_number: str) -> dt.date | None:
        """The date of the latest promise to pay the policy's open debit, if one was made since it failed."""
        row = await self.db.fetch_one(
            "SELECT MAX(pr.pay_by) AS pay_by FROM promises pr JOIN debit_failures f ON f.policy_number = pr.policy_number "
            "WHERE pr.policy_number = ? AND f.resolved_at IS NULL AND pr.created_at >= f.due_date", (policy_number,))
        return _date(row["pay_by"]) if row and row["pay_by"] else None

    async def downgrade_options(self, policy_number: str) -> DowngradeOptions | None:
        row = await self.db.fetch_one(_POLICY_SELECT + " WHERE p.number = ?", (policy_number,))
        if row is None or not row["downgrade_allowed"] or row["status"] != "in_force":
            return None
        lower = round(row["sum_assured"] * DOWNGRADE_FACTOR, -3)
        if lower < row["min_sum_assured"] or lower >= row["sum_assured"]:
            return None
        return DowngradeOptions(lower_premium=round(row["premium"] * lower / row["sum_assured"], 2),
                                lower_sum_assured=lower)

    # --- writes --------------------------------------------------------------

    async def record_payment(self, policy_number: str, amount: float, gateway_ref: str,
                             method: PaymentMethod | None, key: str) -> str:
        async with self.db.transaction() as tx:
            if (done := await _already(tx, key)) is not None:
                return done
            failure = await tx.fetch_one(
                "SELECT id FROM debit_failures WHERE policy_number = ? AND resolved_at IS NULL", (policy_number,))
            if failure is None:
                raise Conflict(f"no open debit failure on policy {policy_number[-4:]}")
            reference = _reference("PAY")
            now = self.now().isoformat(timespec="seconds")
            await tx.execute("INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?)",
                             (reference, policy_number, round(amount, 2), gateway_ref,
                              method.last4 if method else None, now))
            await tx.execute("UPDATE debit_failures SET resolved_at = ?, resolution = ? WHERE id = ?",
                             (now, f"paid {reference}", failure["id"]))
            if method is not None:
                await tx.execute("UPDATE policies SET payment_account = ?, card_token = ?, card_last4 = ? WHERE number = ?",
                                 (method.token, method.token, method.last4, policy_number))
            await _remember(tx, key, reference, now)
            return reference

    async def record_promise(self, policy_number: str, pay_by: dt.date, key: str) -> str:
        async with self.db.transaction() as tx:
            if (done := await _already(tx, key)) is not None:
                return done
            reference = _reference("PRM")
            now = self.now().isoformat(timespec="seconds")
            await tx.execute("INSERT INTO promises VALUES (?, ?, ?, ?)", (reference, policy_number, pay_by.isoformat(), now))
            await _remember(tx, key, reference, now)
            return reference

    async def change_phone(self, person_id: str, new_phone: str, flag_reasons: list[str], key: str) -> PhoneChange:
        async with self.db.transaction() as tx:
            if (done := await _already(tx, key)) is not None:
                return PhoneChange(**json.loads(self.sealer.open(done)))
            row = await tx.fetch_one("SELECT phone FROM persons WHERE id = ?", (person_id,))
            if row is None:
                raise Conflict("no such person")
            now = self.now().isoformat(timespec="seconds")
            audit_id = _reference("AUD")
            await tx.execute("UPDATE persons SET phone = ? WHERE id = ?", (new_phone, person_id))
            await tx.execute("INSERT INTO audit VALUES (?, ?, 'phone', ?, ?, 'ivr', ?, ?)",
                             (audit_id, person_id, self._sealed(row["phone"]), self.sealer.seal(new_phone),
                              ",".join(flag_reasons), now))
            review_id = None
            if flag_reasons:
                review_id = _reference("REV")
                await tx.execute("INSERT INTO reviews (id, audit_id, person_id, reason, created_at) VALUES (?, ?, ?, ?, ?)",
                                 (review_id, audit_id, person_id, ",".join(flag_reasons), now))
            change = PhoneChange(audit_id=audit_id, old_phone=row["phone"], review_id=review_id)
            remembered = json.dumps({"audit_id": audit_id, "old_phone": row["phone"], "review_id": review_id})
            await _remember(tx, key, self.sealer.seal(remembered), now)
            return change

    def _sealed(self, value: str | None) -> str | None:
        return self.sealer.seal(value) if value else value

    async def request_cancellation(self, policy_number: str, reason: str, key: str) -> str:
        async with self.db.transaction() as tx:
            if (done := await _already(tx, key)) is not None:
                return done
            reference = _reference("CXL")
            now = self.now().isoformat(timespec="seconds")
            await tx.execute("INSERT INTO cancellations VALUES (?, ?, ?, ?)", (reference, policy_number, reason, now))
            await tx.execute("UPDATE policies SET status = 'cancel_requested' WHERE number = ? AND status = 'in_force'",
                             (policy_number,))
            await _remember(tx, key, reference, now)
            return reference

    # --- for tests and operators -------------------------------------------------

    async def count(self, table: str, where: str = "1=1", params: tuple[Any, ...] = ()) -> int:
        if not table.isidentifier():
            raise ValueError(table)
        row = await self.db.fetch_one(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", params)
        return int(row["n"]) if row else 0


async def _already(tx: Transaction, key: str) -> str | None:
    row = await tx.fetch_one("SELECT result FROM idempotency WHERE key = ?", (key,))
    return row["result"] if row else None


async def _remember(tx: Transaction, key: str, result: str, now: str) -> None:
    await tx.execute("INSERT INTO idempotency VALUES (?, ?, ?)", (key, result, now))


def _reference(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _person(row: sqlite3.Row) -> Person:
    return Person(id=row["id"], family_id=row["family_id"], first_name=row["first_name"], last_name=row["last_name"],
                  dob=_date(row["dob"]), id_last4=row["id_number"][-4:], phone=row["phone"], language=row["language"])


def _agent(row: sqlite3.Row) -> Agent:
    return Agent(id=row["id"], name=row["name"], phone=row["phone"], active=bool(row["active"]))


def _policy(row: sqlite3.Row) -> Policy:
    return Policy(number=row["number"], holder_id=row["holder_id"], product=row["product"],
                  product_name=row["product_name"], status=row["status"], start_date=_date(row["start_date"]),
                  premium=row["premium"], sum_assured=row["sum_assured"], next_due=_date(row["next_due"]),
                  agent_id=row["agent_id"], agent_active=bool(row["agent_active"]),
                  payment_account=row["payment_account"], card_last4=row["card_last4"],
                  coverage_text=row["coverage_text"], downgrade_allowed=bool(row["downgrade_allowed"]))


def _failure(row: sqlite3.Row) -> DebitFailure:
    return DebitFailure(policy_number=row["policy_number"], amount=row["amount"], due_date=_date(row["due_date"]),
                        reason=row["reason"], cancel_on=_date(row["cancel_on"]))
