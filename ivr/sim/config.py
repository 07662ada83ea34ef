"""Simulator configuration: credentials, directories, dialplan, queues, outbound websockets,
AMD settings (amd.conf) and the scripted callees of outbound calls.

Everything a test or the demo may want to vary lives here as plain data;
nothing is read from the environment implicitly.
"""
from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .amd import CONF_KEYS, AmdSettings, atoi
from .callees import CalleeScript

DEFAULT_DIALPLAN = """
; The simulator's own default dialplan: inbound calls enter the "ivr" app
; with the dialled number as StasisStart argument, as a trunk would deliver them.
[ivr-inbound]
exten => _X.,1,NoOp(IVR inbound ${EXTEN} from ${CALLERID(all)})
 same => n,Answer()
 same => n,Stasis(ivr,${EXTEN})
 same => n,Hangup()
exten => _+X.,1,NoOp(IVR inbound ${EXTEN} from ${CALLERID(all)})
 same => n,Answer()
 same => n,Stasis(ivr,${EXTEN})
 same => n,Hangup()
"""


@dataclass
class QueueMember:
    """A queue agent.  ``answer_after`` seconds of ringing, or None: never answers."""
    interface: str
    name: str = ""
    answer_after: float | None = None
    penalty: int = 0
    calls: int = 0
    last_call: int = 0


@dataclass
class QueueConfig:
    name: str
    strategy: str = "ringall"
    members: list[QueueMember] = field(default_factory=list)
    setinterfacevar: bool = True
    setqueueentryvar: bool = True
    setqueuevar: bool = True
    completed: int = 0
    abandoned: int = 0
    talk_time: int = 0
    hold_time: int = 0

    def member(self, interface: str) -> QueueMember:
        for m in self.members:
            if m.interface == interface:
                return m
        raise KeyError(interface)

    def answer_with(self, interface: str | None, after: float = 1.0) -> None:
        """Make exactly one member answer (after ``after`` s); None: nobody answers."""
        for m in self.members:
            m.answer_after = after if m.interface == interface else None


def parse_queues_conf(text: str) -> dict[str, QueueConfig]:
    """Read queues, strategies, ``set*var`` and ``member =>`` lines from queues.conf.

    Templates (``[name](!)``) and inheritance (``[queue](template)``) are honoured.
    """
    queues: dict[str, QueueConfig] = {}
    templates: dict[str, QueueConfig] = {}
    current: QueueConfig | None = None
    for section, line in _conf_lines(text):
        if line is None:
            name, options = section
            current = None if name == "general" else _new_queue(name, options, templates)
            if current is not None:
                (templates if "!" in options else queues)[name] = current
            continue
        if current is None or "=" not in line:
            continue
        key, _, value = line.partition("=>") if "=>" in line else line.partition("=")
        _apply_queue_setting(current, key.strip(), value.strip())
    return queues


def _conf_lines(text: str) -> Iterator[tuple[tuple[str, str], str | None]]:
    """An Asterisk .conf file as ((section, its options), line) pairs, comments and blanks dropped;
    a section header comes as (section, None)."""
    section = ("", "")
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line)
        if header:
            section = (header.group(1), header.group(2) or "")
            yield section, None
        else:
            yield section, line


def _new_queue(name: str, options: str, templates: dict[str, QueueConfig]) -> QueueConfig:
    queue = QueueConfig(name)
    for parent in (o.strip() for o in options.split(",")):
        base = templates.get(parent)
        if base is not None:
            queue.strategy = base.strategy
            queue.setinterfacevar = base.setinterfacevar
            queue.setqueueentryvar = base.setqueueentryvar
            queue.setqueuevar = base.setqueuevar
            queue.members = [QueueMember(m.interface, m.name, m.answer_after, m.penalty) for m in base.members]
    return queue


def _apply_queue_setting(queue: QueueConfig, key: str, value: str) -> None:
    if key == "member":
        parts = [p.strip() for p in value.split(",")]
        penalty = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        name = parts[2] if len(parts) > 2 and parts[2] else parts[0]
        queue.members.append(QueueMember(parts[0], name, None, penalty))
    elif key == "strategy":
        queue.strategy = value
    elif key == "setinterfacevar":
        queue.setinterfacevar = _yes(value)
    elif key == "setqueueentryvar":
        queue.setqueueentryvar = _yes(value)
    elif key == "setqueuevar":
        queue.setqueuevar = _yes(value)


def _yes(value: str) -> bool:
    return value.lower() in ("yes", "true", "1", "on")


@dataclass
class OutboundWebsocket:
    """One ari.conf ``type = outbound_websocket`` section with its websocket_client.conf client.

    ``per_call_config``: every channel entering ``Stasis(<app>)`` gets its own
    connection and its own application ``<app>:<channel name>``;
    ``persistent``: one connection from start-up for all ``apps``.  Times in
    milliseconds, as in websocket_client.conf.
    """
    name: str
    apps: list[str]
    uri: str
    connection_type: str = "per_call_config"
    username: str = ""
    password: str = ""
    protocols: str = "ari"
    connection_timeout: int = 500
    reconnect_interval: int = 1000
    reconnect_attempts: int = 4
    subscribe_all: bool = False


def _conf_sections(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    for (name, _), line in _conf_lines(text):
        if line is None:
            sections.setdefault(name, {})
        elif name and "=" in line:
            key, _, value = line.partition("=")
            sections[name][key.strip()] = value.strip()
    return sections


def parse_outbound_websockets(ari_conf: str, websocket_client_conf: str) -> list[OutboundWebsocket]:
    """ari.conf ``type = outbound_websocket`` sections joined with their websocket_client.conf clients.

    Settings no recorded trace shows in use (``subscribe_all = yes``, other
    protocols or connection types, a missing client) are refused here.
    """
    clients = _conf_sections(websocket_client_conf)
    out: list[OutboundWebsocket] = []
    for name, section in _conf_sections(ari_conf).items():
        if section.get("type") != "outbound_websocket":
            continue
        client_id = section.get("websocket_client_id", "")
        client = clients.get(client_id)
        if client is None or client.get("type") != "websocket_client":
            raise ValueError(f"ari.conf [{name}]: websocket_client '{client_id}' not found")
        out.append(OutboundWebsocket(
            name=name, apps=[a.strip() for a in section.get("apps", "").split(",") if a.strip()],
            uri=client.get("uri", ""), connection_type=client.get("connection_type", "<missing>"),
            username=client.get("username", ""), password=client.get("password", ""),
            protocols=client.get("protocols", "ari"),
            connection_timeout=int(client.get("connection_timeout", "500")),
            reconnect_interval=int(client.get("reconnect_interval", "1000")),
            reconnect_attempts=int(client.get("reconnect_attempts", "4")),
            subscribe_all=_yes(section.get("subscribe_all", "no"))))
    for conn in out:
        check_outbound(conn)
    return out


def check_outbound(conn: OutboundWebsocket) -> None:
    """Refuse what the recorded traces (outbound-websocket-*) never showed."""
    problems = []
    if conn.connection_type not in ("per_call_config", "persistent"):
        problems.append(f"connection_type {conn.connection_type!r}")
    if conn.protocols != "ari":
        problems.append(f"protocols {conn.protocols!r}")
    if conn.subscribe_all:
        problems.append("subscribe_all = yes")
    if not conn.apps:
        problems.append("no apps")
    if not conn.uri.startswith("ws://"):
        problems.append(f"uri {conn.uri!r} (only ws:// was recorded)")
    if conn.reconnect_attempts < 1 or conn.reconnect_interval < 0:
        problems.append("reconnect_attempts < 1 or negative reconnect_interval")
    if problems:
        raise ValueError(f"outbound websocket [{conn.name}]: not simulated (no recorded trace shows it): "
                         + ", ".join(problems))


def parse_amd_conf(text: str) -> AmdSettings:
    """amd.conf's ``[general]`` as app_amd.c ``load_config()`` reads it.  Unknown keys are refused
    (Asterisk only warns, and a misspelt key would silently keep a default) and so is a
    ``playback_file`` (the simulator plays nothing during the analysis)."""
    values: dict[str, int] = {}
    for key, value in _conf_sections(text).get("general", {}).items():
        if key.lower() == "playback_file":
            if value:
                raise ValueError("amd.conf playback_file is not simulated")
            continue
        field_name = CONF_KEYS.get(key.lower())
        if field_name is None:
            raise ValueError(f"amd.conf: unknown keyword {key}")
        values[field_name] = atoi(value)
    return AmdSettings(**values)


def parse_callees(data: object) -> dict[str, CalleeScript]:
    """``{"<number>": {<script>}, ...}`` (a JSON object) as scripts; see callees.py for the keys."""
    if not isinstance(data, dict):
        raise ValueError("callees must be an object: number -> script")
    out: dict[str, CalleeScript] = {}
    for number, script in data.items():
        if not isinstance(script, dict):
            raise ValueError(f"callee {number}: the script must be an object")
        out[str(number)] = CalleeScript.from_json(script)
    return out


def load_callees(config: SimulatorConfig, path: Path) -> SimulatorConfig:
    """A JSON file of callee scripts (``python -m ivr.sim --callees FILE``)."""
    config.callees.update(parse_callees(json.loads(Path(path).read_text())))
    return config


def load_asterisk_conf(config: SimulatorConfig, conf_dir: Path) -> SimulatorConfig:
    """Use a deployment's extensions.conf / queues.conf / amd.conf (e.g. the project's asterisk-conf/)."""
    conf_dir = Path(conf_dir)
    if (conf_dir / "extensions.conf").is_file():
        config.dialplan_files.append(conf_dir / "extensions.conf")
    if (conf_dir / "queues.conf").is_file():
        config.queues.update(parse_queues_conf((conf_dir / "queues.conf").read_text()))
    if (conf_dir / "amd.conf").is_file():
        config.amd = parse_amd_conf((conf_dir / "amd.conf").read_text())
    return config


@dataclass
class SimulatorConfig:
    username: str = "ivr"
    password: str = "ivr-secret"
    sounds_dirs: list[Path] = field(default_factory=list)
    recordings_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ivr-sim-rec-")))
    dialplan_text: str = DEFAULT_DIALPLAN
    dialplan_files: list[Path] = field(default_factory=list)
    queues: dict[str, QueueConfig] = field(default_factory=dict)
    api_docs_dir: Path | None = None
    strict: bool = False
    time_scale: float = 1.0
    asterisk_id: str = "02:fc:00:00:00:01"
    system_name: str = ""                   # asterisk.conf `systemname`: prefixes channel unique ids
    language: str = "en"
    answer_media_wait: float = 0.5          # Answer() waits this long for a first frame
    external_media_stasis_delay: float = 0.002
    outbound_answer_after: float | None = 0.5      # an originated phone with no callee script answers after this
    # scripted phones by dialled number (callees.py); more can be added at run time (POST /sim/callees)
    callees: dict[str, CalleeScript] = field(default_factory=dict)
    callee_table_max: int = 100_000
    # app_amd's settings; None = no amd.conf: app_amd declines to load and AMD() does not exist (amd.py)
    amd: AmdSettings | None = None
    trunk_name: str = "PJSIP/trunk"
    # ARI outbound websockets (ari.conf type=outbound_websocket); see outbound.py for the recorded timings
    outbound_websockets: list[OutboundWebsocket] = field(default_factory=list)
    outbound_stasis_poll: float = 0.5       # per-call Stasis() looks at its connection every 0.5 s
    outbound_close_after_stasis_end: float = 3.5    # per-call socket closed (1000) 3.47-3.5 s after StasisEnd
    outbound_handshake_timeout: float = 1.0  # "Timeout waiting for HTTP status line" 1.003 s after the attempt
