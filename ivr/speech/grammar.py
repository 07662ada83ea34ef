"""What one listening turn may recognise, built from the engine's `Listen` action.

Recognisers decode far better (and faster) when constrained to the few
phrases a turn expects, so every turn carries a `Grammar`: the phrases of the
turn in the call's language, or a digit string of min..max digits (plus the
turn's phrases, such as the global "agent", which stay speakable mid-number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ivr.engine.actions import Listen
from ivr.engine.matching import yes_no_grammar

# "oh" for zero and "double"/"triple" runs are how people say numbers; the
# benchmark (`ivr bench asr`) measures whether they help on real digits.
EN_DIGIT_WORDS: dict[str, str] = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
EN_REPEATS: dict[str, int] = {"double": 2}

GrammarKind = Literal["phrases", "digits"]


@dataclass(frozen=True, slots=True)
class DigitSpec:
    """A digit string of `min`..`max` digits said one at a time."""

    min: int
    max: int
    oh: bool = True  # accept "oh" for zero
    double: bool = True  # accept "double five"


@dataclass(frozen=True, slots=True)
class Grammar:
    """Phrases (and possibly a digit string) allowed in one turn, in one language."""

    language: str
    phrases: tuple[str, ...] = ()
    digits: DigitSpec | None = None

    @property
    def kind(self) -> GrammarKind:
        return "digits" if self.digits else "phrases"

    @classmethod
    def from_listen(cls, listen: Listen, oh: bool = True, double: bool = True) -> Grammar:
        """The grammar for a `Listen`: its phrase table, a digit grammar, or yes/no."""
        phrases = list(listen.grammar)
        if listen.mode == "confirm" and not phrases:
            phrases = list(yes_no_grammar(listen.language))
        digits = None
        if listen.mode == "digits":
            low = max(1, listen.min_digits)
            digits = DigitSpec(low, max(low, listen.max_digits or low), oh=oh, double=double)
        return cls(listen.language, tuple(_unique(phrases)), digits)

    @classmethod
    def of(cls, language: str, phrases: list[str]) -> Grammar:
        return cls(language, tuple(_unique(phrases)))

    def accepts(self, text: str) -> bool:
        """Whether `text` is a sentence of this grammar (recognisers' N-best lists stray)."""
        said = " ".join(tokens(text))
        if said and said in {" ".join(tokens(p)) for p in self.phrases}:
            return True
        return self.digits is not None and self.digits.min <= _digit_count(said) <= self.digits.max

    def words(self) -> set[str]:
        """Every word a recogniser needs in its dictionary for this grammar."""
        found = {w for p in self.phrases for w in tokens(p)}
        if self.digits:
            found |= {w for w in EN_DIGIT_WORDS if w != "oh" or self.digits.oh}
            found |= set(EN_REPEATS) if self.digits.double else set()
        return found


def tokens(phrase: str) -> list[str]:
    """Lower-case words of a phrase, keeping apostrophes ("that's")."""
    return [t for t in re.split(r"[^\w']+", phrase.lower()) if t]


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item.strip():
            seen.setdefault(item.strip(), None)
    return list(seen)


def _digit_count(said: str) -> int:
    """How many digits a string of digit words stands for; -1 if it is not one."""
    count, repeat = 0, 1
    for word in said.split():
        if word in EN_REPEATS and repeat == 1:
            repeat = EN_REPEATS[word]
        elif word in EN_DIGIT_WORDS:
            count, repeat = count + repeat, 1
        else:
            return -1
    return count if repeat == 1 else -1
