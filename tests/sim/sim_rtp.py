"""What externalMedia sends, received and measured as the recorded ``*-rtp.jsonl`` files are.

The recordings summarise RTP per phase of a call and per 100 ms of arrival
time: packets, ``rms_be`` (RMS of the big-endian slin16 payload samples),
``tone1k_energy_ratio`` (share of spectral energy at 950-1050 Hz) and
``dominant_hz``.  The same definitions here let a replay be compared with
the recording phase by phase.
"""
from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

WIDE_RATE = 16000


@dataclass(frozen=True)
class Packet:
    t: float                 # simulated arrival time (relative to the replay's start)
    addr: tuple[str, int]
    marker: bool
    payload_type: int
    seq: int
    ts: int
    ssrc: int
    payload: bytes

    @classmethod
    def parse(cls, t: float, addr: tuple[str, int], data: bytes) -> Packet:
        first, second, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
        return cls(t, addr, bool(second & 0x80), second & 0x7F, seq, ts, ssrc, data[12:])

    def samples(self) -> np.ndarray:
        return np.frombuffer(self.payload, dtype=">i2").astype(np.float64)


class RtpSink(asyncio.DatagramProtocol):
    """Receives what externalMedia sends; times in simulated seconds."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.packets: list[tuple[float, tuple[str, int], bytes]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append((self.clock.now(), addr, data))

    def parsed(self, t0: float) -> list[Packet]:
        return [Packet.parse(t - t0, addr, data) for t, addr, data in self.packets]


@dataclass
class Stats:
    packets: int
    packets_per_s: float
    rms_be: float
    tone1k_energy_ratio: float
    dominant_hz: float | None


def stats(packets: list[Packet], t_from: float, t_to: float) -> Stats:
    """The recordings' per-period and per-window measures over packets arriving in [t_from, t_to)."""
    inside = [p for p in packets if t_from <= p.t < t_to]
    if not inside:
        return Stats(0, 0.0, 0.0, 0.0, None)
    samples = np.concatenate([p.samples() for p in inside])
    rms = float(np.sqrt(np.mean(samples ** 2)))
    power = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / WIDE_RATE)
    total = float(power.sum())
    band = float(power[(freqs >= 950) & (freqs <= 1050)].sum())
    return Stats(len(inside), len(inside) / (t_to - t_from), rms, band / total if total else 0.0,
                 float(freqs[int(np.argmax(power))]) if total else None)


def windows(packets: list[Packet], t_from: float, t_to: float, width: float = 0.1) -> list[Stats]:
    out = []
    t = t_from
    while t + width <= t_to + 1e-9:
        out.append(stats(packets, t, t + width))
        t += width
    return out


def recorded_summary(path: Path) -> dict[str, Any]:
    """Line 1 of a ``-rtp.jsonl`` file (packets, ssrcs, ts steps, marks, periods)."""
    summary: dict[str, Any] = json.loads(path.read_text().splitlines()[0])["summary"]
    return summary


def gaps(packets: list[Packet]) -> list[tuple[Packet, Packet]]:
    """Consecutive packets whose timestamps are more than one 20 ms frame apart."""
    return [(a, b) for a, b in zip(packets, packets[1:]) if b.ts - a.ts != 320]
