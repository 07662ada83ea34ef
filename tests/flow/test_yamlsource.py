"""YAML with positions: where each key and value starts, and what YAML would hide."""

from __future__ import annotations

import pytest

from ivr import yamlsource
from ivr.yamlsource import Position, SourceError, YamlSyntaxError, load, read

TEXT = """\
flow: payment
nodes:
  offer:
    ask:
      prompt: [payment.offer, payment.offer_help]
      choices: {retry: {dtmf: "1"}}
    next: confirm
"""


def test_positions_of_keys_and_values():
    doc = load(TEXT)
    values, keys = doc.source.values, doc.source.keys
    assert values[("flow",)] == Position(1, 7)
    assert keys[("nodes", "offer")] == Position(3, 3)
    assert keys[("nodes", "offer", "ask", "prompt")] == Position(5, 7)
    assert values[("nodes", "offer", "ask", "prompt", 1)] == Position(5, 31)
    assert keys[("nodes", "offer", "ask", "choices", "retry", "dtmf")] == Position(6, 25)
    assert values[("nodes", "offer", "ask", "choices", "retry", "dtmf")] == Position(6, 31)
    assert values[("nodes", "offer", "next")] == Position(7, 11)


def test_locate_falls_back_to_the_nearest_ancestor():
    source = load(TEXT).source
    assert source.locate(("nodes", "offer", "ask", "choices", "retry", "say", 0)) == Position(6, 24)
    assert source.locate(("nodes", "offer", "escape"), key=True) == Position(3, 3)
    assert source.locate(("start",)) == Position(1, 1)


def test_duplicate_keys_are_reported_at_the_second_one():
    doc = load("nodes:\n  goodbye: {hangup: done}\n  menu: {play: a.b}\n  goodbye: {hangup: completed}\n")
    assert doc.duplicates == [(("nodes", "goodbye"), Position(4, 3))]
    assert doc.data["nodes"]["goodbye"] == {"hangup": "completed"}
    assert load("a: 1\nb: 2\n").duplicates == []


def test_yes_and_no_stay_words_but_true_false_null_and_numbers_are_typed():
    doc = load('say: [yes, no, on, off, Yes, NO, y, n]\nb: [true, False, null, ~, ""]\nn: [5, -3, 0.8, 1_000, "5", 007]\n')
    assert doc.data["say"] == ["yes", "no", "on", "off", "Yes", "NO", "y", "n"]
    assert doc.data["b"] == [True, False, None, None, ""]
    assert doc.data["n"] == [5, -3, 0.8, 1000, "5", "007"]
    assert load("d: !!str 5\n").data == {"d": "5"}


def test_anchors_and_aliases_copy_the_value():
    doc = load("desk: &desk {transfer: payments, priority: 6}\nescape: *desk\nnames: [&n agent, *n]\n")
    assert doc.data["escape"] == {"transfer": "payments", "priority": 6}
    assert doc.data["names"] == ["agent", "agent"]
    assert doc.source.values[("escape",)] == Position(2, 9)


def test_an_alias_to_no_anchor_is_an_error_not_null():
    with pytest.raises(YamlSyntaxError) as caught:
        load("desk: &payments_desk {transfer: payments}\nescape: *payment_desk\n")
    assert caught.value.position == Position(2, 9)
    assert "payment_desk" in caught.value.message


def test_a_complex_key_does_not_shift_the_keys_after_it():
    doc = load("? [a, b]\n: 1\nc: 2\n")
    assert doc.data == {"['a', 'b']": 1, "c": 2}


@pytest.mark.parametrize("text, line, column, words", [
    ("flow: a\nnodes:\n  x: {play: a.b\n  y: 1\n", 4, 4, "flow mapping that starts at line 3, column 6"),
    ("flow: a\n\tstart: x\n", 2, 1, "tab character"),
    ("a: 1\n  b: 2\n", 2, 4, "mapping values are not allowed"),
    ('a: "open\nb: 2\n', 3, 1, "starts at line 1, column 4"),
])
def test_syntax_errors_say_where(text, line, column, words):
    with pytest.raises(YamlSyntaxError) as caught:
        load(text)
    assert caught.value.position == Position(line, column)
    assert caught.value.message.startswith("YAML syntax: ")
    assert words in caught.value.message


# --- what a file may cost: size, encoding, aliases -------------------------------------


def test_a_file_that_is_not_utf8_is_reported_at_its_first_bad_byte(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_bytes("flow: f\nnodes:\n  a: {hangup: 'déjà', reason: caf".encode() + b"\xe9}\n")
    with pytest.raises(SourceError) as caught:
        read(path)
    assert (caught.value.code, caught.value.position) == ("encoding", Position(3, 34))  # characters, not bytes: é and à count one each
    assert "0xe9" in caught.value.message and "UTF-8" in caught.value.message
    assert str(caught.value.diagnostic("f.yaml")).startswith("f.yaml:3:34: error [encoding]")


def test_a_file_over_the_limit_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    path = tmp_path / "f.yaml"
    path.write_text("a: 1\n" * 1000)
    assert read(path, limit=6000) == "a: 1\n" * 1000
    with pytest.raises(SourceError) as caught:
        read(path, limit=4999)
    assert (caught.value.code, caught.value.position) == ("too-large", Position(1, 1))
    assert "5 KB" in caught.value.message


def test_an_unreadable_file_is_an_error_not_a_traceback(tmp_path):
    with pytest.raises(SourceError) as caught:
        read(tmp_path / "gone.yaml")
    assert caught.value.code == "unreadable"


def test_billion_laughs_is_refused_where_the_aliases_explode():
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    text += "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))
    with pytest.raises(YamlSyntaxError) as caught:
        load(text)
    assert caught.value.position.line == 5  # 10^5 values: over the limit at the fourth level of aliases
    assert f"{yamlsource.ALIAS_LIMIT:,}" in caught.value.message


def test_an_alias_inside_its_own_anchor_is_refused_not_a_loop():
    for text, column in (("a: &x {b: *x}\n", 11), ("a: &x [1, [*x]]\n", 12)):
        with pytest.raises(YamlSyntaxError) as caught:
            load(text)
        assert caught.value.position == Position(1, column)
        assert "cannot contain itself" in caught.value.message


def test_reusing_a_block_in_many_places_stays_allowed():
    text = "desk: &desk {transfer: payments, priority: 6, reason: ivr_trouble}\n"
    text += "".join(f"n{i}: *desk\n" for i in range(10_000))
    assert load(text).data["n9999"]["priority"] == 6


def test_a_number_too_long_to_read_is_a_diagnostic_at_its_line():
    with pytest.raises(yamlsource.SourceError) as caught:
        yamlsource.load("a: 1\nb: " + "9" * 5000 + "\n")
    assert caught.value.position.line == 2 and "5000 digits" in str(caught.value)
