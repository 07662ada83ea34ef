"""externalMedia channels: RTP from the simulator to the app's media server.

Observed (``externalmedia`` traces): packets from 127.0.0.1, payload type
118 for slin16, 640-byte payloads (20 ms at 16 kHz), big-endian samples,
timestamp step 320, real-time pacing, carrying the caller's audio while
the caller sends frames.  The local port is in 10000-20000 and reported in
UNICASTRTP_LOCAL_ADDRESS / UNICASTRTP_LOCAL_PORT.
"""
from __future__ import annotations

import asyncio
import random
import struct
from array import array
from typing import TYPE_CHECKING, Any

from . import audio

if TYPE_CHECKING:  # pragma: no cover
    from .core import Simulator
    from .model import Channel

PAYLOAD_TYPES = {"slin16": 118, "ulaw": 0}
SUPPORTED_FORMATS = tuple(PAYLOAD_TYPES)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: "ExternalMedia") -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner.on_rtp(data)


class ExternalMedia:
    def __init__(self, sim: "Simulator", channel: "Channel", host: str, port: int, fmt: str) -> None:
        self.sim = sim
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
            self.transport = transport  # type: ignore[assignment]
            self.local_port = port
            return
        raise OSError("no free RTP port in 10000-20000")

    def set_sources(self, sources: list["Channel"]) -> None:
        """Channels bridged with us; their callers' audio is what we send."""
        self.sources = sources
        if sources and self.sender is None:
            self.sender = self.channel.spawn(self._send_loop(), "rtp")
        elif not sources and self.sender is not None:
            self.sender.cancel()
            self.sender = None

    async def _send_loop(self) -> None:
        clock = self.sim.clock
        t = clock.now()
        while True:
            frame = self._mix(t)
            if frame is not None:
                self._send(frame)
            t += audio.FRAME_SECONDS
            await clock.sleep_until(t)

    def _mix(self, t: float) -> array | None:
        frames = [s.audio_in.frame(t) for s in self.sources if s.audio_in is not None and not s.destroyed]
        present = [f for f in frames if f is not None]
        if not present:
            return None
        if len(present) == 1:
            return present[0]
        return array("h", (max(-32768, min(32767, sum(v))) for v in zip(*present)))

    def _send(self, frame: array) -> None:
        if self.transport is None:
            return
        if self.fmt == "slin16":
            payload = audio.pcm_to_bytes(audio.upsample_to_16k(frame), big_endian=True)
            self._ts += 2 * len(frame)
        else:
            payload = audio.ulaw_encode(frame)
            self._ts += len(frame)
        header = struct.pack("!BBHII", 0x80, PAYLOAD_TYPES[self.fmt], self._seq, self._ts & 0xFFFFFFFF, self._ssrc)
        self._seq = (self._seq + 1) & 0xFFFF
        self.transport.sendto(header + payload, self.remote)
        self.packets_sent += 1

    def on_rtp(self, data: bytes) -> None:
        """Audio the app sends towards the caller(s) in the bridge."""
        if len(data) < 12:
            return
        self.packets_received += 1
        payload = data[12:]
        for src in self.sources:
            call = self.sim.calls.get(src.id)
            if call is not None:
                call.received_rtp.extend(payload)

    def close(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            self.sender = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None
