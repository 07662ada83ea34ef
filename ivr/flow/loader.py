"""Read one flow file into a `Flow`, or say exactly where and why it is wrong.

Structure errors come from pydantic; here they are translated into what a
designer can act on: the line and column of the offending key or value, a plain
reason, and a "did you mean" for misspelt keys.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ivr import yamlsource
from ivr.diagnostics import Diagnostic, Severity
from ivr.flow import model


@dataclass(slots=True)
class LoadedFlow:
    """A parsed flow with the positions of everything in it."""

    file: str
    flow: model.Flow
    source: yamlsource.SourceMap
    text: str

    def at(self, path: yamlsource.Path, severity: Severity, code: str, message: str, *, key: bool = False) -> Diagnostic:
        pos = self.source.locate(path, key=key)
        return Diagnostic(self.file, pos.line, pos.column, severity, code, message)


def load_flow_file(path: Path) -> tuple[LoadedFlow | None, list[Diagnostic]]:
    try:
        text = yamlsource.read(path)
    except yamlsource.SourceError as exc:
        return None, [exc.diagnostic(str(path))]
    return load_flow_text(text, str(path))


def load_flow_text(text: str, file: str) -> tuple[LoadedFlow | None, list[Diagnostic]]:
    try:
        document = yamlsource.load(text)
    except yamlsource.SourceError as exc:
        return None, [exc.diagnostic(file)]
    diagnostics = [
        Diagnostic(file, pos.line, pos.column, Severity.ERROR, "duplicate-key",
                   f"'{path[-1]}' appears twice in {_where(path[:-1])}; the second would silently replace the first")
        for path, pos in document.duplicates
    ]
    if not isinstance(document.data, dict):
        return None, [*diagnostics, Diagnostic(file, 1, 1, Severity.ERROR, "structure",
                                               "a flow file is a mapping with flow, start and nodes")]
    try:
        flow = model.Flow.model_validate(document.data)
    except ValidationError as exc:
        diagnostics.extend(_explain(exc, document, file))
        return None, diagnostics
    return LoadedFlow(file, flow, document.source, text), diagnostics


def _explain(exc: ValidationError, document: yamlsource.Document, file: str) -> list[Diagnostic]:
    """One diagnostic per place, with the clearest of the errors pydantic gives for it."""
    by_place: dict[yamlsource.Path, list[ErrorDetails]] = {}
    for error in exc.errors():
        path = _data_path(document.data, error["loc"])
        by_place.setdefault(path, []).append(error)
    for path in [p for p, errors in by_place.items() if all(e["type"] == "target" for e in errors)]:
        if any(other[:len(path)] == path and other != path for other in by_place):
            del by_place[path]  # "not a target" only because something inside it is wrong: report that
    missing = {path: errors for path, errors in by_place.items() if any(e["type"] == "missing" for e in errors)}
    diagnostics: list[Diagnostic] = []
    used_missing: set[yamlsource.Path] = set()
    for path, errors in by_place.items():
        error = _clearest(errors)
        if error["type"] == "missing":
            continue  # reported below, unless a misspelt key explains it
        if error["type"] == "extra_forbidden":
            siblings = [str(p[-1]) for p in missing if p[:-1] == path[:-1]]
            word = str(path[-1])
            suggestion = _suggest(word, siblings) or (None if word in _VOCABULARY else _suggest(word, _VOCABULARY))
            if suggestion in siblings:
                used_missing.add((*path[:-1], suggestion))
            hint = f"; did you mean '{suggestion}'?" if suggestion else "; it belongs at another level: check its indentation" if word in _VOCABULARY else ""
            pos = document.source.locate(path, key=True)
            diagnostics.append(Diagnostic(file, pos.line, pos.column, Severity.ERROR, "unknown-key",
                                          f"unknown key '{path[-1]}' in {_where(path[:-1])}{hint}"))
            continue
        pos = document.source.locate(path)
        diagnostics.append(Diagnostic(file, pos.line, pos.column, Severity.ERROR, "structure",
                                      f"{_where(path)}: {_reason(error)}"))
    for path in missing:
        if path not in used_missing:
            pos = document.source.locate(path[:-1], key=True)
            diagnostics.append(Diagnostic(file, pos.line, pos.column, Severity.ERROR, "missing-key",
                                          f"{_where(path[:-1])} needs '{path[-1]}'"))
    return sorted(diagnostics, key=lambda d: (d.line, d.column))


def _data_path(data: Any, loc: tuple[str | int, ...]) -> yamlsource.Path:
    """Keep the parts of pydantic's location that exist in the data.

    Tagged unions put their tag (`play`, `transfer`...) into the location, and
    the tag is often also a key of the data: it is a tag when the next part of
    the location is found beside it, or when it leads nowhere further.
    """
    path: list[Any] = []
    current = data
    for index, part in enumerate(loc):
        following = loc[index + 1] if index + 1 < len(loc) else None
        if _is_tag(part, current, following):
            continue
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        else:
            current = None
        path.append(part)
    return tuple(path)


_TAGS = {*model.NODE_KINDS, "node"}


def _is_tag(part: Any, current: Any, following: Any) -> bool:
    if not isinstance(part, str):
        return False
    if "[" in part or part.startswith(("dict", "list", "tagged-union", "function-")):
        return True
    if part not in _TAGS or following is None:
        return False
    if not isinstance(current, dict):
        return part == "node"
    if following in current or part not in current:
        return True
    return not isinstance(current[part], (dict, list))


_PREFERRED = ("node_kind", "target", "extra_forbidden", "missing")


def _clearest(errors: list[ErrorDetails]) -> ErrorDetails:
    for kind in _PREFERRED:
        for error in errors:
            if error["type"] == kind:
                return error
    return errors[0]


_PATTERN_REASONS = {
    model.DTMF_PATTERN: "keys are 0-9, * and # (at most 4)",
    model.PROMPT_KEY_PATTERN: "a prompt key looks like group.name (letters, digits, _)",
    model.NAME_PATTERN: "names use letters, digits and _ and do not start with a digit",
}


def _reason(error: ErrorDetails) -> str:
    if error["type"] == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern"))
        reason = _PATTERN_REASONS.get(pattern, error["msg"])
        return f"{error.get('input')!r} is not valid: {reason}"
    if error["type"] == "string_type" and isinstance(error.get("input"), (int, float)):
        return f"{error['input']!r} is read as a number; put it in quotes: \"{error['input']}\""
    if error["type"] in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping of keys to values"
    if error["type"] == "union_tag_not_found":
        return "a node needs one kind: " + ", ".join(model.NODE_KINDS)
    return str(error["msg"]).removeprefix("Value error, ").rstrip(".")


def _where(path: yamlsource.Path) -> str:
    if not path:
        return "the flow"
    if path[0] == "nodes" and len(path) >= 2:
        rest = ".".join(str(p) for p in path[2:])
        return f"node '{path[1]}'" + (f" ({rest})" if rest else "")
    return ".".join(str(p) for p in path)


def _suggest(word: str, candidates: list[str] | set[str]) -> str | None:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def _vocabulary() -> set[str]:
    words: set[str] = set()
    for value in vars(model).values():
        if isinstance(value, type) and issubclass(value, BaseModel):
            for name, info in value.model_fields.items():
                words.add(info.alias or name)
    return words


_VOCABULARY = _vocabulary()
