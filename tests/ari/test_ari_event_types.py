"""Every event recorded from a real Asterisk 22 parses into the right typed object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivr.ari import event_types as ev
from ivr.ari.event_types import EVENT_CLASSES, GenericEvent, parse_event

USED_BY_CONTROLLER = {
    "StasisStart", "StasisEnd", "ChannelDtmfReceived", "PlaybackStarted", "PlaybackFinished",
    "ChannelHangupRequest", "ChannelDestroyed", "ChannelVarset", "ChannelStateChange",
    "RecordingFinished", "Dial", "ChannelTalkingStarted", "ChannelTalkingFinished", "ChannelDialplan",
}


def trace_events(root: Path) -> list[dict[str, Any]]:
    events = []
    for path in sorted((root / "traces").glob("*.jsonl")):
        if path.name.endswith(("-rest.jsonl", "-rtp.jsonl")):
            continue
        events += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return events


def test_controller_event_types_have_classes() -> None:
    assert USED_BY_CONTROLLER <= set(EVENT_CLASSES)


def test_event_classes_match_swagger_model_names(asterisk_truth: Path) -> None:
    models = json.loads((asterisk_truth / "api-docs" / "events.json").read_text())["models"]
    assert set(EVENT_CLASSES) <= set(models)
    for name, cls in EVENT_CLASSES.items():
        required = {k for k, v in models[name]["properties"].items() if v.get("required")}
        assert required <= set(cls.model_fields), (name, required - set(cls.model_fields))


def test_all_recorded_events_parse_typed(asterisk_truth: Path) -> None:
    raw_events = trace_events(asterisk_truth)
    assert len(raw_events) > 1000
    seen: set[str] = set()
    for raw in raw_events:
        event = parse_event(raw)
        if raw["type"] in EVENT_CLASSES:
            assert type(event) is EVENT_CLASSES[raw["type"]], raw["type"]
            seen.add(raw["type"])
        else:
            assert isinstance(event, GenericEvent) and event.type == raw["type"]
    assert USED_BY_CONTROLLER <= seen | {"RecordingFinished"}


def test_fields_and_routing_from_real_events(asterisk_truth: Path) -> None:
    by_type: dict[str, list[ev.AriEvent]] = {}
    for raw in trace_events(asterisk_truth):
        event = parse_event(raw)
        by_type.setdefault(event.type, []).append(event)

    start = by_type["StasisStart"][0]
    assert isinstance(start, ev.StasisStart) and start.channel_id == start.channel.id
    ani = [e for e in by_type["StasisStart"] if isinstance(e, ev.StasisStart) and e.channel.caller.number]
    assert any(e.channel.caller.number == "+8613800138000" for e in ani)

    finished = by_type["PlaybackFinished"][0]
    assert isinstance(finished, ev.PlaybackFinished)
    assert finished.playback.state in ("done", "failed")
    assert finished.channel_id == finished.playback.target_uri.removeprefix("channel:")

    recording = by_type["RecordingFinished"][0]
    assert isinstance(recording, ev.RecordingFinished) and recording.recording.duration is not None
    assert recording.channel_id

    dials = [e for e in by_type["Dial"] if isinstance(e, ev.Dial)]
    no_caller = next(d for d in dials if d.caller is None)
    assert no_caller.channel_id == no_caller.peer.id
    queue_dial = next(d for d in dials if d.caller is not None)
    assert queue_dial.channel_id == queue_dial.caller.id != queue_dial.peer.id

    dtmf = by_type["ChannelDtmfReceived"][0]
    assert isinstance(dtmf, ev.ChannelDtmfReceived) and dtmf.duration_ms == 100 and dtmf.digit

    talk = by_type["ChannelTalkingFinished"][0]
    assert isinstance(talk, ev.ChannelTalkingFinished) and talk.duration > 0

    hangup = by_type["ChannelHangupRequest"][0]
    assert isinstance(hangup, ev.ChannelHangupRequest)

    device = by_type["DeviceStateChanged"][0]
    assert isinstance(device, GenericEvent) and device.channel_id is None
    assert "device_state" in (device.model_extra or {})


def test_terminal_events() -> None:
    assert ev.StasisEnd.terminal and ev.ChannelDestroyed.terminal
    assert not ev.StasisStart.terminal and not ev.ChannelHangupRequest.terminal


def test_mismatching_event_falls_back_to_generic_and_bad_messages_raise() -> None:
    odd = parse_event({"type": "StasisStart", "application": "ivr"})  # no channel
    assert type(odd) is GenericEvent and odd.type == "StasisStart"
    unknown = parse_event('{"type": "BrandNewEvent", "channel": {"id": "9.9"}, "x": 1}')
    assert type(unknown) is GenericEvent and unknown.channel_id == "9.9"
    with pytest.raises(ValueError):
        parse_event("[1, 2]")
    with pytest.raises(ValueError):
        parse_event("not json")


def test_external_media_stasis_start_is_recognisable(asterisk_truth: Path) -> None:
    """README: the externalMedia channel gets its own StasisStart; it is not a new call."""
    lines = (asterisk_truth / "traces" / "externalmedia.jsonl").read_text().splitlines()
    starts = [e for e in (parse_event(json.loads(line)) for line in lines if line.strip())
              if isinstance(e, ev.StasisStart)]
    assert sorted(e.channel.is_external_media for e in starts) == [False, True]
