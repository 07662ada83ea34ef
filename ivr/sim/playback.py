"""Playbacks: ``/channels/{id}/play``, ``/bridges/{id}/play`` and ``/playbacks/{id}``.

A playback says ``queued`` until its turn (in the channel's command queue,
or until its bridge's announcer is ready), ``playing`` from PlaybackStarted,
and ``done`` whether it completed, was stopped or was cancelled before
starting; ``failed`` when its media could not be played or the channel
hung up under it.  Its ``target_uri`` (``channel:<id>`` or ``bridge:<id>``)
also decides which applications get its events.  A playlist
(``media=a,b``) is one playback, with PlaybackContinuing between its items.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from array import array
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import announcer, audio
from . import events as ev
from .errors import AriError
from .media import MediaError
from .registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from .bridges import Bridges
    from .emitter import Emitter
    from .ids import IdFactory
    from .media import MediaResolver
    from .model import Bridge, Channel
    from .simcall import SimCall

log = logging.getLogger(__name__)


class Playback:
    def __init__(self, playback_id: str, media: list[str], target_uri: str, language: str) -> None:
        self.id = playback_id
        self.media = media
        self.target_uri = target_uri
        self.language = language
        self.state = "queued"
        self.index = 0
        self.stop = asyncio.Event()
        self.finalized = False
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.stopped = False
        self.heard_by: list[SimCall] = []   # the SimCalls who hear it (told when it ends)

    def _target(self, kind: str) -> str:
        scheme, _, ident = self.target_uri.partition(":")
        return ident if scheme == kind else ""

    @property
    def channel_id(self) -> str:
        """The channel played to; "" for a bridge playback."""
        return self._target("channel")

    @property
    def bridge_id(self) -> str:
        return self._target("bridge")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "media_uri": self.media[self.index]}
        if self.index + 1 < len(self.media):
            body["next_media_uri"] = self.media[self.index + 1]
        body.update({"target_uri": self.target_uri, "language": self.language, "state": self.state})
        return body


def split_media(media: str) -> list[str]:
    """``media=sound:a,sound:b`` is a playlist (one playback, one DELETE stops it)."""
    return [m for m in media.split(",") if m]


class Playbacks(Registry[Playback]):
    """The playbacks queued or playing, by id, and what plays them.

    Read as a mapping (``GET /playbacks/{id}``); changed only through the
    methods below.  A channel playback runs in the channel's command queue
    and suspends the channel from its bridge while it plays; a bridge
    playback is spoken by an Announcer that joins the bridge (announcer.py).
    """

    def __init__(self, emitter: Emitter, media: MediaResolver, ids: IdFactory, language: str,
                 channels: Mapping[str, Channel], calls: Mapping[str, SimCall], bridges: Bridges) -> None:
        super().__init__()
        self.emitter = emitter
        self.media = media
        self.ids = ids
        self.language = language          # a bridge playback's, without ``lang``
        self.channels = channels
        self.calls = calls
        self.bridges = bridges

    # -- requests -----------------------------------------------------------------------------
    def play_on_channel(self, ch: Channel, media: str, playback_id: str | None, lang: str | None) -> Playback:
        """``POST /channels/{id}/play`` on a channel in Stasis: queued behind its earlier commands."""
        uris = split_media(media or "")
        if not uris:
            raise AriError(400, "media is required")
        pb = Playback(playback_id or str(uuid.uuid4()), uris, f"channel:{ch.id}", lang or ch.language)
        self._items[pb.id] = pb
        assert ch.control is not None
        ch.control.submit("play", lambda: self._run_on_channel(ch, pb))
        return pb

    def play_on_bridge(self, bridge_id: str, media: str, playback_id: str | None, lang: str | None,
                       announcer_format: str | None = None, offset_ms: int = 0) -> Playback:
        """``POST /bridges/{id}/play``: answered ``queued``; an announcer joins the bridge to play it."""
        bridge = self.bridges.lookup(bridge_id)
        uris = split_media(media or "")
        if not uris:
            raise AriError(400, "media is required")
        announcer.check_request(bridge, self.on_bridge(bridge), announcer_format, offset_ms)
        pb = Playback(playback_id or str(uuid.uuid4()), uris, f"bridge:{bridge.id}", lang or self.language)
        self._items[pb.id] = pb
        self.ids.unique_id()       # the announcer's ;1 half takes an id too
        ann = announcer.new_channel(self.ids.unique_id(), self.ids.announcer_suffix(), self.emitter.ts(),
                                    self.language)
        ann.spawn(self._run_on_bridge(bridge, ann, pb), "bridge-play")
        return pb

    def stop(self, playback_id: str) -> None:
        """``DELETE /playbacks/{id}``: a queued playback is done when its turn comes, a playing one now."""
        pb = self._items.pop(playback_id, None)
        if pb is None:
            raise AriError(404, "Playback not found")
        pb.stopped = True
        if pb.state == "queued":
            pb.finalized = True        # PlaybackFinished(done) when the queue reaches it
            pb.state = "done"
        else:
            pb.stop.set()

    def on_bridge(self, bridge: Bridge) -> bool:
        """A bridge playback is queued or playing on ``bridge``."""
        return bridge.announcer is not None or any(p.bridge_id == bridge.id for p in self._items.values())

    def abort_channel(self, ch: Channel) -> None:
        """The channel hangs up or leaves Stasis: what plays on it fails, what waits is dropped."""
        for pb in list(self._items.values()):
            if pb.channel_id == ch.id and pb.state == "playing":
                self._finish(pb, "failed")
        for pb in list(self._items.values()):
            if pb.channel_id == ch.id:
                self._items.pop(pb.id, None)

    # -- playing ------------------------------------------------------------------------------
    async def _run_on_channel(self, ch: Channel, pb: Playback) -> None:
        if pb.finalized:   # cancelled while queued: announce it now, without a start
            self.emitter.emit(ev.playback_event("PlaybackFinished", self.emitter.ts(), pb.to_json()))
            return
        ch.channel_playback = pb      # suspended from its bridge until PlaybackFinished (see external_media)
        self._started(pb, [self.calls.get(ch.id)])
        await self._play_media(pb, lambda samples: _media_towards_far_end(ch))

    async def _run_on_bridge(self, bridge: Bridge, ann: Channel, pb: Playback) -> None:
        await asyncio.sleep(0)     # after the response, as for a channel playback
        if pb.finalized:
            self.emitter.emit(ev.playback_event("PlaybackFinished", self.emitter.ts(), pb.to_json()))
            return
        self.bridges.announcer_joins(bridge, ann)
        self._started(pb, [self.calls.get(c) for c in bridge.channels])
        assert ann.audio_in is not None
        audio_in = ann.audio_in
        await self._play_media(pb, lambda samples: announcer.speak(audio_in, samples, self.emitter.clock.now()))

    def _started(self, pb: Playback, heard_by: list[SimCall | None]) -> None:
        pb.state = "playing"
        pb.started_at = self.emitter.clock.now()
        pb.heard_by = [call for call in heard_by if call is not None]
        self.emitter.emit(ev.playback_event("PlaybackStarted", self.emitter.ts(), pb.to_json()))
        for call in pb.heard_by:
            call.on_prompt_started(pb)

    async def _play_media(self, pb: Playback, sound: Callable[[array | None], None]) -> None:
        """Each media URI in turn (PlaybackContinuing between them) until the last ends or a stop.

        ``sound`` gets each URI's samples as it starts (None: a tone, until stopped).
        """
        for index, uri in enumerate(pb.media):
            if index:
                pb.index = index
                self.emitter.emit(ev.playback_event("PlaybackContinuing", self.emitter.ts(), pb.to_json()))
            try:
                samples = await self.media.load(uri, pb.language)
            except MediaError as exc:
                log.warning("%s: Playback failed for %s: %s", pb.target_uri, uri, exc)
                if index + 1 == len(pb.media):
                    self._finish(pb, "failed")
                    return
                continue
            if pb.finalized:
                return
            if pb.stop.is_set():
                break
            sound(samples)
            if audio.audible(samples):
                for call in pb.heard_by:
                    call.on_prompt_audio(pb)
            duration = None if samples is None else len(samples) / 8000
            if await self._wait_stop(pb, duration):
                pb.stopped = True
                break
            if pb.finalized:
                return
        self._finish(pb, "done")

    async def _wait_stop(self, pb: Playback, duration: float | None) -> bool:
        if duration is None:
            await pb.stop.wait()
            return True
        return await self.emitter.clock.wait_for(pb.stop, duration)

    def _finish(self, pb: Playback, state: str) -> None:
        if pb.finalized:
            return
        pb.finalized = True
        pb.state = state
        pb.finished_at = self.emitter.clock.now()
        self._items.pop(pb.id, None)
        ch = self.channels.get(pb.channel_id)
        if ch is not None and ch.channel_playback is pb:
            ch.channel_playback = None
        self.emitter.emit(ev.playback_event("PlaybackFinished", self.emitter.ts(), pb.to_json()))
        for call in pb.heard_by:
            call.on_prompt_finished(pb)
        bridge = self.bridges.get(pb.bridge_id)
        if bridge is not None and bridge.announcer is not None:
            self.bridges.announcer_leaves(bridge)


def _media_towards_far_end(ch: Channel) -> None:
    """First audio frame towards the far end ends a pending Answer() wait there."""
    if ch.partner is not None:
        ch.partner.media_flowing.set()
