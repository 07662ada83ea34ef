"""Playback objects (``/channels/{id}/play``, ``/bridges/{id}/play``, ``/playbacks/{id}``).

A playback says ``queued`` until its turn (in the channel's command queue,
or until its bridge's announcer is ready), ``playing`` from PlaybackStarted,
and ``done`` whether it completed, was stopped or was cancelled before
starting; ``failed`` when its media could not be played or the channel
hung up under it.  Its ``target_uri`` (``channel:<id>`` or ``bridge:<id>``)
also decides which applications get its events.
"""
from __future__ import annotations

import asyncio
from typing import Any


class Playback:
    def __init__(self, playback_id: str, media: list[str], target_uri: str, language: str) -> None:
        self.id = playback_id
        self.media = media
        self.target_uri = target_uri
        self.language = language
        self.state = "queued"
        self.index = 0
        self.stop = asyncio.Event()
        self.finalized = False
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.stopped = False
        self.heard_by: list[Any] = []       # the SimCalls who hear it (told when it ends)

    def _target(self, kind: str) -> str:
        scheme, _, ident = self.target_uri.partition(":")
        return ident if scheme == kind else ""

    @property
    def channel_id(self) -> str:
        """The channel played to; "" for a bridge playback."""
        return self._target("channel")

    @property
    def bridge_id(self) -> str:
        return self._target("bridge")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "media_uri": self.media[self.index]}
        if self.index + 1 < len(self.media):
            body["next_media_uri"] = self.media[self.index + 1]
        body.update({"target_uri": self.target_uri, "language": self.language, "state": self.state})
        return body


def split_media(media: str) -> list[str]:
    """``media=sound:a,sound:b`` is a playlist (one playback, one DELETE stops it)."""
    return [m for m in media.split(",") if m]
