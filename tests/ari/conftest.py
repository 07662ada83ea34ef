"""Fixtures for the ARI layer tests: the shared Asterisk ground truth and a tiny HTTP stub.

The ground truth (swagger, traces) lives outside the repo in
``$IVR_SHARED_DIR/asterisk`` (default ``<repo>/../shared``); tests that need
it are skipped when it is absent.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

REPO = Path(__file__).resolve().parents[2]


def shared_asterisk_dir() -> Path:
    """$IVR_SHARED_DIR/asterisk, default <repo>/../shared/asterisk."""
    return Path(os.environ.get("IVR_SHARED_DIR", REPO.parent / "shared")) / "asterisk"


@pytest.fixture(scope="session")
def asterisk_truth() -> Path:
    """The recorded Asterisk 22 ground truth directory (skip if absent)."""
    root = shared_asterisk_dir()
    if not (root / "api-docs").is_dir():
        pytest.skip(f"shared Asterisk ground truth not found at {root}")
    return root


def load_trace(path: Path) -> list[dict[str, Any]]:
    """One JSON object per line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Recorded:
    """One request as the stub saw it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None
    raw_path: str = ""


@dataclass
class StubAri:
    """An aiohttp app answering every request via `responder`, recording them all."""

    responder: Callable[[web.Request], Awaitable[web.StreamResponse]]
    requests: list[Recorded] = field(default_factory=list)
    server: TestServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(
            request.method, request.path, dict(request.query), body,
            request.headers.get("Authorization"), request.raw_path,
        ))
        return await self.responder(request)


@pytest.fixture
async def stub_ari() -> AsyncIterator[Callable[..., Awaitable[StubAri]]]:
    """Factory: ``stub = await stub_ari(responder)`` starts a stub on a free port."""
    started: list[TestServer] = []

    async def start(responder: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> StubAri:
        stub = StubAri(responder)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", stub.handle)
        stub.server = TestServer(app)
        await stub.server.start_server()
        started.append(stub.server)
        return stub

    yield start
    for server in started:
        await server.close()
