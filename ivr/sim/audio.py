"""Audio helpers: the file formats Asterisk plays, resampling, energy.

Samples are kept as ``array('h')`` of signed 16-bit linear PCM at 8 kHz
(Asterisk's ``slin``), the rate a phone call runs at in these traces.
"""
from __future__ import annotations

import io
import struct
import sys
import wave
from array import array
from pathlib import Path

RATE = 8000
FRAME_SECONDS = 0.02
FRAME_SAMPLES = 160            # 20 ms at 8 kHz
VOICE_THRESHOLD = 256          # mean |sample| above which a frame counts as speech (Asterisk DSP default)


class AudioFormatError(ValueError):
    """The data cannot be played in the format its name or type claims."""


def _mulaw_table() -> list[int]:
    out = []
    for byte in range(256):
        u = ~byte & 0xFF
        sign = u & 0x80
        exponent = (u >> 4) & 0x07
        mantissa = u & 0x0F
        value = ((mantissa << 3) + 0x84) << exponent
        value -= 0x84
        out.append(-value if sign else value)
    return out


def _alaw_table() -> list[int]:
    out = []
    for byte in range(256):
        a = byte ^ 0x55
        sign = a & 0x80
        exponent = (a >> 4) & 0x07
        mantissa = a & 0x0F
        value = (mantissa << 4) + 8
        if exponent:
            value = (value + 0x100) << (exponent - 1)
        out.append(value if sign else -value)
    return out


_ULAW = _mulaw_table()
_ALAW = _alaw_table()


def ulaw_encode(samples: array) -> bytes:
    """Linear 16-bit -> G.711 mu-law (for ulaw externalMedia)."""
    out = bytearray()
    for s in samples:
        sign = 0x80 if s < 0 else 0
        mag = min(abs(int(s)), 32635) + 0x84
        exponent = 7
        for exp in range(7, -1, -1):
            if mag & (0x80 << exp):
                exponent = exp
                break
        mantissa = (mag >> (exponent + 3)) & 0x0F
        out.append(~(sign | (exponent << 4) | mantissa) & 0xFF)
    return bytes(out)


def pcm_from_bytes(data: bytes, big_endian: bool = False) -> array:
    samples = array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if (sys.byteorder == "little") == big_endian:
        samples.byteswap()
    return samples


def pcm_to_bytes(samples: array, big_endian: bool = False) -> bytes:
    out = array("h", samples)
    if (sys.byteorder == "little") == big_endian:
        out.byteswap()
    return out.tobytes()


def read_wav_bytes(data: bytes) -> tuple[int, array]:
    """Decode a 16-bit PCM WAV (any rate, first channel kept)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError, struct.error) as exc:
        raise AudioFormatError(f"not a WAV file: {exc}") from exc
    if width != 2:
        raise AudioFormatError(f"unsupported WAV sample width {width}")
    samples = pcm_from_bytes(frames)
    if channels > 1:
        samples = samples[::channels]
    return rate, samples


def decode(data: bytes, fmt: str) -> array:
    """Decode ``data`` in Asterisk format ``fmt`` into 8 kHz slin.

    ``wav`` must be 8 kHz (format_wav rejects other rates), ``wav16`` 16 kHz.
    """
    if fmt == "wav":
        rate, samples = read_wav_bytes(data)
        if rate != RATE:
            raise AudioFormatError(f"Unexpected frequency mismatch {rate} (expecting {RATE})")
        return samples
    if fmt == "wav16":
        rate, samples = read_wav_bytes(data)
        if rate != 16000:
            raise AudioFormatError(f"Unexpected frequency mismatch {rate} (expecting 16000)")
        return downsample(samples, rate)
    if fmt in ("sln", "raw", "slin"):
        return pcm_from_bytes(data)
    if fmt in ("sln16", "slin16"):
        return downsample(pcm_from_bytes(data), 16000)
    if fmt in ("ulaw", "ul", "pcm", "mu"):
        return array("h", (_ULAW[b] for b in data))
    if fmt in ("alaw", "al"):
        return array("h", (_ALAW[b] for b in data))
    raise AudioFormatError(f"unknown format {fmt}")


PLAYABLE_FORMATS = ("wav", "wav16", "sln", "sln16", "raw", "ulaw", "alaw", "pcm", "slin", "slin16", "ul", "al")


def downsample(samples: array, rate: int) -> array:
    """Resample to 8 kHz by linear interpolation (exact halving for 16 kHz)."""
    if rate == RATE:
        return samples
    if rate == 16000:
        return array("h", ((samples[i] + samples[i + 1]) // 2 for i in range(0, len(samples) - 1, 2)))
    ratio = rate / RATE
    n = int(len(samples) / ratio)
    out = array("h")
    for i in range(n):
        pos = i * ratio
        j = int(pos)
        frac = pos - j
        a = samples[j]
        b = samples[j + 1] if j + 1 < len(samples) else a
        out.append(int(a + (b - a) * frac))
    return out


def upsample_to_16k(samples: array) -> array:
    """8 kHz -> 16 kHz, linear interpolation (what slin16 externalMedia carries)."""
    out = array("h", bytes(4 * len(samples)))
    n = len(samples)
    for i in range(n):
        a = samples[i]
        b = samples[i + 1] if i + 1 < n else a
        out[2 * i] = a
        out[2 * i + 1] = (a + b) // 2
    return out


def mean_abs(frame: array) -> float:
    if not frame:
        return 0.0
    return sum(map(abs, frame)) / len(frame)


def is_voice(frame: array, threshold: float = VOICE_THRESHOLD) -> bool:
    return mean_abs(frame) > threshold


def audible(samples: array | None) -> bool:
    """Whether a prompt's audio can be heard at all (``silence/3`` cannot; a ``tone:``, None, can)."""
    return samples is None or max(map(abs, samples), default=0) > VOICE_THRESHOLD


def duration(samples: array, rate: int = RATE) -> float:
    return len(samples) / rate


def write_wav(path: Path, samples: array, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm_to_bytes(samples))


def wav_bytes(samples: array, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm_to_bytes(samples))
    return buf.getvalue()


def load_wav_8k(path: Path) -> array:
    """Load any 16-bit WAV for the simulated caller, resampled to 8 kHz."""
    rate, samples = read_wav_bytes(Path(path).read_bytes())
    return downsample(samples, rate)


def silence(seconds: float) -> array:
    return array("h", bytes(2 * int(round(seconds * RATE))))
