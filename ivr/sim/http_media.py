"""``sound:http://...`` through a model of Asterisk 22's HTTP media cache.

Observed rules (trace ``http-media``):
- the URL must be at least ~41 characters: the cache file name is cut to
  the URL's length on this version, so short URLs fail after downloading;
- the format comes from Content-Type, else from the URL's extension;
  ``application/octet-stream`` without an extension fails;
- a failed download is tried twice;
- no cache headers: every play downloads again; ``Cache-Control: max-age``
  caches until expiry; an ``ETag`` is revalidated with a HEAD request
  carrying ``If-None-Match`` (304 keeps the cached copy).
"""
from __future__ import annotations

import re
import time
from array import array
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict

from . import audio

MIN_URL_LENGTH = 41
USER_AGENT = "asterisk-libcurl-agent/1.0"
MIME_FORMATS = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav",
    "audio/basic": "ulaw", "audio/x-alaw-basic": "alaw", "audio/pcmu": "ulaw",
    "audio/pcma": "alaw",
}


class MediaFetchError(RuntimeError):
    pass


@dataclass
class CacheEntry:
    samples: array
    fmt: str
    expires: float | None
    etag: str | None


class HttpMediaCache:
    def __init__(self) -> None:
        self.entries: dict[str, CacheEntry] = {}
        self.requests: list[tuple[str, str, int]] = []   # (method, url, status) for tests
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        """One keep-alive client, as libcurl reuses connections."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def fetch(self, url: str) -> array:
        entry = self.entries.get(url)
        if entry is not None:
            if entry.expires is not None and time.monotonic() < entry.expires:
                return entry.samples
            if entry.etag and await self._not_modified(url, entry.etag):
                return entry.samples
        return await self._download(url)

    async def refresh(self, url: str) -> None:
        """Like the CLI's ``media cache refresh <url>``: download now, keep if cacheable."""
        await self._download(url)

    async def _not_modified(self, url: str, etag: str) -> bool:
        headers = {"User-Agent": USER_AGENT, "If-None-Match": etag}
        try:
            async with self._client().head(url, headers=headers) as resp:
                self.requests.append(("HEAD", url, resp.status))
                return resp.status == 304
        except aiohttp.ClientError:
            return False

    async def _download(self, url: str) -> array:
        last_error = "download failed"
        for _attempt in range(2):
            try:
                status, ctype, headers, body = await self._get(url)
            except aiohttp.ClientError as exc:
                last_error = str(exc)
                continue
            if status != 200:
                last_error = f"Failed to retrieve URL '{url}': server returned {status}"
                continue
            fmt = _format_for(url, ctype)
            if fmt is None or len(url) < MIN_URL_LENGTH:
                last_error = f"File {url} does not exist in any format"
                continue
            try:
                samples = audio.decode(body, fmt)
            except audio.AudioFormatError as exc:
                raise MediaFetchError(str(exc)) from exc
            self._store(url, samples, fmt, headers)
            return samples
        raise MediaFetchError(last_error)

    async def _get(self, url: str) -> tuple[int, str, CIMultiDict[str], bytes]:
        async with self._client().get(url, headers={"User-Agent": USER_AGENT}) as resp:
            body = await resp.read()
            self.requests.append(("GET", url, resp.status))
            return resp.status, resp.headers.get("Content-Type", ""), CIMultiDict(resp.headers), body

    def _store(self, url: str, samples: array, fmt: str, headers: CIMultiDict[str]) -> None:
        max_age = _max_age(headers.get("Cache-Control", ""))
        expires = time.monotonic() + max_age if max_age else None
        etag = headers.get("ETag")
        if expires is None and etag is None:
            self.entries.pop(url, None)
            return
        self.entries[url] = CacheEntry(samples, fmt, expires, etag)


def _max_age(cache_control: str) -> int | None:
    match = re.search(r"max-age=(\d+)", cache_control)
    return int(match.group(1)) if match else None


def _format_for(url: str, content_type: str) -> str | None:
    mime = content_type.split(";")[0].strip().lower()
    if mime in MIME_FORMATS:
        return MIME_FORMATS[mime]
    path = urlsplit(url).path
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return ext if ext in audio.PLAYABLE_FORMATS else None
