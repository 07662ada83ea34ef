"""`ivr schema`: a valid JSON Schema that accepts every shipped flow and underlines mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from ivr import cli
from ivr.flow.catalog import flow_files
from ivr.yamlsource import load

ROOT = Path(__file__).resolve().parents[2]
FLOWS = flow_files(ROOT / "flows")  # routing.yaml sits beside the flows but is not one


@pytest.fixture(scope="module")
def validator(tmp_path_factory) -> Draft202012Validator:
    out = tmp_path_factory.mktemp("schema") / "flow.schema.json"
    assert cli.main(["schema", "-o", str(out)]) == 0
    schema = json.loads(out.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    return Draft202012Validator(schema)


def test_schema_printed_to_stdout_is_the_same(validator, capsys):
    assert cli.main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == validator.schema


@pytest.mark.parametrize("path", FLOWS, ids=[p.stem for p in FLOWS])
def test_every_shipped_flow_is_valid(validator, path):
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(load(path.read_text()).data)]
    assert errors == []


def _payment() -> dict:
    return load((ROOT / "flows" / "payment.yaml").read_text()).data


def test_an_unknown_key_fails_where_it_is(validator):
    flow = _payment()
    flow["nodes"]["explain"]["nxt"] = flow["nodes"]["explain"].pop("next")
    errors = list(validator.iter_errors(flow))
    assert errors
    assert all(list(e.absolute_path)[:2] == ["nodes", "explain"] for e in errors)
    play_node = validator.evolve(schema={"$ref": "#/$defs/PlayNode", "$defs": validator.schema["$defs"]})
    assert [e.message for e in play_node.iter_errors(flow["nodes"]["explain"])] == [
        "Additional properties are not allowed ('nxt' was unexpected)", "'next' is a required property"]


def test_a_misspelt_ask_key_and_an_unquoted_key_fail(validator):
    flow = _payment()
    flow["nodes"]["offer"]["ask"]["promt"] = flow["nodes"]["offer"]["ask"].pop("prompt")
    assert not validator.is_valid(flow)
    flow = _payment()
    flow["nodes"]["offer"]["ask"]["choices"]["retry"]["dtmf"] = 1
    assert not validator.is_valid(flow)


def test_what_the_loader_accepts_the_schema_accepts(validator):
    flow = _payment()
    flow["nodes"]["paid"]["play"] = "payment.paid"  # one key, not a list
    flow["nodes"]["retry"]["action"]["timeout"] = "800ms"
    flow["defaults"]["timeouts"] = {"noinput": "5s", "interdigit": 3}
    assert validator.is_valid(flow)
    flow["defaults"]["timeouts"]["noinput"] = "5 sec"
    assert not validator.is_valid(flow)


def test_an_inline_transfer_as_a_turns_next_is_valid(validator):
    flow = _payment()
    flow["nodes"]["card_number"]["next"] = {"transfer": "payments", "reason": "card_change"}
    assert validator.is_valid(flow)


def test_values_may_be_written_as_they_are_or_as_a_formula(validator):
    flow = _payment()
    flow["nodes"]["promise"]["action"]["args"] = {"caller": "=caller.id", "days": 3, "about": "payment",
                                                   "when": None, "tags": ["a", "b"], "flags": {"urgent": True}}
    assert validator.is_valid(flow)
    schema = validator.schema["$defs"]["SetNode"]["properties"]["set"]
    assert "=expression" in next(iter(schema["patternProperties"].values()))["description"]
