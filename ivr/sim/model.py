"""Channel and bridge state, and their JSON snapshots as ARI returns them.

Snapshots keep Asterisk's key order so that a recorded trace and the
simulator's output can be compared field by field.
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from .audio_in import AudioIn
    from .control import ChannelControl
    from .external_media import ExternalMedia
    from .pbx import Goto
    from .playback import Playback
    from .queues import QueueWait
    from .talkdetect import TalkDetector


@dataclass
class CallerId:
    name: str = ""
    number: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "number": self.number}

    @classmethod
    def parse(cls, text: str | None) -> CallerId:
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


ChannelKind = Literal["trunk", "local1", "local2", "agent", "unicast", "snoop", "announcer"]
"""What a channel is: a trunk leg (inbound call, or originated to a phone), a Local pair's ``;1``
(facing whoever originated) or ``;2`` (running the dialplan), a queue member's leg, an
externalMedia (UnicastRTP) channel, a snoop, or the Announcer a bridge playback adds."""


@dataclass(frozen=True)
class OriginateTarget:
    """Where an originated channel goes once answered: an app or a dialplan spot."""
    app: str | None
    app_args: str
    context: str | None
    extension: str | None
    priority: int | None
    label: str | None


@dataclass(eq=False, repr=False, kw_only=True)
class Channel:
    """One Asterisk channel (a Local half, an inbound trunk leg, an agent leg...).

    Every part of the simulator keeps what it needs to know about a channel
    in a field declared here, so that who sets what can be read in one place.
    Identity is the object itself (``eq=False``): a Local pair points at
    each other, and two channels are never equal by their fields.
    """
    # -- what snapshots show ------------------------------------------------------------
    id: str
    name: str
    state: str
    location: DialplanLocation
    creationtime: str
    caller: CallerId = field(default_factory=CallerId)
    connected: CallerId = field(default_factory=CallerId)
    language: str = "en"
    protocol_id: str = ""        # an inbound call's SIP Call-ID (set after its ChannelCreated)
    accountcode: str = ""
    # -- what it is and how it came to be (fixed when it is created) -----------------------
    kind: ChannelKind
    audio_in: AudioIn | None = None          # what the app hears from this channel
    dialstring: str = ""                     # originated: the dialstring its Dial events show
    outgoing_app: tuple[str, str] = ("AppDial2", "(Outgoing Line)")   # what ChannelDestroyed shows
    originated_into_stasis: bool = False     # originate(app=...) rather than dialplan entry
    spied: Channel | None = None             # a snoop channel: the channel it spies on
    partner: Channel | None = None           # the other half of a Local pair
    channelvars: dict[str, str] | None = None   # only in externalMedia's response
    # -- originated: where it goes once answered (cleared then) ----------------------------
    pending: OriginateTarget | None = None
    # -- variables ------------------------------------------------------------------------
    variables: dict[str, str] = field(default_factory=dict)
    inherited: dict[str, str] = field(default_factory=dict)   # _X/__X: what a dialled leg inherits
    master: Channel | None = None            # a queue agent running a Gosub: MASTER_CHANNEL()
    # -- Stasis -----------------------------------------------------------------------------
    stasis_app: str | None = None
    stasis_args: list[str] = field(default_factory=list)
    control: ChannelControl | None = None
    stasis_exit: asyncio.Future[Goto] | None = None   # resolved by /continue: where the dialplan goes on
    # -- running ------------------------------------------------------------------------------
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    pbx_task: asyncio.Task[None] | None = None        # its dialplan (or what waits to run it)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    media_flowing: asyncio.Event = field(default_factory=asyncio.Event)   # first frame to its far end
    bridge_id: str | None = None
    talk_detect: TalkDetector | None = None
    external_media: ExternalMedia | None = None
    channel_playback: Playback | None = None  # playing now (suspends it from its bridge)
    snoops: list[Channel] = field(default_factory=list)   # snoop channels spying on this one
    queue_wait: QueueWait | None = None       # a caller in Queue(): the legs ringing, then the agent
    # -- ending -------------------------------------------------------------------------------
    destroyed: bool = False
    soft_hungup: bool = False                # DELETE while its dialplan runs: the dialplan is interrupted
    far_hungup: bool = False                 # the caller hung up while its dialplan runs
    hangup_cause: int | None = None          # the cause asked by DELETE or the caller's hang-up
    tech_cause: int | None = None            # a PJSIP leg's SIP code (486...): ChannelDestroyed ``tech_cause``
    hungup_by: str | None = None             # "app" | "caller" | "dialplan" | "callee" | "timeout", for SimCall

    # -- variables ----------------------------------------------------------
    def set_var(self, name: str, value: str) -> None:
        """Store a variable; ``_X``/``__X`` also mark it inheritable as Asterisk does."""
        bare = name.lstrip("_")
        self.variables[bare] = value
        if name.startswith("_"):
            self.inherited[name] = value

    def get_var(self, name: str) -> str | None:
        return self.variables.get(name.lstrip("_"))

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def cancel_tasks(self, keep: asyncio.Task[Any] | None = None) -> None:
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
