"""Audio made at test time: tones shaped like the prompts and callers in the traces.

Durations and voiced spans match what the traces show of the real files
(hello-world 1.404 s, caller1 voiced 0.02-1.44 s of 1.736 s, ...).
"""
from __future__ import annotations

import math
import wave
from array import array
from pathlib import Path

RATE = 8000


def tone(total: float, voiced: list[tuple[float, float]], rate: int = RATE,
         freq: float = 440.0, amp: int = 8000) -> array:
    """``total`` seconds of silence with a sine tone over the ``voiced`` spans."""
    out = array("h", bytes(2 * int(round(total * rate))))
    step = 2 * math.pi * freq / rate
    for start, end in voiced:
        for i in range(int(start * rate), min(len(out), int(end * rate))):
            out[i] = int(amp * math.sin(step * i))
    return out


def write_wav(path: Path, samples: array, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def upsample(samples: array) -> array:
    out = array("h")
    for i, s in enumerate(samples):
        nxt = samples[i + 1] if i + 1 < len(samples) else s
        out.extend((s, (s + nxt) // 2))
    return out


def ulaw(samples: array) -> bytes:
    out = bytearray()
    for s in samples:
        sign = 0x80 if s < 0 else 0
        mag = min(abs(s), 32635) + 0x84
        exponent = next((e for e in range(7, -1, -1) if mag & (0x80 << e)), 0)
        out.append(~(sign | (exponent << 4) | ((mag >> (exponent + 3)) & 0x0F)) & 0xFF)
    return bytes(out)


def make_trace_sounds(root: Path) -> Path:
    """The sound files the recorded scenarios play, with the same lengths."""
    write_wav(root / "hello-world.wav", tone(1.404, [(0.0, 1.404)]))
    write_wav(root / "demo-congrats.wav", tone(30.27, [(0.0, 30.27)], freq=330))
    write_wav(root / "demo-thanks.wav", tone(2.0, [(0.0, 2.0)], freq=550))
    write_wav(root / "vm-goodbye.wav", tone(1.0, [(0.0, 1.0)]))
    write_wav(root / "custom" / "caller1.wav", tone(1.736, [(0.02, 1.44)], freq=220))
    write_wav(root / "custom" / "caller-speech.wav",
              tone(11.848, [(0.02, 3.58), (8.0, 11.42)], freq=250))
    return root


PROMPT_SECONDS = 3.575875


def make_http_prompts(root: Path) -> Path:
    """The files served in the http-media scenario, in every format it tried."""
    base = tone(PROMPT_SECONDS, [(0.0, PROMPT_SECONDS)], freq=300)
    wide = upsample(base)
    tenant = root / "ivr-prompts" / "tenant-0001"
    write_wav(root / "p.wav", base)
    write_wav(tenant / "prompt.wav", base)
    write_wav(tenant / "prompt-noext", base)
    write_wav(tenant / "prompt16k.wav", wide, rate=16000)
    write_wav(tenant / "prompt16k.wav16", wide, rate=16000)
    (tenant / "prompt.sln").write_bytes(base.tobytes())
    (tenant / "prompt.sln16").write_bytes(wide.tobytes())
    (tenant / "prompt.ulaw").write_bytes(ulaw(base))
    return root
