"""Playback objects (``/channels/{id}/play``, ``/playbacks/{id}``).

A playback says ``queued`` until its turn in the channel's command queue,
``playing`` from PlaybackStarted, and ``done`` whether it completed, was
stopped or was cancelled before starting; ``failed`` when its media could
not be played or the channel hung up under it.
"""
from __future__ import annotations

import asyncio
from typing import Any


class Playback:
    def __init__(self, playback_id: str, media: list[str], channel_id: str, language: str) -> None:
        self.id = playback_id
        self.media = media
        self.channel_id = channel_id
        self.language = language
        self.state = "queued"
        self.index = 0
        self.stop = asyncio.Event()
        self.finalized = False
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.stopped = False

    @property
    def target_uri(self) -> str:
        return f"channel:{self.channel_id}"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "media_uri": self.media[self.index]}
        if self.index + 1 < len(self.media):
            body["next_media_uri"] = self.media[self.index + 1]
        body.update({"target_uri": self.target_uri, "language": self.language, "state": self.state})
        return body


def split_media(media: str) -> list[str]:
    """``media=sound:a,sound:b`` is a playlist (one playback, one DELETE stops it)."""
    return [m for m in media.split(",") if m]
