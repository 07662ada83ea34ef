"""A flow as a picture: nodes by kind, normal, error and escape edges styled apart.

Rendering goes through Graphviz (`dot`, from Debian's graphviz package) for SVG
and PNG; mermaid text is produced directly for pasting into documentation.
"""

from __future__ import annotations

from pathlib import Path

import graphviz

from ivr.flow import model
from ivr.flow.structure import CALL_START, Edge, action_target, edges, start_edges

_SHAPES = {
    "play": ("box", "#e8f0fe"),
    "ask": ("box", "#fff4d6"),
    "action": ("component", "#eef7ee"),
    "set": ("note", "#f4f4f4"),
    "branch": ("diamond", "#f4f4f4"),
    "call": ("box3d", "#ede7f6"),
    "return": ("oval", "#ede7f6"),
    "transfer": ("house", "#fde2e1"),
    "hangup": ("doublecircle", "#e0e0e0"),
}
_EDGE_STYLE = {
    "next": {"color": "#333333"},
    "branch": {"color": "#555555", "style": "dashed"},
    "escape": {"color": "#c62828", "style": "bold", "fontcolor": "#c62828"},
    "global": {"color": "#1565c0", "style": "dotted", "fontcolor": "#1565c0"},
    "route": {"color": "#6a1b9a", "style": "dashed", "fontcolor": "#6a1b9a"},
}
_ERROR_EDGE = {"color": "#ef6c00", "fontcolor": "#ef6c00", "style": "dashed"}
_ERROR_OUTCOMES = {"error", "timeout", "declined", "locked", "failed"}
_LEGEND = (("next", _EDGE_STYLE["next"]), ("branch condition", _EDGE_STYLE["branch"]),
           ("error outcome", _ERROR_EDGE), ("escape to a person", _EDGE_STYLE["escape"]),
           ("on any turn (global)", _EDGE_STYLE["global"]), ("routing rule (routes)", _EDGE_STYLE["route"]))


def to_dot(flow: model.Flow) -> graphviz.Digraph:
    dot = graphviz.Digraph(flow.flow, graph_attr={"rankdir": "TB", "label": f"{flow.flow} v{flow.version}",
                                                   "labelloc": "t", "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11", "style": "filled"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9"})
    for name, node in flow.nodes.items():
        kind = model.node_kind(node) or "play"
        shape, fill = _SHAPES[kind]
        dot.node(name, _label(name, node, kind), shape=shape, fillcolor=fill,
                 penwidth="2" if name == flow.start else "1")
    terminals = 0
    for edge, labels in _merged(_unique_globals(flow)):
        target = edge.node
        if target is None:
            terminals += 1
            target = f"__t{terminals}"
            kind = "return" if isinstance(edge.target, model.ReturnTarget) else (
                "transfer" if isinstance(edge.target, model.TransferTarget) else "hangup")
            shape, fill = _SHAPES[kind]
            dot.node(target, _terminal_label(edge.target), shape=shape, fillcolor=fill)
        style = dict(_EDGE_STYLE[edge.kind])
        if edge.kind == "next" and all(label in _ERROR_OUTCOMES for label in labels):
            style.update(_ERROR_EDGE)
        label = " / ".join(label for label in labels if label != "next")
        source = "__globals" if edge.kind == "global" else "__routed" if edge.source == CALL_START else edge.source
        dot.edge(source, target, label=label[:40], **style)
    if flow.globals:
        dot.node("__globals", "any turn", shape="plaintext", style="", fontcolor="#1565c0")
    if flow.routes.start:
        dot.node("__routed", "routed at call start", shape="plaintext", style="", fontcolor="#6a1b9a")
    _legend(dot)
    return dot


def _legend(dot: graphviz.Digraph) -> None:
    """What the arrow styles mean, in a box beside the flow."""
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="arrows", fontsize="9", color="#bbbbbb", style="rounded")
        for index, (text, style) in enumerate(_LEGEND):
            start, end = f"__legend{index}", f"__legend{index}_text"
            legend.node(start, "", shape="point", width="0.05", style="")
            legend.node(end, text, shape="plaintext", style="", fontsize="9")
            legend.edge(start, end, **{k: v for k, v in style.items() if k != "fontcolor"})


def _merged(all_edges: list[Edge]) -> list[tuple[Edge, list[str]]]:
    """One arrow per source, node target and style: `declined / error / timeout`."""
    groups: dict[tuple, tuple[Edge, list[str]]] = {}
    for index, edge in enumerate(all_edges):
        error = edge.label in _ERROR_OUTCOMES
        key = (edge.source, edge.node, edge.kind, error) if edge.node is not None else (index,)
        groups.setdefault(key, (edge, []))[1].append(edge.label)
    return list(groups.values())


def _unique_globals(flow: model.Flow) -> list[Edge]:
    """Global choices apply to every turn: draw each once, from an 'any turn' marker.

    An action's escape only takes the error and timeout it does not handle:
    when it (or the flow's defaults) handles both, its escape is never taken and is not drawn.
    """
    seen: set[str] = set()
    result = []
    for edge in [*edges(flow), *start_edges(flow)]:
        node = flow.nodes.get(edge.source)
        if edge.kind == "escape" and isinstance(node, model.ActionNode) \
                and all(action_target(flow, node, outcome) is not None for outcome in model.DEFAULTED_OUTCOMES):
            continue
        if edge.kind == "global":
            if edge.label in seen:
                continue
            seen.add(edge.label)
        result.append(edge)
    return result


def _label(name: str, node: model.Node, kind: str) -> str:
    detail = {
        "ask": lambda n: " / ".join(n.ask.choices) if n.ask.choices else ("digits" if n.ask.digits else "yes / no"),
        "action": lambda n: n.action.name,
        "call": lambda n: f"→ {n.call}",
        "play": lambda n: ", ".join(n.play),
        "transfer": lambda n: f"{n.transfer} ({n.reason})",
        "hangup": lambda n: n.hangup,
        "return": lambda n: n.return_,
    }.get(kind)
    return f"{name}\n{detail(node)}" if detail else name


def _terminal_label(target: model.Target) -> str:
    if isinstance(target, model.TransferTarget):
        return f"{target.transfer}\n({target.reason})"
    if isinstance(target, model.ReturnTarget):
        return f"return {target.return_}"
    if isinstance(target, model.HangupTarget):
        return f"hang up\n{target.hangup}"
    raise ValueError(f"{target!r} is a node name, not an inline terminal")


def to_mermaid(flow: model.Flow) -> str:
    lines = ["flowchart TD"]
    for name, node in flow.nodes.items():
        text = _label(name, node, model.node_kind(node) or "").replace("\n", "<br/>").replace('"', "'")
        lines.append(f'  {name}["{text}"]')
    count = 0
    for edge in _unique_globals(flow):
        target = edge.node
        if target is None:
            count += 1
            target = f"t{count}"
            lines.append(f'  {target}(["{_terminal_label(edge.target).replace(chr(10), " ")}"])')
        source = "any_turn" if edge.kind == "global" else "routed_at_call_start" if edge.source == CALL_START else edge.source
        arrow = "-.->" if edge.kind in ("escape", "global", "branch", "route") else "-->"
        label = "" if edge.label == "next" else f"|{edge.label.replace('|', '/')[:40]}|"
        lines.append(f"  {source} {arrow}{label} {target}")
    for name in (e.source for e in _unique_globals(flow) if e.kind == "escape"):
        lines.append(f"  class {name} turn")
    lines.append("  classDef turn fill:#fff4d6")
    return "\n".join(dict.fromkeys(lines)) + "\n"


def render(flow: model.Flow, output: Path) -> Path:
    """Write SVG, PNG (Graphviz) or mermaid (.mmd/.md) by the output's extension."""
    suffix = output.suffix.lower().lstrip(".")
    if suffix in ("mmd", "mermaid", "md"):
        output.write_text(to_mermaid(flow), encoding="utf-8")
        return output
    if suffix not in ("svg", "png", "pdf", "dot"):
        raise ValueError(f"cannot draw {output.name}: use .svg, .png, .pdf, .dot or .mmd")
    dot = to_dot(flow)
    if suffix == "dot":
        output.write_text(dot.source, encoding="utf-8")
        return output
    output.write_bytes(dot.pipe(format=suffix))
    return output
