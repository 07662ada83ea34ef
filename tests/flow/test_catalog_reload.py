"""A broken flow set never replaces the release that is serving calls."""

from __future__ import annotations

import shutil
from pathlib import Path

from ivr.diagnostics import Severity
from ivr.flow.catalog import Catalog

ROOT = Path(__file__).resolve().parents[2]


def test_a_broken_reload_keeps_the_previous_release(tmp_path):
    flows, prompts = tmp_path / "flows", tmp_path / "prompts"
    shutil.copytree(ROOT / "flows", flows, ignore=shutil.ignore_patterns("scripts"))
    shutil.copytree(ROOT / "prompts", prompts)
    catalog = Catalog(flows, prompts)
    old = catalog.current
    assert catalog.get(old.id) is old

    payment = flows / "payment.yaml"
    good = payment.read_text(encoding="utf-8")
    payment.write_text(good.replace("next: offer\n", "next: ofer\n", 1), encoding="utf-8")
    diagnostics = catalog.reload()
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    assert [(Path(d.file).name, d.code) for d in errors] == [("payment.yaml", "missing-node")]
    assert "did you mean 'offer'?" in errors[0].message
    assert catalog.current is old

    version = old.flows["payment"].version
    payment.write_text(good.replace(f"version: {version}", f"version: {version + 1}", 1), encoding="utf-8")
    diagnostics = catalog.reload()
    assert not [d for d in diagnostics if d.severity is Severity.ERROR]
    assert catalog.current.id != old.id
    assert catalog.current.version_of("payment") == f"payment@{version + 1}"
    assert catalog.get(old.id) is old and old.version_of("payment") == f"payment@{version}"
    assert catalog.get(catalog.current.id) is catalog.current


def test_reloading_unchanged_files_keeps_the_same_id(tmp_path):
    shutil.copytree(ROOT / "flows", tmp_path / "flows", ignore=shutil.ignore_patterns("scripts"))
    catalog = Catalog(tmp_path / "flows", ROOT / "prompts")
    before = catalog.current.id
    catalog.reload()
    assert catalog.current.id == before
