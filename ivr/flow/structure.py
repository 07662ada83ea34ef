"""The shape of a flow as a graph: which node leads where, and why.

The validator (reachability, endless loops, a path to a human), the engine
(resolving targets) and `ivr graph` all read a flow through these edges, so
they agree on what a flow can do. Routes (where routing rules send callers)
are edges too: from the intent turn, and from CALL_START (`start_edges`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from ivr.flow import model
from ivr.yamlsource import Path as YamlPath

EdgeKind = Literal["next", "escape", "global", "branch", "route"]
CALL_START = "(call start)"  # where routes.start edges come from: no node can have this name


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    label: str  # the outcome or condition that takes this edge
    kind: EdgeKind
    target: model.Target
    path: YamlPath  # where the target is written, for diagnostics

    @property
    def node(self) -> str | None:
        """The node this edge leads to, or None for an inline terminal."""
        return self.target if isinstance(self.target, str) else None


def edges(flow: model.Flow) -> Iterator[Edge]:
    for name, node in flow.nodes.items():
        yield from node_edges(flow, name, node)


def node_edges(flow: model.Flow, name: str, node: model.Node) -> Iterator[Edge]:
    base = ("nodes", name)
    if isinstance(node, (model.PlayNode, model.SetNode)):
        yield Edge(name, "next", "next", node.next, (*base, "next"))
    elif isinstance(node, (model.AskNode, model.CallNode, model.ActionNode)):
        if node.next is None:
            pass
        elif isinstance(node.next, dict):
            for outcome, target in node.next.items():
                yield Edge(name, outcome, "next", target, (*base, "next", outcome))
        else:
            yield Edge(name, "next", "next", node.next, (*base, "next"))
        if isinstance(node, model.ActionNode):
            for outcome, field in model.DEFAULTED_OUTCOMES.items():
                default = getattr(flow.defaults, field)
                if outcome not in node.next and default is not None:
                    yield Edge(name, outcome, "next", default, ("defaults", field))
        if isinstance(node, (model.AskNode, model.ActionNode)):
            escape, path = escape_of(flow, node, name)
            if escape is not None:
                yield Edge(name, "escape", "escape", escape, path)
        if isinstance(node, model.AskNode):
            for choice_name, choice in flow.globals.items():
                yield Edge(name, choice_name, "global", choice.goto, ("globals", choice_name, "goto"))
            if name == flow.routes.intent_turn:
                for destination, target in flow.routes.intent.items():
                    yield Edge(name, destination, "route", target, ("routes", "intent", destination))
    elif isinstance(node, model.BranchNode):
        for index, condition in enumerate(node.branch):
            yield Edge(name, condition.if_, "branch", condition.then, (*base, "branch", index, "then"))
        yield Edge(name, "else", "branch", node.else_, (*base, "else"))


def start_edges(flow: model.Flow) -> Iterator[Edge]:
    """Where routing rules decided at call start send callers: from CALL_START, not from a node."""
    for destination, target in flow.routes.start.items():
        yield Edge(CALL_START, destination, "route", target, ("routes", "start", destination))


def escape_of(flow: model.Flow, node: model.Node, name: str) -> tuple[model.Target | None, YamlPath]:
    """A node's escape, falling back to the flow default."""
    own = getattr(node, "escape", None)
    if own is not None:
        return own, ("nodes", name, "escape")
    return flow.defaults.escape, ("defaults", "escape")


def action_target(flow: model.Flow, node: model.ActionNode, outcome: str) -> model.Target | None:
    """Where an action's outcome goes: its own next, else for error and timeout the flow's
    `defaults.backend_error` / `backend_timeout`; None sends the caller to the escape."""
    own = node.next.get(outcome)
    if own is not None or outcome not in model.DEFAULTED_OUTCOMES:
        return own
    default: model.Target | None = getattr(flow.defaults, model.DEFAULTED_OUTCOMES[outcome])
    return default


def is_terminal(node: model.Node) -> bool:
    return isinstance(node, (model.TransferNode, model.HangupNode, model.ReturnNode))
