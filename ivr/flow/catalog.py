"""Loaded flow sets, and the catalog that serves them to calls.

A `FlowSet` is one immutable release: every flow and prompt text, identified
by a hash of their contents. A call pins the release it started on, so a
designer publishing a new version never changes a call midway. Reloading a
broken set is refused with its diagnostics, and the running release keeps
serving.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ivr.backend.catalog import ActionInfo, known_actions
from ivr.diagnostics import Diagnostic, FlowError, Severity, has_errors
from ivr.flow import model
from ivr.flow.loader import LoadedFlow, load_flow_file
from ivr.flow.validate import validate
from ivr.prompts import PromptCatalog, load_prompts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowSet:
    """One release of the flows and prompts; calls keep the release they started on."""

    id: str
    flows: dict[str, model.Flow]
    prompts: PromptCatalog
    files: dict[str, str] = field(default_factory=dict)

    def flow(self, name: str) -> model.Flow:
        return self.flows[name]

    def version_of(self, name: str) -> str:
        return f"{name}@{self.flows[name].version}"


ROUTING_FILE = "routing.yaml"  # routing rules live beside the flows but are not a flow (ivr/routing)


def flow_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.is_file() and p.name != ROUTING_FILE) + sorted(directory.glob("*.yml"))


def check_flows(paths: list[Path], prompts_dir: Path,
                actions: dict[str, ActionInfo] | None = None) -> tuple[dict[str, LoadedFlow], PromptCatalog, list[Diagnostic]]:
    """Load and validate flow files together with the prompt texts."""
    actions = actions if actions is not None else known_actions()
    prompts, diagnostics = load_prompts(prompts_dir)
    loaded: dict[str, LoadedFlow] = {}
    for path in paths:
        flow, found = load_flow_file(path)
        diagnostics.extend(found)
        if flow is None:
            continue
        name = flow.flow.flow
        if name in loaded:
            diagnostics.append(flow.at(("flow",), Severity.ERROR, "duplicate-flow",
                                       f"flow '{name}' is also defined in {loaded[name].file}"))
            continue
        if path.stem != name:
            diagnostics.append(flow.at(("flow",), Severity.WARNING, "file-name",
                                       f"flow '{name}' lives in {path.name}; name the file {name}.yaml so designers find it"))
        loaded[name] = flow
    diagnostics.extend(validate(loaded, prompts, actions))
    return loaded, prompts, diagnostics


def load_flow_set(flows_dir: Path, prompts_dir: Path,
                  actions: dict[str, ActionInfo] | None = None) -> tuple[FlowSet, list[Diagnostic]]:
    """A release built from the directories; raise FlowError if any file has errors."""
    paths = flow_files(flows_dir)
    if not paths:
        raise FlowError([Diagnostic(str(flows_dir), 1, 1, Severity.ERROR, "no-flows", "no flow files (*.yaml) here")])
    loaded, prompts, diagnostics = check_flows(paths, prompts_dir, actions)
    if has_errors(diagnostics):
        raise FlowError(diagnostics)
    digest = hashlib.sha256()
    for name in sorted(loaded):
        digest.update(loaded[name].text.encode())
    for language in sorted(prompts.texts):
        for key, text in sorted(prompts.texts[language].items()):
            digest.update(f"{language}:{key}={text.text}".encode())
    flows = {name: item.flow for name, item in loaded.items()}
    files = {name: item.file for name, item in loaded.items()}
    return FlowSet(digest.hexdigest()[:12], flows, prompts, files), diagnostics


class Catalog:
    """The current release plus recent ones still used by calls in progress."""

    def __init__(self, flows_dir: Path, prompts_dir: Path, keep: int = 16,
                 actions: dict[str, ActionInfo] | None = None):
        self.flows_dir = flows_dir
        self.prompts_dir = prompts_dir
        self.actions = actions
        self.keep = keep
        self._releases: OrderedDict[str, FlowSet] = OrderedDict()
        self.current, self.warnings = load_flow_set(flows_dir, prompts_dir, actions)
        self._remember(self.current)

    def reload(self) -> list[Diagnostic]:
        """Load the files again; on errors keep serving the current release."""
        try:
            fresh, diagnostics = load_flow_set(self.flows_dir, self.prompts_dir, self.actions)
        except FlowError as exc:
            log.error("flow reload refused, still serving %s:\n%s", self.current.id, exc)
            return exc.diagnostics
        if fresh.id != self.current.id:
            log.info("flows reloaded: release %s replaces %s", fresh.id, self.current.id)
        self.current = fresh
        self._remember(fresh)
        return diagnostics

    def get(self, release_id: str) -> FlowSet | None:
        return self._releases.get(release_id)

    def _remember(self, release: FlowSet) -> None:
        self._releases[release.id] = release
        self._releases.move_to_end(release.id)
        while len(self._releases) > self.keep:
            self._releases.popitem(last=False)
