"""Shared fixtures: the real Redis CI starts, and where ../shared lives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the keys that seal personal data at rest: one file for the whole run (controllers it starts share it),
# never the operator's own
os.environ.setdefault("IVR_KEY_FILE", str(Path(tempfile.gettempdir()) / f"ivr-test-keys-{os.getpid()}" / "keys.json"))


def shared_dir() -> Path:
    return Path(os.environ.get("IVR_SHARED_DIR", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def redis_url():
    """IVR_REDIS_URL (set by .ci/run), else a private redis-server for this test session."""
    url = os.environ.get("IVR_REDIS_URL")
    if url:
        yield url
        return
    from ivr.redis_server import private_redis

    with private_redis() as started:
        yield started
