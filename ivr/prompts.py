"""Prompt texts by key and language, with placeholders filled from call data.

`prompts/<lang>.yaml` holds nested mappings of texts; a key is the dotted path
(`payment.offer`). Texts may hold placeholders `{expression}` or
`{expression:format}`, where the expression is a dotted name over call data
and the format says how to speak the value in that language: `money`, `date`,
`digits` (one by one, grouped), `masked` (last four digits only) or `number`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr import yamlsource
from ivr.diagnostics import Diagnostic, Severity
from ivr.digits import speakable

LANGUAGES = ("en", "zh")
FORMATS = ("text", "money", "date", "digits", "masked", "number")
NUMBER_FORMATS = frozenset({"digits", "masked"})  # phone, policy or ID numbers: said in part or read back
PLACEHOLDER = re.compile(r"\{([^{}:]+)(?::([a-z]+))?\}")

# Prompts the engine itself plays, with the values it supplies.
TRANSFER_NOTICE = "common.transfer_notice"  # before a transfer that has no prompt of its own: never dead air
ENGINE_PROMPTS: dict[str, set[str]] = {
    "common.did_you_say": {"heard"},
    "common.readback_digits": {"digits"},
    TRANSFER_NOTICE: set(),
}

# Prompts the controller plays on its own, named by no flow: while a backend action keeps the caller waiting.
WAIT_FILLER = "common.wait_filler"
STILL_WAITING = "common.still_waiting"

# Prompts any call may hear whatever its flows say, and who plays them: every language a flow
# speaks needs them (the validator warns when one is missing), though no flow names them.
SYSTEM_PROMPTS: dict[str, str] = {
    TRANSFER_NOTICE: "the engine plays it before a transfer that has no prompt, which would otherwise start in silence",
    WAIT_FILLER: "the controller plays it when a backend action takes over 1.5 s",
    STILL_WAITING: "the controller plays it while a backend action keeps the caller waiting longer",
}


@dataclass(frozen=True, slots=True)
class Placeholder:
    expression: str
    format: str


@dataclass(frozen=True, slots=True)
class PromptText:
    key: str
    text: str
    file: str
    line: int
    column: int

    @property
    def placeholders(self) -> list[Placeholder]:
        return [Placeholder(m.group(1).strip(), m.group(2) or "text") for m in PLACEHOLDER.finditer(self.text)]


@dataclass(frozen=True, slots=True)
class PromptSound:
    """Where one release plays a prompt from, and what that audio says.

    `stem` is the file under the sounds directory, without `.wav`: `en/main.menu`
    as `ivr prompts build` lays it out, or `en/<source>/main.menu` for a text a
    reload changed or added, so the old and the new audio coexist while calls
    begun on the previous release still play theirs. `source` is a digest of
    what the audio says (its text, or its recording).
    """

    stem: str
    source: str


@dataclass(slots=True)
class PromptCatalog:
    """All prompt texts, by language then key."""

    texts: dict[str, dict[str, PromptText]] = field(default_factory=dict)

    def has(self, language: str, key: str) -> bool:
        return key in self.texts.get(language, {})

    def get(self, language: str, key: str) -> PromptText | None:
        return self.texts.get(language, {}).get(key)

    def expressions(self, key: str) -> set[str]:
        """Placeholder expressions of a key across all languages."""
        return {p.expression for texts in self.texts.values() if key in texts for p in texts[key].placeholders}

    def shows_numbers(self, key: str) -> bool:
        """Does the prompt say a personal number, masked or read back? Its values hold it in full."""
        return any(p.format in NUMBER_FORMATS for texts in self.texts.values() if key in texts
                   for p in texts[key].placeholders)

    def render(self, language: str, key: str, values: Mapping[str, Any]) -> str:
        """The text a caller hears; a missing value is left as an empty string."""
        prompt = self.get(language, key)
        if prompt is None:
            return f"[{key}]"

        def fill(match: re.Match[str]) -> str:
            value = values.get(match.group(1).strip())
            return format_value(value, match.group(2) or "text", language)

        return PLACEHOLDER.sub(fill, prompt.text)


def format_value(value: Any, fmt: str, language: str) -> str:
    """Speak a value in a language: money, dates, digit strings and masked numbers."""
    if value is None:
        return ""
    if fmt == "money":
        amount = float(value)
        return f"{amount:,.2f} dollars" if language == "en" else f"{amount:.2f}元"
    if fmt == "date":
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        return f"{day:%B} {day.day}, {day.year}" if language == "en" else f"{day.year}年{day.month}月{day.day}日"
    if fmt == "digits":
        return speakable(re.sub(r"\D", "", str(value)))
    if fmt == "masked":
        tail = " ".join(re.sub(r"\D", "", str(value))[-4:])
        return f"ending in {tail}" if language == "en" else f"尾号{tail}"
    if fmt == "number":
        return f"{value:,}" if isinstance(value, (int, float)) else str(value)
    return str(value)


def load_prompts(directory: Path) -> tuple[PromptCatalog, list[Diagnostic]]:
    """Read every `<lang>.yaml` in the directory; report bad files and placeholders."""
    catalog = PromptCatalog()
    diagnostics: list[Diagnostic] = []
    for path in prompt_files(directory):
        texts, found = _load_language(path)
        catalog.texts[path.stem] = texts
        diagnostics.extend(found)
    return catalog, diagnostics


def prompt_files(directory: Path) -> list[Path]:
    """The `<lang>.yaml` files of the directory that exist, in LANGUAGES order."""
    return [path for language in LANGUAGES if (path := directory / f"{language}.yaml").exists()]


def _load_language(path: Path) -> tuple[dict[str, PromptText], list[Diagnostic]]:
    name = str(path)
    try:
        document = yamlsource.load_file(path)
    except yamlsource.SourceError as exc:
        return {}, [exc.diagnostic(name)]
    diagnostics = [
        Diagnostic(name, pos.line, pos.column, Severity.ERROR, "duplicate-key", f"prompt key '{_dotted(p)}' is defined twice")
        for p, pos in document.duplicates
    ]
    texts: dict[str, PromptText] = {}
    _flatten(document.data or {}, (), document.source, name, texts, diagnostics)
    return texts, diagnostics


def _flatten(data: Any, path: tuple, source: yamlsource.SourceMap, name: str, out: dict, diags: list) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten(value, (*path, key), source, name, out, diags)
        return
    pos = source.locate(path)
    if not isinstance(data, (str, int, float)) or len(path) < 2:
        diags.append(Diagnostic(name, pos.line, pos.column, Severity.ERROR, "prompt-text",
                                f"'{_dotted(path)}' must be text under a group, e.g. payment: {{offer: ...}}"))
        return
    prompt = PromptText(_dotted(path), str(data), name, pos.line, pos.column)
    for placeholder in prompt.placeholders:
        if placeholder.format not in FORMATS:
            diags.append(Diagnostic(name, pos.line, pos.column, Severity.ERROR, "prompt-format",
                                    f"unknown format '{placeholder.format}' in '{prompt.key}'; use one of {', '.join(FORMATS)}"))
    out[prompt.key] = prompt


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)
