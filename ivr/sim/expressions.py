"""Dialplan variable substitution and ``$[...]`` expressions.

Implements what the project's dialplans use: ``${VAR}``, ``${IF(c?a:b)}``,
``${CALLERID(num|name|all)}``, ``${EXTEN}``, ``${CHANNEL}``, ``${UNIQUEID}``,
``${LEN(x)}``, ``${REGEX("re" s)}``, ``${MASTER_CHANNEL(VAR)}`` and arithmetic/comparison
expressions.  Values are strings, as in Asterisk.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

Lookup = Callable[[str], str]


def substitute(text: str, lookup: Lookup) -> str:
    """Expand ``${...}`` and ``$[...]`` innermost-first."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("${", i) or text.startswith("$[", i):
            opener = text[i + 1]
            closer = "}" if opener == "{" else "]"
            end = _matching(text, i + 1, opener, closer)
            inner = substitute(text[i + 2:end], lookup)
            out.append(lookup(inner) if opener == "{" else evaluate(inner))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _matching(text: str, start: int, opener: str, closer: str) -> int:
    depth = 0
    for j in range(start, len(text)):
        if text[j] == opener:
            depth += 1
        elif text[j] == closer:
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unbalanced {opener} in {text!r}")


def truthy(value: str) -> bool:
    value = value.strip()
    return value not in ("", "0")


def split_condition(text: str) -> tuple[str, str, str]:
    """``cond?a:b`` -> (cond, a, b), respecting parentheses in a and b."""
    cond, _, rest = text.partition("?")
    depth = 0
    for j, ch in enumerate(rest):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == ":" and depth == 0:
            return cond, rest[:j], rest[j + 1:]
    return cond, rest, ""


def function_if(arg: str) -> str:
    cond, a, b = split_condition(arg)
    return a if truthy(cond) else b


def function_regex(arg: str) -> str:
    """``REGEX("pattern" string)``: 1 when the pattern matches."""
    match = re.match(r'\s*"((?:[^"\\]|\\.)*)"\s?(.*)$', arg, re.S)
    if not match:
        return "0"
    try:
        return "1" if re.search(match.group(1), match.group(2)) else "0"
    except re.error:
        return "0"


# -- $[...] ----------------------------------------------------------------
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|<=|>=|!=|=~|[=<>+\-*/%&|!()]|[^\s=<>+\-*/%&|!()"]+)')


def evaluate(expr: str) -> str:
    tokens = [t for t in _TOKEN.findall(expr) if t.strip()]
    if not tokens:
        return ""
    parser = _Parser(tokens)
    value = parser.parse_or()
    return value


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def parse_or(self) -> str:
        left = self.parse_and()
        while self.peek() == "|":
            self.take()
            right = self.parse_and()
            left = left if truthy(left) else (right if truthy(right) else "0")
        return left

    def parse_and(self) -> str:
        left = self.parse_cmp()
        while self.peek() == "&":
            self.take()
            right = self.parse_cmp()
            left = left if truthy(left) and truthy(right) else "0"
        return left

    def parse_cmp(self) -> str:
        left = self.parse_add()
        while self.peek() in ("=", "!=", "<", ">", "<=", ">="):
            op = self.take()
            right = self.parse_add()
            left = "1" if _compare(left, op, right) else "0"
        return left

    def parse_add(self) -> str:
        left = self.parse_mul()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.parse_mul()
            left = _arith(left, op, right)
        return left

    def parse_mul(self) -> str:
        left = self.parse_unary()
        while self.peek() in ("*", "/", "%"):
            op = self.take()
            right = self.parse_unary()
            left = _arith(left, op, right)
        return left

    def parse_unary(self) -> str:
        tok = self.peek()
        if tok == "!":
            self.take()
            return "0" if truthy(self.parse_unary()) else "1"
        if tok == "-" and self.pos + 1 < len(self.tokens):
            self.take()
            return _arith("0", "-", self.parse_unary())
        if tok == "(":
            self.take()
            value = self.parse_or()
            if self.peek() == ")":
                self.take()
            return value
        if tok is None:
            return ""
        self.take()
        if tok.startswith('"') and tok.endswith('"'):
            return tok[1:-1]
        return tok


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _compare(a: str, op: str, b: str) -> bool:
    """As numbers when both are numbers, else as text (as Asterisk compares)."""
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return _ordered(na, op, nb)
    return _ordered(a, op, b)


_Comparable = TypeVar("_Comparable", str, float)


def _ordered(x: _Comparable, op: str, y: _Comparable) -> bool:
    return {"=": x == y, "!=": x != y, "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]


def _arith(a: str, op: str, b: str) -> str:
    na, nb = _number(a) or 0.0, _number(b) or 0.0
    if op == "+":
        r = na + nb
    elif op == "-":
        r = na - nb
    elif op == "*":
        r = na * nb
    elif op == "/":
        r = na / nb if nb else 0.0
    else:
        r = na % nb if nb else 0.0
    return str(int(r)) if r == int(r) else str(r)
