"""HTTP servers like those of the http-media scenario.

``plain`` behaves like ``python -m http.server`` (type guessed from the
extension, no cache headers); ``cache`` adds behaviours under path prefixes:
``/maxage/`` (Cache-Control: max-age), ``/etag/`` (ETag, 304 on
If-None-Match), ``/slow/`` and ``/slowmaxage/`` (0.8 s delay, scaled),
``/ctwav/`` (Content-Type: audio/wav whatever the name).
"""
from __future__ import annotations

import asyncio
import hashlib
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


@dataclass
class MediaServer:
    root: Path
    scale: float = 1.0
    log: list[tuple[str, str, int]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def start(self, cache_behaviours: bool) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._cached if cache_behaviours else self._plain)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        for _ in range(20):   # the scenario's URL lengths assume 5-digit ports
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            if port >= 10000:
                self.port = port
                return port
            await site.stop()
        raise RuntimeError("no 5-digit port")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def _file(self, rel: str) -> Path | None:
        path = (self.root / rel).resolve()
        return path if path.is_file() and self.root.resolve() in path.parents else None

    async def _plain(self, request: web.Request) -> web.Response:
        path = self._file(request.match_info["tail"])
        if path is None:
            self.log.append((request.method, request.path_qs, 404))
            return web.Response(status=404, text="File not found")
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.log.append((request.method, request.path_qs, 200))
        return web.Response(body=path.read_bytes(), content_type=ctype)

    async def _cached(self, request: web.Request) -> web.Response:
        prefix, _, rel = request.match_info["tail"].partition("/")
        path = self._file(rel)
        if path is None:
            self.log.append((request.method, request.path_qs, 404))
            return web.Response(status=404)
        if prefix in ("slow", "slowmaxage"):
            await asyncio.sleep(0.8 * self.scale)
        data = path.read_bytes()
        headers: dict[str, str] = {}
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if prefix in ("maxage", "slowmaxage"):
            headers["Cache-Control"] = "max-age=300"
        if prefix == "etag":
            etag = '"' + hashlib.md5(data).hexdigest() + '"'
            headers["ETag"] = etag
            if request.headers.get("If-None-Match") == etag:
                self.log.append((request.method, request.path_qs, 304))
                return web.Response(status=304, headers=headers)
        if prefix == "ctwav":
            ctype = "audio/wav"
        self.log.append((request.method, request.path_qs, 200))
        body = b"" if request.method == "HEAD" else data
        return web.Response(body=body, headers=headers, content_type=ctype)
