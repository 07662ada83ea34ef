"""Prompt audio: every prompt text rendered to 8 kHz WAV, rebuilt only when it changed.

Asterisk plays 8 kHz mono 16-bit WAV (`sound:` media), so prompts are built
ahead of calls with pyttsx3 over espeak-ng (headless) and resampled with
soxr. Each file is keyed by a hash of (text, voice, rate): a build after an
unchanged edit renders nothing, and a changed text renders only its own
prompt. A designer's recording in `prompts/recorded/<lang>/<key>.wav` wins
over TTS. Texts with `{placeholders}` depend on the call, so the controller
renders them with `synthesize(text, language)`, cached by the same hash.

Pitfalls handled (measured, shared/speech/README.md): `runAndWait()` can
return before the file exists, so the espeak driver is synchronised and the
file awaited; a wrong voice name fails silently and keeps the previous voice,
so the voice is checked after setting it; Mandarin uses `cmn-latn-pinyin`
(`cmn` reads tone numbers aloud). Mixed-script texts ("… 中文服务请按9。")
are spoken run by run, each in its own voice.

pyttsx3 keeps one engine per process and is not re-entrant: renders are
serialised with a lock, in one worker process (`IsolatedTts`): espeak-ng is
native code that has crashed, and a crash there must cost a retry, not the
controller. `synthesize` blocks (~20 ms for a long prompt); call it through
`loop.run_in_executor`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import shutil
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from ivr.prompts import LANGUAGES, PLACEHOLDER, load_prompts
from ivr.speech.audio import read_wav_8k, wav_bytes

log = logging.getLogger(__name__)

# espeak-ng voice names (what SetVoiceByName takes); `espeak-ng --voices` lists them.
VOICES: dict[str, str] = {"en": "en-us", "zh": "cmn-latn-pinyin"}
RATE = 165  # words per minute: a little slower than espeak's 175 for the phone
OUTPUT_RATE = 8000
MANIFEST = "manifest.json"
# A run of Chinese, with the digits and punctuation inside or after it ("请按9。").
_CJK = re.compile(r"[\u4e00-\u9fff][\u3000-\u303f\u4e00-\u9fff\uff00-\uffef0-9]*")


class TtsError(RuntimeError):
    pass


class EspeakTts:
    """pyttsx3's espeak driver, one render at a time, with its pitfalls handled."""

    _lock = threading.Lock()

    def __init__(self) -> None:
        import pyttsx3

        self._engine = pyttsx3.init("espeak")
        self._voices = {v.id.rsplit("/", 1)[-1]: v.id for v in self._engine.getProperty("voices")}

    def render(self, text: str, voice: str, rate: int = RATE, attempts: int = 3) -> bytes:
        """8 kHz mono 16-bit samples of `text` in `voice` (retried: the driver's race is rare)."""
        if voice not in self._voices:
            raise TtsError(f"espeak-ng has no voice {voice!r}")
        for attempt in range(attempts):
            try:
                return self._render_once(text, voice, rate)
            except TtsError as exc:
                if "voice" in str(exc) or attempt == attempts - 1:
                    raise
                log.warning("espeak render failed (%s); retrying", exc)
        raise AssertionError("unreachable")

    def _render_once(self, text: str, voice: str, rate: int) -> bytes:
        with self._lock, tempfile.TemporaryDirectory() as tmp:
            self._engine.setProperty("voice", voice)  # queued: applied inside runAndWait
            self._engine.setProperty("rate", rate)
            out = Path(tmp) / "tts.wav"
            with contextlib.redirect_stdout(io.StringIO()):  # the driver prints "Audio saved to …"
                self._engine.save_to_file(text, str(out))
                self._engine.runAndWait()
                _synchronise()
            if self._engine.getProperty("voice") != self._voices[voice]:
                raise TtsError(f"voice {voice!r} did not take effect")  # espeak kept the previous one
            return read_wav_8k(_await_file(out))


def _synchronise() -> None:
    from pyttsx3.drivers import _espeak

    _espeak.Synchronize()


def _await_file(path: Path, timeout: float = 2.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 44:
            data = path.read_bytes()
            with contextlib.suppress(Exception):
                read_wav_8k(data)
                return data
        time.sleep(0.005)
    raise TtsError("espeak produced no audio file")


def voice_runs(text: str, language: str) -> list[tuple[str, str]]:
    """(voice, text) runs: Chinese characters in the Mandarin voice, the rest in the call's."""
    base = VOICES.get(language, VOICES["en"])
    other = VOICES["en"] if language == "zh" else base
    runs: list[tuple[str, str]] = []
    position = 0
    for found in _CJK.finditer(text):
        runs.append((other if language == "zh" else base, text[position : found.start()]))
        runs.append((VOICES["zh"], found.group()))
        position = found.end()
    runs.append((other if language == "zh" else base, text[position:]))
    return [(voice, part.strip()) for voice, part in runs if re.search(r"\w", part)]


def text_hash(text: str, language: str, rate: int = RATE) -> str:
    """What a rendering depends on: the text, the voices it is spoken in, the rate."""
    key = json.dumps([text, voice_runs(text, language), rate, OUTPUT_RATE], ensure_ascii=False)
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def render_text(tts: EspeakTts | IsolatedTts, text: str, language: str, rate: int = RATE) -> bytes:
    """A WAV file (8 kHz) of `text`, mixed scripts spoken run by run."""
    gap = b"\0\0" * int(OUTPUT_RATE * 0.12)
    parts = [tts.render(part, voice, rate) for voice, part in voice_runs(text, language)]
    return wav_bytes(gap.join(parts))


@dataclass
class BuildReport:
    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    per_call: list[str] = field(default_factory=list)  # texts with placeholders: `synthesize` at call time
    removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {k: sorted(v) for k, v in self.__dict__.items()}


def build_prompts(prompts_dir: Path, out_dir: Path, languages: list[str] | None = None,
                  tts: EspeakTts | IsolatedTts | None = None, rate: int = RATE) -> BuildReport:
    """Render every prompt to `<out_dir>/<lang>/<key>.wav`, skipping what is unchanged."""
    catalog, _ = load_prompts(prompts_dir)
    manifest_path = out_dir / MANIFEST
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    new: dict[str, dict[str, str]] = {}
    report = BuildReport()
    for language in languages or list(LANGUAGES):
        for key, prompt in sorted(catalog.texts.get(language, {}).items()):
            name = f"{language}/{key}"
            target = out_dir / language / f"{key}.wav"
            recorded = prompts_dir / "recorded" / language / f"{key}.wav"
            if recorded.exists():
                digest = "rec:" + hashlib.sha256(recorded.read_bytes()).hexdigest()[:20]
                _write_if_changed(target, digest, old.get(name), lambda recorded=recorded: wav_bytes(read_wav_8k(recorded)), report.recorded, name)
            elif PLACEHOLDER.search(prompt.text):
                report.per_call.append(name)
                continue
            else:
                digest = text_hash(prompt.text, language, rate)
                render = lambda text=prompt.text, lang=language: render_text(tts or _default_tts(), text, lang, rate)  # noqa: E731
                built = _write_if_changed(target, digest, old.get(name), render, report.built, name)
                if not built:
                    report.unchanged.append(name)
            new[name] = {"hash": digest, "text": prompt.text}
    report.removed = _remove_stale(out_dir, old, new)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(new, ensure_ascii=False, indent=1, sort_keys=True))
    return report


def _write_if_changed(target: Path, digest: str, previous: dict | None, render, bucket: list[str], name: str) -> bool:
    if previous and previous.get("hash") == digest and target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(render())
    os.replace(tmp, target)
    bucket.append(name)
    return True


def _remove_stale(out_dir: Path, old: dict, new: dict) -> list[str]:
    removed = []
    for name in sorted(set(old) - set(new)):
        path = out_dir / f"{name}.wav"
        if path.exists():
            path.unlink()
        removed.append(name)
    return removed


class IsolatedTts:
    """`EspeakTts` in a worker process of its own: espeak-ng has crashed (SIGSEGV inside
    `espeak_Synth`, seen once in a CI run) and must not take the controller and its calls
    with it. A crashed worker is replaced and the render tried again."""

    def __init__(self, attempts: int = 3) -> None:
        self.attempts = attempts
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def render(self, text: str, voice: str, rate: int = RATE) -> bytes:
        for attempt in range(self.attempts):
            try:
                return self._worker().submit(_render_in_worker, text, voice, rate).result(timeout=60)
            except BrokenProcessPool:
                log.warning("the speech synthesiser crashed; starting it again (try %d)", attempt + 1)
                self.close()
        raise TtsError(f"the speech synthesiser crashed {self.attempts} times")

    def _worker(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _render_in_worker(text: str, voice: str, rate: int) -> bytes:
    global _IN_WORKER
    if _IN_WORKER is None:
        _IN_WORKER = EspeakTts()
    return _IN_WORKER.render(text, voice, rate)


_IN_WORKER: EspeakTts | None = None  # the worker process's own engine
_TTS: IsolatedTts | None = None
_CACHE_LOCK = threading.Lock()


def _default_tts() -> IsolatedTts:
    global _TTS
    with _CACHE_LOCK:
        if _TTS is None:
            _TTS = IsolatedTts()
            atexit.register(_release_tts)
        return _TTS


def _release_tts() -> None:
    """Let the driver go while the interpreter is whole: dropped at shutdown, pyttsx3's
    finaliser ran after its module globals were gone and printed a traceback on every exit."""
    global _TTS
    with _CACHE_LOCK:
        if _TTS is not None:
            _TTS.close()
        _TTS = None


def cache_dir() -> Path:
    return Path(os.environ.get("IVR_TTS_CACHE", Path(tempfile.gettempdir()) / "ivr-tts-cache"))


def synthesize(text: str, language: str, cache: Path | None = None, rate: int = RATE) -> bytes:
    """WAV bytes (8 kHz) of a per-call text, cached on disk by (text, voices, rate)."""
    folder = cache or cache_dir()
    path = folder / f"{text_hash(text, language, rate)}.wav"
    if path.exists():
        return path.read_bytes()
    data = render_text(_default_tts(), text, language, rate)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return data


def cmd_prompts_build(args: argparse.Namespace) -> int:
    """`ivr prompts build [--prompts DIR] [--out DIR] [--language en ...]`; prints a JSON summary."""
    prompts_dir = Path(getattr(args, "prompts", None) or "prompts")
    out_dir = Path(getattr(args, "out", None) or prompts_dir / "audio")
    languages = getattr(args, "language", None) or getattr(args, "languages", None) or list(LANGUAGES)
    if shutil.which("espeak-ng") is None:
        print(json.dumps({"error": "espeak-ng is not installed"}))
        return 2
    try:
        report = build_prompts(prompts_dir, out_dir, list(languages))
    except TtsError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    summary = report.as_dict()
    print(json.dumps({"out": str(out_dir), **{k: len(v) for k, v in summary.items()}, "built": summary["built"]},
                     ensure_ascii=False, indent=1))
    return 0
