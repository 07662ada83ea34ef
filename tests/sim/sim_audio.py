"""Audio made at test time: tones shaped like the prompts and callers in the traces.

Durations and voiced spans match what the traces show of the real files
(hello-world 1.404 s, caller1 voiced 0.02-1.44 s of 1.736 s, ...); the
talking caller of scenario set 3 is synthesised speech as long and as loud
as the recording's.
"""
from __future__ import annotations

import math
import random
import shutil
import subprocess
import tempfile
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
KHZ_PROMPT_SECONDS = 1.5        # sound:prompt of the prompt_config fixture


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


# -- scenario set 3: a caller who talks all the time, the recorded prompt ---------
SPEECH_SECONDS = 31.8           # the recording's tr/speech (flite), looped by caller-sim "talk"
SPEECH_RMS = 1460.0             # the caller's RMS in the recorded RTP before any prompt
SENTENCE_PAUSE = 0.35
CALLER_LINES = (
    "Hello, I am calling about my life insurance policy.",
    "I would like to know when my next premium is due.",
    "My policy number should be on the letter you sent me last month.",
    "I changed my bank account in the spring, so the payment may have failed.",
    "Could you tell me whether the cover is still in force?",
    "I also want to add my daughter as a beneficiary.",
    "Please send the forms by post, I do not use email very often.",
    "My address has not changed since I took out the policy.",
)


def spoken(text: str) -> array | None:
    """``text`` said by flite (else espeak-ng) at 8 kHz, or None when neither is installed."""
    from ivr.sim.audio import load_wav_8k
    for command in (["flite", "-voice", "slt", "-t", text, "-o"], ["espeak-ng", "-w"]):
        if shutil.which(command[0]) is None:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "say.wav"
            args = command + [str(out)] + ([text] if command[0] == "espeak-ng" else [])
            subprocess.run(args, check=True, capture_output=True)
            return load_wav_8k(out)
    return None


def voiced(seconds: float, seed: int = 5) -> array:
    """A synthetic voiced signal when no synthesiser is installed: a gliding 110-150 Hz
    glottal buzz with harmonics falling at 12 dB/octave, in syllables, so little of
    its energy lies at 950-1050 Hz (caller speech: ratio ~0.01 in the traces)."""
    rng = random.Random(seed)
    out = array("h")
    phase = 0.0
    while len(out) < seconds * RATE:
        syllable = int(rng.uniform(0.12, 0.3) * RATE)
        f0 = rng.uniform(110, 150)
        for i in range(syllable):
            phase += 2 * math.pi * (f0 + 20 * math.sin(math.pi * i / syllable)) / RATE
            envelope = math.sin(math.pi * i / syllable)
            out.append(int(4000 * envelope * sum(math.sin(k * phase) / k ** 2 for k in range(1, 6))))
        out.extend(array("h", bytes(2 * int(rng.uniform(0.03, 0.12) * RATE))))
    return out[: int(seconds * RATE)]


def caller_speech(seconds: float = SPEECH_SECONDS, rms: float = SPEECH_RMS) -> array:
    """Speech with short pauses between sentences, ``seconds`` long, scaled to ``rms``."""
    pause = array("h", bytes(2 * int(SENTENCE_PAUSE * RATE)))
    out = array("h")
    lines = iter(CALLER_LINES * 4)
    while len(out) < seconds * RATE:
        said = spoken(next(lines))
        if said is None:
            out = voiced(seconds)
            break
        out.extend(_scaled(said, rms) + pause)     # every sentence as loud: phases compare alike
    return _scaled(out[: int(seconds * RATE)], rms)


def _scaled(samples: array, rms: float) -> array:
    level = math.sqrt(sum(s * s for s in samples) / len(samples)) or 1.0
    return array("h", (max(-32768, min(32767, int(s * rms / level))) for s in samples))


def make_set3_sounds(root: Path, tone1k: Path) -> Path:
    """``tr/speech`` (made now) and ``tr/tone1k`` (the recorded prompt, linked, not copied)."""
    write_wav(root / "tr" / "speech.wav", caller_speech())
    (root / "tr" / "tone1k.wav").symlink_to(tone1k)
    return root
