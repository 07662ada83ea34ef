"""Deciding where a caller goes first, at call start, and saying why.

`Router.decide(call)` gathers facts, runs the rules and answers additions to
the call data, which the engine keeps in the call's state (so a transfer
carries them and the agent's screen can show them):

- `route_start`: the destination of the first start rule that holds, or None
- `route_for`: {intent: destination} from intent rules, read by the entry
  flow once the caller says what they want
- `routing`: every decision with its rule and reason, for people:
  {"start": {...}, "intents": {intent: {...}}, "prefer_agent": {...}}
- `caller_language`: the language on the record of the policyholder the
  caller number identified (None when it identified nobody), so the call
  speaks it from the first prompt (`ivr.engine.language.start_language`)

Deciding never holds a call up for long and never fails it: facts and rules
get `budget` seconds, after which the call starts unrouted (logged). The rule
file is re-read when it changes, on a worker thread; a broken edit (bad YAML,
not UTF-8, over the size cap, an unknown destination) is refused with its
diagnostics and the previous rules keep deciding.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from ivr import expr
from ivr.diagnostics import Diagnostic
from ivr.routing.rules import PLACEHOLDER, Rule, RuleSet, INTENTS, load_rules

log = logging.getLogger(__name__)
FactSource = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def decide_with(rules: RuleSet, facts: dict[str, Any]) -> dict[str, Any]:
    """The routing call data for these facts (pure: the routing table test drives this)."""
    start = _first(rules.start_rules(), facts)
    intents: dict[str, dict[str, Any]] = {}
    for intent in INTENTS:
        decision = _first(rules.intent_rules(intent), {**facts, "intent": intent})
        if decision is not None:
            intents[intent] = decision
    agent = None
    for rule in rules.agent_rules():
        if _holds(rule, facts):
            value = _evaluate(rule.prefer_agent or "", facts)
            if value:
                agent = {"rule": rule.rule, "agent": str(value), "reason": _reason(rule, facts)}
                break
    return {
        "route_start": start["to"] if start else None,
        "route_for": {intent: d["to"] for intent, d in intents.items()},
        "routing": {"start": start, "intents": intents, "prefer_agent": agent},
        "caller_language": (facts.get("caller") or {}).get("language"),
    }


def _first(rules: list[Rule], facts: dict[str, Any]) -> dict[str, Any] | None:
    for rule in rules:
        if _holds(rule, facts):
            return {"rule": rule.rule, "to": rule.to, "reason": _reason(rule, facts)}
    return None


def _holds(rule: Rule, facts: dict[str, Any]) -> bool:
    return bool(_evaluate(rule.when, facts))


def _evaluate(expression: str, facts: dict[str, Any]) -> Any:
    try:
        return expr.evaluate(expression, facts)
    except expr.ExpressionError as exc:  # e.g. a fact missing for this caller: the rule does not apply
        log.debug("routing expression %s: %s", expression, exc)
        return None


def _reason(rule: Rule, facts: dict[str, Any]) -> str:
    def fill(match) -> str:
        value = _evaluate(match.group(1).split(":")[0], facts)
        return "" if value is None else str(value)
    return PLACEHOLDER.sub(fill, rule.reason)


class Router:
    def __init__(self, path: Path, facts: FactSource, flows: Mapping[str, Any] | None = None, budget: float = 0.5):
        self.path = path
        self.facts = facts
        self.flows = flows  # to check destinations against the entry flow
        self.budget = budget
        self.rules: RuleSet | None = None
        self._mtime: float | None = None
        self._refused: float | None = None
        self._loading: asyncio.Task[None] | None = None
        if (mtime := self._changed()) is not None:
            self._adopt(mtime, *load_rules(self.path, self.flows))

    def _changed(self) -> float | None:
        """The file's new modification time when it changed since it was last read, else None."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            if self.rules is not None or self._mtime is None:
                log.warning("routing file %s not found: calls start unrouted", self.path)
            self.rules, self._mtime = None, -1.0
            return None
        return None if mtime in (self._mtime, self._refused) else mtime

    async def _refresh(self) -> None:
        """Re-read a changed file on a worker thread, so other calls go on meanwhile.

        A call waits for the new rules at most `budget` seconds, then is
        decided by the rules in force; the reading goes on for later calls.
        """
        if self._loading is None:
            if (mtime := self._changed()) is None:
                return
            self._loading = asyncio.create_task(self._load(mtime))
        try:
            await asyncio.wait_for(asyncio.shield(self._loading), self.budget)
        except asyncio.TimeoutError:
            log.warning("routing rules still loading after %.1fs: this call is decided by the previous ones", self.budget)

    async def _load(self, mtime: float) -> None:
        try:
            self._adopt(mtime, *await asyncio.to_thread(load_rules, self.path, self.flows))
        except Exception:  # a checker bug must not unroute calls either
            self._refused = mtime
            log.exception("routing rules from %s could not be read: %s", self.path,
                          "keeping the previous rules" if self.rules else "calls start unrouted")
        finally:
            self._loading = None

    def _adopt(self, mtime: float, rules: RuleSet | None, diagnostics: list[Diagnostic]) -> None:
        """Swap the new rules in (on the loop), or refuse them and keep the previous ones deciding."""
        if rules is None:
            self._refused = mtime
            log.error("routing rules refused, %s:\n%s", "keeping the previous rules" if self.rules else "calls start unrouted",
                      "\n".join(str(d) for d in diagnostics))
            return
        if self._mtime not in (None, -1.0):
            log.info("routing rules reloaded from %s (%d rules)", self.path, len(rules.rules))
        self.rules, self._mtime = rules, mtime

    async def decide(self, call: dict[str, Any]) -> dict[str, Any]:
        """Call-data additions; {} when there are no rules, or facts take too long or fail."""
        await self._refresh()
        if self.rules is None:
            return {}
        try:
            facts = await asyncio.wait_for(self.facts(call), self.budget)
        except asyncio.TimeoutError:
            log.warning("routing facts took over %.1fs: call starts unrouted", self.budget)
            return {}
        except Exception:
            log.exception("routing facts failed: call starts unrouted")
            return {}
        decision = decide_with(self.rules, facts)
        routing = decision["routing"]
        if routing["start"] or routing["intents"] or routing["prefer_agent"]:
            log.info("routing: start %s, by intent %s%s",
                     routing["start"]["rule"] if routing["start"] else "-",
                     {i: d["rule"] for i, d in routing["intents"].items()} or "-",
                     f", prefer agent by {routing['prefer_agent']['rule']}" if routing["prefer_agent"] else "")
        return decision
