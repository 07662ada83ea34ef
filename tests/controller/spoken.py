"""A spoken caller's habits, shared by the tests that call with a voice.

The caller waits for the prompt to finish, speaks, answers "Did you say ...?"
truthfully, and the helpers report what was heard when a test fails.
"""

from __future__ import annotations

import subprocess
import tempfile
from array import array
from pathlib import Path

from ivr.controller import notices as note
from ivr.speech.audio import read_wav_8k
from ivr.speech.turn import TurnEnded
from tests.controller.conftest import heard


def samples(pcm: bytes) -> array:
    return array("h", pcm)


def story(call, turns: Turns) -> str:
    """What the caller heard and what the recogniser made of it, for failure messages."""
    prompts = [p.media_uri.rsplit("/", 1)[-1] + (" (stopped)" if p.stopped else "") for p in call.prompts]
    return f"prompts {prompts}; turns {[(t.event.type, getattr(t.event, 'text', ''), round(getattr(t.event, 'confidence', 0), 2), t.early) for t in turns.ended]}"


async def wait_heard(call, turns: Turns, key: str, timeout: float = 15) -> None:
    try:
        await call.wait_until(lambda c: heard(c, key), timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"never heard {key}: {story(call, turns)}") from None


class Turns:
    """Observer: what the controller's speech turns ended with."""

    def __init__(self) -> None:
        self.ended: list[TurnEnded] = []
        self.barge_ins = 0

    def __call__(self, session, notice: note.Notice) -> None:
        match notice:
            case note.SpeechHeard(ended):
                self.ended.append(ended)
            case note.SpeechStarted():
                self.barge_ins += 1


async def say_after_prompts(call, pcm: bytes, prompts: int) -> None:
    await call.wait_until(lambda c: len(c.prompts) >= prompts and c.prompts[prompts - 1].finished_at is not None,
                          timeout=20)
    await call.silence(0.3)
    await call.say(samples(pcm))


def espeak(text: str, voice: str = "en+klatt", rate: int = 160) -> bytes:
    """espeak-ng at a speaking rate (words per minute), telephone band."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(out), text], check=True)
        return read_wav_8k(out)


async def answer_confirmation(call, voice, turns: Turns, meant: str) -> None:
    """If the engine was unsure and asks "Did you say ...?", the caller answers truly."""
    try:
        await call.wait_until(lambda c: heard(c, "common.did_you_say"), timeout=3)
    except TimeoutError:
        return
    right = turns.ended and getattr(turns.ended[-1].event, "text", "") == meant
    await say_after_prompts(call, voice("yes" if right else "no"), prompts=len(call.prompts))


async def speak_until(call, turns: Turns, voice, wordings: str | tuple[str, ...], expect: str,
                      attempts: int = 3) -> None:
    """Say it after the prompts until the flow plays `expect`, as a caller would: answer
    "Did you say ...?" truly and, when the IVR did not get it, say it again in the next wording."""
    wordings = (wordings,) if isinstance(wordings, str) else wordings
    for attempt in range(attempts):
        text = wordings[attempt % len(wordings)]
        await say_after_prompts(call, voice(text), prompts=len(call.prompts))
        await answer_confirmation(call, voice, turns, text)
        played = len(call.prompts)
        try:  # the IVR answers with what was expected or with a reprompt, which the caller hears out
            await call.wait_until(lambda c, played=played: heard(c, expect) or len(c.prompts) > played, timeout=6)
        except TimeoutError:
            continue
        if heard(call, expect):
            return
    raise AssertionError(f"said {wordings!r} {attempts} times, never heard {expect}: {story(call, turns)}")
