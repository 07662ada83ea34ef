"""Before taking calls: every prompt of every language has audio where it will be played.

A prompt without audio is silence on a live call, and nothing in Asterisk's
log says why the caller hung up. So `ivr serve` checks at start-up, per
language and key of the prompt texts, the place the media resolver
(`ivr.controller.media`) will play it from:

- a prompt without placeholders plays `<sounds_dir>/<lang>/<key>.wav`, which
  `ivr prompts build` renders with espeak-ng or copies from a recording in
  `<prompts_dir>/recorded/<lang>/<key>.wav`;
- a prompt with call data ("{amount}") is synthesised per call, which needs
  the synthesiser; without it, only the sounds-directory mode (no
  `media_base_url`) can play a recording of it, as it is, without the values.

What is missing but can be built is built, with the same code as `ivr prompts
build` and said in the log; so is a file the build manifest says was made
from another text (a prompt edited since, and maybe reloaded while the last
controller ran). What cannot be played at all (no synthesiser and no
recording) stops the start-up with an error naming the prompts. It runs
before the controller connects to Asterisk: until then `Stasis()` fails at
once and the dialplan sends callers to a person, never into silence.

A reload (SIGHUP, or an edited routing file) must not bring a silent prompt
either: `ReleaseAudio.prepare` gives every new release its audio before the
catalog swaps it in, on the reload's worker thread, and refuses the release
when some prompt cannot have any (the running release keeps serving).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ivr.diagnostics import Diagnostic, Severity
from ivr.flow.catalog import FlowSet
from ivr.prompts import PromptSound, PromptText, load_prompts
from ivr.speech.tts import MANIFEST, BuildReport, build_prompts

log = logging.getLogger(__name__)
SHOWN = 8  # prompt names listed in a message before "and N more"
SOURCE_SIZE = 20  # hex characters naming what a prompt's audio says (`<lang>/<source>/<key>.wav`)
Synthesize = Callable[[str, str], bytes]  # (text, language) -> 8 kHz WAV bytes


class PromptAudioError(RuntimeError):
    """Some prompts would play in silence and cannot be built here."""


@dataclass
class PromptSurvey:
    """Where each prompt (`<lang>/<key>`) stands before the controller starts."""

    ready: list[str] = field(default_factory=list)
    per_call: list[str] = field(default_factory=list)  # synthesised with the call's values
    missing: list[str] = field(default_factory=list)  # no audio yet, but `ivr prompts build` can make it
    unplayable: list[str] = field(default_factory=list)  # no audio and nothing here can make it
    outdated: list[str] = field(default_factory=list)  # among `ready`: built from an earlier text, none to rebuild it


def synthesiser_problem() -> str | None:
    """Why prompts cannot be synthesised on this host, or None when they can."""
    if shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed"
    try:
        import pyttsx3  # noqa: F401
    except ImportError:
        return "pyttsx3 is not installed"
    return None


def survey(prompts_dir: Path, sounds_dir: Path, media_base_url: str | None, can_synthesise: bool) -> PromptSurvey:
    """Sort every prompt by whether it will have audio when a call plays it."""
    catalog, _ = load_prompts(prompts_dir)
    manifest = _manifest(sounds_dir)
    found = PromptSurvey()
    for language, texts in sorted(catalog.texts.items()):
        for key, prompt in sorted(texts.items()):
            name = f"{language}/{key}"
            built = (sounds_dir / language / f"{key}.wav").is_file()
            outdated = built and _says_other(manifest.get(name), prompt.text)
            recorded = (prompts_dir / "recorded" / language / f"{key}.wav").is_file()
            if prompt.placeholders and can_synthesise:
                found.per_call.append(name)
            elif prompt.placeholders and media_base_url:
                found.unplayable.append(name)  # served per call only, and nothing here can render it
            elif built and not (outdated and can_synthesise):
                found.ready.append(name)
                if outdated:
                    found.outdated.append(name)
            elif recorded or (can_synthesise and not prompt.placeholders):
                found.missing.append(name)
            else:
                found.unplayable.append(name)
    return found


def ensure_prompt_audio(prompts_dir: Path, sounds_dir: Path, media_base_url: str | None = None,
                        problem: Callable[[], str | None] | None = None,
                        build: Callable[[Path, Path], BuildReport] = build_prompts) -> PromptSurvey:
    """Build what is missing, or raise PromptAudioError naming what would be silent (see the module).

    `problem` says why nothing can be synthesised here (default: `synthesiser_problem`).
    """
    why = (problem or synthesiser_problem)()
    found = survey(prompts_dir, sounds_dir, media_base_url, why is None)
    if found.unplayable:
        raise PromptAudioError(_unplayable_message(found.unplayable, why, media_base_url, prompts_dir))
    if found.missing:
        log.warning("prompt audio: %d prompt(s) have no audio under %s (%s): building them as "
                    "`ivr prompts build --out %s` does", len(found.missing), sounds_dir, _names(found.missing),
                    sounds_dir)
        began = time.monotonic()
        try:
            report = build(prompts_dir, sounds_dir)
        except Exception as exc:  # the synthesiser failed, the folder is not writable...
            raise PromptAudioError(f"building the missing prompt audio under {sounds_dir} failed: {exc}") from exc
        log.info("prompt audio: built %d, copied %d recording(s) in %.1f s", len(report.built),
                 len(report.recorded), time.monotonic() - began)
        found = survey(prompts_dir, sounds_dir, media_base_url, why is None)
        if found.missing or found.unplayable:
            raise PromptAudioError(f"after building, prompts still have no audio under {sounds_dir}: "
                                   f"{_names(found.missing + found.unplayable)}")
    if found.outdated:
        log.warning("prompt audio: %d prompt(s) under %s say an earlier text and nothing here can build them "
                    "again (%s): %s", len(found.outdated), sounds_dir, why, _names(found.outdated))
    log.info("prompt audio: %d prompt(s) ready under %s, %d synthesised per call", len(found.ready), sounds_dir,
             len(found.per_call))
    return found


def _manifest(sounds_dir: Path) -> dict[str, Any]:
    """What `ivr prompts build` says it made each `<lang>/<key>.wav` from ({} when it did not make them)."""
    try:
        manifest = json.loads((sounds_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _says_other(entry: Any, text: str) -> bool:
    """Was the built file made from another text? A recording says what it says, whatever the text."""
    return isinstance(entry, dict) and not str(entry.get("hash", "")).startswith("rec:") and entry.get("text") != text


class ReleaseAudio:
    """Every prompt of a release has audio before the release serves (`Catalog(prepare=...)`).

    The first release plays the files laid out at start-up (`<lang>/<key>.wav`, checked
    above). A reloaded release keeps the audio of each prompt that says the same (its text,
    or its recording) as in the release it replaces; a prompt that says something else, or
    a key the reload added, gets audio of its own, `<lang>/<source>/<key>.wav`, named by
    what it says and built here, on the reload's worker thread: the old file stays for the
    calls still on the old release, and no prompt is swapped in without audio. When some
    prompt cannot have audio the release is refused, with the prompt's file and line.
    Prompts with call data need nothing here while there is a synthesiser: they are
    synthesised per call from the call's release (`ivr.controller.media`).
    """

    def __init__(self, prompts_dir: Path, sounds_dir: Path, media_base_url: str | None,
                 synthesize: Synthesize | None):
        self.prompts_dir = prompts_dir
        self.sounds_dir = sounds_dir
        self.media_base_url = media_base_url
        self.synthesize = synthesize

    def prepare(self, fresh: FlowSet, previous: FlowSet | None) -> tuple[FlowSet | None, list[Diagnostic]]:
        """`fresh` with the audio of each of its prompts, or None and the prompts that would be silent."""
        sounds: dict[str, PromptSound] = {}
        built: list[str] = []
        problems: list[Diagnostic] = []
        for language, texts in sorted(fresh.prompts.texts.items()):
            for key, prompt in sorted(texts.items()):
                if prompt.placeholders and self.synthesize is not None:
                    continue  # synthesised per call, in the words of the call's release
                name = f"{language}/{key}"
                recording = self.prompts_dir / "recorded" / language / f"{key}.wav"
                source = _source(prompt.text, language, recording)
                kept = previous.sounds.get(name) if previous is not None else None
                if previous is None or (kept is not None and kept.source == source):
                    sounds[name] = kept or PromptSound(name, source)
                    continue
                sound = PromptSound(f"{language}/{source}/{key}", source)
                why = self._make(sound, prompt, language, recording, built)
                if why is None:
                    sounds[name] = sound
                else:
                    problems.append(Diagnostic(prompt.file, prompt.line, prompt.column, Severity.ERROR, "no-audio",
                                               f"prompt '{key}' ({language}) would play in silence: {why}"))
        if problems:
            return None, problems
        if built:
            log.info("prompt audio: built %d prompt(s) the reload changed or added, under %s: %s", len(built),
                     self.sounds_dir, _names(built))
        return replace(fresh, sounds=sounds), []

    def _make(self, sound: PromptSound, prompt: PromptText, language: str, recording: Path,
              built: list[str]) -> str | None:
        """Write the audio of `sound` unless an earlier release made it; why it cannot be, or None."""
        path = self.sounds_dir / f"{sound.stem}.wav"
        if path.is_file():
            return None
        if prompt.placeholders and self.media_base_url:
            return "it says call data, which needs the speech synthesiser while IVR_MEDIA_BASE_URL is set"
        synthesize = self.synthesize
        if not recording.is_file() and synthesize is None:
            return f"there is no speech synthesiser here, and no recording at {recording}"
        try:
            if recording.is_file():
                from ivr.speech.audio import read_wav_8k, wav_bytes

                audio = wav_bytes(read_wav_8k(recording))
            elif synthesize is not None:
                audio = synthesize(prompt.text, language)
            else:  # the recording was removed since the look above
                return f"there is no speech synthesiser here, and no recording at {recording}"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_bytes(audio)
            os.replace(tmp, path)  # Asterisk never opens a half-written file
        except Exception as exc:  # a synthesiser, a recording or a disk that fails refuses the reload, not the server
            return f"its audio could not be made: {exc}"
        built.append(sound.stem)
        return None


def _source(text: str, language: str, recording: Path) -> str:
    """A digest of what a prompt's audio says: its recording when there is one, else its text."""
    said = b"recording\0" + recording.read_bytes() if recording.is_file() else f"text\0{language}\0{text}".encode()
    return hashlib.sha256(said).hexdigest()[:SOURCE_SIZE]


def _unplayable_message(names: list[str], why: str | None, media_base_url: str | None, prompts_dir: Path) -> str:
    remedy = ["install the synthesiser (espeak-ng: apt-get install espeak-ng)"]
    if media_base_url:
        remedy.append("prompts with call data cannot play from recordings while IVR_MEDIA_BASE_URL is set")
    else:
        remedy.append(f"or put a recording of each at {prompts_dir}/recorded/<lang>/<key>.wav")
    return (f"{len(names)} prompt(s) would play in silence: {_names(names)}; they need the speech synthesiser "
            f"({why or 'unavailable'}): " + "; ".join(remedy))


def _names(names: list[str]) -> str:
    more = len(names) - SHOWN
    return ", ".join(names[:SHOWN]) + (f" and {more} more" if more > 0 else "")
