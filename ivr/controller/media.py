"""Which media URI plays a prompt, and the HTTP route that serves prompt audio.

Asterisk may run on another host, so prompts reach it as `sound:http://…`
URLs served by the controller (Asterisk caches them when told to; on Asterisk
22 a URL shorter than about 41 characters fails, so ours are long). Without a
media base URL, prompts are `sound:ivr/<lang>/<key>` names under a sounds
directory Asterisk reads. Prompts with call data are synthesised per call,
off the event loop: served from a small cache by content hash, or, without a
media base URL, written under `<sounds>/call/` for Asterisk to read, unless a
recorded template stands in the sounds directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import re
import shutil
import threading
import time
import wave
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from aiohttp import web

from ivr.engine.actions import PromptRef
from ivr.prompts import PromptCatalog

log = logging.getLogger(__name__)
Synthesize = Callable[[str, str], bytes]  # (text, language) -> 8 kHz WAV bytes
CACHE_SECONDS = 86400
STALE_SECONDS = 3600  # per-call audio left by a controller before us, older than any prompt still queued


class MediaResolver:
    def __init__(self, prompts: PromptCatalog, sounds_dir: Path, base_url: str | None,
                 synthesize: Synthesize | None = None, cache_size: int = 512):
        self.prompts = prompts
        self.sounds_dir = sounds_dir
        self.base_url = base_url.rstrip("/") if base_url else None
        self.synthesize = synthesize
        self._rendered: OrderedDict[str, bytes] = OrderedDict()
        self._written: OrderedDict[str, Path] = OrderedDict()
        self._cache_size = cache_size
        self._warned = False
        if not self.base_url:  # a previous controller's per-call audio, but not what its calls still play
            _remove_older_than(self.sounds_dir / "call", STALE_SECONDS)

    async def uri(self, language: str, prompt: PromptRef) -> str:
        """The media URI for one prompt as this caller should hear it."""
        if prompt.values and self.synthesize:
            text = self.prompts.render(language, prompt.key, prompt.values)
            digest = hashlib.sha256(f"{language}\0{text}".encode()).hexdigest()[:32]
            if self.base_url:
                if digest not in self._rendered:
                    audio = await asyncio.to_thread(self.synthesize, text, language)
                    self._remember(digest, audio)
                return f"sound:{self.base_url}/call/{digest}.wav"
            if not self._template(language, prompt.key).exists():
                return await self._written_uri(digest, text, language, prompt.key)
        if prompt.values and not self._warned:
            log.warning("prompts with call data play their recorded audio without the call's values "
                        "(first: %s/%s): %s", language, prompt.key,
                        "no speech synthesiser" if not self.synthesize else "a recording stands in the sounds directory")
            self._warned = True
        if self.base_url:
            return f"sound:{self.base_url}/prompts/{language}/{prompt.key}.wav"
        return f"sound:ivr/{language}/{prompt.key}"

    def _template(self, language: str, key: str) -> Path:
        return self.sounds_dir / language / f"{key}.wav"

    async def _written_uri(self, digest: str, text: str, language: str, key: str) -> str:
        """Per-call audio as a file in the sounds directory (`sound:ivr/call/<digest>/<key>`)."""
        path = self.sounds_dir / "call" / digest / f"{key}.wav"
        if digest in self._written:
            self._written.move_to_end(digest)
        else:
            await asyncio.to_thread(self._write, path, text, language)
            self._written[digest] = path
            stale = [self._written.popitem(last=False)[1] for _ in range(len(self._written) - self._cache_size)]
            if stale:
                await asyncio.to_thread(_remove_folders, stale)
        return f"sound:ivr/call/{digest}/{key}"

    def _write(self, path: Path, text: str, language: str) -> None:
        audio = self.synthesize(text, language)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")  # two calls may write the same text at once
        tmp.write_bytes(audio)
        os.replace(tmp, path)  # Asterisk never opens a half-written file

    def _remember(self, digest: str, audio: bytes) -> None:
        self._rendered[digest] = audio
        self._rendered.move_to_end(digest)
        while len(self._rendered) > self._cache_size:
            self._rendered.popitem(last=False)

    def seconds(self, uri: str) -> float | None:
        """Length of the audio behind a URI this resolver gave, when it is ours to read."""
        audio = self._local_audio(uri)
        if audio is None:
            return None
        try:
            with wave.open(io.BytesIO(audio) if isinstance(audio, bytes) else str(audio)) as wav:
                return wav.getnframes() / wav.getframerate()
        except (OSError, EOFError, wave.Error):
            return None

    def servable(self, uri: str) -> bool:
        """Can Asterisk still fetch this URI's audio (from us, or from its sounds directory)?"""
        return self._local_audio(uri) is not None

    def _local_audio(self, uri: str) -> bytes | Path | None:
        name = uri.removeprefix("sound:")
        if self.base_url and name.startswith(self.base_url + "/"):
            kind, _, rest = name[len(self.base_url) + 1:].partition("/")
            if kind == "call":
                return self._rendered.get(rest.removesuffix(".wav"))
            path = self.sounds_dir / rest
        else:
            path = self.sounds_dir / (name.removeprefix("ivr/") + ".wav")
        return path if path.is_file() else None

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/media/prompts/{language}/{name}", self._static),
                web.get("/media/call/{name}", self._per_call)]

    async def _static(self, request: web.Request) -> web.StreamResponse:
        """A prompt by its plain file name: an encoded slash, dots or a NUL byte is not one."""
        language, name = request.match_info["language"], request.match_info["name"]
        if not (_LANGUAGE.fullmatch(language) and _FILE_NAME.fullmatch(name)):
            raise web.HTTPNotFound()
        path = (self.sounds_dir / language / name).resolve()
        if self.sounds_dir.resolve() not in path.parents or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": f"max-age={CACHE_SECONDS}"})

    async def _per_call(self, request: web.Request) -> web.Response:
        digest = request.match_info["name"].removesuffix(".wav")
        audio = self._rendered.get(digest) if _FILE_NAME.fullmatch(digest + ".wav") else None
        if audio is None:
            raise web.HTTPNotFound()
        return web.Response(body=audio, content_type="audio/wav", headers={"Cache-Control": f"max-age={CACHE_SECONDS}"})


_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})?")
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\.wav")


def _remove_older_than(folder: Path, seconds: float) -> None:
    cutoff = time.time() - seconds
    for sub in folder.glob("*") if folder.is_dir() else []:
        if sub.stat().st_mtime < cutoff:
            shutil.rmtree(sub, ignore_errors=True)


def _remove_folders(files: list[Path]) -> None:
    for file in files:
        shutil.rmtree(file.parent, ignore_errors=True)
