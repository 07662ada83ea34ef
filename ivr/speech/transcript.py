"""What a free-text transcript means in one turn: the grammar's sentences it stands for.

A recogniser without a grammar search (Whisper) writes whatever it heard:
"Yeah.", "I'd like to pay my premium", "1234 5678", "double five, oh two".
The engine acts on the turn's own phrases and on digit strings, so each
transcript is snapped onto the turn's grammar here, with a similarity that
says how much had to be bent: 1.0 when the transcript is a phrase of the
turn, lower when words were dropped, added or misspelt ("to expensive").
Out-of-grammar speech snaps to nothing or to a low similarity, which the
recogniser's confidence model reads.

Digits: spoken digit words in English and Chinese (ivr.digits), digits
written as numerals, "oh", and "double"/"triple" runs, inside light filler
("my number is ..."); only strings whose length the turn allows count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from ivr.digits import parse_digits
from ivr.engine.matching import normalise
from ivr.speech.grammar import Grammar

MIN_SIMILARITY = 0.5
LOOPED = 0.9  # similarity of a digit string taken from a transcript that repeats itself  # below this a phrase is not a reading of the transcript at all
_SPOKEN_FILLER = {"uh", "um", "er", "erm", "ah", "oh", "hmm", "well", "please", "so", "okay", "ok"}


@dataclass(frozen=True, slots=True)
class Reading:
    """One grammar sentence the transcript may stand for, and how closely it matches."""

    text: str
    similarity: float


def readings(transcript: str, grammar: Grammar, limit: int = 5) -> list[Reading]:
    """The grammar's sentences nearest to `transcript`, best first (empty when none is near)."""
    said = normalise(first_saying(transcript))
    if not said:
        return []
    found: list[Reading] = []
    if grammar.digits is not None:
        reading = _digit_reading(spoken_digits(normalise(transcript)), grammar.digits.min, grammar.digits.max)
        if reading is not None:
            found.append(reading)
    found.extend(_phrase_readings(said, grammar.phrases))
    found.sort(key=lambda r: -r.similarity)
    unique: dict[str, Reading] = {}
    for reading in found:
        unique.setdefault(reading.text, reading)
    return list(unique.values())[:limit]


def first_saying(transcript: str) -> str:
    """The transcript up to where it starts saying itself again.

    Whisper with a short encoder window and a vocabulary prompt loops on
    short answers ("Agent. Agent. Agent...", "Policy information. Policy.
    Policy.", "It's too expensive. It's too inexpensive."); nobody answers
    a menu by repeating it, so the first saying stands for the answer.
    Clauses are cut at punctuation; one that nearly repeats or begins an
    earlier clause ends the transcript, and words that repeat a run of
    words from the start (without punctuation) are dropped.
    """
    clauses = [normalise(c) for c in re.split(r"[.,;:!?]+", transcript)]
    kept: list[str] = []
    for said in filter(None, clauses):
        if any(_again(said, earlier) for earlier in kept):
            break
        kept.append(said)
    words = " ".join(kept).split()
    return " ".join(words[: _period(words)])  # "policy information policy information policy"


def _period(words: list[str]) -> int:
    """The length of the shortest run of words the whole list repeats (itself, if none)."""
    for size in range(1, len(words)):
        if len(words) >= 2 * size and all(words[i] == words[i - size] for i in range(size, len(words))):
            return size
    return len(words)


def _again(said: str, earlier: str) -> bool:
    return earlier.startswith(said) or SequenceMatcher(None, said, earlier).ratio() >= 0.8


def spoken_digits(text: str) -> str | None:
    """The digit string in `text` ("1234 5678", "one two double five", "一三八"), or None."""
    spaced = re.sub(r"(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)", " ", normalise(text).replace("'s ", " "))
    return parse_digits(spaced)


def _digit_reading(digits: str | None, low: int, high: int) -> Reading | None:
    """The digit string if its length is allowed; one the decoder looped on ("1 2 1 5 1 2 1" for
    "one two one five", as Whisper does on short windows) cut to its first saying: a caller who
    says a number twice over also means it once."""
    if digits is None:
        return None
    if low <= len(digits) <= high:
        return Reading(digits, 1.0)
    period = next(p for p in range(1, len(digits) + 1) if _repeats(digits, p))
    if low <= period <= high and period < len(digits):  # "1 1 1 1 1..." (period 1) is a runaway, not a number
        return Reading(digits[:period], 1.0)
    for size in range(low, min(high, len(digits) - 2) + 1):  # the loop began again, then wandered off
        head = digits[:size]
        if digits[size : size + 2] == head[:2] and not _repeats(head, 1):
            return Reading(head, 1.0)
    return None


def _repeats(text: str, period: int) -> bool:
    return all(text[i] == text[i - period] for i in range(period, len(text)))


def _phrase_readings(said: str, phrases: tuple[str, ...]) -> list[Reading]:
    words = [w for w in said.split() if w not in _SPOKEN_FILLER] or said.split()
    core = " ".join(words)
    out = []
    for phrase in phrases:
        target = normalise(phrase)
        if not target:
            continue
        score = max(_similarity(said, target), _similarity(core, target))
        if score >= MIN_SIMILARITY:
            out.append(Reading(phrase, round(score, 4)))
    return out


def _similarity(said: str, target: str) -> float:
    """1.0 for the phrase itself; otherwise character similarity of the two, or, when
    the transcript holds the whole phrase among other words, the share of it the phrase is."""
    if said == target:
        return 1.0
    if _is_cjk(target):
        ratio = SequenceMatcher(None, said.replace(" ", ""), target.replace(" ", "")).ratio()
        return min(0.99, ratio)
    ratio = SequenceMatcher(None, said, target).ratio()
    if f" {target} " in f" {said} ":
        ratio = max(ratio, len(target.split()) / len(said.split()))
    return min(0.99, ratio)


def _is_cjk(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))
