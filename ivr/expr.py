"""Safe expressions over call data, for flow conditions and assignments.

Designers write small Python-like expressions (`history.failed_payments > 0 and
not verified`). They are evaluated by simpleeval, never by `eval`: no imports,
no attribute access to internals, bounded sizes. Missing fields of call data
read as `None` so that a condition on optional data is simply false.
"""

from __future__ import annotations

import ast
import threading
from functools import lru_cache
from typing import Any, Mapping

import simpleeval

FUNCTIONS: dict[str, Any] = {
    "len": len,
    "int": int,
    "str": str,
    "float": float,
    "round": round,
    "min": min,
    "max": max,
    "abs": abs,
    "bool": bool,
}
CONSTANTS = {"true": True, "false": False, "null": None, "none": None, "True": True, "False": False, "None": None}


class ExpressionError(Exception):
    """An expression that cannot be parsed or evaluated."""


class Data(dict):
    """A view of call data whose missing keys read as None, so `caller.history.x`
    never raises. Nested mappings are wrapped when read, not copied up front."""

    def __missing__(self, key: Any) -> None:
        return None

    def __getitem__(self, key: Any) -> Any:
        return wrap(super().__getitem__(key))


def wrap(value: Any) -> Any:
    """Make call data safe to read with dotted names."""
    if isinstance(value, Mapping) and not isinstance(value, Data):
        return Data(value)
    return value


@lru_cache(maxsize=4096)
def parse(expression: str) -> ast.Expr:
    """Parse once; raise ExpressionError with a designer-readable reason."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot read expression {expression!r}: {exc.msg}") from None
    return tree.body


def names(expression: str) -> set[str]:
    """The top-level variable names an expression reads (functions and constants excluded)."""
    found: set[str] = set()
    for node in ast.walk(parse(expression)):
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS and node.id not in CONSTANTS:
            found.add(node.id)
    return found


_local = threading.local()


def _evaluator() -> simpleeval.EvalWithCompoundTypes:
    """One evaluator per thread: building one costs more than most evaluations."""
    evaluator = getattr(_local, "evaluator", None)
    if evaluator is None:
        evaluator = _local.evaluator = simpleeval.EvalWithCompoundTypes(functions=FUNCTIONS)
    return evaluator


def _lookup(variables: Mapping[str, Any]):
    def name(node: ast.Name) -> Any:
        if node.id in variables:
            return wrap(variables[node.id])
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise simpleeval.NameNotDefined(node.id, "")
    return name


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate against call variables; any failure becomes ExpressionError."""
    evaluator = _evaluator()
    evaluator.names = _lookup(variables)
    try:
        return evaluator.eval(expression.strip(), previously_parsed=parse(expression))
    except ExpressionError:
        raise
    except Exception as exc:  # simpleeval raises many types; the designer needs one message
        raise ExpressionError(f"{expression!r}: {exc}") from None
