"""Turn a media URI into audio samples (or an error, as Asterisk would fail).

``sound:`` resolves in the sounds directories (or over HTTP through the
media cache), ``recording:`` plays a stored recording, ``digits:`` and
``number:`` say digits from ``digits/<n>`` sounds, ``tone:`` plays until
stopped (None duration).
"""
from __future__ import annotations

from array import array
from pathlib import Path

from . import audio
from .http_media import HttpMediaCache, MediaFetchError
from .sounds import SoundLibrary, SoundNotFound


class MediaError(Exception):
    pass


class MediaResolver:
    def __init__(self, sounds: SoundLibrary, http: HttpMediaCache, recordings_dir: Path) -> None:
        self.sounds = sounds
        self.http = http
        self.recordings_dir = recordings_dir

    async def load(self, uri: str, language: str) -> array | None:
        scheme, _, rest = uri.partition(":")
        try:
            if scheme == "sound":
                if rest.startswith(("http://", "https://")):
                    return await self.http.fetch(rest)
                return self.sounds.load(rest, language)
            if scheme == "recording":
                return self._recording(rest)
            if scheme in ("digits", "number"):
                return self._digits(rest, language)
            if scheme == "characters":
                return self._chars(rest, language)
            if scheme == "tone":
                return None
        except (SoundNotFound, MediaFetchError, audio.AudioFormatError) as exc:
            raise MediaError(str(exc)) from exc
        raise MediaError(f"unsupported media URI {uri}")

    def _recording(self, name: str) -> array:
        for ext in ("wav", "sln", "wav16"):
            path = self.recordings_dir / f"{name}.{ext}"
            if path.is_file():
                return audio.decode(path.read_bytes(), ext)
        raise MediaError(f"Recording {name} not found")

    def _digits(self, text: str, language: str) -> array:
        out = array("h")
        for ch in text:
            if ch.isdigit():
                out.extend(self.sounds.load(f"digits/{ch}", language))
        return out

    def _chars(self, text: str, language: str) -> array:
        out = array("h")
        for ch in text.lower():
            if ch.isalnum():
                folder = "digits" if ch.isdigit() else "letters"
                out.extend(self.sounds.load(f"{folder}/{ch}", language))
        return out
