"""Bridges: ``/bridges``, and channels moving in and out of them.

A channel entering or leaving is a ChannelEnteredBridge / ChannelLeftBridge
for the applications subscribed to the bridge (adding a Stasis channel
subscribes its application).  Each member's BRIDGEPEER names the others
(set only when it changes, '' on leaving); an externalMedia member sends
the mix of the other members' audio (see external_media.py).  A bridge
playback's Announcer is a member too (see announcer.py).  Queue() joins
caller and agent in a ``basic`` bridge of its own, dropped without a
BridgeDestroyed once both have left (``continue-to-queue*`` traces).
"""
from __future__ import annotations

from collections.abc import Mapping

from . import events as ev
from .emitter import Emitter
from .errors import AriError
from .ids import IdFactory
from .model import Bridge, Channel
from .registry import Registry
from .variables import Variables


class Bridges(Registry[Bridge]):
    """Every bridge by id: read as a mapping, changed only through the methods below."""

    def __init__(self, emitter: Emitter, ids: IdFactory, channels: Mapping[str, Channel],
                 variables: Variables) -> None:
        super().__init__()
        self.emitter = emitter
        self.ids = ids
        self.channels = channels
        self.variables = variables

    # -- /bridges -----------------------------------------------------------------------
    def create(self, bridge_type: str = "mixing", bridge_id: str | None = None, name: str = "") -> Bridge:
        bid = bridge_id or self.ids.bridge_id()
        if bid in self._items:
            raise AriError(409, "Bridge with the same bridgeId already exists")
        types = [t for t in (bridge_type or "mixing").split(",") if t]
        bridge = Bridge(id=bid, creationtime=self.emitter.ts(), name=name or "",
                        bridge_type="holding" if "holding" in types else "mixing")
        self._items[bid] = bridge
        return bridge

    def lookup(self, bridge_id: str) -> Bridge:
        """The bridge, or ARI's 404."""
        bridge = self._items.get(bridge_id)
        if bridge is None:
            raise AriError(404, "Bridge not found")
        return bridge

    def add(self, bridge_id: str, channel_ids: list[str]) -> None:
        bridge = self.lookup(bridge_id)
        chans: list[Channel] = []
        for cid in channel_ids:
            ch = self.channels.get(cid)
            if ch is None or ch.destroyed:
                raise AriError(400, "Channel not found")
            if ch.stasis_app is None:
                raise AriError(422, "Channel not in Stasis application")
            chans.append(ch)
        for ch in chans:
            if ch.bridge_id == bridge.id:
                continue
            if ch.bridge_id is not None:
                self.leave(ch)
            self.emitter.bus.app(ch.stasis_app or "").bridges[bridge.id] += 1
            bridge.channels.append(ch.id)
            ch.bridge_id = bridge.id
            self.emitter.emit(ev.bridge_channel_event("ChannelEnteredBridge", self.emitter.ts(), bridge, ch))
        self.members_changed(bridge)

    def remove(self, bridge_id: str, channel_id: str) -> None:
        bridge = self.lookup(bridge_id)
        ch = self.channels.get(channel_id)
        if ch is None or ch.destroyed:
            raise AriError(400, "Channel not found")
        if ch.bridge_id != bridge.id:
            raise AriError(422, "Channel not in this bridge")
        self.leave(ch)

    def destroy(self, bridge: Bridge) -> None:
        """Its channels leave (ChannelLeftBridge each), then BridgeDestroyed."""
        for cid in list(bridge.channels):
            ch = self.channels.get(cid)
            if ch is not None:
                self.leave(ch)
        del self._items[bridge.id]
        self.emitter.emit(ev.bridge_event("BridgeDestroyed", self.emitter.ts(), bridge))
        self.emitter.bus.forget_bridge(bridge.id)

    # -- membership -------------------------------------------------------------------------
    def leave(self, ch: Channel, quiet: bool = False) -> None:
        """``ch`` leaves its bridge, if any; ``quiet``: no BRIDGEPEER='' and no ChannelLeftBridge (hang-up)."""
        bridge = self._items.get(ch.bridge_id or "")
        if bridge is None:
            ch.bridge_id = None
            return
        if ch.id in bridge.channels:
            bridge.channels.remove(ch.id)
        ch.bridge_id = None
        if not quiet:
            self.variables.set(ch, "BRIDGEPEER", "")
            self.emitter.emit(ev.bridge_channel_event("ChannelLeftBridge", self.emitter.ts(), bridge, ch))
        self.members_changed(bridge)
        if ch.external_media is not None:
            ch.external_media.set_sources([])

    def announcer_joins(self, bridge: Bridge, announcer: Channel) -> None:
        """A bridge playback's announcer enters (no ChannelEnteredBridge: the app sees only BRIDGEPEER)."""
        bridge.announcer, announcer.bridge_id = announcer, bridge.id
        self.members_changed(bridge)

    def announcer_leaves(self, bridge: Bridge) -> None:
        announcer = bridge.announcer
        assert announcer is not None
        bridge.announcer, announcer.bridge_id = None, None
        self.members_changed(bridge)
        announcer.cancel_tasks()

    def members_changed(self, bridge: Bridge) -> None:
        """Who is in ``bridge`` changed: BRIDGEPEER on each member, and what each externalMedia member sends."""
        self._update_peers(bridge)
        self._update_media_paths(bridge)

    def _members(self, bridge: Bridge) -> list[Channel]:
        """A bridge playback's announcer first (BRIDGEPEER lists it first), then the channels as they joined."""
        joined = [self.channels[c] for c in bridge.channels if c in self.channels]
        return ([bridge.announcer] if bridge.announcer is not None else []) + joined

    def _update_peers(self, bridge: Bridge) -> None:
        """BRIDGEPEER on each member: the others' names, comma-separated, set only when it changes."""
        members = self._members(bridge)
        if len(members) < 2:
            return
        for ch in members:
            if ch is bridge.announcer:
                continue
            peers = ",".join(m.name for m in members if m is not ch)
            if ch.get_var("BRIDGEPEER") != peers:
                self.variables.set(ch, "BRIDGEPEER", peers)

    def _update_media_paths(self, bridge: Bridge) -> None:
        members = self._members(bridge)
        for ch in members:
            if ch.external_media is not None:
                sources = [m for m in members if m is not ch and m.audio_in is not None]
                ch.external_media.set_sources(sources)

    # -- Queue() --------------------------------------------------------------------------------
    def join_queue_call(self, agent: Channel, caller: Channel) -> Bridge:
        """Queue()'s own basic bridge: the agent enters, then the caller; each gets the other as BRIDGEPEER."""
        bridge = Bridge(id=self.ids.bridge_id(), creationtime=self.emitter.ts(), bridge_class="basic",
                        creator="", video_mode="none")
        self._items[bridge.id] = bridge
        for ch in (agent, caller):
            bridge.channels.append(ch.id)
            ch.bridge_id = bridge.id
            self.emitter.emit(ev.bridge_channel_event("ChannelEnteredBridge", self.emitter.ts(), bridge, ch))
        self.variables.set(agent, "BRIDGEPEER", caller.name)
        self.variables.set(caller, "BRIDGEPEER", agent.name)
        return bridge

    def drop_empty_queue_bridges(self) -> None:
        """Queue()'s bridges that both parties have left go, without a BridgeDestroyed."""
        for bid in [b for b, br in self._items.items() if br.bridge_class == "basic" and not br.channels]:
            del self._items[bid]
