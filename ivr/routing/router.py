"""Deciding where a caller goes first, at call start, and saying why.

`Router.route(call, catalog)` picks the release the call runs on, and
`Router.decide(call, rules)` gathers facts, runs that release's rules and
answers additions to the call data, which the engine keeps in the call's
state (so a transfer carries them and the agent's screen can show them):

- `route_start`: the destination of the first start rule that holds, or None
- `route_for`: {intent: destination} from intent rules; the engine follows
  both through the entry flow's `routes` (at call start, and once the caller
  answers its `intent_turn`), copying the decision applied to `routing`
- `routing`: every decision with its rule and reason, for people:
  {"start": {...}, "intents": {intent: {...}}, "prefer_agent": {...}}
- `caller_language`: the language on the record of the policyholder the
  caller number identified (None when it identified nobody), so the call
  speaks it from the first prompt (`ivr.engine.language.start_language`)

The rules belong to a release (`ivr.flow.catalog.FlowSet.routing`): they
are loaded with its flows and prompts, their destinations checked against
the entry flow of the same release, and a call is decided by the rules of
the release it runs on. The router watches the rule file: the first call to
find it changed asks the catalog for a new release (read on a worker
thread, as SIGHUP's is) and waits for it at most `budget` seconds, after
which the release in force decides and the reading goes on for later calls.
A broken edit (bad YAML, not UTF-8, over the size cap, an unknown
destination) is refused with its diagnostics and the previous release, rules
included, keeps deciding.

Deciding never holds a call up for long and never fails it: facts get
`budget` seconds, after which the call starts unrouted (logged).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr import expr
from ivr.masking import mask_tail
from ivr.routing.rules import INTENTS, PLACEHOLDER, Rule, RuleSet

if TYPE_CHECKING:  # the catalog loads routing rules: importing it here would go round in a circle
    from ivr.flow.catalog import Catalog, FlowSet

log = logging.getLogger(__name__)
DIGIT_RUN = re.compile(r"\d{4,}")  # a number in a reason: its last two digits are enough for people
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
    """The rule's reason with its facts filled in; digit runs masked, whatever a rule file that skipped
    `ivr validate` asks for (a reason is kept in call records and contact history)."""
    def fill(match: re.Match[str]) -> str:
        value = _evaluate(match.group(1).split(":")[0], facts)
        return "" if value is None else DIGIT_RUN.sub(lambda m: mask_tail(m.group(0), 2), str(value))
    return PLACEHOLDER.sub(fill, rule.reason)


class Router:
    """Where each new call starts, decided by the rules of the release it runs on (see the module)."""

    def __init__(self, path: Path, facts: FactSource, budget: float = 0.5):
        self.path = path  # the rule file every release reads (`Catalog(routing=...)`)
        self.facts = facts
        self.budget = budget
        self._seen = self._stamp()
        if self._seen is None:
            log.warning("routing file %s not found: calls start unrouted", self.path)

    def _stamp(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def _changed(self) -> bool:
        """Has the file changed since a call last looked? Each change is acted on once: a broken
        edit is refused once, not by every call until it is fixed."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        if stamp is None:
            log.warning("routing file %s not found: calls start unrouted", self.path)
        self._seen = stamp
        return True

    async def route(self, call: dict[str, Any], catalog: Catalog) -> tuple[FlowSet, dict[str, Any]]:
        """The release a new call runs on, and the call-data additions its rules decide."""
        if self._changed():
            await self._reload(catalog)
        release = catalog.current
        return release, await self.decide(call, release.routing)

    async def _reload(self, catalog: Catalog) -> None:
        """A new release with the edited rules; this call waits for it at most `budget` seconds."""
        reloading = catalog.request_reload()
        try:
            await asyncio.wait_for(asyncio.shield(reloading), self.budget)
        except TimeoutError:
            log.warning("routing rules still loading after %.1fs: this call is decided by the release in force",
                        self.budget)

    async def decide(self, call: dict[str, Any], rules: RuleSet | None) -> dict[str, Any]:
        """Call-data additions; {} when there are no rules, or facts take too long or fail."""
        if rules is None:
            return {}
        try:
            facts = await asyncio.wait_for(self.facts(call), self.budget)
        except TimeoutError:
            log.warning("routing facts took over %.1fs: call starts unrouted", self.budget)
            return {}
        except Exception:
            log.exception("routing facts failed: call starts unrouted")
            return {}
        decision = decide_with(rules, facts)
        routing = decision["routing"]
        if routing["start"] or routing["intents"] or routing["prefer_agent"]:
            log.info("routing: start %s, by intent %s%s",
                     routing["start"]["rule"] if routing["start"] else "-",
                     {i: d["rule"] for i, d in routing["intents"].items()} or "-",
                     f", prefer agent by {routing['prefer_agent']['rule']}" if routing["prefer_agent"] else "")
        return decision
