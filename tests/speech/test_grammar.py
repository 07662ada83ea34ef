"""Grammars built from Listen actions, and when a partial counts as a complete answer."""

from __future__ import annotations

import pytest

from ivr.speech.endpoint import complete_answer
from ivr.speech.grammar import Grammar

from .sounds import MENU, listen


def test_choices_grammar_keeps_the_turns_phrases_in_its_language() -> None:
    grammar = Grammar.from_listen(listen(MENU))
    assert grammar.kind == "phrases" and grammar.language == "en"
    assert set(grammar.phrases) == set(MENU)
    assert grammar.accepts("Cancel my policy") and not grammar.accepts("cancel my")


def test_digit_grammar_counts_double_as_two_digits() -> None:
    grammar = Grammar.from_listen(listen({"agent": "global:agent"}, mode="digits", digits=8))
    assert grammar.kind == "digits" and grammar.digits and grammar.digits.min == grammar.digits.max == 8
    assert grammar.accepts("one two three four five six seven eight")
    assert grammar.accepts("one double two three oh five six seven")
    assert not grammar.accepts("one two three")
    assert grammar.accepts("agent")
    assert {"oh", "double", "zero"} <= grammar.words()


def test_confirm_without_phrases_falls_back_to_yes_no() -> None:
    grammar = Grammar.from_listen(listen({}, mode="confirm"))
    assert {"yes", "no"} <= set(grammar.phrases)


@pytest.mark.parametrize(("partial", "complete"), [
    ("cancel my policy", True),
    ("cancel my", False),
    ("payment", True),
    ("policy", False),
    ("", False),
])
def test_complete_answer_for_choices(partial: str, complete: bool) -> None:
    assert complete_answer(partial, listen(MENU)) is complete


def test_a_phrase_that_another_extends_is_not_complete() -> None:
    turn = listen({"payment": "pay", "payment plan": "plan"})
    assert not complete_answer("payment", turn)
    assert complete_answer("payment plan", turn)


def test_a_short_answer_is_complete_when_every_longer_phrase_means_the_same() -> None:
    """ "no" ends the turn at once: "no thanks" would be no as well."""
    from ivr.engine.matching import yes_no_grammar

    yes_no = listen(yes_no_grammar("en"), mode="confirm")
    assert {"no", "no thanks", "yes"} <= set(yes_no.grammar)
    assert complete_answer("no", yes_no) and complete_answer("yes", yes_no)
    assert complete_answer("不", listen({"不": "no", "不是": "no", "是": "yes"}))
    assert not complete_answer("不", listen({"不": "no", "不是的话": "maybe"}))


def test_complete_digit_string_needs_the_maximum_length() -> None:
    turn = listen({}, mode="digits", digits=8)
    assert complete_answer("one two three four five six seven eight", turn)
    assert not complete_answer("one two three four five six seven", turn)
