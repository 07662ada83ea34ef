"""What the caller was played in the current step, so a controller taking over a call
knows what they have heard.

Asterisk goes on playing a dead controller's queued prompts, and a prompt it
could not fetch (per-call audio served by that controller) fails unseen: the
events of the gap are dropped. So before posting a step's prompts the session
writes them down (`StepAudio`): playback ids, keys, values, expected lengths,
and when they were sent. The adopting controller asks Asterisk which of those
playbacks still exist and decides, with `recover`, what to keep, what to stop
and what to play again, so that the caller hears every prompt of the step once
and in order. Private prompts (a read-back of the caller's digits, a policy
or phone number said masked, whose values hold the full number) are written
without their values: they cannot be played again, and the engine asks
its question afresh instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from ivr.engine.actions import Play, PromptRef

TOLERANCE = 0.3  # seconds of slack between a prompt's expected and actual end
Live = Literal["playing", "queued"] | None  # what Asterisk says of a playback; None: gone


class SentPrompt(BaseModel):
    playback_id: str
    key: str
    values: dict[str, Any] | None  # None: withheld (a private prompt)
    language: str
    barge_in: bool
    seconds: float | None  # length of its audio, when known

    @property
    def replayable(self) -> bool:
        return self.values is not None

    def prompt(self) -> PromptRef:
        assert self.values is not None
        return PromptRef(key=self.key, values=self.values)

    def as_play(self) -> Play:
        return Play(prompts=[self.prompt()], language=self.language, barge_in=self.barge_in)


class StepAudio(BaseModel):
    """The latest prompts sent to a call, in play order, from `sent_at` (wall clock).

    `played` is the engine's count of prompts asked for (`CallState.played`)
    once these were: a state that counts more has prompts that were never sent.
    Prompts the caller interrupted are not kept: they count as heard.
    """

    call_id: str
    played: int
    sent_at: float
    prompts: list[SentPrompt]


def sent_prompt(playback_id: str, prompt: PromptRef, play: Play, seconds: float | None) -> SentPrompt:
    return SentPrompt(playback_id=playback_id, key=prompt.key, values=None if prompt.private else dict(prompt.values),
                      language=play.language, barge_in=play.barge_in, seconds=seconds)


@dataclass
class Recovery:
    """What a controller taking over does with the step's prompts."""

    keep: list[SentPrompt] = field(default_factory=list)  # still in Asterisk's queue, in order
    stop: list[str] = field(default_factory=list)  # playback ids to stop, the last queued first
    replay: list[SentPrompt] = field(default_factory=list)  # to play again, in order
    ask_again: bool = False  # something unheard cannot be replayed: the engine's own prompt instead


def unheard_from(audio: StepAudio, live: list[Live], now: float) -> int:
    """Index of the first prompt the caller has not heard in full.

    A playback Asterisk no longer has either played to its end or failed; one
    that ended well before its audio could have (fetch failed, never sent)
    was not heard. Prompts play one after another from `sent_at`.
    """
    expected_end = audio.sent_at
    for index, (prompt, state) in enumerate(zip(audio.prompts, live)):
        if state is not None:
            return index
        if prompt.seconds is not None:
            expected_end += prompt.seconds
            if now < expected_end - TOLERANCE:
                return index
    return len(audio.prompts)


def recover(audio: StepAudio, live: list[Live], now: float, servable: list[bool]) -> Recovery:
    """Decide from what Asterisk still plays (`live`) and what this controller can serve.

    `servable[i]`: the audio of prompt i can still be fetched from us (a queued
    prompt whose per-call audio died with the old controller would fail).
    """
    start = unheard_from(audio, live, now)
    rest, states = audio.prompts[start:], live[start:]
    queued_ok = all(ok for ok, state in zip(servable[start:], states) if state == "queued")
    if all(state is not None for state in states) and queued_ok:
        return Recovery(keep=list(rest))
    stop = [p.playback_id for p, state in reversed(list(zip(rest, states))) if state is not None]
    if not all(p.replayable for p in rest):
        return Recovery(stop=stop, ask_again=True)
    return Recovery(stop=stop, replay=list(rest))
