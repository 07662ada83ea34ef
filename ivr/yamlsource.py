"""YAML documents that remember where every key and value came from.

The parser's events carry start marks; we build plain Python data from them and
keep a map from each data path (a tuple of keys and indexes) to its line and
column, so validation can point a designer at the exact spot. Duplicate keys,
which a YAML loader would silently overwrite, are reported instead.

Every designer file (flows, prompts, routing rules) is read here, through
`read`: a file over `FILE_LIMIT` or not UTF-8 becomes a `SourceError` with the
position of the problem, never a traceback nor gigabytes of memory. Aliases
are shared, not copied, and may add at most `ALIAS_LIMIT` values: a "billion
laughs" document is refused rather than expanded by whoever walks the data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import yaml

from ivr.diagnostics import Diagnostic, Severity

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


FILE_LIMIT = 1 << 20  # 1 MiB: the 5,000-node flow of `ivr bench engine` weighs 0.64 MiB, shipped flows under 5 KiB
ALIAS_LIMIT = 100_000  # values aliases may add: reusing a 10-value block in 1,000 places is 10,000


class SourceError(Exception):
    """A designer's file that cannot become a document, and where it goes wrong."""

    code = "yaml"

    def __init__(self, message: str, position: Position, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.position = position
        self.code = code or self.code

    def diagnostic(self, file: str) -> Diagnostic:
        return Diagnostic(file, self.position.line, self.position.column, Severity.ERROR, self.code, self.message)


class YamlSyntaxError(SourceError):
    """The text is not YAML (or uses aliases in a way we refuse)."""


@dataclass(slots=True)
class Document:
    data: Any
    source: SourceMap
    duplicates: list[tuple[Path, Position]]


def read(path: FilePath, limit: int = FILE_LIMIT) -> str:
    """The text of a designer's file; SourceError when it is unreadable, over `limit` bytes or not UTF-8.

    At most `limit` + 1 bytes are ever read, so a huge file costs nothing.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise SourceError(f"cannot read the file: {exc.strerror or exc}", Position(1, 1), "unreadable") from None
    if len(data) > limit:
        raise SourceError(f"the file is {_megabytes(max(size, len(data)))}; a file may hold at most {_megabytes(limit)}",
                          Position(1, 1), "too-large")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"byte 0x{data[exc.start]:02x} is not UTF-8 ({exc.reason}); save the file as UTF-8",
                          _byte_position(data, exc.start), "encoding") from None


def _byte_position(data: bytes, offset: int) -> Position:
    """Line and column (in characters) of a byte, everything before it being valid UTF-8."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return Position(data.count(b"\n", 0, offset) + 1, len(data[line_start:offset].decode("utf-8")) + 1)


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB" if size >= 1 << 20 else f"{size / 1024:.0f} KB"


def load_file(path: FilePath, limit: int = FILE_LIMIT) -> Document:
    """`read` then `load`: every failure is a SourceError with a position."""
    return load(read(path, limit))


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
        if exc.problem and opened and mark and exc.context_mark and exc.context_mark.line != mark.line:
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
        self.stack: list[list[Any]] = []  # [container, path, pending key, key position, is a key, values, anchor]
        self.anchors: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}  # values under each anchor, itself included
        self.added = 0  # values the aliases have added so far

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self.value(_scalar(event), event)
        elif isinstance(event, yaml.MappingStartEvent):
            self.open({}, event)
        elif isinstance(event, yaml.SequenceStartEvent):
            self.open([], event)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            container, path, _, _, is_key, values, anchor = self.stack.pop()
            if anchor:
                self.sizes[anchor] = values
            self.count(values)
            if is_key:  # a complex key: keep its text so errors can show it
                self.stack[-1][2], self.stack[-1][3] = str(container), self.source.values[path]
            else:
                self.place(container, path)
        elif isinstance(event, yaml.AliasEvent) and event.anchor is not None:
            values = self.alias_size(event)
            self.value(self.anchors[event.anchor], event, values)

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

    def alias_size(self, event: yaml.AliasEvent) -> int:
        """How many values the alias stands for; refuse a dangling, circular or exploding one."""
        anchor = event.anchor
        if anchor not in self.anchors:
            raise YamlSyntaxError(f"YAML syntax: *{anchor} refers to no &{anchor} above it", _mark(event))
        if anchor not in self.sizes:
            raise YamlSyntaxError(f"YAML syntax: *{anchor} is inside &{anchor} itself; a value cannot contain itself",
                                  _mark(event))
        self.added += self.sizes[anchor]
        if self.added > ALIAS_LIMIT:
            raise YamlSyntaxError(f"YAML syntax: aliases (*name) here stand for over {ALIAS_LIMIT:,} values; "
                                  "write the repeated part once (flow defaults) instead", _mark(event))
        return self.sizes[anchor]

    def count(self, values: int) -> None:
        if self.stack:
            self.stack[-1][5] += values

    def value(self, value: Any, event: yaml.Event, values: int = 1) -> None:
        mark = _mark(event)
        path = self.child_path()
        self.count(values)
        if isinstance(event, yaml.ScalarEvent) and event.anchor:  # an AliasEvent's anchor is the name it uses
            self.anchors[event.anchor] = value
            self.sizes[event.anchor] = 1
        if path is None:  # a mapping key
            frame = self.stack[-1]
            key = value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
            frame[2], frame[3] = key, mark
            return
        self.source.values[path] = mark
        self.place(value, path)

    def open(self, container: Any, event: yaml.CollectionStartEvent) -> None:
        child = self.child_path()
        is_key = child is None
        path: Path = (*self.stack[-1][1], "?") if child is None else child
        self.source.values[path] = _mark(event)
        if event.anchor:
            self.anchors[event.anchor] = container
            self.sizes.pop(event.anchor, None)  # known once closed: an alias before that would be circular
        self.stack.append([container, path, _NO_KEY, None, is_key, 1, event.anchor])

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
    mark = event.start_mark
    return Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)


MAX_INT_DIGITS = 100  # a flow value, a timeout, a count: never longer; a number to keep is text in quotes
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
        if len(text) > MAX_INT_DIGITS:  # Python refuses to read over 4,300 digits: say where, not a traceback
            raise YamlSyntaxError(f"a number of {len(text)} digits; numbers here have at most {MAX_INT_DIGITS}",
                                  _mark(event))
        return int(text.replace("_", ""))
    if _FLOAT.match(text):
        return float(text.replace("_", ""))
    return text
