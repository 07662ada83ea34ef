"""Safe expressions over call data, for flow conditions and assignments.

Designers write small Python-like expressions (`history.failed_payments > 0 and
not verified`). They are evaluated by simpleeval, never by `eval`: no imports,
no attribute access to internals. Missing fields of call data read as `None`
so that a condition on optional data is simply false.

One expression must never hold up every call: routing rules run on the event
loop and a call's state is saved after each step. So what could explode is
refused when the expression is read (`ivr validate` reports it where it is
written, and the engine never runs it), and what is left is bounded while it
runs: no value it builds exceeds MAX_SIZE characters and items or MAX_INT_BITS,
and one evaluation stops after MAX_WORK steps. The budget counts steps, not
seconds, so the engine stays free of clocks and a step gives the same answer
on every run. Overstepping raises LimitExceeded, an ExpressionError: the engine
sends the caller to a person, and a routing rule simply does not apply.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import simpleeval

MAX_SOURCE = 500  # characters of one expression
MAX_DEPTH = 32  # parts nested in parts
MAX_EXPONENT = 100  # the number written after **
MAX_FORMAT_NUMBER = 100  # a width or precision in an f-string format
MAX_INT_BITS = 1024  # about 300 digits; a saved call state cannot be read back with 4,300
MAX_SIZE = 5_000  # characters plus items of any one value an expression builds
MAX_WORK = 10_000  # steps of one evaluation: parts evaluated plus characters and items built


class ExpressionError(Exception):
    """An expression that cannot be parsed or evaluated."""


class LimitExceeded(ExpressionError):
    """An expression that could build too much or work too long: refused, not run to the end."""


# simpleeval's own guards read this module-wide setting (+ and * of text and lists, literals, f-strings)
simpleeval.MAX_STRING_LENGTH = MAX_SIZE


def _round(number: Any, ndigits: int | None = None) -> Any:
    """round() of an int to -10**7 digits computes 10**(10**7) first."""
    if isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise LimitExceeded(f"round to {ndigits} digits: the most is {MAX_EXPONENT}")
    return round(number, ndigits)


FUNCTIONS: dict[str, Any] = {
    "len": len,
    "int": int,
    "str": str,
    "float": float,
    "round": _round,
    "min": min,
    "max": max,
    "abs": abs,
    "bool": bool,
}
CONSTANTS = {"true": True, "false": False, "null": None, "none": None, "True": True, "False": False, "None": None}
# methods whose result is no bigger than what they are called on; no width or count arguments
METHODS = frozenset({
    "lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "count", "find",
    "isdigit", "isalpha", "isalnum", "isnumeric", "isspace", "title", "capitalize", "casefold",
    "removeprefix", "removesuffix", "get", "index",
})


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


def _short(expression: str) -> str:
    """The expression as quoted in a message: an over-long one would bury the reason."""
    return repr(expression if len(expression) <= 80 else expression[:77] + "...")


@lru_cache(maxsize=4096)
def parse(expression: str) -> ast.expr:
    """Parse once; raise ExpressionError with a designer-readable reason, LimitExceeded
    for what could explode when run (see _refusal)."""
    source = expression.strip()
    if len(source) > MAX_SOURCE:
        raise LimitExceeded(f"{_short(expression)} is {len(source)} characters long; the most is {MAX_SOURCE}: "
                            f"split it over several set steps")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot read expression {expression!r}: {exc.msg}") from None
    reason = _refusal(tree.body)
    if reason:
        raise LimitExceeded(f"{_short(expression)}: {reason}")
    return tree.body


def names(expression: str) -> set[str]:
    """The top-level variable names an expression reads (functions and constants excluded)."""
    found: set[str] = set()
    for node in ast.walk(parse(expression)):
        if isinstance(node, ast.Name) and node.id not in FUNCTIONS and node.id not in CONSTANTS:
            found.add(node.id)
    return found


# --- what is refused when read -------------------------------------------------

_ALLOWED = (
    ast.Constant, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Slice, ast.BinOp, ast.UnaryOp,
    ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.keyword, ast.List, ast.Tuple, ast.Dict, ast.Set,
    ast.Starred, ast.JoinedStr, ast.FormattedValue, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
)
_SEQUENCES = (ast.List, ast.Tuple, ast.JoinedStr)
_FORMAT_NUMBER = re.compile(r"\d+")


def _refusal(node: ast.AST, depth: int = 1) -> str | None:
    """The first part of an expression that could explode, whatever the call's data.

    Conservative where the size is written in the expression (a power, a
    repeated text or list); values that come from call data are bounded at
    run time instead.
    """
    if depth > MAX_DEPTH:
        return f"parts are nested more than {MAX_DEPTH} deep"
    reason = _own_refusal(node)
    for child in ast.iter_child_nodes(node):
        reason = reason or _refusal(child, depth + 1)
    return reason


def _own_refusal(node: ast.AST) -> str | None:
    if not isinstance(node, _ALLOWED) or isinstance(node, ast.MatMult):
        return f"{_describe(node)} is not available in expressions"
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.BinOp):
        return _binop(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr not in METHODS:
        return f"method .{node.func.attr}() is not available; methods are {', '.join(sorted(METHODS))}"
    if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
        return _format_spec(node.format_spec)
    return None


def _describe(node: ast.AST) -> str:
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return "a comprehension (for ... in ...)"
    return {ast.Lambda: "lambda", ast.NamedExpr: ":=", ast.MatMult: "@"}.get(type(node), type(node).__name__)


def _constant(value: Any) -> str | None:
    if value is not None and not isinstance(value, (bool, int, float, str)):
        return f"a {type(value).__name__} literal is not available in expressions"
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        return f"a number over {MAX_INT_BITS} bits is not available"
    return None


def _binop(node: ast.BinOp) -> str | None:
    if isinstance(node.op, ast.Pow):
        return _power_written(node)
    if isinstance(node.op, ast.Mod) and _is_text(node.left):
        return "% formatting of text is not available"
    if isinstance(node.op, ast.Mult):
        for sequence, times in ((node.left, node.right), (node.right, node.left)):
            if _is_sequence(sequence):
                return _repeat_written(node, sequence, times)
    return None


def _power_written(node: ast.BinOp) -> str | None:
    exponent = _number(node.right)
    if exponent is None or abs(exponent) > MAX_EXPONENT:
        return f"** needs a number written after it, at most {MAX_EXPONENT}"
    base = _number(node.left)
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 \
            and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
        return f"{ast.unparse(node)} is a number over {MAX_INT_BITS} bits"
    return None


def _repeat_written(node: ast.BinOp, sequence: ast.expr, times: ast.expr) -> str | None:
    count = _number(times)
    if not isinstance(count, int):
        return "text or a list can only be repeated a number of times written in the expression"
    if _size(sequence) * count > MAX_SIZE:
        return f"{ast.unparse(node)} would hold over {MAX_SIZE} characters and items"
    return None


def _number(node: ast.expr) -> int | float | None:
    """The number written here (with its sign), or None for anything else."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    return None


def _is_text(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _is_sequence(node: ast.expr) -> bool:
    """Text or a list written here, or built from one with + and *."""
    if _is_text(node) or isinstance(node, _SEQUENCES):
        return True
    return isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)) \
        and (_is_sequence(node.left) or _is_sequence(node.right))


def _size(node: ast.expr) -> int:
    """At least how many characters and items this written sequence holds."""
    if isinstance(node, ast.Constant):
        return len(node.value) if isinstance(node.value, str) else 0
    if isinstance(node, (ast.List, ast.Tuple)):
        return len(node.elts) + sum(_size(e) for e in node.elts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        count = _number(node.right) if _is_sequence(node.left) else _number(node.left)
        inner = node.left if _is_sequence(node.left) else node.right
        return _size(inner) * count if isinstance(count, int) and count > 0 else 0
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _size(node.left) + _size(node.right)
    return 0


def _format_spec(spec: ast.expr) -> str | None:
    if not isinstance(spec, ast.JoinedStr):
        return "a format computed by an expression is not available"
    constants = [v for v in spec.values if isinstance(v, ast.Constant)]
    if len(constants) != len(spec.values):
        return "a format computed by an expression is not available"
    text = "".join(str(v.value) for v in constants)
    if any(int(n) > MAX_FORMAT_NUMBER for n in _FORMAT_NUMBER.findall(text)):
        return f"a format width or precision over {MAX_FORMAT_NUMBER} is not available"
    return None


# --- what is bounded while it runs ---------------------------------------------


def _power(base: Any, exponent: Any) -> Any:
    """`**` that refuses a result over MAX_INT_BITS before spending seconds computing it."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 \
            and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
        raise LimitExceeded(f"a power would be a number over {MAX_INT_BITS} bits")
    return base ** exponent


def _modulo(left: Any, right: Any) -> Any:
    """`%` of numbers only: text % values is printf formatting, whose widths build any length."""
    if isinstance(left, (str, bytes)):
        raise LimitExceeded("% formatting of text is not available")
    return left % right


_OPERATORS: dict[type, Callable[..., Any]] = {**simpleeval.DEFAULT_OPERATORS, ast.Pow: _power, ast.Mod: _modulo}
_TOO_BIG = f"builds a value of over {MAX_SIZE} characters and items"
# parts that build nothing: they read call data or a literal, or pass on a value already measured
_BUILD_NOTHING = (ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.BoolOp, ast.IfExp)


class _Evaluator(simpleeval.EvalWithCompoundTypes):
    """simpleeval with a budget: each part evaluated, and each character and item of a
    value an expression builds, is a step; past MAX_WORK steps the evaluation stops."""

    def __init__(self) -> None:
        super().__init__(operators=dict(_OPERATORS), functions=dict(FUNCTIONS))
        self.work = 0

    def eval(self, expr: str, previously_parsed: Any = None) -> Any:
        self.work = 0
        return super().eval(expr, previously_parsed)

    def _eval(self, node: ast.AST) -> Any:
        """simpleeval's _eval, measuring a built value before simpleeval walks it for
        forbidden contents (a list holding itself 99,999 times would take minutes)."""
        self._spend(1)
        handler = self.nodes.get(type(node))
        if handler is None:
            raise simpleeval.FeatureNotAvailable(f"{type(node).__name__} is not available")
        result = handler(node)
        if not isinstance(node, _BUILD_NOTHING):
            self._measure(result)
        self._check_disallowed_items(result)
        return result

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        found = super()._eval_attribute(node)
        if callable(found) and node.attr not in METHODS:
            raise LimitExceeded(f".{node.attr} is a method that is not available in expressions")
        return found

    def _measure(self, value: Any) -> None:
        """Spend the characters and items of a built value; refuse it when too big."""
        start = self.work
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, (str, bytes)):
                self._spend(len(item))
            elif isinstance(item, dict):
                self._spend(len(item))
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, (list, tuple, set, frozenset)):
                self._spend(len(item))
                stack.extend(item)
            elif isinstance(item, int) and item.bit_length() > MAX_INT_BITS:
                raise LimitExceeded(f"builds a number over {MAX_INT_BITS} bits")
            if self.work - start > MAX_SIZE:
                raise LimitExceeded(_TOO_BIG)

    def _spend(self, steps: int) -> None:
        self.work += steps
        if self.work > MAX_WORK:
            raise LimitExceeded(f"takes over {MAX_WORK} steps")


_local = threading.local()


def _evaluator() -> _Evaluator:
    """One evaluator per thread: building one costs more than most evaluations."""
    evaluator = getattr(_local, "evaluator", None)
    if evaluator is None:
        evaluator = _local.evaluator = _Evaluator()
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
    """Evaluate against call variables; any failure becomes ExpressionError (LimitExceeded
    when it would build too much or take too long)."""
    tree = parse(expression)
    evaluator = _evaluator()
    evaluator.names = _lookup(variables)
    try:
        return evaluator.eval(expression.strip(), previously_parsed=tree)
    except (LimitExceeded, simpleeval.NumberTooHigh, simpleeval.IterableTooLong, MemoryError, RecursionError) as exc:
        reason = _TOO_BIG if isinstance(exc, simpleeval.IterableTooLong) else str(exc) or type(exc).__name__
        raise LimitExceeded(f"{_short(expression)}: {reason}") from None
    except Exception as exc:  # simpleeval raises many types; the designer needs one message
        raise ExpressionError(f"{expression!r}: {exc}") from None
