"""Digit strings said aloud: "one three eight, double zero" and 一三八零零.

Callers give policy and phone numbers by voice as often as by keypad. These
helpers turn recognised words into digits (English and Chinese), and group a
digit string for reading back the way people say numbers: in threes and fours.
"""

from __future__ import annotations

import re

_EN = {
    "zero": "0", "oh": "0", "o": "0", "nought": "0", "one": "1", "two": "2", "to": "2", "too": "2",
    "three": "3", "four": "4", "for": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
    "nine": "9",
}
_ZH = {
    "零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "么": "1", "二": "2", "两": "2", "三": "3",
    "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9", "拐": "7", "勾": "9",
}
_REPEAT = {"double": 2, "triple": 3}
_FILLER = {"and", "uh", "um", "er", "it's", "its", "is", "my", "number"}


def parse_digits(text: str) -> str | None:
    """Digits in `text`, or None if anything in it is not part of a number."""
    digits: list[str] = []
    repeat = 1
    for token in _tokens(text):
        if token.isdigit():
            digits.append(token * repeat)
            repeat = 1
        elif token in _EN or token in _ZH:
            digits.append((_EN.get(token) or _ZH[token]) * repeat)
            repeat = 1
        elif token in _REPEAT:
            repeat = _REPEAT[token]
        elif token in _FILLER:
            continue
        else:
            return None
    if repeat != 1:
        return None  # "double" with nothing after it
    return "".join(digits) or None


def _tokens(text: str) -> list[str]:
    spaced = re.sub(r"([\u4e00-\u9fff〇])", r" \1 ", text.lower())
    return [t for t in re.split(r"[\s,.;:!?\-]+", spaced) if t]


def group_digits(digits: str) -> list[str]:
    """Split for read-back: 8 → 4+4, 11 → 3+4+4, otherwise threes with a last four."""
    if len(digits) <= 4:
        return [digits] if digits else []
    if len(digits) == 11:
        return [digits[:3], digits[3:7], digits[7:]]
    if len(digits) % 4 == 0:
        return [digits[i : i + 4] for i in range(0, len(digits), 4)]
    head = len(digits) - 4
    groups = [digits[i : i + 3] for i in range(0, head, 3)]
    return groups + [digits[head:]]


def speakable(digits: str) -> str:
    """ "13800138000" → "1 3 8, 0 0 1 3, 8 0 0 0": one digit at a time, pauses between groups."""
    return ", ".join(" ".join(group) for group in group_digits(digits))
