"""Typed views of the ARI resources the controller reads (swagger 1.2 models).

Only the fields we use are declared; anything else Asterisk sends is kept
(``extra="allow"``) so nothing is lost when the simulator or a newer Asterisk
adds fields. Fields Asterisk always sends are still given defaults: a missing
cosmetic field must not turn into a dropped event on a live call.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AriModel(BaseModel):
    """Base: tolerant of extra fields, immutable once parsed."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class CallerId(AriModel):
    """Caller (or connected line) name and number, e.g. the caller's ANI."""

    name: str = ""
    number: str = ""


class DialplanCEP(AriModel):
    """Where in the dialplan a channel is (context, extension, priority)."""

    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""


class Channel(AriModel):
    """A channel: one leg of a call (the caller in Stasis, an agent, externalMedia)."""

    id: str
    name: str = ""
    state: str = ""
    protocol_id: str = ""
    caller: CallerId = Field(default_factory=CallerId)
    connected: CallerId = Field(default_factory=CallerId)
    accountcode: str = ""
    dialplan: DialplanCEP | None = None
    creationtime: str = ""
    language: str = ""
    channelvars: dict[str, str] | None = None

    @property
    def is_external_media(self) -> bool:
        """An externalMedia (UnicastRTP/AudioSocket/WebSocket) leg we created, not a caller."""
        return self.name.startswith(("UnicastRTP/", "AudioSocket/", "WebSocket/"))


class Playback(AriModel):
    """A prompt (or playlist) being played; `state` ends as `done` or `failed`."""

    id: str
    media_uri: str = ""
    next_media_uri: str | None = None
    target_uri: str = ""
    language: str = ""
    state: str = ""

    @property
    def channel_id(self) -> str | None:
        """Channel id when the playback targets a channel (`channel:<id>`)."""
        return _target_id(self.target_uri, "channel")


class LiveRecording(AriModel):
    """A recording in progress or just finished (durations in whole seconds, inexact)."""

    name: str
    format: str = ""
    state: str = ""
    target_uri: str = ""
    duration: int | None = None
    talking_duration: int | None = None
    silence_duration: int | None = None
    cause: str | None = None

    @property
    def channel_id(self) -> str | None:
        """Channel id when recording a channel (`channel:<id>`)."""
        return _target_id(self.target_uri, "channel")


class StoredRecording(AriModel):
    """A finished recording stored by Asterisk."""

    name: str
    format: str = ""


class Bridge(AriModel):
    """A bridge mixing channels (e.g. the caller with an externalMedia channel)."""

    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: list[str] = Field(default_factory=list)
    creationtime: str = ""
    video_mode: str = ""


class Application(AriModel):
    """A Stasis application and what it is subscribed to."""

    name: str
    channel_ids: list[str] = Field(default_factory=list)
    bridge_ids: list[str] = Field(default_factory=list)
    endpoint_ids: list[str] = Field(default_factory=list)
    device_names: list[str] = Field(default_factory=list)
    events_allowed: list[dict[str, object]] = Field(default_factory=list)
    events_disallowed: list[dict[str, object]] = Field(default_factory=list)


def _target_id(target_uri: str, kind: str) -> str | None:
    """`channel:123.4` -> `123.4` when kind matches, else None."""
    prefix = f"{kind}:"
    return target_uri[len(prefix):] if target_uri.startswith(prefix) else None
