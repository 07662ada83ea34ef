"""Recorded scenarios from ../shared/asterisk/traces and how to compare against them.

Events are compared field by field after replacing what legitimately
differs between two runs: ids, timestamps, channel-name counters, bridge
ids, ports.  Ordering is compared with a small window because Asterisk
itself emits same-millisecond events in varying order (compare the
teardown of the ``dtmf`` and ``playback-record`` traces).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def shared_asterisk() -> Path:
    """``$IVR_SHARED_DIR/asterisk``, default ``<repo>/../shared/asterisk``."""
    return Path(os.environ.get("IVR_SHARED_DIR", ROOT.parent / "shared")) / "asterisk"


DROP_KEYS = {"timestamp", "creationtime", "_rx_t", "_ws", "asterisk_id", "_t"}
# queue statistics depend on the history of the recording Asterisk, not on the call
STAT_VARIABLES = {"MEMBERCALLS", "MEMBERLASTCALL", "QUEUETALKTIME", "QUEUECOMPLETED", "QUEUEHOLDTIME",
                  "QUEUEABANDONED", "ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS",
                  "QUEUEWAIT_MS"}
CHANNEL_ID = re.compile(r"\b\d{9,11}\.\d+\b")
BRIDGE_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
HOSTPORT = re.compile(r"127\.0\.0\.1:\d+")
SNOOP_NAME = re.compile(r"Snoop/(.+)-([0-9a-f]{8})")
ANNOUNCER_NAME = re.compile(r"(Announcer/[^,;]+)-([0-9a-f]{8});([12])")


@dataclass
class Trace:
    name: str
    events: list[dict[str, Any]]
    rest: list[dict[str, Any]]
    summary: dict[str, Any] | None

    @property
    def duration(self) -> float:
        times = [e["_rx_t"] for e in self.events] + [r.get("t_response", r["t"]) for r in self.rest]
        return max(times) if times else 0.0


def load_trace(traces: Path, name: str, app: str = "ivr") -> Trace:
    events = [json.loads(line) for line in (traces / f"{name}.jsonl").read_text().splitlines() if line]
    events = [e for e in events if e.get("_ws", app) == app]
    rest_path = traces / f"{name}-rest.jsonl"
    rest = [json.loads(line) for line in rest_path.read_text().splitlines() if line] if rest_path.exists() else []
    summary_path = traces / f"{name}-summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return Trace(name, events, sorted(rest, key=lambda r: r["t"]), summary)


class Canon:
    """Stable names for the channels and bridges of one event stream."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.tokens: dict[str, str] = {}
        self._ordinals: dict[str, dict[str, int]] = {}
        bridges = 0
        for event in events:
            for chan in _channels(event):
                self._learn(chan["id"], chan["name"])
            bridge = event.get("bridge")
            if bridge and bridge["id"] not in self.tokens:
                bridges += 1
                self.tokens[bridge["id"]] = f"<bridge#{bridges}>"
        self._order = sorted(self.tokens, key=len, reverse=True)

    def _learn(self, cid: str, name: str) -> None:
        if cid in self.tokens:
            return
        token = self._name_token(name)
        self.tokens[cid] = token
        self.tokens[name] = token

    def _name_token(self, name: str) -> str:
        match = SNOOP_NAME.fullmatch(name)
        if match:   # Snoop/<spied id>-<counter>: name it after the spied channel's token
            spied = self.tokens.get(match.group(1), match.group(1))
            return f"Snoop/{spied}#{self._ordinal('Snoop', match.group(2))}"
        match = re.fullmatch(r"(Local/[^;]+)-([0-9a-f]{8});([12])", name)
        if match:
            return f"{match.group(1)}#{self._ordinal(match.group(1), match.group(2))};{match.group(3)}"
        match = re.fullmatch(r"UnicastRTP/(.+)-(0x[0-9a-f]+)", name)
        if match:
            return f"UnicastRTP/<ext>#{self._ordinal('UnicastRTP', match.group(2))}"
        match = re.fullmatch(r"(.+)-([0-9a-f]{8})", name)
        if match:
            return f"{match.group(1)}#{self._ordinal(match.group(1), match.group(2))}"
        return name

    def _ordinal(self, base: str, counter: str) -> int:
        seen = self._ordinals.setdefault(base, {})
        return seen.setdefault(counter, len(seen) + 1)

    def text(self, value: str) -> str:
        for key in self._order:
            if key in value:
                value = value.replace(key, self.tokens[key])
        value = HOSTPORT.sub("<host>", value)
        # a bridge playback's announcer is never an event's channel, only named in BRIDGEPEER
        return ANNOUNCER_NAME.sub(lambda m: f"{m.group(1)}#{self._ordinal(m.group(1), m.group(2))};{m.group(3)}",
                                  value)


def _channels(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [event[k] for k in ("channel", "peer", "caller") if isinstance(event.get(k), dict)]


@dataclass
class Normalized:
    body: dict[str, Any]
    fuzzy: dict[str, float] = field(default_factory=dict)
    t: float = 0.0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Normalized) and self.body == other.body


def normalize(event: dict[str, Any], canon: Canon) -> Normalized:
    fuzzy: dict[str, float] = {}
    body = _walk(event, canon)
    if body.get("type") == "ChannelVarset" and body.get("variable") in STAT_VARIABLES and body.get("value"):
        body["value"] = "<stat>"
    if body.get("type") == "ChannelTalkingFinished":
        fuzzy["duration"] = float(body.pop("duration"))
    return Normalized(body, fuzzy, float(event.get("_rx_t", event.get("_t", 0.0))))


def _walk(value: Any, canon: Canon) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, canon) for k, v in value.items() if k not in DROP_KEYS}
    if isinstance(value, list):
        return [_walk(v, canon) for v in value]
    if isinstance(value, str):
        return canon.text(value)
    return value


@dataclass
class Alignment:
    matched: list[tuple[Normalized, Normalized]]
    missing: list[Normalized]
    extra: list[Normalized]

    def report(self, limit: int = 8) -> str:
        lines = [f"{len(self.missing)} expected events missing, {len(self.extra)} unexpected"]
        for n in self.missing[:limit]:
            lines.append(f"  missing @{n.t:.3f}: {json.dumps(n.body)[:400]}")
        for n in self.extra[:limit]:
            lines.append(f"  extra   @{n.t:.3f}: {json.dumps(n.body)[:400]}")
        return "\n".join(lines)


def align(expected: list[Normalized], actual: list[Normalized], window: int = 8) -> Alignment:
    """Match expected to actual events in order, allowing local reordering."""
    used = [False] * len(actual)
    low = 0
    matched, missing = [], []
    for exp in expected:
        while low < len(actual) and used[low]:
            low += 1
        found = None
        seen = 0
        for j in range(low, len(actual)):
            if used[j]:
                continue
            if actual[j] == exp:
                found = j
                break
            seen += 1
            if seen >= window:
                break
        if found is None:
            missing.append(exp)
        else:
            used[found] = True
            matched.append((exp, actual[found]))
    extra = [a for a, u in zip(actual, used) if not u]
    return Alignment(matched, missing, extra)


def compare_streams(expected_raw: list[dict[str, Any]], actual_raw: list[dict[str, Any]],
                    window: int = 8) -> Alignment:
    exp_canon, act_canon = Canon(expected_raw), Canon(actual_raw)
    expected = [normalize(e, exp_canon) for e in expected_raw]
    actual = [normalize(a, act_canon) for a in actual_raw]
    return align(expected, actual, window)
