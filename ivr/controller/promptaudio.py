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
build` and said in the log; what cannot be played at all (no synthesiser and
no recording) stops the start-up with an error naming the prompts. It runs
before the controller connects to Asterisk: until then `Stasis()` fails at
once and the dialplan sends callers to a person, never into silence.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ivr.prompts import load_prompts
from ivr.speech.tts import BuildReport, build_prompts

log = logging.getLogger(__name__)
SHOWN = 8  # prompt names listed in a message before "and N more"


class PromptAudioError(RuntimeError):
    """Some prompts would play in silence and cannot be built here."""


@dataclass
class PromptSurvey:
    """Where each prompt (`<lang>/<key>`) stands before the controller starts."""

    ready: list[str] = field(default_factory=list)
    per_call: list[str] = field(default_factory=list)  # synthesised with the call's values
    missing: list[str] = field(default_factory=list)  # no audio yet, but `ivr prompts build` can make it
    unplayable: list[str] = field(default_factory=list)  # no audio and nothing here can make it


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
    found = PromptSurvey()
    for language, texts in sorted(catalog.texts.items()):
        for key, prompt in sorted(texts.items()):
            name = f"{language}/{key}"
            built = (sounds_dir / language / f"{key}.wav").is_file()
            recorded = (prompts_dir / "recorded" / language / f"{key}.wav").is_file()
            if prompt.placeholders and can_synthesise:
                found.per_call.append(name)
            elif prompt.placeholders and media_base_url:
                found.unplayable.append(name)  # served per call only, and nothing here can render it
            elif built:
                found.ready.append(name)
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
    log.info("prompt audio: %d prompt(s) ready under %s, %d synthesised per call", len(found.ready), sounds_dir,
             len(found.per_call))
    return found


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
