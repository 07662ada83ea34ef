"""SQLite from asyncio, with transactions a hang-up cannot leave half done.

sqlite3 blocks, so every statement runs on one dedicated thread (SQLite
connections belong to one thread, and one writer at a time is what SQLite
does anyway). Cancelling an awaited thread job does not stop the thread,
which is why transactions here are explicit: statements run inside BEGIN,
and COMMIT is only sent when the coroutine reaches the end of the block. A
caller who hangs up (the controller cancels the backend task) before that
point gets a ROLLBACK, queued on the same thread after whatever statement
was still running, so nothing is written. Once COMMIT has been sent the
write is whole: the block waits for it and finishes normally, rather than
reporting a cancellation for a write that happened.

A library such as aiosqlite has the same thread model but commits from a
thread job too; owning the commit point is the reason for this small class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Database:
    """One SQLite file, one thread, one writer at a time."""

    def __init__(self, path: Path | str):
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> Database:
        await self._run(self._connect)
        return self

    def _connect(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- reads -----------------------------------------------------------------

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return await self._run(lambda: self._connection().execute(sql, tuple(params)).fetchall())

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        return await self._run(lambda: self._connection().execute(sql, tuple(params)).fetchone())

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the database thread (bulk work such as seeding)."""
        return await self._run(lambda: fn(self._connection()))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    # --- writes ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE … COMMIT; any exception or cancellation before COMMIT rolls back."""
        async with self._write_lock:
            await self._run(lambda: self._connection().execute("BEGIN IMMEDIATE"))
            tx = Transaction(self)
            try:
                yield tx
            except BaseException:
                await _settle(self._run(self._rollback))
                raise
            await _settle(self._run(self._connection().commit))

    def _rollback(self) -> None:
        conn = self._connection()
        if conn.in_transaction:
            conn.rollback()


class Transaction:
    """Statements of one transaction; each runs on the database thread."""

    def __init__(self, db: Database):
        self._db = db

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run a statement; the row count (or last row id for an INSERT)."""
        def run() -> int:
            cursor = self._db._connection().execute(sql, tuple(params))
            inserted = cursor.lastrowid if sql.lstrip().upper().startswith("INSERT") else None
            return inserted if inserted is not None else cursor.rowcount
        return await self._db._run(run)

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        return await self._db._run(lambda: self._db._connection().execute(sql, tuple(params)).fetchone())


async def _settle(job: asyncio.Future[Any] | Any) -> None:
    """Wait for a COMMIT or ROLLBACK already handed to the thread, even if we are cancelled meanwhile.

    The job cannot be recalled once submitted; reporting a cancellation for a
    write that then commits would tell the caller a lie. A cancellation that
    arrives here is therefore absorbed: the block ends as the database did.
    """
    future = asyncio.ensure_future(job)
    while True:
        try:
            await asyncio.shield(future)
            return
        except asyncio.CancelledError:
            if future.done():
                future.result()
                return
            log.debug("cancellation while a commit/rollback is in flight: finishing it first")
