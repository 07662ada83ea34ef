"""What the controller gives the engine for experiments: the call's time and a keyed hash, never the number."""

from __future__ import annotations

import datetime as dt

from ivr.controller.session import assignment_facts
from ivr.engine import experiments
from ivr.sealing import Sealer

NOW = dt.datetime(2026, 10, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def test_a_known_number_becomes_a_keyed_hash_the_same_on_every_controller():
    sealer = Sealer.generate()
    facts = assignment_facts({"ani": "+85291234567"}, sealer.digest, NOW)
    assert facts[experiments.CALL_TIME] == "2026-10-01T10:00:00+08:00"
    key = facts[experiments.CALLER_KEY]
    assert key and "91234567" not in key
    assert assignment_facts({"ani": "+85291234567"}, sealer.digest, NOW)[experiments.CALLER_KEY] == key
    assert assignment_facts({"ani": "+85291234568"}, sealer.digest, NOW)[experiments.CALLER_KEY] != key
    assert assignment_facts({"ani": "+85291234567"}, Sealer.generate().digest, NOW)[experiments.CALLER_KEY] != key


def test_an_anonymous_caller_has_no_key_and_is_assigned_by_call_id():
    sealer = Sealer.generate()
    for ani in ("", None, "anonymous", "unknown"):
        facts = assignment_facts({"ani": ani}, sealer.digest, NOW)
        assert facts[experiments.CALLER_KEY] is None
        assert experiments.caller_key({"ani": ani, **facts}, "1712.34") == "call:1712.34"
