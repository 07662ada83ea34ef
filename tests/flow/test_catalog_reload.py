"""A broken flow set never replaces the release that is serving calls."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import signal
from pathlib import Path

from ivr import application
from ivr.diagnostics import Severity
from ivr.flow.catalog import Catalog
from tests.reload_gate import ROOT, ReloadGate, copy_flows, until


def test_a_broken_reload_keeps_the_previous_release(tmp_path):
    flows, prompts = copy_flows(tmp_path), tmp_path / "prompts"
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
    catalog = Catalog(copy_flows(tmp_path), ROOT / "prompts")
    before = catalog.current.id
    catalog.reload()
    assert catalog.current.id == before


# --- reloads off the event loop (SIGHUP) -------------------------------------------------


def _catalog(tmp_path: Path) -> Catalog:
    return Catalog(copy_flows(tmp_path), ROOT / "prompts")


def _bump(catalog: Catalog, version: int) -> None:
    """Publish `version` of the payment flow."""
    payment = catalog.flows_dir / "payment.yaml"
    text = payment.read_text(encoding="utf-8")
    payment.write_text(re.sub(r"(?m)^version: \d+$", f"version: {version}", text, count=1), encoding="utf-8")


async def test_sighup_parses_on_a_worker_thread_while_calls_go_on(tmp_path, monkeypatch):
    catalog = _catalog(tmp_path)
    version = catalog.current.flows["payment"].version
    _bump(catalog, version + 1)
    handlers = {}
    monkeypatch.setattr(asyncio.get_running_loop(), "add_signal_handler",
                        lambda sig, handler: handlers.__setitem__(sig, handler))
    application._install_signals(asyncio.Event(), catalog)
    gate = ReloadGate(monkeypatch, wait=2)  # let go by a call's coroutine
    events = gate.events

    handlers[signal.SIGHUP]()  # what the loop runs on SIGHUP
    await until(lambda: "reload started" in events)
    events.append("call served")
    gate.let_go.set()
    await until(lambda: catalog.current.version_of("payment") == f"payment@{version + 1}")
    assert events == ["reload started", "call served", "reload let go by the loop: True"]


async def test_sighups_in_a_row_reload_one_at_a_time_and_the_latest_files_win(tmp_path, monkeypatch):
    catalog = _catalog(tmp_path)
    version = catalog.current.flows["payment"].version
    gate = ReloadGate(monkeypatch)

    first = catalog.request_reload()
    await until(lambda: gate.running == 1)
    _bump(catalog, version + 1)
    second = catalog.request_reload()
    _bump(catalog, version + 2)
    third = catalog.request_reload()
    assert third is second  # it has not read the files yet: it will read the latest
    gate.let_go.set()
    await asyncio.gather(first, second)
    assert (gate.most, gate.builds) == (1, 2)
    assert catalog.current.version_of("payment") == f"payment@{version + 2}"


async def test_a_flow_edit_that_is_not_utf8_keeps_the_release_serving(tmp_path, caplog):
    catalog = _catalog(tmp_path)
    old = catalog.current
    payment = catalog.flows_dir / "payment.yaml"
    payment.write_bytes(payment.read_bytes().replace(b"flow: payment\n", b"flow: payment\n# caf\xe9\n", 1))
    with caplog.at_level(logging.ERROR, logger="ivr.flow.catalog"):
        diagnostics = await catalog.request_reload()
    assert catalog.current is old
    assert ("payment.yaml", 6, 6, "encoding") in [(Path(d.file).name, d.line, d.column, d.code) for d in diagnostics]
    assert "payment.yaml:6:6: error [encoding]" in caplog.text and f"still serving {old.id}" in caplog.text
