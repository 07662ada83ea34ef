"""Simulator configuration: credentials, directories, dialplan, queues.

Everything a test or the demo may want to vary lives here as plain data;
nothing is read from the environment implicitly.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

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
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line)
        if header:
            name, options = header.group(1), header.group(2) or ""
            current = None if name == "general" else _new_queue(name, options, templates)
            if current is not None:
                (templates if "!" in options else queues)[name] = current
            continue
        if current is None or "=" not in line:
            continue
        key, _, value = line.partition("=>") if "=>" in line else line.partition("=")
        _apply_queue_setting(current, key.strip(), value.strip())
    return queues


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


def load_asterisk_conf(config: SimulatorConfig, conf_dir: Path) -> SimulatorConfig:
    """Use a deployment's extensions.conf / queues.conf (e.g. the project's asterisk-conf/)."""
    conf_dir = Path(conf_dir)
    if (conf_dir / "extensions.conf").is_file():
        config.dialplan_files.append(conf_dir / "extensions.conf")
    if (conf_dir / "queues.conf").is_file():
        config.queues.update(parse_queues_conf((conf_dir / "queues.conf").read_text()))
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
    language: str = "en"
    answer_media_wait: float = 0.5          # Answer() waits this long for a first frame
    external_media_stasis_delay: float = 0.002
    outbound_answer_after: float | None = 0.5
    trunk_name: str = "PJSIP/trunk"
