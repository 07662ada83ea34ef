"""Audio made at test time (flite, espeak-ng, numpy noise), FSDD when ../shared has it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from ivr.engine.actions import Listen, Timeouts
from ivr.speech.audio import read_wav_8k

ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("IVR_SHARED_DIR", ROOT.parent / "shared"))


def fsdd_dir() -> Path:
    return shared_dir() / "audio" / "fsdd"


def synth(text: str, voice: str = "slt", engine: str = "flite") -> bytes:
    """8 kHz mono 16-bit samples of `text` spoken by flite or espeak-ng."""
    tool = "flite" if engine == "flite" else "espeak-ng"
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        if engine == "flite":
            command = ["flite", "-voice", voice, "-t", text, "-o", str(out)]
        else:
            command = ["espeak-ng", "-v", voice, "-w", str(out), text]
        subprocess.run(command, check=True, capture_output=True)
        return read_wav_8k(out)


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(8000 * seconds)


def with_noise(pcm: bytes, snr_db: float, seed: int = 7) -> bytes:
    """Speech with white noise added at a signal-to-noise ratio."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    power = np.mean(samples[np.abs(samples) > 200] ** 2) if np.any(np.abs(samples) > 200) else 1e6
    noise = np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(samples))
    return np.clip(samples + noise, -32768, 32767).astype("<i2").tobytes()


def noise(seconds: float, level: float = 3000, seed: int = 3) -> bytes:
    samples = np.random.default_rng(seed).normal(0, level, int(8000 * seconds))
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def listen(grammar: dict[str, str], mode: str = "choices", language: str = "en", noinput: float = 5.0,
           end_silence: float = 0.8, max_speech: float = 15.0, digits: int = 0) -> Listen:
    return Listen(mode=mode, language=language, grammar=grammar, min_digits=digits, max_digits=digits,
                  timeouts=Timeouts(noinput=noinput, end_silence=end_silence, max_speech=max_speech, interdigit=3.0))


MENU = {
    "policy information": "policy", "my policy": "policy", "payment": "payment", "failed payment": "payment",
    "update my phone number": "phone", "cancel my policy": "cancel", "agent": "global:agent",
    "speak to someone": "global:agent",
}
