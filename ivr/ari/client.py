"""Typed async client for the ARI REST operations the controller uses.

A thin layer over aiohttp: one method per ARI operation, parameter names
exactly as Asterisk 22's swagger spells them (``playbackId``, ``external_host``,
``eventSource``...), every parameter in the query string as the recorded
traces show, except ``variables`` which goes in a JSON body. Failures raise
the exceptions in :mod:`ivr.ari.errors`.

Timing facts that shape the callers (observed on Asterisk 22):

* POST /variable, /answer, /dtmf, /moh on a channel with a prompt playing do
  not answer until the prompt ends: stop the prompt first (hence the long
  default timeout).
* POST /continue answers at once, but StasisEnd only comes when the current
  prompt ends.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel
from yarl import URL

from ivr.ari.errors import AriConnectionError, AriError, VariableNotFound, error_from_response
from ivr.ari.models import (
    Application,
    Bridge,
    Channel,
    LiveRecording,
    Playback,
    StoredRecording,
)

HangupReason = Literal[
    "normal", "busy", "congestion", "no_answer", "timeout", "rejected", "unallocated",
    "normal_unspecified", "number_incomplete", "codec_mismatch", "interworking",
    "failure", "answered_elsewhere",
]
IfExists = Literal["fail", "overwrite", "append"]
TerminateOn = Literal["none", "any", "*", "#"]
BridgeType = str  # comma list of: mixing, holding, dtmf_events, proxy_media, video_sfu, video_single
Encapsulation = Literal["rtp", "audiosocket", "none"]
Transport = Literal["udp", "tcp", "websocket"]
ConnectionType = Literal["client", "server"]
QueryValue = str | int | float | bool | Sequence[str] | None

M = TypeVar("M", bound=BaseModel)


def _segment(value: str) -> str:
    """Percent-encode one path segment (ids may contain ';', '/', spaces)."""
    return quote(str(value), safe="")


def _query_value(value: str | int | float | bool | Sequence[str]) -> str:
    """ARI wants booleans as true/false and multi-values comma-joined."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return ",".join(str(item) for item in value)


def build_query(**params: QueryValue) -> dict[str, str]:
    """Drop unset (None) parameters and format the rest for the query string."""
    return {name: _query_value(value) for name, value in params.items() if value is not None}


class AriClient:
    """Async ARI REST client. Use as ``async with AriClient(...) as ari:``.

    ``base_url`` is Asterisk's HTTP root (``http://127.0.0.1:8088``); the
    client adds ``/ari``. A caller-provided ``session`` is used and not closed.
    ``on_error`` is told of every failed request before it is raised (metrics).
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        on_error: Callable[[AriError], None] | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        self._api = root if root.endswith("/ari") else f"{root}/ari"
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None
        self._on_error = on_error

    @classmethod
    def from_settings(cls, settings: Any, *, session: aiohttp.ClientSession | None = None,
                      on_error: Callable[[AriError], None] | None = None) -> AriClient:
        """Build from :class:`ivr.config.Settings` (password required)."""
        return cls(
            settings.ari_url,
            settings.ari_user,
            settings.ari_password_value,
            timeout=settings.ari_request_timeout,
            session=session,
            on_error=on_error,
        )

    @property
    def asterisk_id(self) -> str | None:
        """The Asterisk this client's connection is with, where the connection says (outbound websockets)."""
        return None

    @property
    def per_call_app(self) -> str | None:
        """`<app>:<channel name>` when this client is a call's own outbound websocket, else None."""
        return None

    @property
    def follows_after_stasis(self) -> bool:
        """Whether events of a channel that left Stasis can still reach us once subscribed
        (not over a per-call outbound websocket: nothing arrives after StasisEnd)."""
        return True

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    # ------------------------------------------------------------------ transport

    def _http(self) -> aiohttp.ClientSession:
        """The session, created lazily so the client can be built outside a loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Send one request; return the raw body of a 2xx, raise AriError otherwise.

        ``path`` is relative to /ari, already percent-encoded (``/channels/1.2/play``).
        """
        url = URL(f"{self._api}{path}", encoded=True)
        headers = dict(self._headers)
        kwargs: dict[str, Any] = {"params": dict(params or {}), "timeout": self._timeout, "headers": headers}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            async with self._http().request(method, url, **kwargs) as response:
                payload = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise self._failed(AriConnectionError(reason, method=method, path=path)) from exc
        if status >= 400:
            raise self._failed(error_from_response(status, method, path, payload))
        return payload

    def _failed(self, error: AriError) -> AriError:
        if self._on_error is not None:
            self._on_error(error)
        return error

    async def _json(self, method: str, path: str, params: Mapping[str, str] | None = None,
                    body: Mapping[str, Any] | None = None) -> Any:
        """Request and decode a JSON answer (None for an empty 204)."""
        payload = await self.request(method, path, params, body)
        return json.loads(payload) if payload else None

    async def _model(self, model: type[M], method: str, path: str,
                     params: Mapping[str, str] | None = None, body: Mapping[str, Any] | None = None) -> M:
        return model.model_validate(await self._json(method, path, params, body))

    async def _models(self, model: type[M], method: str, path: str) -> list[M]:
        return [model.model_validate(item) for item in await self._json(method, path) or []]

    # ------------------------------------------------------------------ channels

    async def list_channels(self) -> list[Channel]:
        """GET /channels: every channel in Asterisk (not only ours)."""
        return await self._models(Channel, "GET", "/channels")

    async def get_channel(self, channel_id: str) -> Channel:
        """GET /channels/{channelId}; ChannelNotFound once it hung up."""
        return await self._model(Channel, "GET", f"/channels/{_segment(channel_id)}")

    async def answer(self, channel_id: str) -> None:
        """POST /channels/{channelId}/answer (may take up to ~500 ms for media)."""
        await self.request("POST", f"/channels/{_segment(channel_id)}/answer")

    async def hangup(self, channel_id: str, reason: HangupReason | None = None,
                     *, reason_code: int | None = None) -> None:
        """DELETE /channels/{channelId}; `reason` and `reason_code` (Q.850) exclude each other."""
        if reason is not None and reason_code is not None:
            raise ValueError("give reason or reason_code, not both")
        params = build_query(reason=reason, reason_code=reason_code)
        await self.request("DELETE", f"/channels/{_segment(channel_id)}", params)

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
        offsetms: int | None = None,
        skipms: int | None = None,
    ) -> Playback:
        """POST /channels/{channelId}/play: one playback; a list plays as one playlist.

        `media` items are URIs: ``sound:hello-world``, ``sound:http://...`` (long
        URL), ``recording:name``, ``digits:123``... Choose `playback_id` yourself
        so a PlaybackFinished arriving before this returns is still recognised.
        """
        params = build_query(
            media=[media] if isinstance(media, str) else list(media),
            lang=lang, offsetms=offsetms, skipms=skipms, playbackId=playback_id,
        )
        return await self._model(Playback, "POST", f"/channels/{_segment(channel_id)}/play", params)

    async def get_playback(self, playback_id: str) -> Playback:
        """GET /playbacks/{playbackId}."""
        return await self._model(Playback, "GET", f"/playbacks/{_segment(playback_id)}")

    async def stop_playback(self, playback_id: str) -> None:
        """DELETE /playbacks/{playbackId}: PlaybackFinished (`done`) follows within ~1 ms.

        Queued playbacks start as soon as the one before stops: stop the
        queued ones first, then the current one.
        """
        await self.request("DELETE", f"/playbacks/{_segment(playback_id)}")

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: IfExists | None = None,
        beep: bool | None = None,
        terminate_on: TerminateOn | None = None,
    ) -> LiveRecording:
        """POST /channels/{channelId}/record; RecordingFinished tells when it ends."""
        params = build_query(
            name=name, format=format, maxDurationSeconds=max_duration_seconds,
            maxSilenceSeconds=max_silence_seconds, ifExists=if_exists, beep=beep,
            terminateOn=terminate_on,
        )
        return await self._model(LiveRecording, "POST", f"/channels/{_segment(channel_id)}/record", params)

    async def stop_recording(self, name: str) -> None:
        """POST /recordings/live/{recordingName}/stop: keep what was recorded so far."""
        await self.request("POST", f"/recordings/live/{_segment(name)}/stop")

    async def cancel_recording(self, name: str) -> None:
        """DELETE /recordings/live/{recordingName}: stop and discard."""
        await self.request("DELETE", f"/recordings/live/{_segment(name)}")

    async def get_stored_recording(self, name: str) -> StoredRecording:
        """GET /recordings/stored/{recordingName}."""
        return await self._model(StoredRecording, "GET", f"/recordings/stored/{_segment(name)}")

    async def get_recording_file(self, name: str) -> bytes:
        """GET /recordings/stored/{recordingName}/file: the audio (8 kHz mono WAV for `wav`)."""
        return await self.request("GET", f"/recordings/stored/{_segment(name)}/file")

    async def delete_stored_recording(self, name: str) -> None:
        """DELETE /recordings/stored/{recordingName}."""
        await self.request("DELETE", f"/recordings/stored/{_segment(name)}")

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """POST /channels/{channelId}/continue: leave Stasis for the dialplan.

        Subscribe to the channel first (:meth:`subscribe`) to keep seeing its
        events (queue Dial, MEMBERINTERFACE...) after StasisEnd.
        """
        params = build_query(context=context, extension=extension, priority=priority, label=label)
        await self.request("POST", f"/channels/{_segment(channel_id)}/continue", params)

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        """POST /channels/{channelId}/variable (`__NAME` is inherited by agent legs).

        Also sets dialplan functions, e.g. ``TALK_DETECT(set)``.
        """
        params = build_query(variable=variable, value=value)
        await self.request("POST", f"/channels/{_segment(channel_id)}/variable", params)

    async def get_variable(self, channel_id: str, variable: str) -> str | None:
        """GET /channels/{channelId}/variable; None when unset (ChannelNotFound still raises)."""
        params = build_query(variable=variable)
        try:
            data = await self._json("GET", f"/channels/{_segment(channel_id)}/variable", params)
        except VariableNotFound:
            return None
        return str(data.get("value", "")) if isinstance(data, dict) else None

    async def enable_talk_detect(self, channel_id: str, silence_ms: int | None = None) -> None:
        """Turn on ChannelTalkingStarted/Finished events (`TALK_DETECT(set)`)."""
        await self.set_variable(channel_id, "TALK_DETECT(set)", "" if silence_ms is None else str(silence_ms))

    async def send_dtmf(
        self,
        channel_id: str,
        dtmf: str,
        *,
        before: int | None = None,
        between: int | None = None,
        duration: int | None = None,
        after: int | None = None,
    ) -> None:
        """POST /channels/{channelId}/dtmf (times in ms)."""
        params = build_query(dtmf=dtmf, before=before, between=between, duration=duration, after=after)
        await self.request("POST", f"/channels/{_segment(channel_id)}/dtmf", params)

    async def external_media(
        self,
        app: str,
        external_host: str,
        format: str = "slin16",
        *,
        encapsulation: Encapsulation | None = "rtp",
        transport: Transport | None = "udp",
        direction: Literal["both"] | None = "both",
        channel_id: str | None = None,
        connection_type: ConnectionType | None = None,
        data: str | None = None,
        transport_data: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """POST /channels/externalMedia: an RTP leg streaming to `external_host` (host:port).

        The answer comes while the channel is still Down and before its own
        StasisStart: wait for that StasisStart before adding it to a bridge
        (else 422), and do not treat it as a new call.
        """
        params = build_query(
            app=app, external_host=external_host, format=format, encapsulation=encapsulation,
            transport=transport, direction=direction, channelId=channel_id,
            connection_type=connection_type, data=data, transport_data=transport_data,
        )
        body = {"variables": dict(variables)} if variables else None
        return await self._model(Channel, "POST", "/channels/externalMedia", params, body)

    async def snoop(self, channel_id: str, app: str, *, snoop_id: str, app_args: str = "",
                    spy: Literal["in"] = "in") -> Channel:
        """POST /channels/{channelId}/snoop: a channel carrying what the caller says.

        With `spy=in` the snoop hears the caller only, and keeps hearing them
        while a prompt plays on the caller's channel (a channel playback
        suspends the caller from any bridge it is in, so its own audio is
        not heard there). The snoop's StasisStart, with `app_args` split on
        commas as its args, may arrive before this returns.
        """
        params = build_query(spy=spy, app=app, appArgs=app_args or None, snoopId=snoop_id)
        return await self._model(Channel, "POST", f"/channels/{_segment(channel_id)}/snoop", params)

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: str | Sequence[str] | None = None,
        variables: Mapping[str, str] | None = None,
        in_body: bool = False,
    ) -> Channel:
        """POST /channels: call `endpoint` into an app (`app`) or a dialplan location.

        `in_body`: every parameter in the JSON body, none in the URL (Asterisk reads them
        there too, res_ari_channels.c `ast_ari_channels_originate_parse_body`): a dialled
        phone number stays out of URLs and HTTP access logs."""
        params = build_query(
            endpoint=endpoint, app=app, appArgs=app_args, context=context, extension=extension,
            priority=priority, label=label, callerId=caller_id, timeout=timeout,
            channelId=channel_id, otherChannelId=other_channel_id, originator=originator,
            formats=formats,
        )
        body: dict[str, Any] | None = {"variables": dict(variables)} if variables else None
        if in_body:
            body = {**params, **(body or {})}
            if timeout is not None:
                body["timeout"] = timeout
            if priority is not None:
                body["priority"] = priority
            params = {}
        return await self._model(Channel, "POST", "/channels", params, body)

    # ------------------------------------------------------------------ bridges

    async def list_bridges(self) -> list[Bridge]:
        """GET /bridges."""
        return await self._models(Bridge, "GET", "/bridges")

    async def create_bridge(self, type: BridgeType = "mixing", *, name: str | None = None,
                            bridge_id: str | None = None) -> Bridge:
        """POST /bridges (a mixing bridge joins a call with its externalMedia leg)."""
        params = build_query(type=type, bridgeId=bridge_id, name=name)
        return await self._model(Bridge, "POST", "/bridges", params)

    async def get_bridge(self, bridge_id: str) -> Bridge:
        """GET /bridges/{bridgeId}."""
        return await self._model(Bridge, "GET", f"/bridges/{_segment(bridge_id)}")

    async def add_channel(
        self,
        bridge_id: str,
        channel: str | Sequence[str],
        *,
        role: str | None = None,
        absorb_dtmf: bool | None = None,
        mute: bool | None = None,
        inhibit_connected_line_updates: bool | None = None,
    ) -> None:
        """POST /bridges/{bridgeId}/addChannel (422 if a channel is not in Stasis yet)."""
        params = build_query(
            channel=[channel] if isinstance(channel, str) else list(channel), role=role,
            absorbDTMF=absorb_dtmf, mute=mute, inhibitConnectedLineUpdates=inhibit_connected_line_updates,
        )
        await self.request("POST", f"/bridges/{_segment(bridge_id)}/addChannel", params)

    async def remove_channel(self, bridge_id: str, channel: str | Sequence[str]) -> None:
        """POST /bridges/{bridgeId}/removeChannel."""
        params = build_query(channel=[channel] if isinstance(channel, str) else list(channel))
        await self.request("POST", f"/bridges/{_segment(bridge_id)}/removeChannel", params)

    async def destroy_bridge(self, bridge_id: str) -> None:
        """DELETE /bridges/{bridgeId} (channels in it stay up)."""
        await self.request("DELETE", f"/bridges/{_segment(bridge_id)}")

    # ------------------------------------------------------------------ applications

    async def list_applications(self) -> list[Application]:
        """GET /applications."""
        return await self._models(Application, "GET", "/applications")

    async def get_application(self, app: str) -> Application:
        """GET /applications/{applicationName}: `channel_ids` still held (reconcile after reconnect)."""
        return await self._model(Application, "GET", f"/applications/{_segment(app)}")

    async def subscribe(self, app: str, event_source: str | Sequence[str]) -> Application:
        """POST /applications/{applicationName}/subscription (`channel:<id>`, `bridge:<id>`...)."""
        params = build_query(eventSource=[event_source] if isinstance(event_source, str) else list(event_source))
        return await self._model(Application, "POST", f"/applications/{_segment(app)}/subscription", params)

    async def unsubscribe(self, app: str, event_source: str | Sequence[str]) -> Application:
        """DELETE /applications/{applicationName}/subscription."""
        params = build_query(eventSource=[event_source] if isinstance(event_source, str) else list(event_source))
        return await self._model(Application, "DELETE", f"/applications/{_segment(app)}/subscription", params)

    # ------------------------------------------------------------------ system

    async def asterisk_info(self) -> dict[str, Any]:
        """GET /asterisk/info: version and build (a cheap health check)."""
        data = await self._json("GET", "/asterisk/info")
        return data if isinstance(data, dict) else {}

    async def ping(self) -> dict[str, Any]:
        """GET /asterisk/ping."""
        data = await self._json("GET", "/asterisk/ping")
        return data if isinstance(data, dict) else {}
