"""Builders for ARI events, with the fields and key order Asterisk 22 sends.

Each builder returns the event body (without ``asterisk_id`` and
``application``, which depend on the receiving app) and the resources the
event is about, which decide which Stasis applications receive it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import CAUSE_TEXT, Bridge, Channel

Event = dict[str, Any]


@dataclass(frozen=True)
class Refs:
    """What an event is about.  Bridge events reach only bridge subscribers."""
    channels: tuple[str, ...] = ()
    bridges: tuple[str, ...] = ()


def _base(kind: str, ts: str) -> Event:
    return {"type": kind, "timestamp": ts}


def channel_event(kind: str, ts: str, channel: Channel, **fields: Any) -> tuple[Event, Refs]:
    body = _base(kind, ts)
    body.update(fields)
    body["channel"] = channel.snapshot()
    return body, Refs(channels=(channel.id,))


def varset(ts: str, channel: Channel, variable: str, value: str) -> tuple[Event, Refs]:
    body: Event = {"variable": variable, "value": value}
    body.update(_base("ChannelVarset", ts))
    body["channel"] = channel.snapshot()
    return body, Refs(channels=(channel.id,))


def hangup_request(ts: str, channel: Channel, cause: int, soft: bool,
                   tech_cause: int | None = None) -> tuple[Event, Refs]:
    """``tech_cause``: what ``ast_queue_hangup()`` adds when the channel driver set one (main/channel.c)."""
    body: Event = {"cause": cause}
    if tech_cause:
        body["tech_cause"] = tech_cause
    if soft:
        body["soft"] = True
    body.update(_base("ChannelHangupRequest", ts))
    body["channel"] = channel.snapshot()
    return body, Refs(channels=(channel.id,))


def destroyed(ts: str, channel: Channel, cause: int) -> tuple[Event, Refs]:
    """res/stasis/app.c ``channel_destroyed_event``: type, timestamp, cause, cause_txt, then
    ``tech_cause`` only when the channel has one, then channel."""
    fields: dict[str, Any] = {"cause": cause, "cause_txt": CAUSE_TEXT.get(cause, "Unknown")}
    if channel.tech_cause:
        fields["tech_cause"] = channel.tech_cause
    return channel_event("ChannelDestroyed", ts, channel, **fields)


def talking_finished(ts: str, channel: Channel, duration_ms: int) -> tuple[Event, Refs]:
    body: Event = {"duration": duration_ms}
    body.update(_base("ChannelTalkingFinished", ts))
    body["channel"] = channel.snapshot()
    return body, Refs(channels=(channel.id,))


def stasis_start(ts: str, channel: Channel, args: list[str]) -> tuple[Event, Refs]:
    return channel_event("StasisStart", ts, channel, args=list(args))


def dialplan(ts: str, channel: Channel) -> tuple[Event, Refs]:
    loc = channel.location
    return channel_event("ChannelDialplan", ts, channel, dialplan_app=loc.app_name,
                         dialplan_app_data=loc.app_data)


def dial(ts: str, peer: Channel, dialstatus: str, dialstring: str,
         caller: Channel | None = None) -> tuple[Event, Refs]:
    body = _base("Dial", ts)
    body.update({"dialstatus": dialstatus, "forward": "", "dialstring": dialstring})
    ids = [peer.id]
    if caller is not None:
        body["caller"] = caller.snapshot()
        ids.insert(0, caller.id)
    body["peer"] = peer.snapshot()
    return body, Refs(channels=tuple(ids))


def dtmf_received(ts: str, channel: Channel, digit: str, duration_ms: int) -> tuple[Event, Refs]:
    return channel_event("ChannelDtmfReceived", ts, channel, digit=digit, duration_ms=duration_ms)


def caller_id(ts: str, channel: Channel) -> tuple[Event, Refs]:
    return channel_event("ChannelCallerId", ts, channel, caller_presentation=0,
                         caller_presentation_txt="Presentation Allowed, Not Screened")


def bridge_channel_event(kind: str, ts: str, bridge: Bridge, channel: Channel) -> tuple[Event, Refs]:
    body = _base(kind, ts)
    body["bridge"] = bridge.snapshot()
    body["channel"] = channel.snapshot()
    return body, Refs(bridges=(bridge.id,))


def bridge_event(kind: str, ts: str, bridge: Bridge) -> tuple[Event, Refs]:
    body = _base(kind, ts)
    body["bridge"] = bridge.snapshot()
    return body, Refs(bridges=(bridge.id,))


def playback_event(kind: str, ts: str, playback: dict[str, Any]) -> tuple[Event, Refs]:
    """For the applications subscribed to the playback's target (``channel:`` or ``bridge:``)."""
    body = _base(kind, ts)
    body["playback"] = playback
    scheme, _, ident = playback["target_uri"].partition(":")
    return body, (Refs(bridges=(ident,)) if scheme == "bridge" else Refs(channels=(ident,)))


def recording_event(kind: str, ts: str, recording: dict[str, Any], channel_id: str) -> tuple[Event, Refs]:
    body = _base(kind, ts)
    body["recording"] = recording
    return body, Refs(channels=(channel_id,))


def user_event(ts: str, channel: Channel, name: str, fields: dict[str, str]) -> tuple[Event, Refs]:
    return channel_event("ChannelUserevent", ts, channel, eventname=name, userevent=fields)
