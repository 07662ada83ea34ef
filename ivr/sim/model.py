"""Channel and bridge state, and their JSON snapshots as ARI returns them.

Snapshots keep Asterisk's key order so that a recorded trace and the
simulator's output can be compared field by field.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .audio_in import AudioIn
    from .control import ChannelControl


@dataclass
class CallerId:
    name: str = ""
    number: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "number": self.number}

    @classmethod
    def parse(cls, text: str | None) -> "CallerId":
        """Parse ``"Name" <number>``, ``Name <number>`` or a bare number."""
        if not text:
            return cls()
        text = text.strip()
        if "<" in text and text.endswith(">"):
            name, _, num = text[:-1].partition("<")
            return cls(name.strip().strip('"'), num.strip())
        return cls("", text)


@dataclass
class DialplanLocation:
    context: str
    exten: str
    priority: int = 1
    app_name: str = ""
    app_data: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"context": self.context, "exten": self.exten, "priority": self.priority,
                "app_name": self.app_name, "app_data": self.app_data}


# Q.850 causes Asterisk prints in ChannelDestroyed.cause_txt
CAUSE_TEXT: dict[int, str] = {
    0: "Unknown", 1: "Unallocated (unassigned) number", 16: "Normal Clearing",
    17: "User busy", 18: "No user responding", 19: "User alerting, no answer",
    21: "Call Rejected", 27: "Destination out of order", 28: "Invalid number format (addr incomplete)",
    31: "Normal, unspecified", 34: "Circuit/channel congestion", 38: "Network out of order",
    41: "Temporary failure", 58: "Bearer capability not available",
    127: "Interworking, unspecified", 26: "Answered elsewhere",
}

# DELETE /channels/{id}?reason=... -> hangup cause
HANGUP_REASONS: dict[str, int] = {
    "normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 18,
    "rejected": 21, "unallocated": 1, "normal_unspecified": 31,
    "number_incomplete": 28, "codec_mismatch": 58, "interworking": 127,
    "failure": 38, "answered_elsewhere": 26,
}


class Channel:
    """One Asterisk channel (a Local half, an inbound trunk leg, an agent leg...)."""

    def __init__(self, *, id: str, name: str, state: str, location: DialplanLocation,
                 creationtime: str, caller: CallerId | None = None,
                 connected: CallerId | None = None, language: str = "en",
                 protocol_id: str = "") -> None:
        self.id = id
        self.name = name
        self.state = state
        self.location = location
        self.creationtime = creationtime
        self.caller = caller or CallerId()
        self.connected = connected or CallerId()
        self.language = language
        self.protocol_id = protocol_id
        self.accountcode = ""
        self.variables: dict[str, str] = {}
        self.channelvars: dict[str, str] | None = None   # only in externalMedia's response
        # topology
        self.partner: Channel | None = None     # other half of a Local pair
        self.is_local_one = False                # ";1" half (the one facing the caller of originate)
        self.originated_into_stasis = False      # originate(app=...) rather than dialplan entry
        self.outgoing_app = ("AppDial2", "(Outgoing Line)")  # what ChannelDestroyed shows
        # runtime
        self.stasis_app: str | None = None
        self.stasis_args: list[str] = []
        self.control: ChannelControl | None = None
        self.audio_in: AudioIn | None = None    # what the app hears from this channel
        self.bridge_id: str | None = None
        self.destroyed = False
        self.hangup_pending = False
        self.tasks: set[asyncio.Task[Any]] = set()
        self.answered = asyncio.Event()
        self.media_flowing = asyncio.Event()     # first frame towards this channel's far end
        self.current_dialplan_app: str | None = None
        self.talk_detect: Any = None
        self.external_media: Any = None
        self.queue_state: Any = None
        self.soft_hungup = False
        self.inherited: dict[str, str] = {}
        self.snoops: list[Channel] = []          # snoop channels spying on this one
        self.spied: Channel | None = None        # for a snoop channel: the channel it spies on
        self.channel_playback: Any = None        # the channel playback playing now (suspends it from its bridge)

    # -- variables ----------------------------------------------------------
    def set_var(self, name: str, value: str) -> None:
        """Store a variable; ``_X``/``__X`` also mark it inheritable as Asterisk does."""
        bare = name.lstrip("_")
        self.variables[bare] = value
        if name.startswith("_"):
            self.inherited[name] = value

    def get_var(self, name: str) -> str | None:
        return self.variables.get(name.lstrip("_"))

    def spawn(self, coro: Any, name: str = "") -> "asyncio.Task[Any]":
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def cancel_tasks(self, keep: "asyncio.Task[Any] | None" = None) -> None:
        for task in list(self.tasks):
            if task is not keep and task is not asyncio.current_task():
                task.cancel()

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "id": self.id, "name": self.name, "state": self.state,
            "protocol_id": self.protocol_id, "caller": self.caller.to_json(),
            "connected": self.connected.to_json(), "accountcode": self.accountcode,
            "dialplan": self.location.to_json(), "creationtime": self.creationtime,
            "language": self.language,
        }
        return snap

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Channel {self.id} {self.name} {self.state}>"


@dataclass
class Bridge:
    """A bridge; ``channels`` in the order they joined (BRIDGEPEER lists them so).

    The snapshot lists channel ids sorted, as every recorded snapshot does
    (``snoop-externalmedia-during-play``: the snoop joined first and is listed
    second).  While a bridge playback's announcer is in a mixing bridge it is
    a member too, and three members make Asterisk switch ``simple_bridge`` to
    ``softmix`` (console of ``bridge-play-with-externalmedia``).
    """
    id: str
    creationtime: str
    bridge_type: str = "mixing"
    technology: str = "simple_bridge"
    bridge_class: str = "stasis"
    creator: str = "Stasis"
    name: str = ""
    video_mode: str = "talker"
    channels: list[str] = field(default_factory=list)
    announcer: Channel | None = None

    def member_ids(self) -> list[str]:
        return self.channels + ([self.announcer.id] if self.announcer is not None else [])

    def snapshot(self) -> dict[str, Any]:
        members = self.member_ids()
        technology = "softmix" if self.bridge_type == "mixing" and len(members) > 2 else self.technology
        return {"id": self.id, "technology": technology, "bridge_type": self.bridge_type,
                "bridge_class": self.bridge_class, "creator": self.creator, "name": self.name,
                "channels": sorted(members), "creationtime": self.creationtime,
                "video_mode": self.video_mode}
