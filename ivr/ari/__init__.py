"""Asterisk REST Interface (ARI) client layer.

* :class:`AriClient` — typed REST calls (``client.py``);
* :class:`EventStream` — the events websocket with reconnect (``events.py``);
* typed events (``event_types.py``), resources (``models.py``), errors (``errors.py``).

Typical wiring in a controller::

    settings = Settings()
    ari = AriClient.from_settings(settings)

    async def on_event(event: AriEvent) -> None:      # in order; keep it quick (route to the call)
        if isinstance(event, StasisStart) and not event.channel.is_external_media:
            ...                                       # a new call
        elif event.channel_id not in my_calls:
            return                                    # e.g. a Local channel's ;2 half

    async def on_connect(info: ConnectInfo) -> None:  # after every (re)connect
        if info.reconnect:
            held = (await ari.get_application(settings.ari_app)).channel_ids
            ...                                       # drop calls not in `held`

    stream = EventStream.from_settings(settings, on_event=on_event, on_connect=on_connect)
    await stream.run()                                # until stream.aclose()
"""

from ivr.ari.client import AriClient
from ivr.ari.errors import (
    AriConnectionError,
    AriError,
    AriServerError,
    AuthenticationError,
    BadRequest,
    BridgeNotFound,
    ChannelNotFound,
    NotFound,
    PlaybackNotFound,
    RecordingNotFound,
    Unprocessable,
    VariableNotFound,
    WrongState,
)
from ivr.ari.event_types import AriEvent, GenericEvent, channel_key, parse_event
from ivr.ari.events import ConnectInfo, EventStream
from ivr.backoff import Backoff

__all__ = [
    "AriClient", "AriConnectionError", "AriError", "AriEvent", "AriServerError",
    "AuthenticationError", "Backoff", "BadRequest", "BridgeNotFound",
    "ChannelNotFound", "ConnectInfo", "EventStream", "GenericEvent", "NotFound",
    "PlaybackNotFound", "RecordingNotFound", "Unprocessable", "VariableNotFound", "WrongState",
    "channel_key", "parse_event",
]
