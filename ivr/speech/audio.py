"""Audio formats at the edges: Asterisk's RTP payloads in, the recognisers' frames out.

externalMedia with `format=slin16` sends 640-byte RTP payloads: 20 ms of
16 kHz *big-endian* signed 16-bit samples. Recognition runs on 8 kHz
little-endian frames of 320 bytes (the telephone band; nothing above 4 kHz
survives a phone line anyway), so the stream is byte-swapped and resampled
with a streaming resampler that keeps its filter state between packets.
soxr's quick quality (cubic): its HQ filter held 0-96 ms of audio back,
depending on where a packet fell in its blocks, and every turn's end waited
that long; `ivr bench turns` p95 went from 296/327 to 228/267 ms (choices,
yes/no) and barge-in from 204 to 85 ms.
What reaches us is a phone call that Asterisk upsampled from 8 kHz (nothing
above 4 kHz to fold back), so the sharper filter bought nothing.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import soxr

FRAME_BYTES_8K = 320
RESAMPLE_QUALITY = "QQ"


class RtpToFrames:
    """Turns slin16 RTP payloads (16 kHz big-endian) into 8 kHz little-endian bytes."""

    def __init__(self) -> None:
        # float32: soxr's int16 output is dithered with a random seed (not repeatable)
        self._resampler = soxr.ResampleStream(16000, 8000, 1, dtype="float32", quality=RESAMPLE_QUALITY)

    def convert(self, payload: bytes) -> bytes:
        samples = np.frombuffer(payload, dtype=">i2").astype(np.float32)
        out = self._resampler.resample_chunk(samples)
        return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()


def rtp_payload_to_pcm8k(payload: bytes, converter: RtpToFrames | None = None) -> bytes:
    """One payload converted; pass the call's `RtpToFrames` to keep the filter continuous."""
    return (converter or RtpToFrames()).convert(payload)


def frames(pcm: bytes, size: int = FRAME_BYTES_8K) -> list[bytes]:
    """Whole 20 ms frames of a buffer (a short tail is zero-padded)."""
    out = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    if out and len(out[-1]) < size:
        out[-1] = out[-1] + b"\0" * (size - len(out[-1]))
    return out


def read_wav_8k(source: Path | bytes) -> bytes:
    """Mono 16-bit samples of a WAV at 8 kHz (resampled when the file is not)."""
    handle = wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    with handle:
        rate, channels, width = handle.getframerate(), handle.getnchannels(), handle.getsampwidth()
        data = handle.readframes(handle.getnframes())
    if width != 2:
        raise ValueError("only 16-bit WAV is supported")
    samples = np.frombuffer(data, dtype="<i2").reshape(-1, channels).mean(axis=1)
    if rate != 8000:
        samples = soxr.resample(samples, rate, 8000)
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def wav_bytes(pcm: bytes, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV file around little-endian samples."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm)
    return buffer.getvalue()
