"""Loaded flow sets, and the catalog that serves them to calls.

A `FlowSet` is one immutable release: every flow and prompt text, identified
by a hash of their contents. A call pins the release it started on, so a
designer publishing a new version never changes a call midway. Reloading a
broken set is refused with its diagnostics, and the running release keeps
serving.

A release is read under a size budget (`SET_LIMIT` for all its files, each
file under `yamlsource.FILE_LIMIT`), and the server reloads it on a worker
thread (`Catalog.reload_off_loop`): parsing and validating a large set never
holds up the calls in progress.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ivr import yamlsource
from ivr.backend.catalog import ActionInfo, known_actions
from ivr.diagnostics import Diagnostic, FlowError, Severity, has_errors
from ivr.flow import model
from ivr.flow.loader import LoadedFlow, load_flow_file
from ivr.flow.validate import validate
from ivr.prompts import PromptCatalog, load_prompts, prompt_files

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
SET_LIMIT = 4 << 20  # 4 MiB of flows and prompts per release: shipped ones weigh 38 KiB; validating 4 MiB takes ~4 s


def flow_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.is_file() and p.name != ROUTING_FILE) + sorted(directory.glob("*.yml"))


def check_flows(paths: list[Path], prompts_dir: Path,
                actions: dict[str, ActionInfo] | None = None) -> tuple[dict[str, LoadedFlow], PromptCatalog, list[Diagnostic]]:
    """Load and validate flow files together with the prompt texts."""
    actions = actions if actions is not None else known_actions()
    if (too_large := _over_budget([*paths, *prompt_files(prompts_dir)])) is not None:
        return {}, PromptCatalog(), [too_large]
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


def _over_budget(paths: list[Path]) -> Diagnostic | None:
    """An error on the file that takes the set over SET_LIMIT, before anything is parsed.

    A file over FILE_LIMIT counts for what reading it costs (FILE_LIMIT): it is refused on its own.
    """
    total = 0
    for path in paths:
        try:
            total += min(path.stat().st_size, yamlsource.FILE_LIMIT + 1)
        except OSError:
            continue  # reading it will say why
        if total > SET_LIMIT:
            return Diagnostic(str(path), 1, 1, Severity.ERROR, "too-large",
                              f"with this file the flows and prompts weigh over {SET_LIMIT >> 20} MB, the most one "
                              f"release may hold (each file at most {yamlsource.FILE_LIMIT >> 20} MB)")
    return None


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
        self._one_at_a_time = asyncio.Lock()
        self._waiting: asyncio.Task[list[Diagnostic]] | None = None  # a reload that has not read the files yet
        self._tasks: set[asyncio.Task[list[Diagnostic]]] = set()

    def reload(self) -> list[Diagnostic]:
        """Load the files again, on this thread; on errors keep serving the current release."""
        return self._adopt(*self._build())

    def request_reload(self) -> asyncio.Task[list[Diagnostic]]:
        """SIGHUP's reload: on a worker thread, one at a time, the latest request winning.

        A request made while another waits its turn joins it: that one has not
        read the files yet, so it will see whatever the later request meant.
        """
        if self._waiting is None:
            self._waiting = asyncio.get_running_loop().create_task(self.reload_off_loop())
            self._tasks.add(self._waiting)
            self._waiting.add_done_callback(self._tasks.discard)
        return self._waiting

    async def reload_off_loop(self) -> list[Diagnostic]:
        """Parse and validate on a worker thread while calls go on; swap the release in on the loop."""
        async with self._one_at_a_time:
            if self._waiting is asyncio.current_task():
                self._waiting = None
            try:
                fresh, diagnostics = await asyncio.to_thread(self._build)
            except Exception as exc:  # a loader bug: the running release goes on serving
                log.exception("flow reload failed, still serving %s", self.current.id)
                return [Diagnostic(str(self.flows_dir), 1, 1, Severity.ERROR, "reload", f"reload failed: {exc!r}")]
            return self._adopt(fresh, diagnostics)

    def _build(self) -> tuple[FlowSet | None, list[Diagnostic]]:
        try:
            return load_flow_set(self.flows_dir, self.prompts_dir, self.actions)
        except FlowError as exc:
            return None, exc.diagnostics

    def _adopt(self, fresh: FlowSet | None, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        if fresh is None:
            log.error("flow reload refused, still serving %s:\n%s", self.current.id, FlowError(diagnostics))
            return diagnostics
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
