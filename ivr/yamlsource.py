"""YAML documents that remember where every key and value came from.

The parser's events carry start marks; we build plain Python data from them and
keep a map from each data path (a tuple of keys and indexes) to its line and
column, so validation can point a designer at the exact spot. Duplicate keys,
which a YAML loader would silently overwrite, are reported instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import re
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(slots=True)
class SourceMap:
    """Positions of values (and of mapping keys) by data path."""

    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> Position:
        """The position of `path`, or of its nearest ancestor that has one."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Position(1, 1))


class YamlSyntaxError(Exception):
    def __init__(self, message: str, position: Position):
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(slots=True)
class Document:
    data: Any
    source: SourceMap
    duplicates: list[tuple[Path, Position]]


def load(text: str) -> Document:
    """Parse one YAML document, keeping positions; raise YamlSyntaxError on bad YAML."""
    builder = _Builder()
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        opened = exc.context and ("quoted" in exc.context or "flow" in exc.context)
        if exc.problem and opened and exc.context_mark and exc.context_mark.line != mark.line:
            start = exc.context_mark  # an unclosed quote or bracket: say where it was opened
            reason += f" ({exc.context} that starts at line {start.line + 1}, column {start.column + 1})"
        raise YamlSyntaxError(f"YAML syntax: {reason}", where) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML syntax: {exc}", Position(1, 1)) from None
    return Document(builder.root, builder.source, builder.duplicates)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # LibYAML's parser when present: much faster


class _Builder:
    """Builds plain data from parser events, recording where each value starts.

    Working from events (rather than PyYAML's node graph) keeps a 40,000-line
    flow file well under a second.
    """

    def __init__(self) -> None:
        self.root: Any = None
        self.source = SourceMap()
        self.duplicates: list[tuple[Path, Position]] = []
        self.stack: list[list[Any]] = []  # [container, path, pending key, key position, is a key]
        self.anchors: dict[str, Any] = {}

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self.value(_scalar(event), event)
        elif isinstance(event, yaml.MappingStartEvent):
            self.open({}, event)
        elif isinstance(event, yaml.SequenceStartEvent):
            self.open([], event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            container, path, _, _, is_key = self.stack.pop()
            if is_key:  # a complex key: keep its text so errors can show it
                self.stack[-1][2], self.stack[-1][3] = str(container), self.source.values[path]
            else:
                self.place(container, path)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in self.anchors:
                raise YamlSyntaxError(f"YAML syntax: *{event.anchor} refers to no &{event.anchor} above it", _mark(event))
            self.value(self.anchors[event.anchor], event)

    def child_path(self) -> Path | None:
        """The path of the next value, or None when the value is a mapping key."""
        if not self.stack:
            return ()
        frame = self.stack[-1]
        container, path = frame[0], frame[1]
        if isinstance(container, list):
            return (*path, len(container))
        if frame[2] is _NO_KEY:
            return None
        return (*path, frame[2])

    def value(self, value: Any, event: yaml.Event) -> None:
        mark = _mark(event)
        path = self.child_path()
        if getattr(event, "anchor", None):
            self.anchors[event.anchor] = value
        if path is None:  # a mapping key
            frame = self.stack[-1]
            key = value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
            frame[2], frame[3] = key, mark
            return
        self.source.values[path] = mark
        self.place(value, path)

    def open(self, container: Any, event: yaml.Event) -> None:
        path = self.child_path()
        is_key = path is None
        if is_key:
            path = (*self.stack[-1][1], "?")
        self.source.values[path] = _mark(event)
        if event.anchor:
            self.anchors[event.anchor] = container
        self.stack.append([container, path, _NO_KEY, None, is_key])

    def place(self, value: Any, path: Path) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        container = frame[0]
        if isinstance(container, list):
            container.append(value)
            return
        key, key_mark = frame[2], frame[3]
        if key in container:
            self.duplicates.append((path, key_mark))
        self.source.keys[path] = key_mark
        container[key] = value
        frame[2] = _NO_KEY


_NO_KEY = object()


def _mark(event: yaml.Event) -> Position:
    return Position(event.start_mark.line + 1, event.start_mark.column + 1)


_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$|^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


def _scalar(event: yaml.ScalarEvent) -> Any:
    """YAML 1.2 core scalars: `yes`, `no`, `on`, `off` stay words.

    Designers write phrases such as `say: [yes, no]`; YAML 1.1 rules would turn
    them into booleans behind their backs.
    """
    text = event.value
    if event.style or event.tag not in (None, "!"):
        return text  # quoted, or explicitly tagged: keep the text as written
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text.replace("_", ""))
    if _FLOAT.match(text):
        return float(text.replace("_", ""))
    return text
