"""Checks that a well-formed flow also makes sense as a phone call.

Structure is checked by the models; this module checks meaning across nodes,
flows, prompts and backend actions: every target exists, every node is
reachable, every turn can reach a human, no loop traps a caller, every prompt
exists in every language, every variable is defined, every action is known,
and no wait leaves the caller in silence for more than 3 seconds.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping

from ivr import expr
from ivr.backend.catalog import ActionInfo
from ivr.diagnostics import Diagnostic, Severity
from ivr.flow import model
from ivr.flow.loader import LoadedFlow
from ivr.flow.structure import CALL_START, Edge, edges, escape_of, is_terminal, start_edges
from ivr.prompts import ENGINE_PROMPTS, SYSTEM_PROMPTS, PromptCatalog
from ivr.yamlsource import Path as YamlPath

Successors = Callable[[str], list[str]]

ERROR, WARNING = Severity.ERROR, Severity.WARNING
# The variables every flow has without declaring them (model.SHARED_VARIABLES): `call`, filled by the
# controller (ani, language, channel, the routing decision...); `routing`, the routing rule's decision
# the engine applied through the flow's routes, or null; `language`, the caller's choice in this call.
BUILTIN_VARIABLES = set(model.SHARED_VARIABLES)

# Dead air: the longest a caller may hear nothing, and how long after a timeout fires the next
# prompt is heard (measured on Asterisk: a 5 s noinput gave 5.4-5.5 s between reprompts). A turn
# speaks again after `noinput` of silence, or `interdigit` after the caller's last key, so either
# may be at most DEAD_AIR_LIMIT - REPROMPT_DELAY.
DEAD_AIR_LIMIT = 3.0
REPROMPT_DELAY = 0.5
SILENT_WAITS = ("noinput", "interdigit")


def validate(flows: dict[str, LoadedFlow], prompts: PromptCatalog, actions: dict[str, ActionInfo]) -> list[Diagnostic]:
    """Every problem in a set of flows that call each other."""
    found: list[Diagnostic] = []
    for loaded in flows.values():
        checker = _FlowChecker(loaded, flows, prompts, actions)
        found.extend(checker.run())
    found.extend(_recursion(flows))
    found.extend(_duplicate_experiments(flows))
    found.extend(_system_prompts(flows, prompts))
    return sorted(found, key=lambda d: (d.file, d.line, d.column, d.code))


class _FlowChecker:
    def __init__(self, loaded: LoadedFlow, flows: dict[str, LoadedFlow], prompts: PromptCatalog,
                 actions: dict[str, ActionInfo]):
        self.loaded = loaded
        self.flow = loaded.flow
        self.flows = flows
        self.prompts = prompts
        self.actions = actions
        self.edges = [*edges(self.flow), *start_edges(self.flow)]
        self.adjacency: dict[str, list[str]] = defaultdict(list)
        for edge in self.edges:
            if edge.node is not None:
                self.adjacency[edge.source].append(edge.node)
        self.edges_from: dict[str, list[Edge]] = defaultdict(list)
        for edge in self.edges:
            self.edges_from[edge.source].append(edge)
        self.out: list[Diagnostic] = []

    def report(self, path: YamlPath, severity: Severity, code: str, message: str, *, key: bool = False) -> None:
        self.out.append(self.loaded.at(path, severity, code, message, key=key))

    def run(self) -> list[Diagnostic]:
        self.check_targets()
        if any(d.code == "missing-node" for d in self.out):
            return self.out  # graph checks would only repeat the same mistake
        self.check_reachable()
        self.check_routes()
        self.check_turns()
        self._check_empty_dtmf(("globals",), self.flow.globals)
        self.check_human_path()
        self.check_loops()
        self.check_actions()
        self.check_keypad_only()
        self.check_calls()
        self.check_experiments()
        self.check_interface()
        self.check_prompts()
        self.check_variables()
        self.check_values()
        return self.out

    # --- graph -----------------------------------------------------------

    def check_targets(self) -> None:
        names = list(self.flow.nodes)
        if self.flow.start not in self.flow.nodes:
            self.report(("start",), ERROR, "missing-node", f"start node '{self.flow.start}' does not exist{_hint(self.flow.start, names)}")
        turn = self.flow.routes.intent_turn
        if turn is not None and turn not in self.flow.nodes:
            self.report(("routes", "intent_turn"), ERROR, "missing-node",
                        f"routes.intent_turn '{turn}' does not exist{_hint(turn, names)}")
        defaults = [(("defaults", field), target) for field in model.DEFAULTED_OUTCOMES.values()
                    if isinstance(target := getattr(self.flow.defaults, field), str)]
        seen: set[YamlPath] = set()  # a default is an edge of every node that uses it: one error, where it is written
        for path, target in [*((e.path, e.target) for e in self.edges), *defaults]:
            if not isinstance(target, str) or target in self.flow.nodes or path in seen:
                continue
            seen.add(path)
            edge = next((e for e in self.edges if e.path == path), None)
            if path[0] == "defaults":
                where = f"defaults.{path[1]}"
            elif path[0] == "routes":
                where = f"routes.{path[1]} '{path[2]}'"
            elif edge is not None and edge.kind == "escape":
                where = f"escape of node '{edge.source}'"
            else:
                where = f"'{edge.label if edge else path[-1]}' of node '{path[1]}'"
            self.report(path, ERROR, "missing-node",
                        f"{where} goes to '{target}', which does not exist{_hint(target, names)}")

    def successors(self, name: str) -> list[str]:
        return self.adjacency.get(name, [])

    def check_reachable(self) -> None:
        seen = _reachable_all({self.flow.start, CALL_START}, self.successors)
        for name in self.flow.nodes:
            if name not in seen:
                self.report(("nodes", name), ERROR, "unreachable",
                            f"node '{name}' can never be reached from start '{self.flow.start}'", key=True)

    def check_routes(self) -> None:
        """The intent routes need the turn whose answer is the intent: a turn with choices."""
        routes = self.flow.routes
        if routes.intent and routes.intent_turn is None:
            self.report(("routes", "intent"), ERROR, "routes",
                        "routes.intent needs routes.intent_turn: the turn where callers say what they want", key=True)
        node = self.flow.nodes.get(routes.intent_turn or "")
        if node is not None and not (isinstance(node, model.AskNode) and node.ask.choices):
            self.report(("routes", "intent_turn"), ERROR, "routes",
                        f"routes.intent_turn '{routes.intent_turn}' is not a turn with choices: "
                        f"its choice is the intent the rules decide on")

    def check_human_path(self) -> None:
        human = self._nodes_reaching_human()
        for name, node in self.flow.nodes.items():
            if not isinstance(node, model.AskNode):
                continue
            escape, path = escape_of(self.flow, node, name)
            if escape is None:
                self.report(("nodes", name), ERROR, "no-human",
                            f"turn '{name}' has no escape for callers who cannot answer: add escape: {{transfer: <queue>}} to it or to defaults",
                            key=True)
            elif not _reaches_human(escape, human):
                self.report(path, ERROR, "no-human",
                            f"turn '{name}' escapes to {_describe(escape)}, which never reaches a person; stuck callers must reach a human")

    def _nodes_reaching_human(self) -> set[str]:
        """Nodes from which some path ends in a transfer to a queue."""
        human = {n for n, node in self.flow.nodes.items() if isinstance(node, model.TransferNode)}
        human |= {e.source for e in self.edges if isinstance(e.target, model.TransferTarget)}
        predecessors: dict[str, list[str]] = defaultdict(list)
        for edge in self.edges:
            if edge.node is not None:
                predecessors[edge.node].append(edge.source)
        return _reachable_all(human, lambda n: predecessors.get(n, []))

    def check_loops(self) -> None:
        for component in _strongly_connected(list(self.flow.nodes), self.successors):
            if len(component) == 1:
                only = next(iter(component))
                if only not in self.successors(only):
                    continue
            if not self._loop_can_exit(component):
                first = min(component, key=lambda n: self.loaded.source.locate(("nodes", n), key=True).line)
                self.report(("nodes", first), ERROR, "endless-loop",
                            f"nodes {', '.join(sorted(component))} form a loop with no way out: callers would never leave it",
                            key=True)

    def _loop_can_exit(self, component: set[str]) -> bool:
        for name in component:
            if is_terminal(self.flow.nodes[name]):
                return True
            if any(edge.node is None or edge.node not in component for edge in self.edges_from[name]):
                return True
        return False

    # --- turns -----------------------------------------------------------

    def check_turns(self) -> None:
        self._check_silence(("defaults", "timeouts"), self.flow.defaults.timeouts, "the flow's turns")
        for name, node in self.flow.nodes.items():
            if isinstance(node, model.AskNode):
                self._check_ask(name, node)
                if node.ask.timeouts:
                    self._check_silence(("nodes", name, "ask", "timeouts"), node.ask.timeouts, f"turn '{name}'")

    def _check_silence(self, base: YamlPath, timeouts: model.Timeouts, whose: str) -> None:
        """A wait after which the caller hears the next prompt must not leave them in dead air."""
        longest = DEAD_AIR_LIMIT - REPROMPT_DELAY
        for field in SILENT_WAITS:
            wait = getattr(timeouts, field)
            if wait is not None and wait > longest:
                what = "of silence" if field == "noinput" else "after the caller's last key"
                self.report((*base, field), ERROR, "dead-air",
                            f"{field} {wait:g}s: {whose} would leave callers {wait + REPROMPT_DELAY:g}s {what} "
                            f"before the next prompt (at most {DEAD_AIR_LIMIT:g}s); wait {longest:g}s or less "
                            f"and give slow callers another reprompt instead")

    def _check_ask(self, name: str, node: model.AskNode) -> None:
        ask = node.ask
        base = ("nodes", name, "ask")
        modes = [m for m in model.ASK_MODES if getattr(ask, m)]
        if len(modes) != 1:
            self.report(base, ERROR, "ask-mode",
                        f"turn '{name}' must expect exactly one of choices, digits or confirm (has {', '.join(modes) or 'none'})",
                        key=True)
            return
        outcomes = self._ask_outcomes(ask)
        self._check_outcomes(name, node.next, outcomes, "answer")
        self._check_dtmf(name, ask)
        if ask.choices:
            self._check_phrases(name, ask)
        if ask.digits and ask.digits.min > ask.digits.max:
            self.report((*base, "digits"), ERROR, "digits-range",
                        f"turn '{name}' asks for at least {ask.digits.min} digits but at most {ask.digits.max}", key=True)
        if ask.digits and ask.digits.terminator_required and not ask.digits.terminator:
            self.report((*base, "digits"), ERROR, "digits-terminator",
                        f"turn '{name}' requires a terminator but sets none (terminator: \"\")", key=True)
        confirm_below = ask.confirm_below if ask.confirm_below is not None else self.flow.defaults.confirm_below
        reject_below = ask.reject_below if ask.reject_below is not None else self.flow.defaults.reject_below
        if reject_below > confirm_below:
            self.report(base, WARNING, "thresholds",
                        f"turn '{name}' rejects speech below {reject_below} but confirms below {confirm_below}: nothing is ever confirmed",
                        key=True)

    def _ask_outcomes(self, ask: model.Ask) -> list[str]:
        if ask.choices:
            return list(ask.choices)
        if ask.confirm:
            return ["yes", "no"]
        return ["ok"]

    def _check_outcomes(self, name: str, next_: object, outcomes: Iterable[str], what: str,
                        missing_severity: Severity = ERROR) -> None:
        if not isinstance(next_, dict):
            return
        outcomes = list(outcomes)
        misspelt: set[str] = set()
        for outcome in next_:
            if outcome not in outcomes:
                meant = [o for o in difflib.get_close_matches(outcome, outcomes, n=1, cutoff=0.6) if o not in next_]
                misspelt.update(meant)  # one typo, one diagnostic: not also "where does it go"
                hint = f"; did you mean '{meant[0]}'?" if meant else ""
                self.report(("nodes", name, "next", outcome), ERROR, "unknown-outcome",
                            f"node '{name}' has no {what} '{outcome}'{hint} (it can give: {', '.join(outcomes)})",
                            key=True)
        for outcome in outcomes:
            if outcome not in next_ and outcome not in misspelt:
                hint = f" (nor does defaults.{model.DEFAULTED_OUTCOMES[outcome]})" \
                    if what == "outcome" and outcome in model.DEFAULTED_OUTCOMES else ""
                self.report(("nodes", name, "next"), missing_severity, "missing-outcome",
                            f"node '{name}' does not say where {what} '{outcome}' goes{hint}", key=True)

    def _check_empty_dtmf(self, base: YamlPath, choices: Mapping[str, model.Choice]) -> None:
        """`dtmf:` written with no key: in YAML `dtmf: #` is a comment, and the choice silently loses its key."""
        for choice_name, choice in choices.items():
            path = (*base, choice_name, "dtmf")
            if choice.dtmf is None and path in self.loaded.source.keys:
                self.report(path, ERROR, "dtmf-empty",
                            f"choice '{choice_name}' has an empty dtmf: in YAML a # starts a comment, "
                            f"so write the key in quotes (dtmf: \"#\")", key=True)

    def _check_dtmf(self, name: str, ask: model.Ask) -> None:
        self._check_empty_dtmf(("nodes", name, "ask", "choices"), ask.choices or {})
        seen: dict[str, str] = {}
        pairs = list((ask.choices or {}).items())
        if ask.confirm:
            pairs += [("yes", model.Choice(dtmf="1")), ("no", model.Choice(dtmf="2"))]
        pairs += [(f"global choice '{g}'", c) for g, c in self.flow.globals.items()]
        for choice_name, choice in pairs:
            if not choice.dtmf:
                continue
            if choice.dtmf in seen:
                first = seen[choice.dtmf]
                mine = choice_name if choice_name in (ask.choices or {}) else first  # point at this turn's choice
                path = ("nodes", name, "ask", "choices", mine, "dtmf") if mine in (ask.choices or {}) else ("nodes", name, "ask")
                self.report(path, ERROR, "duplicate-dtmf",
                            f"key {choice.dtmf} picks both {_quote(first)} and {_quote(choice_name)} in turn '{name}'")
            else:
                seen[choice.dtmf] = choice_name

    def _check_phrases(self, name: str, ask: model.Ask) -> None:
        assert ask.choices is not None
        for choice_name, choice in ask.choices.items():
            path = ("nodes", name, "ask", "choices", choice_name)
            if not choice.say and not choice.dtmf:
                self.report(path, ERROR, "empty-choice", f"choice '{choice_name}' in turn '{name}' has neither phrases nor a key", key=True)
                continue
            if isinstance(choice.say, dict):
                for language in choice.say:
                    if language not in self.flow.languages:
                        self.report((*path, "say", language), WARNING, "language",
                                    f"choice '{choice_name}' has phrases for '{language}', which the flow does not list in languages", key=True)
            if ask.speech:
                for language in self.flow.languages:
                    if not model.phrases_for(choice, language, self.flow.languages):
                        self.report(path, WARNING, "no-phrases",
                                    f"choice '{choice_name}' in turn '{name}' cannot be said in '{language}' (keys only)", key=True)

    # --- actions and sub-flows ------------------------------------------

    def check_actions(self) -> None:
        defaulted = {outcome: field for outcome, field in model.DEFAULTED_OUTCOMES.items()
                     if getattr(self.flow.defaults, field) is not None}
        used: set[str] = set()
        for name, node in self.flow.nodes.items():
            if not isinstance(node, model.ActionNode):
                continue
            used |= {field for outcome, field in defaulted.items() if outcome not in node.next}
            info = self.actions.get(node.action.name)
            if info is None:
                self.report(("nodes", name, "action", "name"), ERROR, "unknown-action",
                            f"backend action '{node.action.name}' does not exist{_hint(node.action.name, list(self.actions))}")
                continue
            handled = {**{outcome: None for outcome in defaulted}, **node.next}
            self._check_outcomes(name, handled, info.outcomes, "outcome", missing_severity=WARNING)
        for field in sorted(set(defaulted.values()) - used):
            outcome = next(o for o, f in model.DEFAULTED_OUTCOMES.items() if f == field)
            self.report(("defaults", field), WARNING, "unused-default",
                        f"no action of this flow uses defaults.{field}: each says where its {outcome} goes", key=True)

    def check_keypad_only(self) -> None:
        """A keypad-only answer (a card number) is wiped by the engine once an action that uses it
        returns, and when the flow that asked for it returns: a second user would find null."""
        mine = model.keypad_only_variables(self.flow)
        for i, variable in enumerate(self.flow.gives):
            if variable in mine:
                self.report(("gives", i), WARNING, "keypad-only",
                            f"'{variable}' is keyed in a keypad-only turn: the engine wipes it when this flow "
                            f"returns, so the calling flow gets null; use it in this flow")
        first: dict[str, str] = {}
        for name, node in self.flow.nodes.items():
            if not isinstance(node, model.ActionNode):
                continue
            for arg, value in node.action.args.items():
                if not isinstance(value, model.Computed):
                    continue
                try:
                    used = expr.names(value.expression)
                except expr.ExpressionError:
                    continue  # reported by check_variables
                path = ("nodes", name, "action", "args", arg)
                for variable in sorted(used & mine):
                    if first.setdefault(variable, name) != name:
                        self.report(path, WARNING, "keypad-only",
                                    f"'{variable}' is keyed in a keypad-only turn and actions '{first[variable]}' and "
                                    f"'{name}' both use it: the engine wipes it once the first of them returns, so the "
                                    f"other finds null unless the caller keys it again in between")

    def check_calls(self) -> None:
        for name, node in self.flow.nodes.items():
            if not isinstance(node, model.CallNode):
                continue
            callee = self.flows.get(node.call)
            if callee is None:
                self.report(("nodes", name, "call"), ERROR, "unknown-flow",
                            f"sub-flow '{node.call}' does not exist{_hint(node.call, list(self.flows))}")
                continue
            returns = sorted(_return_values(callee.flow))
            if not returns and node.next is not None:
                self.report(("nodes", name, "next"), WARNING, "no-return",
                            f"sub-flow '{node.call}' never returns, so the next of node '{name}' is never used", key=True)
            elif returns and node.next is None:
                self.report(("nodes", name), ERROR, "missing-outcome",
                            f"sub-flow '{node.call}' can return {', '.join(returns)}: node '{name}' needs a next", key=True)
            self._check_outcomes(name, node.next, returns, "return value")
            for argument in node.with_:
                if argument not in callee.flow.takes:
                    takes = ", ".join(callee.flow.takes) or "nothing"
                    self.report(("nodes", name, "with", argument), ERROR, "unknown-argument",
                                f"sub-flow '{node.call}' takes {takes}, not '{argument}'"
                                f"{_hint(argument, callee.flow.takes)}", key=True)

    # --- experiments -------------------------------------------------------

    def check_experiments(self) -> None:
        changed: dict[str, str] = {}  # node -> the experiment that changes it
        for name, experiment in self.flow.experiments.items():
            base = ("experiments", name)
            self._check_arms(name, experiment, base)
            self._check_shares(name, experiment, base)
            if experiment.stop is not None and not _before(experiment.start, experiment.stop):
                self.report((*base, "stop"), ERROR, "experiment-dates",
                            f"experiment '{name}' stops ({experiment.stop}) before it starts ({experiment.start})")
            node = self.flow.nodes.get(experiment.node)
            if node is None:
                self.report((*base, "node"), ERROR, "experiment-node",
                            f"experiment '{name}' changes node '{experiment.node}', which does not exist"
                            f"{_hint(experiment.node, list(self.flow.nodes))}")
                continue
            if experiment.node in changed:
                self.report((*base, "node"), ERROR, "experiment-node",
                            f"node '{experiment.node}' is already changed by experiment '{changed[experiment.node]}': "
                            f"two experiments on one node would mix their effects")
            changed.setdefault(experiment.node, name)
            kinds = self._check_kinds(name, experiment, base)
            for index, arm in enumerate(experiment.arms):
                path = (*base, "arms", index)
                if "order" in kinds:
                    self._check_order(name, experiment.node, node, arm, path)
                if "call" in kinds:
                    self._check_arm_call(name, experiment.node, node, arm, path)
                if arm.prompt is not None and not isinstance(node, (model.AskNode, model.PlayNode)):
                    self.report((*path, "prompt"), ERROR, "experiment-node",
                                f"arm '{arm.arm}' changes the prompt of node '{experiment.node}', which has none "
                                f"to change (a turn's prompt or a play node's)")

    def _check_arms(self, name: str, experiment: model.Experiment, base: YamlPath) -> None:
        if len(experiment.arms) < 2:
            self.report((*base, "arms"), ERROR, "experiment-arms",
                        f"experiment '{name}' has {len(experiment.arms)} arm(s): it compares the control (the first) "
                        f"with at least one other", key=True)
        seen: set[str] = set()
        for index, arm in enumerate(experiment.arms):
            if arm.arm in seen:
                self.report((*base, "arms", index, "arm"), ERROR, "duplicate-arm",
                            f"experiment '{name}' has two arms named '{arm.arm}': records could not tell them apart")
            seen.add(arm.arm)
        control = experiment.arms[0] if experiment.arms else None
        if control is not None and model.arm_changes(control):
            self.report((*base, "arms", 0), ERROR, "experiment-control",
                        f"the first arm ('{control.arm}') is the control, the flow as written, which every caller "
                        f"gets outside the dates: put the change in another arm")

    def _check_shares(self, name: str, experiment: model.Experiment, base: YamlPath) -> None:
        given = [arm.share for arm in experiment.arms if arm.share is not None]
        if not given:
            return
        for index, arm in enumerate(experiment.arms):
            if arm.share is not None and arm.share < 0:
                self.report((*base, "arms", index, "share"), ERROR, "experiment-share",
                            f"arm '{arm.arm}' has a negative share ({arm.share})")
        if len(given) < len(experiment.arms):
            self.report((*base, "arms"), ERROR, "experiment-share",
                        f"experiment '{name}': give every arm a share, or none for equal shares", key=True)
        elif sum(given) != 100:
            self.report((*base, "arms"), ERROR, "experiment-share",
                        f"the shares of experiment '{name}' add up to {sum(given)}, not 100", key=True)

    def _check_kinds(self, name: str, experiment: model.Experiment, base: YamlPath) -> set[str]:
        """What the experiment changes: one kind of thing, or its results could not say which mattered."""
        kinds: dict[str, str] = {}  # kind -> the first arm that changes it
        for index, arm in enumerate(experiment.arms):
            changes = model.arm_changes(arm)
            if len(changes) > 1:
                self.report((*base, "arms", index), ERROR, "experiment-kinds",
                            f"arm '{arm.arm}' changes {' and '.join(changes)}: an experiment changes one thing")
                continue
            for kind in changes:
                if kinds and kind not in kinds:
                    first = next(iter(kinds))
                    self.report((*base, "arms", index, kind), ERROR, "experiment-kinds",
                                f"arm '{arm.arm}' changes the {kind} but arm '{kinds[first]}' the {first}: "
                                f"an experiment changes one thing (make two experiments)", key=True)
                kinds.setdefault(kind, arm.arm)
        if len(experiment.arms) > 1 and not kinds:
            self.report((*base, "arms"), WARNING, "experiment-arms",
                        f"no arm of experiment '{name}' changes anything: give the others a prompt, order or call",
                        key=True)
        return set(kinds)

    def _check_order(self, name: str, node_name: str, node: model.Node, arm: model.Arm, path: YamlPath) -> None:
        if arm.order is None:
            return
        if not (isinstance(node, model.AskNode) and node.ask.choices):
            self.report((*path, "order"), ERROR, "experiment-node",
                        f"arm '{arm.arm}' orders the choices of node '{node_name}', which is not a turn with choices",
                        key=True)
            return
        written = list(node.ask.choices)
        if sorted(arm.order) != sorted(written):
            missing = [c for c in written if c not in arm.order]
            extra = [c for c in arm.order if c not in written]
            twice = sorted({c for c in arm.order if arm.order.count(c) > 1})
            problems = [f"lacks {', '.join(missing)}" if missing else "",
                        f"has {', '.join(extra)}, not a choice of the turn" if extra else "",
                        f"lists {', '.join(twice)} twice" if twice else ""]
            self.report((*path, "order"), ERROR, "experiment-order",
                        f"arm '{arm.arm}' must list each choice of turn '{node_name}' once ({', '.join(written)}): "
                        f"it {'; '.join(p for p in problems if p)}", key=True)
            return
        keys = [node.ask.choices[c].dtmf for c in written]
        moved = any(node.ask.choices[c].dtmf != key for c, key in zip(arm.order, keys))
        if moved and arm.prompt is None:
            self.report((*path, "order"), WARNING, "experiment-order",
                        f"in arm '{arm.arm}' the keys follow the new order, but callers hear the turn's own prompt "
                        f"naming the old keys: give the arm a prompt that reads its order", key=True)

    def _check_arm_call(self, name: str, node_name: str, node: model.Node, arm: model.Arm, path: YamlPath) -> None:
        if arm.call is None:
            return
        if not isinstance(node, model.CallNode):
            self.report((*path, "call"), ERROR, "experiment-node",
                        f"arm '{arm.arm}' changes the sub-flow of node '{node_name}', which is not a call node")
            return
        callee = self.flows.get(arm.call)
        if callee is None:
            self.report((*path, "call"), ERROR, "unknown-flow",
                        f"sub-flow '{arm.call}' of arm '{arm.arm}' does not exist{_hint(arm.call, list(self.flows))}")
            return
        control = self.flows.get(node.call)
        if control is None:
            return  # reported by check_calls
        mine, theirs = callee.flow, control.flow
        differences = [f"{what} {', '.join(sorted(getattr(mine, what))) or 'nothing'} where '{node.call}' "
                       f"{what} {', '.join(sorted(getattr(theirs, what))) or 'nothing'}"
                       for what in ("takes", "gives") if set(getattr(mine, what)) != set(getattr(theirs, what))]
        unhandled = sorted(_return_values(mine) - _return_values(theirs))
        if unhandled:
            differences.append(f"returns {', '.join(unhandled)}, which '{node.call}' never does")
        if differences:
            self.report((*path, "call"), ERROR, "experiment-interface",
                        f"sub-flow '{arm.call}' of arm '{arm.arm}' must fit node '{node_name}' as '{node.call}' does: "
                        f"it {'; '.join(differences)}")

    def check_interface(self) -> None:
        """What a flow takes must have a starting value; what it gives must be its own variable;
        the shared variables are nobody's to declare."""
        for i, name in enumerate(self.flow.takes):
            if name not in self.flow.variables:
                self.report(("takes", i), ERROR, "undefined-variable",
                            f"'{name}' is taken from the calling flow: declare it under variables too "
                            f"(its value when the caller does not give one)")
        own = self._own_names()
        for i, name in enumerate(self.flow.gives):
            if name not in own:
                self.report(("gives", i), ERROR, "undefined-variable",
                            f"'{name}' is given back to the calling flow but this flow never declares or sets it"
                            f"{_hint(name, own)}")
        for section in ("variables", "shared"):
            for name in sorted(set(getattr(self.flow, section)) & BUILTIN_VARIABLES):
                self.report((section, name), ERROR, "shared-variable",
                            f"'{name}' is shared by the whole call and needs no declaration: remove it here", key=True)
        for name in sorted(set(self.flow.variables) & set(self.flow.shared)):
            self.report(("variables", name), ERROR, "shared-variable",
                        f"'{name}' is under both variables and shared: a variable is the flow's own or the call's", key=True)

    # --- prompts and variables ------------------------------------------

    def check_prompts(self) -> None:
        for path, key in self._prompt_uses():
            for language in self.flow.languages:
                if not self.prompts.has(language, key):
                    self.report(path, ERROR, "missing-prompt", f"prompt '{key}' has no '{language}' text in prompts/{language}.yaml"
                                f"{_hint(key, self.prompts.texts.get(language, {}))}")

    def _prompt_uses(self) -> Iterator[tuple[YamlPath, str]]:
        """Each place a prompt key is written, once (a default escape or global is an edge of every turn)."""
        return iter(dict.fromkeys(self._all_prompt_uses()))

    def _all_prompt_uses(self) -> Iterator[tuple[YamlPath, str]]:
        flow = self.flow
        for field in ("noinput", "nomatch"):
            for i, key in enumerate(getattr(flow.defaults, field) or []):
                yield ("defaults", field, i), key
        for name, choice in flow.globals.items():
            if choice.label:
                yield ("globals", name, "label"), choice.label
        for name, node in flow.nodes.items():
            base = ("nodes", name)
            if isinstance(node, model.PlayNode):
                yield from ((((*base, "play", i)), k) for i, k in enumerate(node.play))
            if isinstance(node, model.AskNode):
                yield from self._ask_prompts(base, node.ask)
            if isinstance(node, (model.TransferNode, model.HangupNode)) and node.prompt:
                yield from (((*base, "prompt", i), k) for i, k in enumerate(node.prompt))
        for edge in self.edges:
            prompt = getattr(edge.target, "prompt", None)
            for i, key in enumerate(prompt or []):
                yield (*edge.path, "prompt", i), key
        for name, experiment in flow.experiments.items():
            for index, arm in enumerate(experiment.arms):
                for i, key in enumerate(arm.prompt or []):
                    yield ("experiments", name, "arms", index, "prompt", i), key

    def _ask_prompts(self, base: YamlPath, ask: model.Ask) -> Iterator[tuple[YamlPath, str]]:
        for field in ("prompt", "noinput", "nomatch"):
            for i, key in enumerate(getattr(ask, field) or []):
                yield (*base, "ask", field, i), key
        if ask.choices and ask.speech:
            yield (*base, "ask"), "common.did_you_say"
        if ask.digits and ask.digits.readback:
            yield (*base, "ask", "digits"), "common.readback_digits"
        for name, choice in (ask.choices or {}).items():
            if choice.label:
                yield (*base, "ask", "choices", name, "label"), choice.label

    def check_variables(self) -> None:
        defined = self._defined_names()
        for path, expression, where in self._expressions():
            try:
                used = expr.names(expression)
            except expr.ExpressionError as exc:
                single_equals = re.search(r"(?<![=!<>])=(?!=)", expression)
                self.report(path, ERROR, "expression", str(exc) + ("; to compare, write ==" if single_equals else ""))
                continue
            for name in sorted(used - defined):
                self.report(path, ERROR, "undefined-variable",
                            f"'{name}'{where} is not defined: declare it under variables, set it with save_as, "
                            f"or have a sub-flow give it{_hint(name, defined)}")

    def _defined_names(self) -> set[str]:
        """What this flow's expressions may read: its own variables, the shared ones, and what the
        sub-flows it calls give back (a sub-flow's other variables are its own)."""
        names = BUILTIN_VARIABLES | self._own_names()
        for node in self.flow.nodes.values():
            callee = self.flows.get(node.call) if isinstance(node, model.CallNode) else None
            if callee is not None:
                names |= set(callee.flow.gives)
        return names

    def _own_names(self) -> set[str]:
        names = set(self.flow.variables) | set(self.flow.shared)
        for node in self.flow.nodes.values():
            if isinstance(node, model.SetNode):
                names |= set(node.set)
            save_as = getattr(getattr(node, "ask", None) or getattr(node, "action", None), "save_as", None)
            if save_as:
                names.add(save_as)
        return names

    def _values(self) -> Iterator[tuple[YamlPath, model.Computed | model.Fixed]]:
        """Each value a designer wrote (set, action args, call with), where it is written."""
        for name, node in self.flow.nodes.items():
            if isinstance(node, model.SetNode):
                yield from ((("nodes", name, "set", var), value) for var, value in node.set.items())
            elif isinstance(node, model.CallNode):
                yield from ((("nodes", name, "with", var), value) for var, value in node.with_.items())
            elif isinstance(node, model.ActionNode):
                yield from ((("nodes", name, "action", "args", arg), value) for arg, value in node.action.args.items())

    def check_values(self) -> None:
        """A value is taken as written; one still in the old form (an expression for everything,
        so Python's quotes around text) would now mean something else: say what to write."""
        defined = self._defined_names()
        for path, value in self._values():
            if not isinstance(value, model.Fixed) or not isinstance(value.value, str):
                continue
            text = value.value.strip()
            if text in _PYTHON_CONSTANTS:
                self.report(path, ERROR, "quoted-literal",
                            f"'{text}' is now the text {text}: write {_PYTHON_CONSTANTS[text]} "
                            f"(a value is written as it is; an expression starts with =)")
                continue
            try:
                tree = expr.parse(text)
                used = expr.names(text)
            except expr.ExpressionError:
                continue  # not an expression: plain text
            if isinstance(tree, ast.Constant) and isinstance(tree.value, str) and text[:1] in "'\"":
                self.report(path, ERROR, "quoted-literal",
                            f"{text} keeps its quotes as part of the text: write {path[-1]}: {tree.value} "
                            f"(a value is written as it is; an expression starts with =)")
            elif used and used <= defined:
                self.report(path, ERROR, "unmarked-expression",
                            f"'{text}' is taken as the text itself, not worked out from {', '.join(sorted(used))}: "
                            f"write ={text} (an expression starts with =)")

    def _expressions(self) -> Iterator[tuple[YamlPath, str, str]]:
        """(where it is written, expression, what to add to a message about it)."""
        for path, value in self._values():
            if isinstance(value, model.Computed):
                yield path, value.expression, ""
        for name, node in self.flow.nodes.items():
            if isinstance(node, model.BranchNode):
                yield from ((("nodes", name, "branch", i, "if"), c.if_, "") for i, c in enumerate(node.branch))
        for path, key in self._prompt_uses():
            builtin = ENGINE_PROMPTS.get(key, set())
            for expression in sorted(self.prompts.expressions(key) - builtin):
                yield path, expression, f" (used by prompt '{key}')"


_PYTHON_CONSTANTS = {"None": "null", "True": "true", "False": "false"}  # the old way to write them


def _system_prompts(flows: dict[str, LoadedFlow], prompts: PromptCatalog) -> list[Diagnostic]:
    """Prompts no flow names but any call may hear (SYSTEM_PROMPTS): each language a flow speaks needs them.

    One warning per language, at the first flow speaking it. A warning, not an
    error: without them calls still run, only with silence where they belong.
    """
    found = []
    for language in sorted({lang for loaded in flows.values() for lang in loaded.flow.languages}):
        missing = [f"{key} ({use})" for key, use in SYSTEM_PROMPTS.items() if not prompts.has(language, key)]
        if missing:
            first = next(loaded for loaded in flows.values() if language in loaded.flow.languages)
            found.append(first.at(("languages",), WARNING, "system-prompt",
                                  f"prompts/{language}.yaml has no text for {'; '.join(missing)}: "
                                  f"calls hear these though no flow names them"))
    return found


def _quote(choice_name: str) -> str:
    return choice_name if choice_name.startswith("global choice ") else f"'{choice_name}'"


def _return_values(flow: model.Flow) -> set[str]:
    values = {n.return_ for n in flow.nodes.values() if isinstance(n, model.ReturnNode)}
    values |= {e.target.return_ for e in edges(flow) if isinstance(e.target, model.ReturnTarget)}
    return values


def _recursion(flows: dict[str, LoadedFlow]) -> list[Diagnostic]:
    """A flow that calls itself, directly or not, would grow its stack forever."""
    found = []
    for name, loaded in flows.items():
        def callees(flow_name: str) -> list[str]:
            target = flows.get(flow_name)
            return _callees(target.flow) if target else []
        reach = _reachable_excluding_start(name, callees)
        if name in reach:
            calls: list[tuple[YamlPath, str]] = [
                *((("nodes", n, "call"), v.call) for n, v in loaded.flow.nodes.items() if isinstance(v, model.CallNode)),
                *((("experiments", e, "arms", i, "call"), arm.call) for e, experiment in loaded.flow.experiments.items()
                  for i, arm in enumerate(experiment.arms) if arm.call)]
            path = next(p for p, callee in calls if callee == name or name in _reachable_excluding_start(callee, callees))
            found.append(loaded.at(path, ERROR, "recursive-call",
                                   f"flow '{name}' calls itself through its sub-flows; calls would never return"))
    return found


def _callees(flow: model.Flow) -> list[str]:
    """The flows a flow may call: its call nodes', and their experiments' arms'."""
    names = [n.call for n in flow.nodes.values() if isinstance(n, model.CallNode)]
    return names + [arm.call for e in flow.experiments.values() for arm in e.arms if arm.call]


def _duplicate_experiments(flows: dict[str, LoadedFlow]) -> list[Diagnostic]:
    """Records and reports name an experiment alone: two flows may not share a name."""
    found = []
    first: dict[str, str] = {}
    for flow_name in sorted(flows, key=lambda n: flows[n].file):
        loaded = flows[flow_name]
        for name in loaded.flow.experiments:
            if name in first:
                found.append(loaded.at(("experiments", name), ERROR, "duplicate-experiment",
                                       f"experiment '{name}' is also in flow '{first[name]}': call records "
                                       f"name an experiment alone, so give each its own name", key=True))
            first.setdefault(name, flow_name)
    return found


def _before(start: dt.datetime, stop: dt.datetime) -> bool:
    """start < stop; a date written without an offset is taken in the other's (both are the call's local time)."""
    if (start.tzinfo is None) != (stop.tzinfo is None):
        start, stop = start.replace(tzinfo=None), stop.replace(tzinfo=None)
    return start < stop


def _reachable(start: str, successors: Successors) -> set[str]:
    return _reachable_all({start}, successors)


def _reachable_all(starts: set[str], successors: Successors) -> set[str]:
    seen = set(starts)
    stack = list(starts)
    while stack:
        for nxt in successors(stack.pop()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _reachable_excluding_start(start: str, successors: Successors) -> set[str]:
    seen: set[str] = set()
    stack = list(successors(start))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(successors(current))
    return seen


def _strongly_connected(nodes: list[str], successors: Successors) -> list[set[str]]:
    """Tarjan's algorithm, iterative so a 5,000-node flow does not hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[set[str]] = []
    counter = 0
    succ_cache = {n: successors(n) for n in nodes}
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            children = succ_cache.get(node, [])
            for j in range(i, len(children)):
                child = children[j]
                if child not in index:
                    work.append((node, j + 1))
                    work.append((child, 0))
                    recurse = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if recurse:
                continue
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                result.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


def _reaches_human(target: model.Target, human: set[str]) -> bool:
    if isinstance(target, model.TransferTarget):
        return True
    return isinstance(target, str) and target in human


def _describe(target: model.Target) -> str:
    if isinstance(target, str):
        return f"node '{target}'"
    if isinstance(target, model.HangupTarget):
        return "a hang-up"
    if isinstance(target, model.ReturnTarget):
        return f"a return ('{target.return_}')"
    return f"queue '{target.transfer}'"


def _hint(word: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""

