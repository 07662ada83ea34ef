"""What a designer's files may cost: each under a size cap, UTF-8, and the set under a budget.

Every refusal is a diagnostic with file:line:column, never a traceback: these
are the probes of issue 11 item 3 (a non-UTF-8 flow crashed `ivr validate`, a
50 MB flow took minutes and gigabytes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from ivr import cli, yamlsource
from ivr.bench.engine import PROMPTS, generate_flow
from ivr.diagnostics import has_errors
from ivr.flow import catalog
from ivr.flow.catalog import check_flows, flow_files

ROOT = Path(__file__).resolve().parents[2]
FLOW = "flow: {name}\nlanguages: [en]\nstart: bye\nnodes:\n  bye: {{hangup: completed, reason: {reason}}}\n"


def _flow(path: Path, padding: str = "") -> Path:
    path.write_text(FLOW.format(name=path.stem, reason="done") + padding, encoding="utf-8")
    return path


def test_validate_reports_a_flow_that_is_not_utf8_at_its_line_without_a_traceback(tmp_path, capsys):
    flow = tmp_path / "bye.yaml"
    flow.write_bytes(FLOW.format(name="bye", reason="caf").encode()[:-2] + b"\xe9}\n")
    assert cli.main(["validate", str(flow), "--prompts", str(ROOT / "prompts")]) == 1
    out, err = capsys.readouterr()
    assert f"{flow}:5:39: error [encoding] byte 0xe9 is not UTF-8" in out
    assert "Traceback" not in out + err


def test_validate_refuses_an_oversized_flow_with_a_diagnostic(tmp_path, capsys):
    flow = _flow(tmp_path / "bye.yaml", "# padding\n" * (yamlsource.FILE_LIMIT // 10))
    assert cli.main(["validate", str(flow), "--prompts", str(ROOT / "prompts")]) == 1
    out = capsys.readouterr().out
    assert f"{flow}:1:1: error [too-large] the file is 1.0 MB; a file may hold at most 1.0 MB" in out


def test_a_prompt_file_that_is_not_utf8_is_a_diagnostic(tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    text = (prompts / "zh.yaml").read_text(encoding="utf-8")
    (prompts / "zh.yaml").write_bytes(text.encode("gb18030"))  # as a Chinese Windows editor might save it
    _, _, diagnostics = check_flows(flow_files(ROOT / "flows"), prompts)
    errors = [d for d in diagnostics if d.code == "encoding"]
    assert [Path(d.file).name for d in errors] == ["zh.yaml"]
    first = next(i for i, c in enumerate(text) if not c.isascii())
    assert (errors[0].line, errors[0].column) == (text.count("\n", 0, first) + 1, first - text.rfind("\n", 0, first))


def test_a_flow_set_over_the_budget_is_refused_before_anything_is_parsed(tmp_path, monkeypatch):
    padding = "# padding\n" * ((yamlsource.FILE_LIMIT - 200) // 10)
    count = catalog.SET_LIMIT // yamlsource.FILE_LIMIT + 1
    for index in range(count):
        _flow(tmp_path / f"f{index}.yaml", padding)
    monkeypatch.setattr(yamlsource, "load", lambda text: (_ for _ in ()).throw(AssertionError("parsed")))
    loaded, _, diagnostics = check_flows(flow_files(tmp_path), ROOT / "prompts")
    assert loaded == {}
    assert [(Path(d.file).name, d.line, d.code) for d in diagnostics] == [(f"f{count - 1}.yaml", 1, "too-large")]


def test_the_bench_flow_of_5000_nodes_fits_the_caps(tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "en.yaml").write_text(yaml.safe_dump(PROMPTS), encoding="utf-8")
    flow = tmp_path / "big.yaml"
    flow.write_text(yaml.safe_dump(generate_flow(5000), sort_keys=False, indent=4), encoding="utf-8")
    assert flow.stat().st_size < yamlsource.FILE_LIMIT
    loaded, _, diagnostics = check_flows([flow], prompts)
    assert not has_errors(diagnostics) and len(loaded["big"].flow.nodes) == 5001


def test_validate_refuses_an_alias_bomb_quickly(tmp_path, capsys):
    flow = tmp_path / "bomb.yaml"
    laughs = "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10))
    flow.write_text("flow: bomb\nstart: a\nvariables:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + laughs +
                    "nodes:\n  a: {hangup: completed}\n", encoding="utf-8")
    assert cli.main(["validate", str(flow), "--prompts", str(ROOT / "prompts")]) == 1
    assert f"{flow}:8:" in capsys.readouterr().out
