"""Shared by the release-reload tests (tests/flow, tests/insurer): a gate that holds every release
build on its worker thread until the test lets it go, a poll for what the event loop should see
meanwhile, and a copy of the shipped flows to edit."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ivr.flow import catalog as catalog_module

ROOT = Path(__file__).resolve().parents[1]


class ReloadGate:
    """Stands in for catalog.load_flow_set: each build says "reload started", waits (on its worker
    thread) for `let_go` or `wait` seconds, says whether it was let go, then builds for real.

    `events` is that log, `builds` how many builds began, `running` how many are under way and
    `most` the most that ever were at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, wait: float = 5.0) -> None:
        self.events: list[str] = []
        self.let_go = threading.Event()  # set from the loop: a reload on the loop could never see it set
        self.builds = self.running = self.most = 0
        self._lock = threading.Lock()
        real = catalog_module.load_flow_set

        def gated(*args: Any) -> Any:
            with self._lock:
                self.builds += 1
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                self.events.append("reload started")
                self.events.append(f"reload let go by the loop: {self.let_go.wait(wait)}")
                return real(*args)
            finally:
                with self._lock:
                    self.running -= 1
        monkeypatch.setattr(catalog_module, "load_flow_set", gated)


async def until(condition: Callable[[], Any], seconds: float = 10.0, message: str = "never happened") -> None:
    """Poll `condition` (plain or a coroutine function) every 10 ms until it holds."""
    for _ in range(int(seconds / 0.01)):
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(message)


def copy_flows(tmp_path: Path) -> Path:
    """The shipped flows (and routing rules), without their scripts, to edit under tmp_path."""
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows, ignore=shutil.ignore_patterns("scripts"))
    return flows
