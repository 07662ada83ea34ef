"""Free-text transcripts (Whisper's) snapped onto a turn's grammar: what the engine will act on."""

from __future__ import annotations

from ivr.speech.grammar import DigitSpec, Grammar
from ivr.speech.transcript import first_saying, readings, spoken_digits

MENU = Grammar("en", ("policy information", "payment", "failed payment", "cancel my policy", "agent",
                      "it's too expensive"))
POLICY = Grammar("en", ("agent",), DigitSpec(8, 8))


def test_digits_written_spoken_doubled_or_with_filler_become_one_string():
    assert spoken_digits("1234 5678.") == "12345678"
    assert spoken_digits("Double five, oh two, one two three four") == "55021234"
    assert spoken_digits("My number is 1-2-3-4, 5-6-7-8.") == "12345678"
    assert spoken_digits("一三八零零一三八零零零") == "13800138000"
    assert spoken_digits("the weather is nice") is None


def test_a_digit_string_of_the_wrong_length_is_not_a_reading():
    assert [r.text for r in readings("1234 5678", POLICY)] == ["12345678"]
    assert readings("1234 567", POLICY) == []
    assert readings("1 1 1 1 1 1 1 1 1 1 1 1", POLICY) == []  # a decoder loop is not a policy number


def test_a_number_the_decoder_looped_on_is_cut_to_its_first_saying():
    [reading] = readings("1 2 1 5 1 2 1 five 1 2 1", Grammar("en", (), DigitSpec(4, 4)))
    assert (reading.text, reading.similarity) == ("1215", 1.0)
    assert [r.text for r in readings("1 2 1 5 1 2 1 5 5 2", Grammar("en", (), DigitSpec(4, 4)))] == ["1215"]
    assert [r.text for r in readings("1 2 1 5 1 2 1 6 1 1 5 1 1", Grammar("en", (), DigitSpec(4, 4)))] == ["1215"]
    assert readings("1 2 1 5 3 4 7", Grammar("en", (), DigitSpec(4, 4))) == []  # too long, and no loop


def test_a_phrase_of_the_turn_reads_as_itself_with_full_similarity():
    best = readings("Payment.", MENU)[0]
    assert (best.text, best.similarity) == ("payment", 1.0)
    assert readings("Cancel my policy please", MENU)[0].similarity == 1.0  # fillers do not count against it


def test_a_near_miss_reads_as_the_phrase_but_below_full_similarity():
    best = readings("It's to expensive", MENU)[0]
    assert best.text == "it's too expensive" and 0.8 <= best.similarity < 1.0


def test_out_of_grammar_speech_reads_as_nothing_near():
    assert all(r.similarity < 0.8 for r in readings("The weather is nice today", MENU))
    assert readings("", MENU) == [] and readings("...", MENU) == []


def test_a_decoder_loop_keeps_its_first_saying():
    assert first_saying("Agent. Agent. Agent. Agent") == "agent"
    assert first_saying("Policy information. Policy. Policy.") == "policy information"
    assert first_saying("It's too expensive. It's too inexpensive.") == "it's too expensive"
    assert first_saying("I want to pay, my premium") == "i want to pay my premium"
    assert first_saying("Policy Information Policy Information Policy") == "policy information"
    assert first_saying("no no") == "no" and first_saying("yes please") == "yes please"
    assert readings("Failed payment. Failed payment. Failed payment.", MENU)[0].text == "failed payment"


def test_readings_are_ordered_best_first_and_distinct():
    found = readings("failed payment", MENU)
    assert found[0].text == "failed payment" and len({r.text for r in found}) == len(found)
    assert [r.similarity for r in found] == sorted((r.similarity for r in found), reverse=True)
