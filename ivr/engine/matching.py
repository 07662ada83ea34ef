"""Map what the caller said to what the turn offers.

Recognisers constrained by a grammar usually return one of the phrases
exactly, but free or partial results do happen; matching is therefore by
normalised phrase, then by the longest phrase contained in the words heard.
"""

from __future__ import annotations

import re

YES_NO: dict[str, dict[str, list[str]]] = {
    "en": {
        "yes": ["yes", "yeah", "yep", "correct", "that's right", "right", "sure", "yes please"],
        "no": ["no", "nope", "wrong", "that's wrong", "not right", "no thanks"],
    },
    "zh": {
        "yes": ["是", "是的", "对", "对的", "没错", "好的"],
        "no": ["不是", "不对", "错了", "不"],
    },
}
YES_NO_KEYS = {"1": "yes", "2": "no"}


def normalise(text: str) -> str:
    text = re.sub(r"[^\w\s'\u4e00-\u9fff]", " ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def match(text: str, grammar: dict[str, str]) -> str | None:
    """The outcome for `text` in a phrase → outcome table, or None."""
    heard = normalise(text)
    if not heard:
        return None
    table = {normalise(phrase): outcome for phrase, outcome in grammar.items()}
    if heard in table:
        return table[heard]
    padded = f" {heard} "
    best: tuple[int, str] | None = None
    for phrase, outcome in table.items():
        if not phrase:
            continue
        contained = phrase in heard if _is_cjk(phrase) else f" {phrase} " in padded
        if contained and (best is None or len(phrase) > best[0]):
            best = (len(phrase), outcome)
    return best[1] if best else None


def _is_cjk(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))


def yes_no_grammar(language: str) -> dict[str, str]:
    words = YES_NO.get(language, YES_NO["en"])
    return {phrase: outcome for outcome, phrases in words.items() for phrase in phrases}
