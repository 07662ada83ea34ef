"""Routing rules: where a caller goes first, as data a designer edits (flows/routing.yaml).

    routing: 1
    entry_flow: main_menu
    rules:
      - rule: failed_debit_first
        when: caller.failed_debit
        to: payment
        reason: "failed debit ({caller.failure_reason})"
      - rule: first_year_cancel
        on_intent: cancel
        when: caller.first_year
        to: save_team
        reason: first policy year, wants to cancel

Rules are tried in file order; the first whose `when` holds decides. Rules
without `on_intent` decide at call start; those with one decide when the
caller has said what they want (`any` for every intent). `prefer_agent`
rules name an agent to prefer for whichever person the caller reaches.

A destination (`to`) is a name the entry flow gives a meaning to in its
`routes`: `routes.start` for start rules, `routes.intent` for intent rules
(whose `on_intent` is a choice of the flow's `routes.intent_turn`). The
engine follows the routes itself. Checking them against each other here
means a rule can never send a caller somewhere the flow does not handle,
and a route no rule names is pointed out.

Problems are reported like flow problems: file:line:column, the reason, and
"did you mean" for misspelt keys, destinations and fact names.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr import expr, yamlsource
from ivr.callrecord import JOURNEYS
from ivr.diagnostics import Diagnostic, Severity
from ivr.flow import model as flow_model

ERROR, WARNING = Severity.ERROR, Severity.WARNING
INTENTS = tuple(JOURNEYS.values())
# what a rule may ask about, and the fields of each (see ivr/routing/facts.py)
FACTS: dict[str, set[str]] = {
    "caller": {"known", "id", "first_name", "last_name", "policy_number", "policies", "first_year",
               "first_quarter", "orphan", "lapsed", "failed_debit", "failure_reason", "locked", "language",
               "found_by"},
    "history": {"calls_7d", "calls_30d", "intents_7d", "cancel_intents_30d", "transfers_7d", "last_reason",
                "last_agent", "failed_verifications"},
    "call": {"ani", "dnis", "caller_name", "channel", "language"},
    "intent": set(),
}
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# facts that identify a person: a reason is kept in call records and contact history for weeks, so it
# may not show them (the agent's pop shows the caller already, and the records must not hold them)
PERSONAL_FACTS = {"caller.first_name", "caller.last_name", "caller.policy_number", "caller.policies",
                  "call.ani", "call.caller_name"}


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rule: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Name, shown to the agent with the reason")
    when: str = Field(description="Condition over caller, history, call (and intent, for intent rules)")
    to: str | None = Field(None, description="Destination the entry flow acts on")
    on_intent: str | None = Field(None, description="Decide once the caller said this intent (or 'any')")
    prefer_agent: str | None = Field(None, description="Expression giving the agent id to prefer")
    reason: str = Field(description="Why, for the agent; {expressions} are filled in")
    description: str = ""


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routing: int = Field(description="Format version: 1")
    entry_flow: str = "main_menu"
    rules: list[Rule] = Field(default_factory=list)


@dataclass(frozen=True)
class RuleSet:
    file: str
    entry_flow: str
    rules: tuple[Rule, ...]

    def start_rules(self) -> list[Rule]:
        return [r for r in self.rules if r.to and not r.on_intent]

    def intent_rules(self, intent: str) -> list[Rule]:
        return [r for r in self.rules if r.to and r.on_intent in (intent, "any")]

    def agent_rules(self) -> list[Rule]:
        return [r for r in self.rules if r.prefer_agent]


_VOCABULARY = set(Rule.model_fields) | set(RuleFile.model_fields)


def load_rules(path: Path, flows: Mapping[str, flow_model.Flow] | None = None) -> tuple[RuleSet | None, list[Diagnostic]]:
    """Parse and check a rule file against the flows (when given); the rule set is None when there are errors."""
    try:
        text = yamlsource.read(path)
    except yamlsource.SourceError as exc:
        return None, [exc.diagnostic(str(path))]
    return load_rules_text(text, str(path), flows)


def load_rules_text(text: str, file: str,
                    flows: Mapping[str, flow_model.Flow] | None = None) -> tuple[RuleSet | None, list[Diagnostic]]:
    try:
        document = yamlsource.load(text)
    except yamlsource.SourceError as exc:
        return None, [exc.diagnostic(file)]
    out = [_at(document, file, path, "duplicate-key", f"'{path[-1]}' appears twice; the second would replace the first",
               key=True) for path, _ in document.duplicates]
    if not isinstance(document.data, dict):
        return None, [*out, Diagnostic(file, 1, 1, ERROR, "structure", "a routing file is a mapping with routing and rules")]
    try:
        parsed = RuleFile.model_validate(document.data)
    except ValidationError as exc:
        out.extend(_explain(exc, document, file))
        return None, sorted(out, key=lambda d: (d.line, d.column))
    out.extend(_check(parsed, document, file, flows))
    ok = not any(d.severity is ERROR for d in out)
    return (RuleSet(file, parsed.entry_flow, tuple(parsed.rules)) if ok else None), sorted(out, key=lambda d: (d.line, d.column))


# --- structure -------------------------------------------------------------------


def _explain(exc: ValidationError, document: yamlsource.Document, file: str) -> list[Diagnostic]:
    out = []
    errors = exc.errors()
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    explained: set[tuple] = set()  # a missing key that a misspelt sibling stands for: one message, not two
    for error in errors:
        path = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            word = str(path[-1])
            siblings = [p[-1] for p in missing if p[:-1] == path[:-1]]
            hint = _hint(word, siblings) or _hint(word, _VOCABULARY)
            explained |= {p for p in missing if p[:-1] == path[:-1] and f"'{p[-1]}'" in hint}
            out.append(_at(document, file, path, "unknown-key", f"unknown key '{word}'{hint}", key=True))
    for error in errors:
        path = tuple(error["loc"])
        if error["type"] == "extra_forbidden" or path in explained:
            continue
        if error["type"] == "missing":
            out.append(_at(document, file, path[:-1], "missing-key", f"{_where(path[:-1])} needs '{path[-1]}'", key=True))
        else:
            out.append(_at(document, file, path, "structure", f"{_where(path)}: {error['msg']}"))
    return out


def _where(path: tuple) -> str:
    if len(path) >= 2 and path[0] == "rules":
        return f"rule {int(path[1]) + 1}" + (f" ({'.'.join(map(str, path[2:]))})" if len(path) > 2 else "")
    return ".".join(map(str, path)) or "the routing file"


# --- meaning ---------------------------------------------------------------------------


def _check(parsed: RuleFile, document: yamlsource.Document, file: str,
           flows: Mapping[str, flow_model.Flow] | None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if parsed.routing != 1:
        out.append(_at(document, file, ("routing",), "version", f"routing format {parsed.routing} is not known; use 1"))
    entry_flow = flows.get(parsed.entry_flow) if flows is not None else None
    if flows is not None and entry_flow is None:
        out.append(_at(document, file, ("entry_flow",), "entry-flow",
                       f"no flow '{parsed.entry_flow}'{_hint(parsed.entry_flow, flows)}"))
    start_to, intent_to = destinations(entry_flow) if entry_flow else (None, None)
    choices = _intent_choices(entry_flow) if entry_flow else None
    intent_turn = entry_flow.routes.intent_turn if entry_flow else None
    seen: dict[str, int] = {}
    for index, rule in enumerate(parsed.rules):
        base = ("rules", index)
        if rule.rule in seen:
            out.append(_at(document, file, (*base, "rule"), "duplicate-rule",
                           f"rule '{rule.rule}' is also rule {seen[rule.rule] + 1}: decisions name the rule, keep names unique"))
        seen.setdefault(rule.rule, index)
        if not rule.to and not rule.prefer_agent:
            out.append(_at(document, file, base, "no-effect", f"rule '{rule.rule}' needs 'to' or 'prefer_agent'"))
        if rule.on_intent and rule.on_intent not in (*INTENTS, "any"):
            out.append(_at(document, file, (*base, "on_intent"), "unknown-intent",
                           f"intent '{rule.on_intent}' is not one of {', '.join(INTENTS)}, any{_hint(rule.on_intent, [*INTENTS, 'any'])}"))
        elif rule.on_intent not in (None, "any") and rule.to and choices is not None and rule.on_intent not in choices:
            out.append(_at(document, file, (*base, "on_intent"), "unknown-intent",
                           f"intent '{rule.on_intent}' is not a choice of turn '{intent_turn}' in flow "
                           f"'{parsed.entry_flow}' (its choices: {', '.join(choices)}): the rule would never decide"
                           f"{_hint(rule.on_intent, choices)}"))
        allowed = set(FACTS) if rule.on_intent else set(FACTS) - {"intent"}
        out.extend(_check_expression(document, file, (*base, "when"), rule.when, allowed))
        if rule.prefer_agent:
            out.extend(_check_expression(document, file, (*base, "prefer_agent"), rule.prefer_agent, allowed))
        for placeholder in PLACEHOLDER.findall(rule.reason):
            out.extend(_check_expression(document, file, (*base, "reason"), placeholder.split(":")[0], allowed))
            out.extend(_check_personal(document, file, (*base, "reason"), placeholder.split(":")[0]))
        known = (intent_to if rule.on_intent else start_to)
        if rule.to and known is not None and rule.to not in known:
            routes = "routes.intent" if rule.on_intent else "routes.start"
            out.append(_at(document, file, (*base, "to"), "unknown-destination",
                           f"'{rule.to}' is not handled by flow '{parsed.entry_flow}': its {routes} has no "
                           f"'{rule.to}' (it has: {', '.join(sorted(known)) or 'none'}){_hint(rule.to, known)}"))
    if entry_flow is not None and start_to is not None and intent_to is not None:
        named = {(bool(r.on_intent), r.to) for r in parsed.rules if r.to}
        unused = [f"routes.start '{d}'" for d in sorted(start_to) if (False, d) not in named]
        unused += [f"routes.intent '{d}'" for d in sorted(intent_to) if (True, d) not in named]
        if unused:
            out.append(_at(document, file, ("entry_flow",), "unused-route",
                           f"no rule sends callers to {', '.join(unused)} of flow '{parsed.entry_flow}'",
                           severity=WARNING))
    for name, flow in (flows or {}).items():
        if name != parsed.entry_flow and (flow.routes.start or flow.routes.intent):
            out.append(_at(document, file, ("entry_flow",), "unused-route",
                           f"flow '{name}' has routes, but the rules decide for flow '{parsed.entry_flow}' only",
                           severity=WARNING))
    return out


def _check_expression(document, file: str, path: tuple, expression: str, allowed: set[str]) -> list[Diagnostic]:
    try:
        tree = expr.parse(expression)
    except expr.ExpressionError as exc:
        return [_at(document, file, path, "expression", str(exc))]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in expr.FUNCTIONS and node.id not in expr.CONSTANTS \
                and node.id not in allowed:
            extra = " (only intent rules know the intent)" if node.id == "intent" else ""
            out.append(_at(document, file, path, "unknown-fact",
                           f"'{node.id}' is not something rules can ask about{extra}; use {', '.join(sorted(allowed))}"
                           f"{_hint(node.id, allowed)}"))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in FACTS \
                and FACTS[node.value.id] and node.attr not in FACTS[node.value.id]:
            out.append(_at(document, file, path, "unknown-fact",
                           f"'{node.value.id}.{node.attr}' is not known{_hint(node.attr, FACTS[node.value.id])}"))
    return out


def _check_personal(document, file: str, path: tuple, expression: str) -> list[Diagnostic]:
    """A reason that would write who the caller is (a name, a policy or phone number) into records."""
    try:
        tree = expr.parse(expression)
    except expr.ExpressionError:
        return []  # reported by _check_expression
    used = {f"{node.value.id}.{node.attr}" for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)}
    return [_at(document, file, path, "personal-data",
                f"'{fact}' identifies the caller and a reason is kept in call records for weeks: "
                "leave it out (the agent's screen shows who is calling)") for fact in sorted(used & PERSONAL_FACTS)]


def destinations(flow: flow_model.Flow) -> tuple[set[str], set[str]]:
    """The destinations the entry flow's routes give a meaning to: at call start, and on the intent."""
    return set(flow.routes.start), set(flow.routes.intent)


def _intent_choices(flow: flow_model.Flow) -> list[str] | None:
    """The choices of the flow's intent turn (what intent rules may decide on), if it has one."""
    node = flow.nodes.get(flow.routes.intent_turn or "")
    if isinstance(node, flow_model.AskNode) and node.ask.choices:
        return list(node.ask.choices)
    return None


def _at(document: yamlsource.Document, file: str, path: tuple, code: str, message: str, *, key: bool = False,
        severity: Severity = ERROR) -> Diagnostic:
    pos = document.source.locate(path, key=key)
    return Diagnostic(file, pos.line, pos.column, severity, code, message)


def _hint(word: str, candidates: Any) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""
