"""externalMedia channels: RTP from the simulator to the app's media server.

Observed (``externalmedia`` traces): packets from 127.0.0.1, payload type
118 for slin16, 640-byte payloads (20 ms at 16 kHz), big-endian samples,
timestamp step 320, real-time pacing, carrying the caller's audio while
the caller sends frames.  The local port is in 10000-20000 and reported in
UNICASTRTP_LOCAL_ADDRESS / UNICASTRTP_LOCAL_PORT.

A bridge member with a channel playback playing is suspended from the
bridge (``externalmedia-during-channel-play``): its audio reaches nobody and
nothing reaches it; with no other source the RTP stops completely.  When
packets resume, seq continues without a gap, the marker bit is set and the
timestamp has jumped by the paused time (56320 = 3.52 s): the media clock
runs on while nothing is sent.
"""
from __future__ import annotations

import asyncio
import random
import struct
from array import array
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import audio

if TYPE_CHECKING:  # pragma: no cover
    from .clock import Clock
    from .model import Channel
    from .simcall import SimCall

PAYLOAD_TYPES = {"slin16": 118, "ulaw": 0}
SUPPORTED_FORMATS = tuple(PAYLOAD_TYPES)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: ExternalMedia) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner.on_rtp(data)


class ExternalMedia:
    def __init__(self, clock: Clock, calls: Mapping[str, SimCall], channel: Channel, host: str, port: int,
                 fmt: str) -> None:
        self.clock = clock
        self.calls = calls              # the simulated callers, told what the app streams to them
        self.channel = channel
        self.remote = (host, port)
        self.fmt = fmt
        self.transport: asyncio.DatagramTransport | None = None
        self.local_port = 0
        self.sources: list[Channel] = []
        self.sender: asyncio.Task[Any] | None = None
        self.packets_sent = 0
        self.packets_received = 0
        self._seq = random.randrange(1 << 16)
        self._ts = 0
        self._last_sent: float | None = None      # media time of the last packet
        self._ssrc = random.randrange(1 << 32)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(50):
            port = random.randrange(10000, 20000, 2)
            try:
                transport, _proto = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), local_addr=("127.0.0.1", port))
            except OSError:
                continue
            self.transport = transport
            self.local_port = port
            return
        raise OSError("no free RTP port in 10000-20000")

    def set_sources(self, sources: list[Channel]) -> None:
        """Channels bridged with us; their callers' audio is what we send."""
        self.sources = sources
        if sources and self.sender is None:
            self.sender = self.channel.spawn(self._send_loop(), "rtp")
        elif not sources and self.sender is not None:
            self.sender.cancel()
            self.sender = None

    async def _send_loop(self) -> None:
        clock = self.clock
        t = clock.now()
        while True:
            frame = self._mix(t)
            if frame is not None:
                self._send(frame, t)
            t += audio.FRAME_SECONDS
            await clock.sleep_until(t)

    def _heard(self) -> list[Channel]:
        """Sources whose audio reaches the bridge now (not gone, not suspended by a channel playback)."""
        return [s for s in self.sources if not s.destroyed and s.channel_playback is None]

    def _mix(self, t: float) -> array | None:
        frames = [s.audio_in.frame(t) for s in self._heard() if s.audio_in is not None]
        present = [f for f in frames if f is not None]
        if not present:
            return None
        if len(present) == 1:
            return present[0]
        return array("h", (max(-32768, min(32767, sum(v))) for v in zip(*present)))

    def _send(self, frame: array, t: float) -> None:
        if self.transport is None:
            return
        if self.fmt == "slin16":
            payload = audio.pcm_to_bytes(audio.upsample_to_16k(frame), big_endian=True)
            step = 2 * len(frame)
        else:
            payload = audio.ulaw_encode(frame)
            step = len(frame)
        frames = 1 if self._last_sent is None else max(1, round((t - self._last_sent) / audio.FRAME_SECONDS))
        self._last_sent = t
        self._ts += step * frames
        marker = 0x80 if frames > 1 else 0
        header = struct.pack("!BBHII", 0x80, marker | PAYLOAD_TYPES[self.fmt], self._seq, self._ts & 0xFFFFFFFF,
                             self._ssrc)
        self._seq = (self._seq + 1) & 0xFFFF
        self.transport.sendto(header + payload, self.remote)
        self.packets_sent += 1

    def on_rtp(self, data: bytes) -> None:
        """Audio the app sends towards the caller(s) in the bridge."""
        if len(data) < 12:
            return
        self.packets_received += 1
        payload = data[12:]
        for src in self._heard():
            call = self.calls.get(src.id)
            if call is not None:
                call.received_rtp.extend(payload)

    def close(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            self.sender = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None
