"""Every REST method of AriClient sends a request Asterisk 22's swagger allows.

Each public coroutine method is called against a local stub that records the
request; the recorded method + path must match exactly one swagger operation,
every query parameter must be a declared `query` parameter (with a valid
type/enumerated value), the required ones present, and a JSON body only
carry declared `body` parameters. The requests are also compared with the
real ones in the traces (`*-rest.jsonl`) for the operations both use.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.ari.client import AriClient

CHANNEL = {"id": "1795346155.4", "name": "PJSIP/trunk-00000001", "state": "Up"}
PLAYBACK = {"id": "pb-1", "media_uri": "sound:hello-world", "target_uri": "channel:1795346155.4",
            "language": "en", "state": "queued"}
BRIDGE = {"id": "b-1", "technology": "simple_bridge", "bridge_type": "mixing", "channels": []}
APPLICATION = {"name": "ivr", "channel_ids": [], "bridge_ids": [], "endpoint_ids": [], "device_names": []}
RECORDING = {"name": "rec-1", "format": "wav", "state": "queued", "target_uri": "channel:1795346155.4"}

# method name -> (positional args, keyword args). Keyword args set every optional
# parameter so that all of them are checked against the swagger.
CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "list_channels": ((), {}),
    "get_channel": (("1795346155.4",), {}),
    "answer": (("1795346155.4",), {}),
    "hangup": (("1795346155.4", "normal"), {}),
    "play": (("1795346155.4", ["sound:hello-world", "sound:http://127.0.0.1:8090/media/prompts/welcome-en.wav16"]),
             {"playback_id": "pb-1", "lang": "en", "offsetms": 0, "skipms": 3000}),
    "get_playback": (("pb-1",), {}),
    "stop_playback": (("pb-1",), {}),
    "record": (("1795346155.4", "rec-1"),
               {"format": "wav", "max_duration_seconds": 8, "max_silence_seconds": 2,
                "if_exists": "overwrite", "beep": False, "terminate_on": "#"}),
    "stop_recording": (("rec-1",), {}),
    "cancel_recording": (("rec-1",), {}),
    "get_stored_recording": (("rec-1",), {}),
    "get_recording_file": (("rec-1",), {}),
    "delete_stored_recording": (("rec-1",), {}),
    "continue_in_dialplan": (("1795346155.4", "ivr-transfer", "queue", 1), {}),
    "set_variable": (("1795346155.4", "IVR_QUEUE", "payments"), {}),
    "get_variable": (("1795346155.4", "IVR_QUEUE"), {}),
    "enable_talk_detect": (("1795346155.4", 1000), {}),
    "send_dtmf": (("1795346155.4", "12#"), {"before": 0, "between": 100, "duration": 100, "after": 0}),
    "external_media": (("ivr", "127.0.0.1:33482", "slin16"),
                       {"encapsulation": "rtp", "transport": "udp", "direction": "both",
                        "channel_id": "em-1", "connection_type": "client", "data": "x",
                        "transport_data": "y", "variables": {"IVR_CALL_ID": "c1"}}),
    "snoop": (("1795346155.4", "ivr"), {"snoop_id": "1795346155.4-snoop-1", "app_args": "snoop-of,1795346155.4"}),
    "originate": (("PJSIP/agent1",),
                  {"app": "ivr", "app_args": "outbound", "caller_id": "IVR <+4420>", "timeout": 30,
                   "channel_id": "c-1", "other_channel_id": "c-2", "originator": "1.1",
                   "formats": ["ulaw", "alaw"], "variables": {"IVR_CALL_ID": "c1"}}),
    "list_bridges": ((), {}),
    "create_bridge": (("mixing",), {"name": "em-bridge", "bridge_id": "b-1"}),
    "get_bridge": (("b-1",), {}),
    "add_channel": (("b-1", ["1795346155.4", "em-1"]),
                    {"role": "participant", "absorb_dtmf": False, "mute": False,
                     "inhibit_connected_line_updates": True}),
    "remove_channel": (("b-1", "em-1"), {}),
    "destroy_bridge": (("b-1",), {}),
    "list_applications": ((), {}),
    "get_application": (("ivr",), {}),
    "subscribe": (("ivr", "channel:1795346155.4"), {}),
    "unsubscribe": (("ivr", ["channel:1795346155.4", "bridge:b-1"]), {}),
    "asterisk_info": ((), {}),
    "ping": ((), {}),
}
# Extra calls for parameters the table above cannot combine in one call.
EXTRA_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("hangup", ("1795346155.4",), {"reason_code": 16}),
    ("originate", ("Local/8001@ivr-inbound",),
     {"context": "ivr-inbound", "extension": "8001", "priority": 1, "label": "start"}),
    ("continue_in_dialplan", ("1795346155.4",), {"label": "fallback"}),
]
NOT_REST = {"close", "request"}


async def respond(request: web.Request) -> web.StreamResponse:
    """Plausible Asterisk answers, chosen by path shape."""
    path, method = request.path, request.method
    if path.endswith("/file"):
        return web.Response(body=b"RIFF....WAVE", content_type="audio/wav")
    if path.endswith("/variable") and method == "GET":
        return web.json_response({"value": "payments"})
    if path.endswith("/play"):
        return web.json_response(PLAYBACK, status=201)
    if path.endswith("/record"):
        return web.json_response(RECORDING, status=201)
    if path.startswith("/ari/recordings/stored/") and method == "GET":
        return web.json_response({"name": "rec-1", "format": "wav"})
    if path.startswith("/ari/playbacks/") and method == "GET":
        return web.json_response(PLAYBACK)
    if path in ("/ari/channels", "/ari/bridges", "/ari/applications") and method == "GET":
        return web.json_response([])
    if path == "/ari/channels" or path == "/ari/channels/externalMedia" or path.endswith("/snoop") or (
            path.startswith("/ari/channels/") and path.count("/") == 3 and method == "GET"):
        return web.json_response(CHANNEL)
    if path.startswith("/ari/bridges") and method in ("GET", "POST") and path.count("/") <= 3:
        return web.json_response(BRIDGE)
    if path.startswith("/ari/applications/") and method in ("GET", "POST", "DELETE"):
        return web.json_response(APPLICATION)
    if path.startswith("/ari/asterisk/"):
        return web.json_response({"system": {"version": "22.11.0"}})
    return web.Response(status=204)


def load_trace(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Operation:
    method: str
    template: str
    nickname: str
    params: dict[str, dict[str, Any]]
    pattern: re.Pattern[str]
    literal_segments: int


def load_operations(api_docs: Path) -> list[Operation]:
    """All operations of the swagger 1.2 resource files, most specific path first."""
    ops: list[Operation] = []
    for file in sorted(api_docs.glob("*.json")):
        for api in json.loads(file.read_text()).get("apis", []):
            for op in api.get("operations", []):
                template = api["path"]
                regex = "^/ari" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
                literal = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
                ops.append(Operation(op["httpMethod"], template, op["nickname"],
                                     {p["name"]: p for p in op.get("parameters", [])},
                                     re.compile(regex), literal))
    ops.sort(key=lambda op: -op.literal_segments)
    return ops


def find_operation(ops: list[Operation], method: str, path: str) -> Operation | None:
    """The most literal swagger operation matching method + path."""
    return next((op for op in ops if op.method == method and op.pattern.match(path)), None)


def check_value(name: str, value: str, spec: dict[str, Any]) -> list[str]:
    """Type and allowed-value checks for one query parameter value."""
    problems: list[str] = []
    values = value.split(",") if spec.get("allowMultiple") else [value]
    for item in values:
        kind = spec.get("dataType")
        if kind in ("int", "long") and not re.fullmatch(r"-?\d+", item):
            problems.append(f"{name}={item!r} is not an integer")
        if kind == "boolean" and item not in ("true", "false"):
            problems.append(f"{name}={item!r} is not true/false")
        allowed = spec.get("allowableValues") or {}
        if allowed.get("valueType") == "LIST" and item not in allowed["values"]:
            problems.append(f"{name}={item!r} not in {allowed['values']}")
        if allowed.get("valueType") == "RANGE" and "min" in allowed and int(item) < allowed["min"]:
            problems.append(f"{name}={item!r} below {allowed['min']}")
    return problems


def problems_with(request: Any, ops: list[Operation]) -> list[str]:
    """Everything about one request the swagger does not allow."""
    op = find_operation(ops, request.method, request.path)
    if op is None:
        return [f"{request.method} {request.path}: no such operation"]
    where = f"{request.method} {op.template} ({op.nickname})"
    problems = []
    for name, value in request.query.items():
        spec = op.params.get(name)
        if spec is None or spec["paramType"] != "query":
            problems.append(f"{where}: unknown query parameter {name!r}")
            continue
        problems += [f"{where}: {p}" for p in check_value(name, value, spec)]
    for name, spec in op.params.items():
        if spec.get("required") and spec["paramType"] == "query" and name not in request.query:
            problems.append(f"{where}: required query parameter {name!r} missing")
    for name in (request.body or {}):
        spec = op.params.get(name)
        if spec is None or spec["paramType"] != "body":
            problems.append(f"{where}: unknown body parameter {name!r}")
    return problems


def public_rest_methods() -> set[str]:
    return {
        name for name, member in inspect.getmembers(AriClient, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in NOT_REST
    }


def test_call_table_covers_every_rest_method() -> None:
    assert public_rest_methods() == set(CALLS), "add new AriClient methods to CALLS"


async def record_all_calls(stub_ari: Any) -> Any:
    stub = await stub_ari(respond)
    async with AriClient(stub.base_url, "ivr", "not-a-real-secret") as ari:
        calls = [(name, args, kwargs) for name, (args, kwargs) in CALLS.items()] + EXTRA_CALLS
        for name, args, kwargs in calls:
            await getattr(ari, name)(*args, **kwargs)
    return stub


async def test_every_request_matches_the_swagger(asterisk_truth: Path, stub_ari: Any) -> None:
    ops = load_operations(asterisk_truth / "api-docs")
    stub = await record_all_calls(stub_ari)
    assert len(stub.requests) == len(CALLS) + len(EXTRA_CALLS)
    problems = [p for request in stub.requests for p in problems_with(request, ops)]
    assert problems == []


async def test_requests_use_basic_auth_and_expected_encodings(stub_ari: Any) -> None:
    stub = await record_all_calls(stub_ari)
    assert all(r.authorization and r.authorization.startswith("Basic ") for r in stub.requests)
    by_path = {(r.method, r.path): r for r in stub.requests}
    play = by_path[("POST", "/ari/channels/1795346155.4/play")]
    assert play.query["media"] == (
        "sound:hello-world,sound:http://127.0.0.1:8090/media/prompts/welcome-en.wav16")
    assert play.query["playbackId"] == "pb-1"
    record = by_path[("POST", "/ari/channels/1795346155.4/record")]
    assert record.query["beep"] == "false"
    originate = [r for r in stub.requests if r.path == "/ari/channels" and r.method == "POST"][0]
    assert originate.body == {"variables": {"IVR_CALL_ID": "c1"}}
    talk = [r for r in stub.requests if r.query.get("variable") == "TALK_DETECT(set)"]
    assert talk and talk[0].query["value"] == "1000"


def trace_shape(method: str, path: str, query: dict[str, str], ops: list[Operation]) -> tuple[str, str, frozenset[str]]:
    op = find_operation(ops, method, path)
    assert op is not None, (method, path)
    return (method, op.template, frozenset(query))


async def test_requests_look_like_the_recorded_real_ones(asterisk_truth: Path, stub_ari: Any) -> None:
    """For operations both use, our query-parameter names are a superset-compatible match.

    Each real request's parameter names must be sendable by our client for
    that operation (i.e. be among those our full call sends).
    """
    ops = load_operations(asterisk_truth / "api-docs")
    stub = await record_all_calls(stub_ari)
    ours: dict[tuple[str, str], set[str]] = {}
    for r in stub.requests:
        method, template, names = trace_shape(r.method, r.path, r.query, ops)
        ours.setdefault((method, template), set()).update(names)
    compared = 0
    for trace in sorted((asterisk_truth / "traces").glob("*-rest.jsonl")):
        for real in load_trace(trace):
            if "method" not in real:  # a websocket message of the outbound-websocket scenarios
                continue
            method, template, names = trace_shape(real["method"], real["path"], real["query"], ops)
            if (method, template) in ours:
                compared += 1
                assert names <= ours[(method, template)], (trace.name, method, template, names)
    assert compared > 100
