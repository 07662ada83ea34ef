"""Releases, and the catalog that serves them to calls.

A `FlowSet` is one immutable release: every flow and prompt text, the routing
rules (when the server routes calls) and where each prompt's audio is,
identified by a hash of their contents. A call pins the release it started
on and everything the call reads asks that release: the engine its flows, the
media resolver its prompt texts and audio, the router its rules. A designer
publishing a new version therefore never changes a call midway, and a prompt
edited on disk is heard, whole, by the calls that start after the reload.

A release is taken as a whole or not at all: flows and prompts validated
together, the routing rules checked against the flows of the same release,
then `prepare` (the server's prompt audio, `ivr.controller.promptaudio`) run
on it before it is swapped in. Any error refuses the new release with its
diagnostics, and the running one keeps serving.

A release is read under a size budget (`SET_LIMIT` for all its files, each
file under `yamlsource.FILE_LIMIT`), and the server reloads it on a worker
thread (`Catalog.reload_off_loop`): parsing, validating and building audio
for a large set never holds up the calls in progress.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ivr import yamlsource
from ivr.backend.catalog import ActionInfo, known_actions
from ivr.diagnostics import Diagnostic, FlowError, Severity, has_errors
from ivr.flow import model
from ivr.flow.loader import LoadedFlow, load_flow_file
from ivr.flow.validate import validate
from ivr.prompts import PromptCatalog, PromptSound, load_prompts, prompt_files

if TYPE_CHECKING:  # imported where used: ivr.routing.rules imports the engine, which imports this module
    from ivr.routing.rules import RuleSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowSet:
    """One release of the flows, prompts and routing rules; calls keep the release they started on."""

    id: str
    flows: dict[str, model.Flow]
    prompts: PromptCatalog
    files: dict[str, str] = field(default_factory=dict)
    routing: RuleSet | None = None  # where callers go first; None: no routing file, calls start unrouted
    sounds: dict[str, PromptSound] = field(default_factory=dict)  # "<lang>/<key>" of prompts played from a file

    def flow(self, name: str) -> model.Flow:
        return self.flows[name]

    def shared_names(self) -> set[str]:
        """Variables kept for the whole call (model.SHARED_VARIABLES and each flow's `shared`):
        carried into every sub-flow and back, whether or not the flows between declare them."""
        return {*model.SHARED_VARIABLES, *(name for flow in self.flows.values() for name in flow.shared)}

    def version_of(self, name: str) -> str:
        return f"{name}@{self.flows[name].version}"

    def sound_stem(self, language: str, key: str) -> str:
        """The file (under the sounds directory, without `.wav`) this release plays a prompt from:
        `<lang>/<key>` unless preparing the release gave the prompt audio of its own text."""
        sound = self.sounds.get(f"{language}/{key}")
        return sound.stem if sound is not None else f"{language}/{key}"


# Prepares a loaded release to serve, given the release it would replace (None at start-up):
# the release ready (e.g. with its prompt audio), or None and why not.
Prepare = Callable[[FlowSet, FlowSet | None], tuple[FlowSet | None, list[Diagnostic]]]


ROUTING_FILE = "routing.yaml"  # routing rules live beside the flows but are not a flow (ivr/routing)
SET_LIMIT = 4 << 20  # 4 MiB per release (flows, prompts, rules): shipped ones weigh 38 KiB; validating 4 MiB takes ~4 s


def flow_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.is_file() and p.name != ROUTING_FILE) + sorted(directory.glob("*.yml"))


def check_flows(paths: list[Path], prompts_dir: Path, actions: dict[str, ActionInfo] | None = None,
                also: Sequence[Path] = ()) -> tuple[dict[str, LoadedFlow], PromptCatalog, list[Diagnostic]]:
    """Load and validate flow files together with the prompt texts; `also`: other files of the
    release (its routing rules), read after this but counted in its size now."""
    actions = actions if actions is not None else known_actions()
    if (too_large := _over_budget([*paths, *prompt_files(prompts_dir), *also])) is not None:
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
                              f"with this file the flows, prompts and routing rules weigh over {SET_LIMIT >> 20} MB, "
                              f"the most one release may hold (each file at most {yamlsource.FILE_LIMIT >> 20} MB)")
    return None


def load_flow_set(flows_dir: Path, prompts_dir: Path, actions: dict[str, ActionInfo] | None = None,
                  routing: Path | None = None) -> tuple[FlowSet, list[Diagnostic]]:
    """A release built from the directories (and the routing rules at `routing`, checked against
    its flows; a missing file means no rules); raise FlowError if any file has errors."""
    paths = flow_files(flows_dir)
    if not paths:
        raise FlowError([Diagnostic(str(flows_dir), 1, 1, Severity.ERROR, "no-flows", "no flow files (*.yaml) here")])
    loaded, prompts, diagnostics = check_flows(paths, prompts_dir, actions, [routing] if routing else [])
    if has_errors(diagnostics):
        raise FlowError(diagnostics)
    flows = {name: item.flow for name, item in loaded.items()}
    rules, rules_text, found = _load_routing(routing, flows)
    diagnostics.extend(found)
    if has_errors(found):
        raise FlowError(diagnostics)
    digest = hashlib.sha256()
    for name in sorted(loaded):
        digest.update(loaded[name].text.encode())
    for language in sorted(prompts.texts):
        for key, text in sorted(prompts.texts[language].items()):
            digest.update(f"{language}:{key}={text.text}".encode())
    if rules_text is not None:
        digest.update(f"routing={rules_text}".encode())
    files = {name: item.file for name, item in loaded.items()}
    return FlowSet(digest.hexdigest()[:12], flows, prompts, files, rules), diagnostics


def _load_routing(path: Path | None,
                  flows: dict[str, model.Flow]) -> tuple[RuleSet | None, str | None, list[Diagnostic]]:
    """The rules and their text; none without a file (calls then start unrouted)."""
    if path is None or not path.exists():
        return None, None, []
    from ivr.routing.rules import load_rules_text  # see the TYPE_CHECKING import

    try:
        text = yamlsource.read(path)
    except yamlsource.SourceError as exc:
        return None, None, [exc.diagnostic(str(path))]
    rules, diagnostics = load_rules_text(text, str(path), flows)
    return rules, text, diagnostics


class Catalog:
    """The current release plus recent ones still used by calls in progress.

    `routing`: the routing rules file that joins every release (None: releases have no rules).
    `prepare`: run on every release before it serves, the first one included.
    """

    def __init__(self, flows_dir: Path, prompts_dir: Path, keep: int = 16,
                 actions: dict[str, ActionInfo] | None = None, routing: Path | None = None,
                 prepare: Prepare | None = None):
        self.flows_dir = flows_dir
        self.prompts_dir = prompts_dir
        self.actions = actions
        self.routing = routing
        self.prepare = prepare
        self.keep = keep
        self._releases: OrderedDict[str, FlowSet] = OrderedDict()
        first, self.warnings = self._build(None)
        if first is None:
            raise FlowError(self.warnings)
        self.current = first
        self._remember(self.current)
        self._one_at_a_time = asyncio.Lock()
        self._waiting: asyncio.Task[list[Diagnostic]] | None = None  # a reload that has not read the files yet
        self._tasks: set[asyncio.Task[list[Diagnostic]]] = set()

    def reload(self) -> list[Diagnostic]:
        """Load the files again, on this thread; on errors keep serving the current release."""
        return self._adopt(*self._build(self.current))

    def request_reload(self) -> asyncio.Task[list[Diagnostic]]:
        """SIGHUP's reload (and the router's, when the routing file changed): on a worker
        thread, one at a time, the latest request winning.

        A request made while another waits its turn joins it: that one has not
        read the files yet, so it will see whatever the later request meant.
        """
        if self._waiting is None:
            self._waiting = asyncio.get_running_loop().create_task(self.reload_off_loop())
            self._tasks.add(self._waiting)
            self._waiting.add_done_callback(self._tasks.discard)
        return self._waiting

    async def reload_off_loop(self) -> list[Diagnostic]:
        """Parse, validate and prepare on a worker thread while calls go on; swap the release in on the loop."""
        async with self._one_at_a_time:
            if self._waiting is asyncio.current_task():
                self._waiting = None
            try:
                fresh, diagnostics = await asyncio.to_thread(self._build, self.current)
            except Exception as exc:  # a loader bug: the running release goes on serving
                log.exception("release reload failed, still serving %s", self.current.id)
                return [Diagnostic(str(self.flows_dir), 1, 1, Severity.ERROR, "reload", f"reload failed: {exc!r}")]
            return self._adopt(fresh, diagnostics)

    def _build(self, previous: FlowSet | None) -> tuple[FlowSet | None, list[Diagnostic]]:
        """A release ready to serve, or None and why not; `previous` is the one it would replace."""
        try:
            fresh, diagnostics = load_flow_set(self.flows_dir, self.prompts_dir, self.actions, self.routing)
        except FlowError as exc:
            return None, exc.diagnostics
        if self.prepare is None:
            return fresh, diagnostics
        prepared, found = self.prepare(fresh, previous)
        return prepared, [*diagnostics, *found]

    def _adopt(self, fresh: FlowSet | None, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        if fresh is None:
            log.error("release refused (flows, prompts, routing rules and prompt audio go together), "
                      "still serving %s:\n%s", self.current.id, FlowError(diagnostics))
            return diagnostics
        if fresh.id != self.current.id:
            log.info("reloaded: release %s replaces %s", fresh.id, self.current.id)
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
