"""ARI REST resources the controller uses, answering as Asterisk 22 does.

Status codes and ``{"message": ...}`` bodies are those seen in the
``*-rest.jsonl`` traces.  Parameters may come in the query string or in a
JSON body, as Asterisk accepts both.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .core import Simulator
from .errors import AriError
from .model import HANGUP_REASONS
from .recording import CONTENT_TYPES, LiveRecording, RecordingOptions
from .stasis import StasisApp

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SIM_KEY = web.AppKey("sim", Simulator)


def sim_of(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


async def params(request: web.Request) -> dict[str, Any]:
    """Query parameters merged with JSON body fields (body ``variables`` kept as dict)."""
    out: dict[str, Any] = dict(request.query)
    if request.body_exists and request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise AriError(400, "Invalid JSON body") from None
        if isinstance(body, dict):
            for key, value in body.items():
                out.setdefault(key, value)
    return out


def as_int(p: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = p.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AriError(400, f"{name} must be an integer") from None


def as_bool(p: dict[str, Any], name: str, default: bool = False) -> bool:
    value = p.get(name)
    if value is None:
        return default
    return str(value).lower() in ("true", "yes", "1", "on")


def variables_of(p: dict[str, Any]) -> dict[str, str]:
    raw = p.get("variables") or {}
    if isinstance(raw, dict) and "variables" in raw and isinstance(raw["variables"], dict):
        raw = raw["variables"]
    if not isinstance(raw, dict):
        raise AriError(400, "variables must be an object")
    return {str(k): str(v) for k, v in raw.items()}


def no_content() -> web.Response:
    return web.Response(status=204)


def json_ok(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


# -- asterisk -------------------------------------------------------------------
async def asterisk_info(request: web.Request) -> web.Response:
    sim = sim_of(request)
    return json_ok({
        "build": {"os": "Linux", "kernel": "sim", "machine": "x86_64", "options": "OPTIONAL_API",
                  "date": sim.started, "user": "sim"},
        "system": {"version": "22.11.0-sim", "entity_id": sim.config.asterisk_id},
        "config": {"name": "", "default_language": sim.config.language, "setid": {"user": "sim", "group": "sim"}},
        "status": {"startup_time": sim.started, "last_reload_time": sim.started},
    })


async def asterisk_ping(request: web.Request) -> web.Response:
    sim = sim_of(request)
    return json_ok({"asterisk_id": sim.config.asterisk_id, "ping": "pong", "timestamp": sim.ts()})


# -- channels -------------------------------------------------------------------
async def channels_list(request: web.Request) -> web.Response:
    sim = sim_of(request)
    return json_ok([ch.snapshot() for ch in sim.channels.values() if not ch.destroyed])


async def channels_originate(request: web.Request) -> web.Response:
    p = await params(request)
    return _originate(request, p, p.get("channelId"))


async def channels_originate_with_id(request: web.Request) -> web.Response:
    p = await params(request)
    return _originate(request, p, request.match_info["channelId"])


def _originate(request: web.Request, p: dict[str, Any], channel_id: str | None) -> web.Response:
    sim = sim_of(request)
    ch = sim.originate(
        p.get("endpoint", ""), app=p.get("app"), app_args=p.get("appArgs", ""),
        context=p.get("context"), extension=p.get("extension"), priority=as_int(p, "priority"),
        label=p.get("label"), caller_id=p.get("callerId"), variables=variables_of(p),
        channel_id=channel_id, other_channel_id=p.get("otherChannelId"), timeout=as_int(p, "timeout"))
    return json_ok(ch.snapshot())


async def channel_get(request: web.Request) -> web.Response:
    return json_ok(sim_of(request).channel(request.match_info["channelId"]).snapshot())


async def channel_hangup(request: web.Request) -> web.Response:
    p = await params(request)
    reason = p.get("reason") or "normal"
    if p.get("reason_code"):
        cause = as_int(p, "reason_code") or 16
    elif reason in HANGUP_REASONS:
        cause = HANGUP_REASONS[reason]
    else:
        raise AriError(400, "Invalid reason for hangup provided")
    sim_of(request).hangup_by_app(request.match_info["channelId"], cause)
    return no_content()


async def channel_answer(request: web.Request) -> web.Response:
    await sim_of(request).cmd_answer(request.match_info["channelId"])
    return no_content()


async def channel_noop_command(request: web.Request) -> web.Response:
    """ring/hold/mute and friends: accepted, no observable effect simulated."""
    sim_of(request).stasis_channel(request.match_info["channelId"])
    return no_content()


async def channel_play(request: web.Request) -> web.Response:
    p = await params(request)
    pb_id = request.match_info.get("playbackId") or p.get("playbackId")
    sim = sim_of(request)
    pb = sim.playbacks.play_on_channel(sim.stasis_channel(request.match_info["channelId"]), p.get("media", ""),
                                       pb_id, p.get("lang"))
    return json_ok(pb.to_json(), status=201)


async def channel_record(request: web.Request) -> web.Response:
    p = await params(request)
    options = RecordingOptions(
        name=p.get("name", ""), format=p.get("format", ""),
        max_duration=as_int(p, "maxDurationSeconds", 0) or 0,
        max_silence=as_int(p, "maxSilenceSeconds", 0) or 0,
        if_exists=p.get("ifExists", "fail"), beep=as_bool(p, "beep"),
        terminate_on=p.get("terminateOn", "none"))
    sim = sim_of(request)
    rec = sim.live_recordings.start(sim.stasis_channel(request.match_info["channelId"]), options)
    return json_ok(rec.to_json(), status=201)


async def channel_continue(request: web.Request) -> web.Response:
    p = await params(request)
    sim_of(request).cmd_continue(request.match_info["channelId"], p.get("context"), p.get("extension"),
                                 as_int(p, "priority"), p.get("label"))
    return no_content()


async def channel_dtmf(request: web.Request) -> web.Response:
    p = await params(request)
    sim_of(request).cmd_dtmf(request.match_info["channelId"], p.get("dtmf", ""),
                             as_int(p, "before", 0) or 0, as_int(p, "between", 100) or 100,
                             as_int(p, "duration", 100) or 100, as_int(p, "after", 0) or 0)
    return no_content()


async def channel_moh_start(request: web.Request) -> web.Response:
    p = await params(request)
    sim_of(request).cmd_moh(request.match_info["channelId"], p.get("mohClass"), True)
    return no_content()


async def channel_moh_stop(request: web.Request) -> web.Response:
    sim_of(request).cmd_moh(request.match_info["channelId"], None, False)
    return no_content()


async def channel_var_get(request: web.Request) -> web.Response:
    p = await params(request)
    name = p.get("variable")
    if not name:
        raise AriError(400, "Variable name is required")
    sim = sim_of(request)
    value = sim.variables.get(sim.channel(request.match_info["channelId"]), name)
    if value is None:
        raise AriError(404, "Provided variable was not found")
    return json_ok({"value": value})


async def channel_var_set(request: web.Request) -> web.Response:
    p = await params(request)
    await sim_of(request).cmd_set_variable(request.match_info["channelId"], p.get("variable", ""),
                                           str(p.get("value", "")))
    return no_content()


async def channel_snoop(request: web.Request) -> web.Response:
    p = await params(request)
    ch = sim_of(request).snoop_channel(
        request.match_info["channelId"], app=p.get("app", ""), app_args=p.get("appArgs", ""),
        spy=p.get("spy"), whisper=p.get("whisper"),
        snoop_id=request.match_info.get("snoopId") or p.get("snoopId"))
    return json_ok(ch.snapshot())


async def external_media(request: web.Request) -> web.Response:
    p = await params(request)
    ch = await sim_of(request).create_external_media(
        p.get("app", ""), p.get("external_host", ""), p.get("format", ""),
        channel_id=p.get("channelId"), variables=variables_of(p),
        encapsulation=p.get("encapsulation", "rtp"), transport=p.get("transport", "udp"))
    body = ch.snapshot()
    body["channelvars"] = dict(ch.channelvars or {})
    return json_ok(body)


# -- playbacks ------------------------------------------------------------------
async def playback_get(request: web.Request) -> web.Response:
    pb = sim_of(request).playbacks.get(request.match_info["playbackId"])
    if pb is None:
        raise AriError(404, "Playback not found")
    return json_ok(pb.to_json())


async def playback_stop(request: web.Request) -> web.Response:
    sim_of(request).playbacks.stop(request.match_info["playbackId"])
    return no_content()


# -- recordings -------------------------------------------------------------------
async def recordings_stored(request: web.Request) -> web.Response:
    return json_ok(sim_of(request).recording_store.list())


async def recording_stored_get(request: web.Request) -> web.Response:
    return json_ok(sim_of(request).recording_store.get(request.match_info["name"]))


async def recording_stored_delete(request: web.Request) -> web.Response:
    sim_of(request).recording_store.delete(request.match_info["name"])
    return no_content()


async def recording_stored_file(request: web.Request) -> web.Response:
    store = sim_of(request).recording_store
    path = store.path(request.match_info["name"])
    if path is None:
        raise AriError(404, "Recording not found")
    return web.Response(body=path.read_bytes(), content_type=CONTENT_TYPES.get(path.suffix[1:], "audio/wav"))


def _live(request: web.Request) -> LiveRecording:
    rec = sim_of(request).live_recordings.get(request.match_info["name"])
    if rec is None:
        raise AriError(404, "Recording not found")
    return rec


async def recording_live_get(request: web.Request) -> web.Response:
    return json_ok(_live(request).to_json())


async def recording_live_stop(request: web.Request) -> web.Response:
    _live(request).stop()
    return no_content()


async def recording_live_cancel(request: web.Request) -> web.Response:
    _live(request).cancel()
    return no_content()


def recording_pause(on: bool) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        _live(request).pause(on)
        return no_content()
    return handler


def recording_mute(on: bool) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        _live(request).mute(on)
        return no_content()
    return handler


# -- bridges ---------------------------------------------------------------------
async def bridges_list(request: web.Request) -> web.Response:
    return json_ok([b.snapshot() for b in sim_of(request).bridges.values()])


async def bridge_create(request: web.Request) -> web.Response:
    p = await params(request)
    bridge_id = request.match_info.get("bridgeId") or p.get("bridgeId")
    bridge = sim_of(request).bridges.create(p.get("type", "mixing"), bridge_id, p.get("name", ""))
    return json_ok(bridge.snapshot())


async def bridge_get(request: web.Request) -> web.Response:
    return json_ok(sim_of(request).bridges.lookup(request.match_info["bridgeId"]).snapshot())


async def bridge_destroy(request: web.Request) -> web.Response:
    sim_of(request).destroy_bridge(request.match_info["bridgeId"])
    return no_content()


async def bridge_play(request: web.Request) -> web.Response:
    p = await params(request)
    pb = sim_of(request).playbacks.play_on_bridge(
        request.match_info["bridgeId"], p.get("media", ""),
        request.match_info.get("playbackId") or p.get("playbackId"), p.get("lang"),
        announcer_format=p.get("announcer_format"), offset_ms=as_int(p, "offsetms", 0) or 0)
    return json_ok(pb.to_json(), status=201)


async def bridge_add(request: web.Request) -> web.Response:
    p = await params(request)
    channels = [c for c in str(p.get("channel", "")).split(",") if c]
    if not channels:
        raise AriError(400, "Missing parameter channel")
    sim_of(request).bridges.add(request.match_info["bridgeId"], channels)
    return no_content()


async def bridge_remove(request: web.Request) -> web.Response:
    p = await params(request)
    sim = sim_of(request)
    for cid in [c for c in str(p.get("channel", "")).split(",") if c]:
        sim.bridges.remove(request.match_info["bridgeId"], cid)
    return no_content()


# -- applications ------------------------------------------------------------------
async def applications_list(request: web.Request) -> web.Response:
    return json_ok([app.to_json() for app in sim_of(request).bus.apps.values()])


def _app(request: web.Request) -> StasisApp:
    app = sim_of(request).bus.apps.get(request.match_info["app"])
    if app is None:
        raise AriError(404, "Application not found")
    return app


async def application_get(request: web.Request) -> web.Response:
    return json_ok(_app(request).to_json())


async def application_subscribe(request: web.Request) -> web.Response:
    p = await params(request)
    app, sim = _app(request), sim_of(request)
    sources = [s for s in str(p.get("eventSource", "")).split(",") if s]
    if not sources:
        raise AriError(400, "Missing parameter eventSource")
    for source in sources:
        scheme, _, ident = source.partition(":")
        if scheme == "channel":
            if ident not in sim.channels:
                raise AriError(422, "Event source does not exist")
            app.subscribe_channel(ident)
        elif scheme == "bridge":
            if ident not in sim.bridges:
                raise AriError(422, "Event source does not exist")
            app.bridges[ident] += 1
        elif scheme == "endpoint":
            app.endpoints[ident] += 1
        elif scheme == "deviceState":
            app.devices[ident] += 1
        else:
            raise AriError(400, "Invalid event source URI scheme")
    return json_ok(app.to_json())


async def application_unsubscribe(request: web.Request) -> web.Response:
    p = await params(request)
    app = _app(request)
    for source in [s for s in str(p.get("eventSource", "")).split(",") if s]:
        scheme, _, ident = source.partition(":")
        counter = {"channel": app.channels, "bridge": app.bridges, "endpoint": app.endpoints,
                   "deviceState": app.devices}.get(scheme)
        if counter is None:
            raise AriError(400, "Invalid event source URI scheme")
        if counter[ident] <= 0:
            raise AriError(409, "Application not subscribed to event source")
        counter[ident] -= 1
        if counter[ident] <= 0:
            counter.pop(ident, None)
    return json_ok(app.to_json())


async def endpoints_list(request: web.Request) -> web.Response:
    return json_ok([])


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/ari/asterisk/info", asterisk_info)
    r.add_get("/ari/asterisk/ping", asterisk_ping)
    r.add_get("/ari/channels", channels_list)
    r.add_post("/ari/channels", channels_originate)
    r.add_post("/ari/channels/externalMedia", external_media)
    r.add_get("/ari/channels/{channelId}", channel_get)
    r.add_post("/ari/channels/{channelId}", channels_originate_with_id)
    r.add_delete("/ari/channels/{channelId}", channel_hangup)
    r.add_post("/ari/channels/{channelId}/answer", channel_answer)
    for res in ("ring", "hold", "mute", "silence"):
        r.add_post(f"/ari/channels/{{channelId}}/{res}", channel_noop_command)
        r.add_delete(f"/ari/channels/{{channelId}}/{res}", channel_noop_command)
    r.add_post("/ari/channels/{channelId}/progress", channel_noop_command)
    r.add_post("/ari/channels/{channelId}/play", channel_play)
    r.add_post("/ari/channels/{channelId}/play/{playbackId}", channel_play)
    r.add_post("/ari/channels/{channelId}/record", channel_record)
    r.add_post("/ari/channels/{channelId}/snoop", channel_snoop)
    r.add_post("/ari/channels/{channelId}/snoop/{snoopId}", channel_snoop)
    r.add_post("/ari/channels/{channelId}/continue", channel_continue)
    r.add_post("/ari/channels/{channelId}/dtmf", channel_dtmf)
    r.add_post("/ari/channels/{channelId}/moh", channel_moh_start)
    r.add_delete("/ari/channels/{channelId}/moh", channel_moh_stop)
    r.add_get("/ari/channels/{channelId}/variable", channel_var_get)
    r.add_post("/ari/channels/{channelId}/variable", channel_var_set)
    r.add_get("/ari/playbacks/{playbackId}", playback_get)
    r.add_delete("/ari/playbacks/{playbackId}", playback_stop)
    r.add_get("/ari/recordings/stored", recordings_stored)
    r.add_get("/ari/recordings/stored/{name}", recording_stored_get)
    r.add_delete("/ari/recordings/stored/{name}", recording_stored_delete)
    r.add_get("/ari/recordings/stored/{name}/file", recording_stored_file)
    r.add_get("/ari/recordings/live/{name}", recording_live_get)
    r.add_delete("/ari/recordings/live/{name}", recording_live_cancel)
    r.add_post("/ari/recordings/live/{name}/stop", recording_live_stop)
    r.add_post("/ari/recordings/live/{name}/pause", recording_pause(True))
    r.add_delete("/ari/recordings/live/{name}/pause", recording_pause(False))
    r.add_post("/ari/recordings/live/{name}/mute", recording_mute(True))
    r.add_delete("/ari/recordings/live/{name}/mute", recording_mute(False))
    r.add_get("/ari/bridges", bridges_list)
    r.add_post("/ari/bridges", bridge_create)
    r.add_post("/ari/bridges/{bridgeId}", bridge_create)
    r.add_get("/ari/bridges/{bridgeId}", bridge_get)
    r.add_delete("/ari/bridges/{bridgeId}", bridge_destroy)
    r.add_post("/ari/bridges/{bridgeId}/addChannel", bridge_add)
    r.add_post("/ari/bridges/{bridgeId}/removeChannel", bridge_remove)
    r.add_post("/ari/bridges/{bridgeId}/play", bridge_play)
    r.add_post("/ari/bridges/{bridgeId}/play/{playbackId}", bridge_play)
    r.add_get("/ari/applications", applications_list)
    r.add_get("/ari/applications/{app}", application_get)
    r.add_post("/ari/applications/{app}/subscription", application_subscribe)
    r.add_delete("/ari/applications/{app}/subscription", application_unsubscribe)
    r.add_get("/ari/endpoints", endpoints_list)
