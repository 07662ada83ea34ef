"""Which media URI plays a prompt, and the HTTP route that serves prompt audio.

Asterisk may run on another host, so prompts reach it as `sound:http://…`
URLs served by the controller (Asterisk caches them when told to; on Asterisk
22 a URL shorter than about 41 characters fails, so ours are long). Without a
media base URL, prompts are `sound:ivr/<lang>/<key>` names under a sounds
directory Asterisk reads.

Every prompt is resolved for the release of the call that plays it: its text
comes from that release's prompts, and its file from that release's sounds
(`FlowSet.sound_stem`): `<lang>/<key>` as `ivr prompts build` lays it out, or
`<lang>/<source>/<key>` for a text a reload changed or added (built before
the release served, `ivr.controller.promptaudio`). A call begun before a
prompt was edited goes on hearing the old words; the next call hears the new.

Prompts with call data ("Thank you, Ann.", a premium, a due date) are
synthesised per call, off the event loop, and belong to that call alone.
Their names are a keyed hash (HMAC under the server's hash key) of the call
id, prompt and text: a plain hash of the text let anyone who reached the
port test whether a name or an amount had been spoken, and two calls saying
the same words shared one name. They are served from memory over HTTP, or,
without a media base URL, written under `<sounds>/call/<name>/` (unless a
recorded template stands in the sounds directory), and removed when the call
ends. The routes can be limited to Asterisk's addresses (`fetchers`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import ipaddress
import logging
import os
import re
import shutil
import threading
import time
import wave
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ivr.engine.actions import PromptRef
from ivr.flow.catalog import FlowSet

log = logging.getLogger(__name__)
Synthesize = Callable[[str, str], bytes]  # (text, language) -> 8 kHz WAV bytes
KeyedHash = Callable[[str, str, int], str]  # (purpose, value, size) -> hex HMAC under a secret key (Sealer.digest)
CACHE_SECONDS = 86400
# A call's own audio speaks its data (a number read back): no max-age, so Asterisk's media cache holds
# it stale and fetches again for each play (http-media trace: without cache headers every play downloads),
# and no-store for anything in between
CALL_CACHE_CONTROL = "no-store"
STALE_SECONDS = 3600  # per-call audio left by a controller before us, older than any prompt still queued
NAME_SIZE = 40  # hex characters of a per-call name: 160 bits, and URLs well past Asterisk's 41 characters
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class _CallAudio:
    call_id: str
    audio: bytes | Path  # served from memory over HTTP, or the file Asterisk reads


class MediaResolver:
    def __init__(self, sounds_dir: Path, base_url: str | None,
                 synthesize: Synthesize | None = None, cache_size: int = 512,
                 keyed_hash: KeyedHash | None = None, fetchers: Sequence[str] = ()):
        """`keyed_hash` names per-call audio; without it, a key of this process alone (a controller
        taking a call over then renders its prompts again under its own names). `fetchers`: the
        addresses or networks (`10.0.0.5`, `10.0.0.0/24`) that may fetch `/media/`; empty: anyone.
        No prompt texts here: each prompt is asked with the release of its call."""
        self.sounds_dir = sounds_dir
        self.base_url = base_url.rstrip("/") if base_url else None
        self.synthesize = synthesize
        self._per_call: OrderedDict[str, _CallAudio] = OrderedDict()
        self._cache_size = cache_size
        self._keyed = keyed_hash or _process_keyed_hash()
        self._fetchers: list[Network] = [ipaddress.ip_network(item, strict=False) for item in fetchers]
        self._warned = False
        self._refused = False
        if not self.base_url:  # a previous controller's per-call audio, but not what its calls still play
            _remove_older_than(self.sounds_dir / "call", STALE_SECONDS)

    async def uri(self, release: FlowSet, language: str, prompt: PromptRef, call_id: str | None = None) -> str:
        """The media URI for one prompt as this caller should hear it, in the words of `release`
        (the call's); `call_id` is the call whose data it says (needed for prompts with values:
        their audio goes when the call ends)."""
        synthesize = self.synthesize
        if prompt.values and synthesize:
            if not call_id:
                raise ValueError(f"prompt {prompt.key} says call data: its call id is needed")
            text = release.prompts.render(language, prompt.key, prompt.values)
            name = self._keyed("media.call", f"{call_id}\0{language}\0{prompt.key}\0{text}", NAME_SIZE)
            if self.base_url:
                if not self._touch(name):
                    audio = await asyncio.to_thread(synthesize, text, language)
                    await self._keep(name, _CallAudio(call_id, audio))
                return f"sound:{self.base_url}/call/{name}.wav"
            if not self._template(language, prompt.key).exists():
                return await self._written_uri(synthesize, name, call_id, text, language, prompt.key)
        if prompt.values and not self._warned:
            log.warning("prompts with call data play their recorded audio without the call's values "
                        "(first: %s/%s): %s", language, prompt.key,
                        "no speech synthesiser" if not self.synthesize else "a recording stands in the sounds directory")
            self._warned = True
        stem = release.sound_stem(language, prompt.key)
        if self.base_url:
            return f"sound:{self.base_url}/prompts/{stem}.wav"
        return f"sound:ivr/{stem}"

    async def end_call(self, call_id: str) -> None:
        """The call has left us (hung up, or transferred out of Stasis: its prompts are over):
        its audio is served no more and its files are removed."""
        names = [name for name, entry in self._per_call.items() if entry.call_id == call_id]
        await self._remove([self._per_call.pop(name) for name in names])

    def _template(self, language: str, key: str) -> Path:
        return self.sounds_dir / language / f"{key}.wav"

    async def _written_uri(self, synthesize: Synthesize, name: str, call_id: str, text: str, language: str,
                           key: str) -> str:
        """Per-call audio as a file in the sounds directory (`sound:ivr/call/<name>/<key>`)."""
        if not self._touch(name):
            path = self.sounds_dir / "call" / name / f"{key}.wav"
            await asyncio.to_thread(self._write, synthesize, path, text, language)
            await self._keep(name, _CallAudio(call_id, path))
        return f"sound:ivr/call/{name}/{key}"

    def _write(self, synthesize: Synthesize, path: Path, text: str, language: str) -> None:
        audio = synthesize(text, language)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")  # a takeover may write the same prompt at once
        tmp.write_bytes(audio)
        os.replace(tmp, path)  # Asterisk never opens a half-written file

    def _touch(self, name: str) -> bool:
        if name not in self._per_call:
            return False
        self._per_call.move_to_end(name)
        return True

    async def _keep(self, name: str, entry: _CallAudio) -> None:
        """Bounded: past `cache_size` the least recently used goes, whichever call it was."""
        self._per_call[name] = entry
        self._per_call.move_to_end(name)
        await self._remove([self._per_call.popitem(last=False)[1]
                            for _ in range(len(self._per_call) - self._cache_size)])

    async def _remove(self, entries: list[_CallAudio]) -> None:
        files = [entry.audio for entry in entries if isinstance(entry.audio, Path)]
        if files:
            await asyncio.to_thread(_remove_folders, files)

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
                return self._served(rest)
            path = self.sounds_dir / rest
        else:
            path = self.sounds_dir / (name.removeprefix("ivr/") + ".wav")
        return path if path.is_file() else None

    def _served(self, file_name: str) -> bytes | None:
        entry = self._per_call.get(file_name.removesuffix(".wav")) if _CALL_FILE.fullmatch(file_name) else None
        return entry.audio if entry is not None and isinstance(entry.audio, bytes) else None

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/media/prompts/{language}/{name}", self._static),
                web.get("/media/prompts/{language}/{source}/{name}", self._static),
                web.get("/media/call/{name}", self._per_call_audio)]

    async def _static(self, request: web.Request) -> web.StreamResponse:
        """A prompt by its plain file name, under its language or the digest of a text a reload
        gave it: an encoded slash, dots or a NUL byte is not one."""
        self._admit(request)
        language, name = request.match_info["language"], request.match_info["name"]
        source = request.match_info.get("source")
        if not (_LANGUAGE.fullmatch(language) and _FILE_NAME.fullmatch(name)) or \
                (source is not None and not _SOURCE.fullmatch(source)):
            raise web.HTTPNotFound()
        path = (self.sounds_dir / language / (source or "") / name).resolve()
        if self.sounds_dir.resolve() not in path.parents or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": f"max-age={CACHE_SECONDS}"})

    async def _per_call_audio(self, request: web.Request) -> web.Response:
        self._admit(request)
        audio = self._served(request.match_info["name"])
        if audio is None:
            raise web.HTTPNotFound()
        return web.Response(body=audio, content_type="audio/wav",
                            headers={"Cache-Control": CALL_CACHE_CONTROL})

    def _admit(self, request: web.Request) -> None:
        """Refuse (403) a peer outside `fetchers`, before looking anything up."""
        if not self._fetchers or _peer_in(request.remote, self._fetchers):
            return
        if not self._refused:
            log.warning("media: refused %s, not among the addresses allowed to fetch prompts", request.remote)
            self._refused = True
        raise web.HTTPForbidden()


_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})?")
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\.wav")
_CALL_FILE = re.compile(r"[0-9a-f]{16,64}\.wav")
_SOURCE = re.compile(r"[0-9a-f]{20}")  # ivr.controller.promptaudio.SOURCE_SIZE


def _peer_in(remote: str | None, networks: list[Network]) -> bool:
    try:
        peer = ipaddress.ip_address(remote or "")
    except ValueError:
        return False  # not an IP peer (a Unix socket): not one of the allowed addresses
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return any(peer in network for network in networks)


def _process_keyed_hash() -> KeyedHash:
    key = os.urandom(32)

    def keyed(purpose: str, value: str, size: int) -> str:
        return hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()[:size]
    return keyed


def _remove_older_than(folder: Path, seconds: float) -> None:
    cutoff = time.time() - seconds
    for sub in folder.glob("*") if folder.is_dir() else []:
        if sub.stat().st_mtime < cutoff:
            shutil.rmtree(sub, ignore_errors=True)


def _remove_folders(files: list[Path]) -> None:
    for file in files:
        shutil.rmtree(file.parent, ignore_errors=True)
