"""The strict request validator: every request must exist in Asterisk 22's API docs."""
from __future__ import annotations

from pathlib import Path

import pytest
from sim_client import Ari

from ivr.sim import ApiSpec, SimulatorConfig


@pytest.fixture(scope="module")
def spec(api_docs: Path) -> ApiSpec:
    return ApiSpec.load(api_docs)


def test_valid_requests_pass(spec):
    assert spec.check("POST", "/channels", {"endpoint": "Local/1@x", "app": "ivr", "appArgs": "a", "timeout": "30"},
                      {"variables": {"A": "1"}}) == []
    assert spec.check("POST", "/channels/123.4/play", {"media": "sound:x", "playbackId": "p"}) == []
    assert spec.check("DELETE", "/channels/123.4", {"reason": "busy"}) == []
    assert spec.check("POST", "/channels/externalMedia",
                      {"app": "ivr", "external_host": "127.0.0.1:1", "format": "slin16", "encapsulation": "rtp",
                       "transport": "udp", "direction": "both"}) == []
    assert spec.check("POST", "/applications/ivr/subscription", {"eventSource": "channel:1.2"}) == []
    assert spec.check("GET", "/events", {"app": "ivr", "subscribeAll": "true", "api_key": "u:p"}) == []
    snoop = {"spy": "in", "app": "ivr", "appArgs": "snoop-of,1796168554.10"}
    assert spec.check("POST", "/channels/1796168554.10/snoop", {**snoop, "snoopId": "1796168554.10-snoop-5e1f"}) == []
    assert spec.check("POST", "/channels/1796168554.10/snoop/1796168554.10-snoop-5e1f",
                      {**snoop, "whisper": "none"}) == []
    assert spec.check("POST", "/bridges/b-1/play", {"media": "sound:a,sound:b", "playbackId": "p", "lang": "en"}) == []
    assert spec.check("POST", "/bridges/b-1/play/p", {"media": "sound:a"}) == []


@pytest.mark.parametrize("method,path,query,problem", [
    ("POST", "/channels/1.2/play", {"media": "sound:x", "playbackid": "p"}, "unknown parameter 'playbackid'"),
    ("POST", "/channels/1.2/play", {}, "missing required parameter 'media'"),
    ("DELETE", "/channels/1.2", {"reason": "bye"}, "must be one of"),
    ("POST", "/channels/1.2/record", {"name": "n", "format": "wav", "maxSilenceSeconds": "2.5"}, "must be an integer"),
    ("POST", "/channels/1.2/record", {"name": "n", "format": "wav", "beep": "yes"}, "must be true or false"),
    ("POST", "/channels/1.2/speak", {}, "no resource"),
    ("PUT", "/channels/1.2/answer", {}, "PUT not allowed"),
    ("POST", "/channels/externalMedia", {"app": "ivr", "format": "slin16", "encapsulation": "sip"}, "must be one of"),
    ("POST", "/channels/1.2/snoop", {"spy": "in"}, "missing required parameter 'app'"),
    ("POST", "/channels/1.2/snoop", {"spy": "inbound", "app": "ivr"}, "must be one of"),
    ("POST", "/channels/1.2/snoop/s-1", {"app": "ivr", "snoopId": "s-1"}, "unknown parameter 'snoopId'"),
    ("POST", "/bridges/b-1/play", {"playbackId": "p"}, "missing required parameter 'media'"),
])
def test_invalid_requests_are_named(spec, method, path, query, problem):
    problems = spec.check(method, path, query)
    assert any(problem in p for p in problems), problems


def test_body_only_where_the_docs_take_one(spec):
    assert spec.check("POST", "/channels/1.2/answer", {}, {"x": 1}) != []
    assert spec.check("POST", "/channels/1.2/variable", {}, {"variable": "A", "value": "1"}) == []


def test_events_are_checked_against_their_models(spec):
    assert spec.check_event({"type": "ChannelDtmfReceived", "timestamp": "t", "application": "ivr",
                             "digit": "1", "duration_ms": 100, "channel": _channel()}) == []
    problems = spec.check_event({"type": "Dial", "timestamp": "t", "application": "ivr", "peer": _channel(),
                                 "dialstatus": "", "bogus": 1})
    assert problems == ["Dial: unexpected field bogus"]
    assert spec.check_event({"type": "PlaybackFinished", "timestamp": "t", "application": "ivr"}) == \
        ["PlaybackFinished: missing playback"]


def _channel() -> dict:
    return {"id": "1.2", "name": "PJSIP/x-1", "state": "Up", "protocol_id": "", "caller": {"name": "", "number": ""},
            "connected": {"name": "", "number": ""}, "accountcode": "",
            "dialplan": {"context": "c", "exten": "s", "priority": 1, "app_name": "", "app_data": ""},
            "creationtime": "t", "language": "en"}


async def test_strict_server_rejects_and_records(simulator, session, api_docs):
    running = await simulator(SimulatorConfig(api_docs_dir=api_docs, strict=True))
    ari = Ari(running, session)
    status, body = await ari.call("POST", "/channels", endpoint="Local/1@x", app="ivr", appargs="x")
    assert status == 400 and "unknown parameter 'appargs'" in body["message"]
    assert [(v.method, v.path) for v in running.violations] == [("POST", "/ari/channels")]
    assert (await ari.call("GET", "/channels"))[0] == 200
    assert len(running.violations) == 1


async def test_lenient_server_records_but_serves(simulator, session, api_docs):
    running = await simulator(SimulatorConfig(api_docs_dir=api_docs, strict=False))
    ari = Ari(running, session)
    assert (await ari.call("GET", "/channels", foo="1"))[0] == 200
    assert running.violations[0].problems == ["unknown parameter 'foo' for list"]


async def test_server_works_without_docs(simulator, session):
    running = await simulator(SimulatorConfig(api_docs_dir=None, strict=True))
    ari = Ari(running, session)
    assert (await ari.call("GET", "/channels", foo="1"))[0] == 200
    assert await ari.call("GET", "/nothing/here") == (404, {"message": "Resource not found"})
    assert running.violations == []
