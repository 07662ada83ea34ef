"""A parser for the subset of ``extensions.conf`` an IVR deployment uses.

Supports ``[context]`` sections (repeated sections merge), ``exten =>``
with literal or ``_`` patterns, ``same =>``, ``n`` priorities, labels
``n(label)`` and ``include =>``.  The simulator runs the parsed dialplan so
that Local channels, inbound calls and ``POST /continue`` behave as the
real dialplan would.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Step:
    priority: int
    label: str | None
    app: str
    data: str


@dataclass
class Extension:
    pattern: str
    steps: dict[int, Step] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    last: int = 0

    def add(self, priority: int, label: str | None, app: str, data: str) -> None:
        self.steps[priority] = Step(priority, label, app, data)
        if label:
            self.labels[label] = priority
        self.last = priority


@dataclass
class Context:
    name: str
    extensions: dict[str, Extension] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)


class Dialplan:
    def __init__(self) -> None:
        self.contexts: dict[str, Context] = {}
        self.globals: dict[str, str] = {}

    # -- loading -------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str) -> Dialplan:
        plan = cls()
        plan.load_text(text)
        return plan

    @classmethod
    def from_files(cls, paths: list[Path]) -> Dialplan:
        plan = cls()
        for path in paths:
            plan.load_text(Path(path).read_text())
        return plan

    def load_text(self, text: str) -> None:
        ctx: Context | None = None
        last_ext: Extension | None = None
        in_globals = False
        for raw in text.splitlines():
            line = _strip_comment(raw).strip()
            if not line:
                continue
            if line.startswith("[") and "]" in line:
                name = line[1:line.index("]")]
                in_globals = name == "globals"
                ctx = None if name in ("general", "globals") else self.contexts.setdefault(name, Context(name))
                last_ext = None
                continue
            if ctx is None and in_globals and "=" in line:
                key, _, value = line.partition("=")
                self.globals[key.strip()] = value.strip()
                continue
            if ctx is None or "=>" not in line and "=" not in line:
                continue
            key, _, rest = line.partition("=>") if "=>" in line else line.partition("=")
            key, rest = key.strip().lower(), rest.strip()
            if key == "include":
                ctx.includes.append(rest)
            elif key == "exten":
                pattern, prio, app = _split(rest, 3)
                last_ext = ctx.extensions.setdefault(pattern, Extension(pattern))
                self._add(last_ext, prio, app)
            elif key == "same" and last_ext is not None:
                prio, app = _split(rest, 2)
                self._add(last_ext, prio, app)

    @staticmethod
    def _add(ext: Extension, prio_text: str, app_text: str) -> None:
        label = None
        match = re.fullmatch(r"\s*(\w+|n)\s*(?:\(([\w-]+)\))?\s*", prio_text)
        if not match:
            raise ValueError(f"bad priority {prio_text!r}")
        prio, label = match.group(1), match.group(2)
        if prio == "n":
            priority = ext.last + 1
        elif prio == "hint":
            return
        else:
            priority = int(prio)
        app, data = split_app(app_text)
        ext.add(priority, label, app, data)

    # -- lookup --------------------------------------------------------------
    def extension(self, context: str, exten: str, _seen: frozenset[str] = frozenset()) -> Extension | None:
        ctx = self.contexts.get(context)
        if ctx is None or context in _seen:
            return None
        if exten in ctx.extensions:
            return ctx.extensions[exten]
        matches = [e for p, e in ctx.extensions.items() if p.startswith("_") and pattern_matches(p, exten)]
        if matches:
            return min(matches, key=lambda e: _specificity(e.pattern))
        for inc in ctx.includes:
            found = self.extension(inc, exten, _seen | {context})
            if found:
                return found
        return None

    def step(self, context: str, exten: str, priority: int) -> Step | None:
        ext = self.extension(context, exten)
        return ext.steps.get(priority) if ext else None

    def label(self, context: str, exten: str, label: str) -> int | None:
        ext = self.extension(context, exten)
        return ext.labels.get(label) if ext else None


def split_app(text: str) -> tuple[str, str]:
    """``Playback(a&b)`` -> ("Playback", "a&b"); ``Answer`` -> ("Answer", "")."""
    text = text.strip()
    if "(" not in text:
        return text, ""
    name, _, rest = text.partition("(")
    if rest.endswith(")"):
        rest = rest[:-1]
    return name.strip(), rest


def _split(text: str, parts: int) -> list[str]:
    out = text.split(",", parts - 1)
    if len(out) != parts:
        raise ValueError(f"cannot parse dialplan line {text!r}")
    return [p.strip() for p in out]


def _strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if ch == ";":
            break
        out.append(ch)
        i += 1
    return "".join(out)


def pattern_matches(pattern: str, exten: str) -> bool:
    return re.fullmatch(_pattern_regex(pattern), exten) is not None


def _pattern_regex(pattern: str) -> str:
    out = []
    body = pattern[1:]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch in "Xx":
            out.append("[0-9]")
        elif ch in "Zz":
            out.append("[1-9]")
        elif ch in "Nn":
            out.append("[2-9]")
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "[":
            end = body.index("]", i)
            out.append("[" + body[i + 1:end] + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _specificity(pattern: str) -> tuple[int, int]:
    wild = sum(pattern.count(c) for c in ".!")
    return (wild, -len(pattern))
