"""Resolve ``sound:<name>`` the way Asterisk's file layer does.

Asterisk looks for ``<sounds>/<language>/<name>.<ext>`` then
``<sounds>/<name>.<ext>`` in every format it can play and picks one; a name
found in no format fails the playback.  ``silence/<n>`` is synthesised when
absent, as Asterisk ships those files with every install.
"""
from __future__ import annotations

import re
from array import array
from pathlib import Path

from . import audio

# cheapest first for an 8 kHz slin channel
PREFERENCE = ("sln", "wav", "ulaw", "alaw", "pcm", "raw", "wav16", "sln16")


class SoundNotFound(LookupError):
    pass


class SoundLibrary:
    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = [Path(d) for d in dirs]
        self._cache: dict[tuple[Path, float], array] = {}

    def find(self, name: str, language: str = "en") -> Path | None:
        bases: list[Path] = []
        if name.startswith("/"):
            bases.append(Path(name))
        else:
            for d in self.dirs:
                if language:
                    bases.append(d / language / name)
                bases.append(d / name)
        for base in bases:
            for ext in PREFERENCE:
                candidate = base.with_name(base.name + "." + ext)
                if candidate.is_file():
                    return candidate
        return None

    def load(self, name: str, language: str = "en") -> array:
        path = self.find(name, language)
        if path is None:
            synth = _builtin(name)
            if synth is not None:
                return synth
            raise SoundNotFound(f"File {name} does not exist in any format")
        key = (path, path.stat().st_mtime)
        if key not in self._cache:
            try:
                self._cache[key] = audio.decode(path.read_bytes(), path.suffix[1:])
            except audio.AudioFormatError as exc:
                raise SoundNotFound(f"Unable to open {name}: {exc}") from exc
        return self._cache[key]

    def exists(self, name: str, language: str = "en") -> bool:
        return self.find(name, language) is not None or _builtin(name) is not None


def _builtin(name: str) -> array | None:
    match = re.fullmatch(r"silence/(\d+)", name)
    if match:
        return audio.silence(float(match.group(1)))
    return None
