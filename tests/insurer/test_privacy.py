"""Personal data at rest: sealing, keyed hashes, key rotation and `ivr privacy scan`."""

from __future__ import annotations

import asyncio
import json
import stat

import pytest
import redis.asyncio as redis

from ivr import privacy, sealing
from ivr.cli import main
from ivr.engine.state import CallState
from ivr.history import ani_key
from ivr.otp import OneTimeCodes
from ivr.sealing import Sealer, SealError
from ivr.store import RedisCallStore


def kinds(text: str) -> list[str]:
    return sorted(f.kind for f in privacy.findings(text, "here"))


@pytest.mark.parametrize("text, expected", [
    ("+15550012341", ["phone"]),
    ("call back on 5550012341 please", ["phone"]),
    ("card 4111111111111111", ["card"]),
    ("born 1980-05-31", ["date_of_birth"]),
    ("19800531", ["date_of_birth"]),
    ("policy 41234567", ["policy_number"]),
    ("code 482913", ["code"]),
    ("id S1234567", ["id_number"]),
    ('{"caller": {"dob": "31/05/1980"}}', ["date_of_birth", "dob"]),  # by its field's name and by its shape
    ('{"new_phone": "555 001 2341"}', ["new_phone", "phone"]),
    ('{"caller": {"dob": "31 May 1980"}}', ["dob"]),
])
def test_personal_data_in_clear_is_found(text, expected):
    assert kinds(text) == expected


@pytest.mark.parametrize("text", [
    Sealer.generate().seal('{"dob": "1980-05-31", "phone": "+15550012341"}'),
    "1765123456.123 and 1700000000.42",                 # timestamps and Asterisk channel ids
    "2026-12-07T18:00:00 2026-12-20",                    # when, and a due date: not a birth date
    "C-900001 AUD-3F2A1B2C3D REV-00AB12CD34",            # person ids and references
    "3f2a1b2c3d4e5f60718293a4b5c6d7e8",                 # a digest
    "123e4567-e89b-12d3-a456-426614174000",              # a uuid
    '{"policy": "****4567", "phone": "+*******341", "card": "[withheld]", "amount": 120}',
    "4111111111111112",                                  # 16 digits failing Luhn: not a card (still not 10-11)
])
def test_what_is_not_personal_data_is_left_alone(text):
    assert kinds(text) == []


def test_a_clear_call_state_as_it_was_stored_before_is_full_of_findings():
    state = {"vars": {"caller": {"dob": "1980-05-31", "policy_number": "41234567", "phone": "+15550106"},
                      "new_phone": "5550012341", "code": "482913"}, "path": [{"heard": "19800531"}]}
    assert {"dob", "policy_number", "new_phone", "code", "date_of_birth"} <= set(kinds(json.dumps(state)))


def test_sealed_values_open_only_with_their_keys_and_rotate(tmp_path):
    old_key, hash_key = sealing.new_data_key(), sealing.new_hash_key()
    old = sealing.from_settings([old_key], hash_key, tmp_path / "unused.json")
    token = old.seal("+15550012341")
    assert "5550012341" not in token and old.open(token) == "+15550012341"
    with pytest.raises(SealError):
        Sealer.generate().open(token)
    both = sealing.from_settings([sealing.new_data_key(), old_key], hash_key, tmp_path / "unused.json")
    assert both.open(token) == "+15550012341"  # an older key still opens what it sealed
    resealed = both.reseal(token)
    assert both.open(resealed) == "+15550012341"
    with pytest.raises(SealError):
        old.open(resealed)  # sealed under the newest key now: the old one can be dropped


def test_keyed_hashes_depend_on_the_key_and_the_purpose():
    one, two = Sealer.generate(), Sealer.generate()
    assert ani_key("+15550106", one) != ani_key("+15550106", two)
    assert one.digest("ani", "+15550106") != one.digest("policy", "+15550106")
    assert "15550106" not in ani_key("+15550106", one)


def test_the_key_file_is_made_once_private_and_reused(tmp_path):
    path = tmp_path / "state" / "keys.json"
    first = sealing.from_settings([], None, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = sealing.from_settings([], None, path)
    assert second.open(first.seal("x")) == "x" and first.digest("a", "b") == second.digest("a", "b")


def test_unusable_keys_are_refused_with_a_reason(tmp_path):
    with pytest.raises(ValueError, match="ivr keys new"):
        sealing.from_settings(["not-a-key"], sealing.new_hash_key(), tmp_path / "k.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json"):
        sealing.from_settings([], None, tmp_path / "broken.json")


async def test_one_time_codes_cannot_be_recovered_from_redis(redis_client, prefix):
    """Before: a salted SHA-256 with its salt beside it, and the phone's plain hash as the key: 10^6 tries."""
    import hashlib

    codes = OneTimeCodes(redis_client, Sealer.generate(), prefix=prefix + "otp:")
    code = await codes.issue("+15550012341")
    keys = [k.decode() for k in await redis_client.keys(prefix + "otp:*")]
    plain = hashlib.sha256(b"+15550012341").hexdigest()[:24]
    assert len(keys) == 1 and plain not in keys[0]
    record = {k.decode(): v.decode() for k, v in (await redis_client.hgetall(keys[0])).items()}
    assert "salt" not in record and code not in json.dumps(record)
    guesses = {hashlib.sha256(f"{s}:{code}".encode()).hexdigest() for s in ("", record.get("salt", ""))}
    assert record["hash"] not in guesses
    assert await codes.check("+15550012341", code) == "ok"


async def test_the_call_store_seals_state_and_reads_what_was_there_before(redis_client, prefix):
    store = RedisCallStore(redis_client, Sealer.generate(), prefix=prefix + "call:", audio_prefix=prefix + "audio:")
    state = CallState(call_id="c1", release="r", flow="verify", node="ask_dob", language="en",
                      vars={"caller": {"dob": "1980-05-31"}})
    await store.save(state)
    raw = await redis_client.get(prefix + "call:c1")
    assert raw.startswith(b"sealed:") and b"1980" not in raw
    assert (await store.load("c1")).vars == state.vars
    await redis_client.set(prefix + "call:c2", state.model_copy(update={"call_id": "c2"}).model_dump_json())
    try:
        assert (await store.load("c2")).call_id == "c2"  # a call saved in clear before the upgrade resumes
    finally:
        await redis_client.delete(prefix + "call:c2")  # CI scans what the tests leave: leave nothing in clear
    other = RedisCallStore(redis_client, Sealer.generate(), prefix=prefix + "call:")
    assert await other.load("c1") is None  # a key no longer configured: the step starts afresh, nothing crashes


async def test_scan_names_each_finding_masked_and_the_command_fails_on_it(redis_url, prefix, capsys):
    client = redis.from_url(redis_url)
    await client.set(f"{prefix}leak", json.dumps({"dob": "1980-05-31"}))
    await client.hset(f"{prefix}hist:ani:+15550106", "x", "1")
    try:
        found = [f async for f in privacy.scan_redis(client, match=f"{prefix}*")]
        assert {(f.where.split(" ")[-1], f.kind) for f in found} >= {(f"{prefix}leak", "dob")}
        assert any(f.where.startswith("redis key name") and f.kind == "phone" for f in found)
        assert all("1980-05-31" not in f.line() and "5550106" not in f.line() for f in found)
        assert await asyncio.to_thread(main, ["privacy", "scan", "--redis", redis_url, "--match", f"{prefix}*"]) == 1
        await client.delete(f"{prefix}leak", f"{prefix}hist:ani:+15550106")
        assert await asyncio.to_thread(main, ["privacy", "scan", "--redis", redis_url, "--match", f"{prefix}*"]) == 0
    finally:
        await client.delete(f"{prefix}leak", f"{prefix}hist:ani:+15550106")
        await client.aclose()
    assert "0 finding(s)" in capsys.readouterr().out


async def test_keys_rotate_reseals_redis_under_the_newest_key(redis_url, prefix, tmp_path, monkeypatch):
    old_key, new_key, hash_key = sealing.new_data_key(), sealing.new_data_key(), sealing.new_hash_key()
    old = sealing.from_settings([old_key], hash_key, tmp_path / "unused.json")
    client = redis.from_url(redis_url)
    await client.set(f"ivr:call:{prefix}rot", old.seal('{"x": 1}'), ex=600)
    monkeypatch.setenv("IVR_DATA_KEYS", f"{new_key},{old_key}")
    monkeypatch.setenv("IVR_HASH_KEY", hash_key)
    try:
        rotate = ["keys", "rotate", "--redis", redis_url, "--match", f"ivr:call:{prefix}*"]
        assert await asyncio.to_thread(main, rotate) == 0
        value = await client.get(f"ivr:call:{prefix}rot")
        newest = sealing.from_settings([new_key], hash_key, tmp_path / "unused.json")
        assert newest.open(value) == '{"x": 1}' and 0 < await client.ttl(f"ivr:call:{prefix}rot") <= 600
        await client.set(f"ivr:call:{prefix}lost", Sealer.generate().seal("x"))  # under a key no longer held
        assert await asyncio.to_thread(main, rotate) == 1  # named, left as it is, the rest still rotated
        assert newest.open(await client.get(f"ivr:call:{prefix}rot")) == '{"x": 1}'
    finally:
        await client.delete(f"ivr:call:{prefix}rot", f"ivr:call:{prefix}lost")
        await client.aclose()


def test_a_routing_reason_may_not_write_who_the_caller_is_into_records():
    from ivr.routing.router import _reason
    from ivr.routing.rules import load_rules_text

    text = ('routing: 1\nentry_flow: main_menu\nrules:\n  - rule: r\n    when: caller.known\n    to: payment\n'
            '    reason: "debit failed on {caller.policy_number} for {caller.last_name}"\n')
    rules, diagnostics = load_rules_text(text, "routing.yaml")
    assert rules is None
    assert [(d.line, d.code) for d in diagnostics] == [(7, "personal-data"), (7, "personal-data")]
    rule = load_rules_text(text.replace(" for {caller.last_name}", "").replace("policy_number", "failure_reason"),
                           "routing.yaml")[0].rules[0]
    # a rule file that skipped `ivr validate` still writes no number whole into the record
    assert _reason(rule, {"caller": {"failure_reason": "card 4111111111111111"}}) == "debit failed on card **************11"


async def test_rotation_never_undoes_a_step_saved_meanwhile_and_reseals_the_book(redis_url, prefix, tmp_path, monkeypatch):
    import sqlite3

    old_key, new_key, hash_key = sealing.new_data_key(), sealing.new_data_key(), sealing.new_hash_key()
    old = sealing.from_settings([old_key], hash_key, tmp_path / "unused.json")
    newest = sealing.from_settings([new_key], hash_key, tmp_path / "unused.json")
    both = sealing.from_settings([new_key, old_key], hash_key, tmp_path / "unused.json")
    client = redis.from_url(redis_url)
    key = f"ivr:call:{prefix}race"
    stale = old.seal("step 1")
    await client.set(key, newest.seal("step 2"), ex=600)  # saved by a controller after the rotation read step 1
    try:
        swapped = await client.eval(privacy._SWAP_IF_UNCHANGED, 1, key, stale, both.reseal(stale))
        assert swapped == 0 and newest.open(await client.get(key)) == "step 2"
    finally:
        await client.delete(key)
    book = tmp_path / "book.sqlite"
    with sqlite3.connect(book) as db:
        db.execute("CREATE TABLE audit (old_value TEXT, new_value TEXT)")
        db.execute("CREATE TABLE idempotency (result TEXT)")
        db.execute("INSERT INTO audit VALUES (?, ?)", (old.seal("+15550106"), old.seal("+15550012341")))
        db.execute("INSERT INTO idempotency VALUES (?)", (old.seal('{"old_phone": "+15550106"}'),))
    assert privacy.reseal_book(book, both) == (3, [])
    with sqlite3.connect(book) as db:
        row = db.execute("SELECT old_value, new_value FROM audit").fetchone()
    assert [newest.open(v) for v in row] == ["+15550106", "+15550012341"]  # the old key can be dropped now


def test_a_key_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "keys.json"
    sealing.from_settings([], None, path)
    path.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        sealing.from_settings([], None, path)


async def test_tries_at_a_code_made_at_once_are_each_counted(redis_client, prefix):
    """Before: each check read the count and wrote it back, so parallel calls for one phone each had three tries."""
    codes = OneTimeCodes(redis_client, Sealer.generate(), prefix=prefix + "otp:")
    code = await codes.issue("+15550012341")
    wrong = "000000" if code != "000000" else "111111"
    answers = await asyncio.gather(*(codes.check("+15550012341", wrong) for _ in range(6)))
    assert sorted(answers) == ["expired"] * 4 + ["wrong"] * 2
    assert await codes.check("+15550012341", code) == "expired"  # burnt: the right code no longer opens it
    assert await redis_client.keys(prefix + "otp:*") == []  # and nothing is left behind without an expiry


@pytest.mark.parametrize("text, expected", [
    ("4111 1111 1111 1111", ["card"]),
    ("4111-1111-1111-1111", ["card"]),
    ("call 555-010-1234", ["phone"]),
    ("(555) 010-1234", ["phone"]),
    ("born 12/03/1985", ["date_of_birth"]),
    ("policy_41234567", ["policy_number"]),
    ("POL-41234567", ["policy_number"]),
])
def test_separated_and_prefixed_shapes_are_found_too(text, expected):
    assert kinds(text) == expected


@pytest.mark.parametrize("text", ["paid on 2026-12-07 at 18:06", "due 07/12/2026", "C-900001 CL-10000",
                                  "test:t123456789012:contacts", "agent-17 queue 3"])
def test_ids_and_todays_dates_stay_quiet(text):
    assert kinds(text) == []


async def test_a_value_too_big_to_read_whole_fails_the_scan(redis_client, prefix):
    await redis_client.set(f"{prefix}big", "x" * (privacy.MAX_VALUE + 10))
    try:
        found = [f async for f in privacy.scan_redis(redis_client, match=f"{prefix}*")]
        assert [f.kind for f in found] == ["not read whole"]
    finally:
        await redis_client.delete(f"{prefix}big")


async def test_a_stream_is_read_whole_and_a_number_in_it_is_found(redis_client, prefix):
    """The campaign's outcomes stream is scanned like every other value."""
    await redis_client.xadd(f"{prefix}campaign:outcomes", {"attempt": "abc-1", "payment": "paid"})
    try:
        assert [f async for f in privacy.scan_redis(redis_client, match=f"{prefix}*")] == []
        await redis_client.xadd(f"{prefix}campaign:outcomes", {"note": "called +15550102"})
        found = [f async for f in privacy.scan_redis(redis_client, match=f"{prefix}*")]
        assert [f.kind for f in found] == ["phone"]
    finally:
        await redis_client.delete(f"{prefix}campaign:outcomes")
