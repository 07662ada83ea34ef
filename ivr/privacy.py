"""`ivr privacy scan`: read everything at rest and report what looks like personal data in clear.

The rule is that dates of birth, ID digits, one-time codes, card numbers,
full phone and policy numbers are never at rest in clear (`ivr.sealing`).
A rule is only as good as its check, so this reads every Redis key and
value, and the policy book's audit tables, the way someone holding a copy
would, and names each finding (masked) with where it was. CI runs it after
the scripted and spoken journeys and fails on any finding.

Detection is pure (`findings(text)`): named fields whose values are not
masked, and shapes (an E.164 number, a card that passes Luhn, an 8-digit
policy number, a 6-digit code, a letter-and-7-digits ID, a birth date).
Sealed values, timestamps, ids and hex digests are set aside first, so what
is left to match is text a person could read.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.masking import IDENTIFYING_KEYS, SECRET_KEYS, mask_tail
from ivr.payments import luhn_ok
from ivr.sealing import SEALED, SealError

MAX_VALUE = 1 << 20  # bytes of one value read at most: a scan must not be the thing that runs out of memory
MAX_ITEMS = 10_000  # members of one list or sorted set read at most
BOOK_TABLES = ("audit", "reviews", "idempotency")
FIELDS = (SECRET_KEYS | IDENTIFYING_KEYS | {"dob", "date_of_birth", "birth_date", "new_phone", "phone_number"}) \
    - {"answer", "token"}

_SET_ASIDE = re.compile(
    r"sealed:[A-Za-z0-9_\-=]+"                                   # sealed values
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"  # uuids
    r"|\b(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{16,}\b"              # digests and hex ids (a card has no letter)
    r"|\d+\.\d+"                                                  # timestamps, Asterisk ids, amounts
    r"|\b[A-Z]{1,4}-(?=[0-9A-F]*[A-F])[0-9A-F]{4,}\b"            # references (AUD-3F2A..., REV-00AB...)
    r"|\bC-\d{6}\b|\bCL-\d{5}\b"                                 # the book's person and claim ids
    r"|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?"                 # date-times: when, not who
)
_B, _E = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"  # a word's edge where _ and - separate too (policy_41234567)
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("phone", re.compile(r"(?<![A-Za-z0-9+])\+\d{7,15}" + _E)),
    ("card", re.compile(_B + r"\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}" + _E)),
    ("card", re.compile(_B + r"\d{12,19}" + _E)),
    ("phone", re.compile(_B + r"\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}" + _E)),
    ("phone", re.compile(_B + r"\d{10,11}" + _E)),
    ("date_of_birth", re.compile(_B + r"(19\d\d|20\d\d)-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])" + _E)),
    ("date_of_birth", re.compile(_B + r"\d{1,2}/\d{1,2}/(19|20)\d\d" + _E)),
    ("policy_number", re.compile(_B + r"\d{8}" + _E)),
    ("code", re.compile(_B + r"\d{6}" + _E)),
    ("id_number", re.compile(_B + r"[A-Z]\d{7}[A-Z]?" + _E)),
)


@dataclass(frozen=True, slots=True)
class Finding:
    where: str  # redis key, or book table and row
    kind: str  # phone | card | policy_number | code | id_number | date_of_birth | <field name>
    sample: str  # masked: a finding must not itself be a leak

    def line(self) -> str:
        return f"{self.where}: {self.kind} {self.sample}"


def findings(text: str, where: str) -> list[Finding]:
    """What in `text` looks like personal data in clear (JSON is read field by field too)."""
    found = _fields(text, where)
    rest = _SET_ASIDE.sub(" ", text)
    for kind, shape in _SHAPES:
        for match in shape.finditer(rest):
            value = match.group(0)
            if _plausible(kind, value):
                found.append(Finding(where, kind, mask_tail(value, 2)))
        rest = shape.sub(" ", rest)  # one finding per place: a card is not also a phone
    return found


def _plausible(kind: str, value: str) -> bool:
    if kind == "card":
        return luhn_ok(re.sub(r"[ -]", "", value))
    if kind == "date_of_birth":
        return _born_at_least_16_years_ago(value)
    return True


def _born_at_least_16_years_ago(value: str) -> bool:
    """A due date or today's date is not a birth date."""
    if "/" in value:
        year = int(value.rsplit("/", 1)[1])
    else:
        digits = value.replace("-", "")
        try:
            year = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).year
        except ValueError:
            return False
    return year <= dt.date.today().year - 16


def _fields(text: str, where: str) -> list[Finding]:
    """Named fields (`dob`, `phone`, `policy_number`...) whose values are neither empty, sealed nor masked."""
    if not text.lstrip().startswith(("{", "[")):
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return [Finding(where, name, mask_tail(value, 2)) for name, value in _walk(data) if _clear(name, value)]


def _walk(data: Any, depth: int = 0) -> Iterator[tuple[str, str]]:
    if depth > 32:
        return
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for name, value in items:
        if isinstance(value, (dict, list)):
            yield from _walk(value, depth + 1)
        elif isinstance(name, str) and isinstance(value, (str, int)) and not isinstance(value, bool):
            yield name.lower(), str(value)


def _clear(name: str, value: str) -> bool:
    if name not in FIELDS or not value or value.startswith(SEALED) or value == "[withheld]":
        return False
    return sum(c.isdigit() for c in value) >= 4 and "*" not in value


# ------------------------------------------------------------------ what is read


async def scan_redis(client: Any, match: str = "*") -> AsyncIterator[Finding]:
    """Every key (its name too) and every value of every type."""
    async for raw_key in client.scan_iter(match=match, count=500):
        key = raw_key.decode(errors="replace")
        shown = _masked_digits(key)  # a key name can be the leak: the report must not repeat it
        for finding in findings(key, f"redis key name {shown}"):
            yield finding
        values, whole = await _values(client, raw_key)
        if not whole:
            yield Finding(f"redis {shown}", "not read whole", f"more than {MAX_VALUE} bytes or {MAX_ITEMS} items, or "
                                                             "a type the scan does not read")
        for text in values:
            for finding in findings(text, f"redis {shown}"):
                yield finding


def _masked_digits(text: str) -> str:
    return re.sub(r"(?<![A-Za-z0-9])\d{6,}(?![A-Za-z0-9])", lambda match: mask_tail(match.group(0), 2), text)


async def _values(client: Any, key: bytes) -> tuple[list[str], bool]:
    """The key's values as text, and whether they were read whole (a scan must not pass what it skipped)."""
    kind = (await client.type(key)).decode()
    whole = True
    if kind == "string":
        raw = await client.getrange(key, 0, MAX_VALUE - 1)
        values = [raw] if raw else []
        whole = await client.strlen(key) <= MAX_VALUE
    elif kind == "hash":
        values = [v for pair in (await client.hgetall(key)).items() for v in pair]
    elif kind == "list":
        values = await client.lrange(key, 0, MAX_ITEMS - 1)
        whole = await client.llen(key) <= MAX_ITEMS
    elif kind == "set":
        values = list(await client.smembers(key))
    elif kind == "zset":
        values = await client.zrange(key, 0, MAX_ITEMS - 1)
        whole = await client.zcard(key) <= MAX_ITEMS
    elif kind == "stream":  # the campaign's outcomes
        entries = await client.xrange(key, count=MAX_ITEMS)
        values = [v for _, fields in entries for pair in fields.items() for v in pair]
        whole = await client.xlen(key) <= MAX_ITEMS
    else:
        values, whole = [], False  # a module's type: not read, so not passed
    return [v.decode(errors="replace") for v in values], whole


def scan_book(path: Path) -> Iterator[Finding]:
    """The policy book's audit tables: every column of every row."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        present = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in BOOK_TABLES:
            if table not in present:
                continue
            for row in db.execute(f"SELECT rowid, * FROM {table}"):  # noqa: S608 - names from BOOK_TABLES
                for column, value in enumerate(row[1:]):
                    if isinstance(value, str):
                        yield from findings(value, f"book {table} row {row[0]} column {column}")


async def reseal_redis(client: Any, sealer: Any, match: str = "ivr:*") -> tuple[int, list[str]]:
    """Seal every sealed string value again under the newest data key (`ivr keys rotate`).

    How many were sealed again, and the keys of values no configured key opens: those are left
    as they are (no controller can read them either) and named, so the operator can look.
    """
    count, unreadable = 0, []
    async for key in client.scan_iter(match=match, count=500):
        if (await client.type(key)).decode() != "string":
            continue
        value = await client.get(key)
        if value is None or not value.startswith(SEALED.encode()):
            continue
        try:
            sealed = sealer.reseal(value)
        except SealError:
            unreadable.append(_masked_digits(key.decode(errors="replace")))
            continue
        count += bool(await client.eval(_SWAP_IF_UNCHANGED, 1, key, value, sealed))
    return count, unreadable


# Replace a value only if it is still the one read, keeping its expiry: a controller that saved a
# newer step meanwhile keeps it (its own seal is already under the newest key).
_SWAP_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""


BOOK_SEALED = (("audit", "old_value"), ("audit", "new_value"), ("idempotency", "result"))


def reseal_book(path: Path, sealer: Any) -> tuple[int, list[str]]:
    """The same for the policy book: the audit trail's numbers and the idempotency replays, in one
    transaction. Until this has run, the old data key must stay configured or those rows cannot be read."""
    count, unreadable = 0, []
    with sqlite3.connect(path) as db:
        for table, column in BOOK_SEALED:
            rows = db.execute(f"SELECT rowid, {column} FROM {table} WHERE {column} LIKE ?",  # noqa: S608 - names above
                              (SEALED + "%",)).fetchall()
            for rowid, value in rows:
                try:
                    sealed = sealer.reseal(value)
                except SealError:
                    unreadable.append(f"book {table} row {rowid}")
                    continue
                db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (sealed, rowid))  # noqa: S608
                count += 1
    return count, unreadable
