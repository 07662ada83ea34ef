"""Typed ARI events (Asterisk 22 `events.json`) and how to route them.

:func:`parse_event` turns one websocket message into a small pydantic object:
the event types the controller uses get their own class; anything else
becomes :class:`GenericEvent` with the raw fields kept. Parsing never raises
for a well-formed JSON object: an event that does not fit its model is logged
and passed on as generic, because dropping it could leave a call stuck.

:func:`channel_key` says which channel an event belongs to, for per-channel
ordered dispatch. Note that an originated Local channel's `;2` half has its own
id and its own events (ChannelVarset, ChannelDialplan, DTMF sent to `;1`...):
they route to the `;2` key, and a controller ignores keys it does not own.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr.ari.models import Bridge, Channel, LiveRecording, Playback

log = logging.getLogger(__name__)


class AriEvent(BaseModel):
    """Fields every ARI event has (`Message` + `Event` in events.json)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    application: str = ""
    timestamp: str = ""
    asterisk_id: str | None = None

    # Events whose arrival ends the need for their channel's worker.
    terminal: ClassVar[bool] = False

    @property
    def channel_id(self) -> str | None:
        """Id of the channel this event is about (None for system events)."""
        channel = getattr(self, "channel", None)
        return channel.id if isinstance(channel, Channel) else None


class GenericEvent(AriEvent):
    """Any event without a dedicated class; all its fields are in `model_extra`."""

    @property
    def channel_id(self) -> str | None:
        channel = (self.model_extra or {}).get("channel")
        return channel.get("id") if isinstance(channel, dict) else None


class StasisStart(AriEvent):
    """A channel entered our application: a new call (or our own externalMedia leg)."""

    type: Literal["StasisStart"] = "StasisStart"
    args: list[str] = Field(default_factory=list)
    channel: Channel
    replace_channel: Channel | None = None


class StasisEnd(AriEvent):
    """A channel left our application (continue, hang-up, move)."""

    type: Literal["StasisEnd"] = "StasisEnd"
    channel: Channel
    terminal: ClassVar[bool] = True


class ChannelDtmfReceived(AriEvent):
    """One key pressed by the caller (one event per key)."""

    type: Literal["ChannelDtmfReceived"] = "ChannelDtmfReceived"
    digit: str
    duration_ms: int = 0
    channel: Channel


class _PlaybackEvent(AriEvent):
    playback: Playback

    @property
    def channel_id(self) -> str | None:
        return self.playback.channel_id


class PlaybackStarted(_PlaybackEvent):
    """A playback began (for remote media: before the fetch, not "audio started")."""

    type: Literal["PlaybackStarted"] = "PlaybackStarted"


class PlaybackContinuing(_PlaybackEvent):
    """A playlist moved to its next item."""

    type: Literal["PlaybackContinuing"] = "PlaybackContinuing"


class PlaybackFinished(_PlaybackEvent):
    """A playback ended: `done` for completed, stopped or cancelled alike; `failed`."""

    type: Literal["PlaybackFinished"] = "PlaybackFinished"


class _RecordingEvent(AriEvent):
    recording: LiveRecording

    @property
    def channel_id(self) -> str | None:
        return self.recording.channel_id


class RecordingStarted(_RecordingEvent):
    """A recording began."""

    type: Literal["RecordingStarted"] = "RecordingStarted"


class RecordingFinished(_RecordingEvent):
    """A recording ended (durations are whole, inexact seconds)."""

    type: Literal["RecordingFinished"] = "RecordingFinished"


class RecordingFailed(_RecordingEvent):
    """A recording failed (e.g. the channel hung up)."""

    type: Literal["RecordingFailed"] = "RecordingFailed"


class ChannelHangupRequest(AriEvent):
    """Hang-up asked for (by the caller, soft=True, or by us)."""

    type: Literal["ChannelHangupRequest"] = "ChannelHangupRequest"
    cause: int | None = None
    tech_cause: int | None = None
    soft: bool | None = None
    channel: Channel


class ChannelDestroyed(AriEvent):
    """The channel is gone; later requests on it get 404."""

    type: Literal["ChannelDestroyed"] = "ChannelDestroyed"
    cause: int = 0
    cause_txt: str = ""
    tech_cause: int | None = None
    channel: Channel
    terminal: ClassVar[bool] = True


class ChannelVarset(AriEvent):
    """A channel variable changed (no channel for global variables)."""

    type: Literal["ChannelVarset"] = "ChannelVarset"
    variable: str
    value: str = ""
    channel: Channel | None = None


class ChannelStateChange(AriEvent):
    """The channel's state changed (Ring, Up...)."""

    type: Literal["ChannelStateChange"] = "ChannelStateChange"
    channel: Channel


class ChannelDialplan(AriEvent):
    """The channel runs a dialplan application (after continue, in Queue...)."""

    type: Literal["ChannelDialplan"] = "ChannelDialplan"
    channel: Channel
    dialplan_app: str = ""
    dialplan_app_data: str = ""


class ChannelTalkingStarted(AriEvent):
    """Speech detected on the channel (needs TALK_DETECT(set))."""

    type: Literal["ChannelTalkingStarted"] = "ChannelTalkingStarted"
    channel: Channel


class ChannelTalkingFinished(AriEvent):
    """Speech ended; `duration` in ms."""

    type: Literal["ChannelTalkingFinished"] = "ChannelTalkingFinished"
    channel: Channel
    duration: int = 0


class ChannelEnteredBridge(AriEvent):
    """A channel joined a bridge."""

    type: Literal["ChannelEnteredBridge"] = "ChannelEnteredBridge"
    bridge: Bridge
    channel: Channel | None = None


class ChannelLeftBridge(AriEvent):
    """A channel left a bridge."""

    type: Literal["ChannelLeftBridge"] = "ChannelLeftBridge"
    bridge: Bridge
    channel: Channel


class ChannelUserevent(AriEvent):
    """UserEvent() from the dialplan (e.g. IvrAgentConnected for screen pop)."""

    type: Literal["ChannelUserevent"] = "ChannelUserevent"
    eventname: str
    userevent: dict[str, Any] = Field(default_factory=dict)
    channel: Channel | None = None
    bridge: Bridge | None = None


class Dial(AriEvent):
    """Dialing progress. Routed to the caller when there is one, else the peer.

    In a queue transfer `caller` is our caller and `peer` each ringing agent;
    `dialstatus` "" while ringing, then ANSWER / CANCEL / BUSY...
    """

    type: Literal["Dial"] = "Dial"
    caller: Channel | None = None
    peer: Channel
    forward: str = ""
    forwarded: Channel | None = None
    dialstring: str = ""
    dialstatus: str = ""

    @property
    def channel_id(self) -> str | None:
        return self.caller.id if self.caller is not None else self.peer.id


EVENT_CLASSES: dict[str, type[AriEvent]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        StasisStart, StasisEnd, ChannelDtmfReceived, PlaybackStarted, PlaybackContinuing,
        PlaybackFinished, RecordingStarted, RecordingFinished, RecordingFailed,
        ChannelHangupRequest, ChannelDestroyed, ChannelVarset, ChannelStateChange,
        ChannelDialplan, ChannelTalkingStarted, ChannelTalkingFinished,
        ChannelEnteredBridge, ChannelLeftBridge, ChannelUserevent, Dial,
    )
}


def parse_event(data: str | bytes | dict[str, Any]) -> AriEvent:
    """One websocket message -> a typed event (GenericEvent when not modelled).

    Raises ValueError only when the message is not a JSON object with a `type`.
    """
    raw = json.loads(data) if isinstance(data, (str, bytes)) else data
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ValueError(f"not an ARI event: {str(raw)[:200]}")
    cls = EVENT_CLASSES.get(raw["type"], GenericEvent)
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        log.warning("ARI %s event does not match its model, kept as generic: %s", raw["type"], exc)
        return GenericEvent.model_validate(raw)


def channel_key(event: AriEvent) -> str | None:
    """Dispatch key: the channel id the event is about, None for system events."""
    return event.channel_id
