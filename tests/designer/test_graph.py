"""`ivr graph`: a shipped flow drawn as SVG, PNG and mermaid, with escapes visibly apart."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr import cli
from ivr.designer import graph
from ivr.flow.loader import load_flow_file

ROOT = Path(__file__).resolve().parents[2]
PAYMENT = ROOT / "flows" / "payment.yaml"
SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")


@pytest.fixture(scope="module")
def flow():
    loaded, diagnostics = load_flow_file(PAYMENT)
    assert loaded is not None, diagnostics
    return loaded.flow


def _draw(tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    assert cli.main(["graph", str(PAYMENT), "-o", str(out)]) == 0
    return out


def _groups(svg: Path, kind: str) -> dict[str, ET.Element]:
    root = ET.parse(svg).getroot()
    return {g.find(f"{SVG}title").text: g for g in root.iter(f"{SVG}g") if g.get("class") == kind}


def _text(group: ET.Element) -> str:
    return " ".join(t.text or "" for t in group.iter(f"{SVG}text"))


@needs_dot
def test_svg_draws_every_node_and_escapes_in_their_own_colour(tmp_path, flow):
    svg = _draw(tmp_path, "payment.svg")
    nodes, edges = _groups(svg, "node"), _groups(svg, "edge")
    assert set(flow.nodes) <= set(nodes)
    for name in flow.nodes:
        assert _text(nodes[name]).startswith(name)

    escape, normal = graph._EDGE_STYLE["escape"]["color"], graph._EDGE_STYLE["next"]["color"]
    assert escape != normal
    legend = {title: g for title, g in edges.items() if title.startswith("__legend")}
    edges = {title: g for title, g in edges.items() if title not in legend}
    legend_text = {_text(g) for title, g in nodes.items() if title.startswith("__legend")}
    assert {"escape to a person", "error outcome", "on any turn (global)"} <= legend_text
    assert legend["__legend3->__legend3_text"].find(f"{SVG}path").get("stroke") == graph._EDGE_STYLE["escape"]["color"]
    escapes = {title.split("->")[0] for title, g in edges.items() if _text(g) == "escape"}
    assert escapes == {"offer", "offer_other", "card_number", "card_expiry", "promise_date"}  # the actions handle error and timeout themselves
    for title, g in edges.items():
        stroke = g.find(f"{SVG}path").get("stroke")
        assert (stroke == escape) == (_text(g) == "escape"), title
    assert edges["explain->offer"].find(f"{SVG}path").get("stroke") == normal

    terminals = {title: g for title, g in nodes.items() if title.startswith("__t")}
    failed = [g for g in terminals.values() if _text(g) == "payments (verification_failed)"]
    assert len(failed) == 1
    assert failed[0].find(f"{SVG}polygon").get("fill") == graph._SHAPES["transfer"][1]
    assert "verify->" + next(t for t, g in terminals.items() if g is failed[0]) in edges


@needs_dot
def test_png_is_a_png(tmp_path):
    data = _draw(tmp_path, "payment.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000


def test_mermaid_lists_every_node(tmp_path, flow):
    text = _draw(tmp_path, "payment.mmd").read_text(encoding="utf-8")
    assert text.startswith("flowchart")
    lines = text.splitlines()
    for name in flow.nodes:
        assert any(line.strip().startswith(f'{name}["{name}') for line in lines), name
    assert "  offer -.->|escape| " in text
    assert "  confirm_sms -.->|escape|" not in text


def test_unknown_extension_is_refused(tmp_path, capsys):
    assert cli.main(["graph", str(PAYMENT), "-o", str(tmp_path / "payment.jpg")]) == 2
    assert "use .svg, .png" in capsys.readouterr().err


def test_routes_are_drawn_from_call_start_and_from_the_intent_turn():
    loaded, _ = load_flow_file(ROOT / "flows" / "main_menu.yaml")
    text = graph.to_mermaid(loaded.flow)
    assert "routed_at_call_start -.->|payment| payment_first" in text
    assert "routed_at_call_start -.->|orphan_desk| orphan_desk" in text
    assert "menu -.->|save_team|" in text and "menu -->|policy| policy" in text
    dot = graph.to_dot(loaded.flow).source
    assert "__routed -> payment_first" in dot and "routed at call start" in dot
