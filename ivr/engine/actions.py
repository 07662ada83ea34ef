"""What the engine asks the edges to do: play, listen, call a backend, transfer, hang up.

Actions are executed in order by the controller. A `Listen` after a `Play`
means "listen once the prompts end, or as soon as the caller barges in".
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True)


class PromptRef(_Action):
    """A prompt by key, with the values of its placeholders already computed."""

    key: str
    values: dict[str, Any] = Field(default_factory=dict)
    private: bool = False  # the values repeat the caller or hold a full number: never written down


class Play(_Action):
    type: Literal["play"] = "play"
    prompts: list[PromptRef]
    language: str
    barge_in: bool = True


class Timeouts(_Action):
    noinput: float
    end_silence: float
    max_speech: float
    interdigit: float


class Listen(_Action):
    """Listen for the caller, constrained to what this turn expects.

    `grammar` maps each phrase the recogniser may return to the outcome it
    stands for, in the call's language; `keys` does the same for DTMF.

    `sensitive`: what the caller gives here (a card number, its expiry) is
    never recognised, recorded or logged. So the turn takes keys only (a
    sensitive turn that takes speech is refused here), no recogniser hears
    the caller while it is open, and the audio heard meanwhile is not kept
    as the next turn's pre-roll (`CallListener.keep_pre_roll`); the call log
    shows nothing of what was keyed (`calllog.shown_keys`) and the keys are
    not kept at rest (`CallState.at_rest`).
    """

    type: Literal["listen"] = "listen"
    mode: Literal["choices", "digits", "confirm"]
    language: str
    grammar: dict[str, str] = Field(default_factory=dict)
    keys: dict[str, str] = Field(default_factory=dict)
    speech: bool = True
    dtmf: bool = True
    min_digits: int = 0
    max_digits: int = 0
    terminator: str = ""
    timeouts: Timeouts
    sensitive: bool = False

    @model_validator(mode="after")
    def _keys_only_when_sensitive(self) -> Listen:
        if self.sensitive and self.speech:
            raise ValueError("a sensitive turn takes keys only: nothing said in it may reach a recogniser")
        return self


class CallBackend(_Action):
    """Run a backend action. Whether it writes is the catalog's to say (`ivr.backend.catalog`):
    `engine.resume` reads it there for a call saved while waiting, which has no action to look at."""

    type: Literal["backend"] = "backend"
    name: str
    args: dict[str, Any]
    timeout: float


FALLBACK_QUEUE = "customer_service"
"""The queue a caller goes to when nothing else names one: an escape in a flow that has
none, a call the controller cannot resume. Asterisk's dialplan names the same queue as
`IVR_FALLBACK_QUEUE` (asterisk-conf/extensions.conf) for when the controller is down,
which cannot import this; tests/ari/test_asterisk_conf.py keeps the two the same."""


class Transfer(_Action):
    """Hand the caller to a person in a queue, with why and what happened so far."""

    type: Literal["transfer"] = "transfer"
    queue: str
    reason: str
    priority: int
    detail: str = ""
    flow: str = ""
    node: str = ""


class Hangup(_Action):
    type: Literal["hangup"] = "hangup"
    outcome: str


Action = Play | Listen | CallBackend | Transfer | Hangup
