"""Receiving a call's audio from Asterisk's externalMedia channel (RTP over UDP).

Each call gets its own UDP socket, so the port says which call a packet
belongs to. Asterisk sends slin16: payload type 118, 20 ms frames of 320
big-endian 16-bit samples at 16 kHz. Packets are handed on as they arrive;
a lost packet is simply a missing 20 ms, which speech recognition tolerates.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

log = logging.getLogger(__name__)
RTP_HEADER = struct.Struct("!BBHII")


def rtp_payload(packet: bytes) -> tuple[int, int, bytes] | None:
    """(payload type, sequence number, payload) of an RTP packet, or None if it is not one."""
    if len(packet) < RTP_HEADER.size:
        return None
    first, second, sequence, _timestamp, _ssrc = RTP_HEADER.unpack_from(packet)
    if first >> 6 != 2:
        return None
    offset = RTP_HEADER.size + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: 4 bytes of profile and length, then the words
        if len(packet) < offset + 4:
            return None
        words = struct.unpack_from("!H", packet, offset + 2)[0]
        offset += 4 + 4 * words
    end = len(packet)
    if first & 0x20:  # padding: the last byte says how much
        end -= packet[-1]
    if offset > end:
        return None
    return second & 0x7F, sequence, packet[offset:end]


class RtpReceiver(asyncio.DatagramProtocol):
    def __init__(self, on_payload: Callable[[bytes], None]):
        self.on_payload = on_payload
        self.packets = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        parsed = rtp_payload(data)
        if parsed is None:
            return
        self.packets += 1
        self.on_payload(parsed[2])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_receiver(host: str, on_payload: Callable[[bytes], None]) -> tuple[RtpReceiver, int]:
    """A UDP socket on a free port of `host`, handing each RTP payload to `on_payload`."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(lambda: RtpReceiver(on_payload), local_addr=(host, 0))
    port = transport.get_extra_info("sockname")[1]
    return protocol, port
